"""An admin on a desktop: the registrations list in local times, a refund confirmed on its own
page, a session cancelled after its summary, and the audit trail telling both in words.
Every page is checked with axe (WCAG 2.2 AA tags) and photographed into docs/screenshots/."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from events.models import OfferingKind, Role, User
from tests.browser.test_staff_admin_ui import assert_no_axe_violations
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.integration.test_readable_admin import paid

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def clinic(db):
    make_clinic(name="Revival Physical Therapy and Wellness")
    location = make_location(slug="north-loop", name="North Loop", timezone="America/Chicago")
    admin = User(email="sam@clinic.example", name="Sam Rivera", role=Role.ADMIN)
    admin.set_password(PASSWORD)
    db.session.add(admin)
    offering = make_offering(location, OfferingKind.CLASS, title="Core & Hip Strength", price_cents=1500)
    session = make_session(offering, upcoming_day(3), time(18, 0))
    db.session.commit()
    people = [paid(db, offering, session.id, name) for name in ("Ana Lopez", "Ben Ode", "Cleo Park")]
    return {"admin": admin, "session": session, "people": people}


def test_refund_and_cancel_are_confirmed_and_the_audit_trail_tells_them(page: Page, live_server, clinic):
    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email").fill("sam@clinic.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()

    page.goto(live_server.url + "/staff/admin/registrations")
    expect(page.get_by_text("3 registrations")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"6:00 pm C[SD]T")).first).to_be_visible()
    assert_no_axe_violations(page)
    page.screenshot(path=str(SHOTS / "admin-registrations-local-times.png"), full_page=True)

    page.get_by_role("link", name="Ana Lopez").click()
    page.get_by_label("Amount to refund in dollars").fill("15")
    page.get_by_label("Reason").fill("Double charged")
    page.get_by_role("button", name="Refund", exact=True).click()
    expect(page.get_by_role("heading", name="Refund $15.00 to Ana Lopez?")).to_be_visible()
    expect(page.get_by_text("Refund $15.00 to Ana Lopez's Visa card ending 4242")).to_be_visible()
    assert_no_axe_violations(page)
    page.screenshot(path=str(SHOTS / "admin-refund-confirm.png"), full_page=True)
    page.get_by_role("button", name="Refund $15.00").click()
    expect(
        page.get_by_text("Refund of $15.00 to Ana Lopez queued; it shows as issued when Stripe")
    ).to_be_visible()

    page.goto(f"{live_server.url}/staff/sessions/{clinic['session'].id}")
    page.get_by_label(re.compile("Reason")).fill("Instructor ill")
    page.get_by_role("button", name="Cancel the session").click()
    expect(
        page.get_by_role("heading", name=re.compile(r"^Cancel .* 6:00 pm C[SD]T of Core & Hip Strength\?$"))
    ).to_be_visible()
    # Ana's $15 went back already: two people are due a refund, three are told.
    expect(
        page.get_by_text("3 people will be emailed; 2 people will be refunded $30.00 in all")
    ).to_be_visible()
    assert_no_axe_violations(page)
    page.screenshot(path=str(SHOTS / "admin-cancel-session-confirm.png"), full_page=True)
    page.get_by_role("button", name="Cancel this session").click()
    expect(
        page.get_by_text(re.compile(r"3 people being emailed; 2 refunds \(\$30\.00 in all\) queued"))
    ).to_be_visible()

    page.goto(live_server.url + "/staff/audit")
    expect(page.get_by_text("Sam Rivera refunded $15.00 to Ana Lopez: “Double charged”.")).to_be_visible()
    expect(
        page.get_by_text(re.compile(r"Sam Rivera cancelled .* of Core & Hip Strength: 2 refunds, \$30\.00"))
    ).to_be_visible()
    assert_no_axe_violations(page)
    page.screenshot(path=str(SHOTS / "admin-audit-trail.png"), full_page=True)

    page.get_by_label("Kind").select_option(label="Refund requested")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("Sam Rivera refunded $15.00 to Ana Lopez")).to_be_visible()
    expect(page.get_by_text(re.compile("cancelled .* of Core"))).to_have_count(0)

    page.goto(live_server.url + "/staff/audit?date_from=2026-13-45")
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    assert_no_axe_violations(page)
