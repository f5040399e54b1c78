"""An admin in a real browser sets a sliding scale and a partner code, axe clean on each page;
the member's page then offers the tiers. SCREENSHOT_DIR writes promo-codes-admin.png."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.models import PriceTier, PromoCode, Role, User
from tests.factories import make_clinic, workshop

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def assert_no_axe_violations(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def test_admin_sets_tiers_and_a_partner_code(page, live_server, db):
    make_clinic(name="Revival Physical Therapy and Wellness")
    offering = workshop(price_cents=2500, title="Lift Smart: Body Mechanics")
    admin = User(email="admin@clinic.example", name="Alex Admin", role=Role.ADMIN)
    admin.set_password(PASSWORD)
    db.session.add(admin)
    db.session.commit()
    offering_id, slug = offering.id, offering.slug

    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()

    page.goto(f"{live_server.url}/staff/admin/offerings/{offering_id}")
    tiers = page.locator("#tiers")
    expect(tiers.get_by_role("heading", name=re.compile("sliding scale"))).to_be_visible()
    assert_no_axe_violations(page)
    for name, description, price in (
        ("Supported", "Helps fund community seats", "35"),
        ("Standard", "", "25"),
        ("Community", "No questions asked", "10"),
    ):
        tiers.get_by_label("Name").fill(name)
        tiers.get_by_label("Short description (optional)").fill(description)
        tiers.get_by_label("Tier price").fill(price)
        tiers.get_by_role("button", name="Add tier").click()
        expect(page.locator(".flash")).to_contain_text(f"Tier “{name}” added")
    expect(page.locator("#tiers table")).to_contain_text("Helps fund community seats")
    assert_no_axe_violations(page)

    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Promo codes").click()
    expect(page.get_by_role("heading", name="Promo codes")).to_be_visible()
    page.get_by_role("main").get_by_role("link", name="New code").click()
    assert_no_axe_violations(page)
    page.get_by_label("Code", exact=True).fill("northloop-well")
    page.get_by_label("What it does").select_option("percent_off")
    page.get_by_label("Percent off").fill("20")
    page.get_by_label("Partner tag").fill("north-loop-employers")
    page.get_by_label("Uses per email address").fill("4")
    page.get_by_role("button", name="Create code").click()
    expect(page.locator(".flash")).to_contain_text("Code NORTHLOOP-WELL created")
    expect(page.get_by_role("table")).to_contain_text("20% off")
    assert_no_axe_violations(page)
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / "promo-codes-admin.png"), full_page=True)

    db.session.expire_all()
    assert [t.name for t in db.session.scalars(sa.select(PriceTier).order_by(PriceTier.position))] == [
        "Supported",
        "Standard",
        "Community",
    ]
    assert db.session.scalar(sa.select(PromoCode.partner_tag)) == "north-loop-employers"
    page.goto(f"{live_server.url}/offerings/{slug}")
    expect(page.get_by_role("group", name="Choose your price")).to_contain_text("Helps fund community seats")
