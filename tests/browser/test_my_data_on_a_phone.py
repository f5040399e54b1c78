""" "Download my data" and "Delete my data" on a phone (390x844): from "Find my registrations" to
the emailed link (read from the real SMTP server), the download, then the deletion; axe-core on
every state. SCREENSHOT_DIR=docs/screenshots saves privacy-*.png."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.models import Registration, RegistrationStatus
from events.notifications.delivery import deliver_due
from events.registration import links
from events.registration.services import Person, register
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

pytestmark = pytest.mark.browser

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]}}


def assert_accessible(page: Page) -> None:
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, page.url  # no sideways scrolling


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def _link(smtp, app, address: str, n: int) -> str:
    messages = [m for m in smtp.to(address) if m["Subject"].startswith("Your data at")]
    assert len(messages) == n
    text = messages[-1].get_body(("plain",)).get_content()
    base = re.escape(app.config["PUBLIC_BASE_URL"].rstrip("/"))
    return re.search(base + r"(/my-data/\S+)", text).group(1)


def test_download_then_delete_my_data_on_a_phone(phone_page, live_server, db, smtp, app):
    page = phone_page
    make_clinic(name="Revival Physical Therapy and Wellness", email="hello@revival.example")
    location = make_location(name="North Loop")
    workshop = make_offering(location, title="Back Spasms: What to Do First")
    make_session(workshop, upcoming_day(3))
    db.session.commit()
    booked = register(workshop, None, Person("Zoë Smith", "zoe@example.com", "612-555-0100")).registration
    deliver_due()
    smtp.clear()

    # A booking's own page offers both, and sends the link to its address.
    with app.test_request_context():
        manage = links.manage_url(booked, external=False)
    page.goto(live_server.url + manage)
    section = page.locator("#my-data")
    expect(section.get_by_role("button", name="Download my data")).to_be_visible()
    section.scroll_into_view_if_needed()
    assert_accessible(page)
    shot(page, "privacy-manage-page.png")

    page.goto(live_server.url + "/find-my-registrations")
    page.get_by_role("link", name="Download my data").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data")
    expect(page.get_by_label("Download my data")).to_be_checked()
    assert_accessible(page)
    # Nothing typed: the problem is said where the member is looking, focus on the field.
    page.get_by_role("button", name="Email me the link").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter the email address you registered with.")
    expect(page.get_by_label("Your email address")).to_be_focused()
    assert_accessible(page)
    page.get_by_label("Your email address").fill("zoe@example.com")
    page.get_by_role("button", name="Email me the link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    assert_accessible(page)

    assert deliver_due().sent == 1
    page.goto(live_server.url + _link(smtp, app, "zoe@example.com", 1))
    expect(page.get_by_role("heading", level=1)).to_have_text("Download your data")
    assert_accessible(page)
    shot(page, "privacy-download.png")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download my data").click()
    download = download_info.value
    assert download.suggested_filename == "my-data.json"
    document = json.loads(Path(download.path()).read_text())
    assert [r["name"] for r in document["registrations"]] == ["Zoë Smith"]
    assert document["registrations"][0]["phone"] == "612-555-0100"

    # Now delete: the same page, the other choice.
    page.goto(live_server.url + "/my-data")
    page.get_by_label("Delete my data").check()
    page.get_by_label("Your email address").fill("zoe@example.com")
    shot(page, "privacy-ask.png")
    page.get_by_role("button", name="Email me the link").click()
    expect(page.get_by_role("status")).to_contain_text("zoe@example.com")
    shot(page, "privacy-check-email.png")
    assert deliver_due().sent == 1
    page.goto(live_server.url + _link(smtp, app, "zoe@example.com", 2))
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete your data?")
    expect(page.locator("main")).to_contain_text("Back Spasms: What to Do First")
    assert_accessible(page)
    shot(page, "privacy-delete-confirm.png")
    page.get_by_role("button", name="Yes, delete my data").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data has been deleted")
    assert_accessible(page)
    shot(page, "privacy-deleted.png")
    # The link again: used, said plainly, with a way on.
    page.go_back()
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has already been used")
    assert_accessible(page)

    db.session.expire_all()
    row = db.session.get(Registration, booked.id)
    assert row.status == RegistrationStatus.CANCELLED and row.name == "Anonymised"
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Registration)
            .where(Registration.email == "zoe@example.com")
        )
        == 0
    )
    assert deliver_due().sent == 1  # the confirmation
    [confirmation] = [m for m in smtp.to("zoe@example.com") if m["Subject"].endswith("has been deleted")]
    assert "We cancelled your upcoming booking." in confirmation.get_body(("plain",)).get_content()


def test_staff_see_what_retention_anonymises_next_and_delete_a_callers_data(page, live_server, db, app):
    from datetime import timedelta

    from events.models import Role, User
    from events.privacy import retention

    make_clinic(name="Revival Physical Therapy and Wellness")
    cutoff = retention.retention_cutoff()
    old = make_offering(make_location(name="North Loop"), title="Posture Basics")
    session = make_session(old, upcoming_day(3))
    session.starts_at, session.ends_at = cutoff + timedelta(days=3, hours=-1), cutoff + timedelta(days=3)
    upcoming = make_offering(make_location(name="Robbinsdale"), title="Knee Strength")
    make_session(upcoming, upcoming_day(4))
    admin = User(email="admin@clinic.example", name="Alex Admin", role=Role.ADMIN)
    admin.set_password("correct horse battery")
    db.session.add(admin)
    db.session.commit()
    register(old, None, Person("Ana", "ana@example.com"), now=session.starts_at - timedelta(days=1))
    caller = register(upcoming, None, Person("Bo Caller", "bo@example.com", "612-555-0111")).registration

    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()
    page.goto(live_server.url + "/staff/admin/privacy")
    expect(page.get_by_role("heading", level=1)).to_have_text("Privacy")
    expect(page.locator("table")).to_contain_text("1")
    assert_staff_accessible(page)
    shot(page, "privacy-admin-retention.png")

    page.goto(live_server.url + f"/staff/admin/registrations/{caller.id}")
    page.get_by_role("link", name="Delete their data").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete Bo Caller's data?")
    assert_staff_accessible(page)
    shot(page, "privacy-admin-delete-confirm.png")
    page.get_by_role("button", name="Delete their data").click()
    expect(page.locator(".flashes")).to_contain_text("Their data is deleted")
    expect(page.get_by_role("heading", level=1)).to_have_text("Anonymised")
    assert_staff_accessible(page)


def assert_staff_accessible(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"
