"""An admin moves a class from the offering's dates table, through the confirmation page, on a
desktop browser; every page checked with axe. Screenshots: docs/screenshots/admin-dates-table.png
and admin-move-confirm.png."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from events.models import OfferingKind, OutboxEmail, Role, Session, User
from events.notifications.outbox import EmailKind
from events.registration.services import Person, join_waitlist, register
from tests.browser.test_staff_admin_ui import PASSWORD, assert_no_axe_violations
from tests.factories import make_clinic, make_location, make_offering, make_session
from tests.integration.conftest import day

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_admin_moves_a_class_through_the_confirmation(page, live_server, db):
    make_clinic(name="Revival Physical Therapy and Wellness")
    north = make_location(slug="north-loop", name="North Loop", timezone="America/Chicago")
    make_location(slug="robbinsdale", name="Robbinsdale", timezone="America/Chicago")
    ira = User(email="ira@clinic.example", name="Ira Instructor", role=Role.INSTRUCTOR)
    admin = User(email="admin@clinic.example", name="Alex Admin", role=Role.ADMIN)
    admin.set_password(PASSWORD)
    db.session.add_all([ira, admin])
    core = make_offering(north, OfferingKind.CLASS, title="Core & Hip Strength", instructor=ira, capacity=2)
    session = make_session(core, day(6), time(18, 0))
    make_session(core, day(13), time(18, 0))
    db.session.commit()
    for name in ("Ana Lopez", "Ben Okafor"):
        register(core, session.id, Person(name, f"{name.split()[0].lower()}@example.com"))
    join_waitlist(core, session.id, Person("Wes Waiting", "wes@example.com"))

    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()
    page.goto(f"{live_server.url}/staff/admin/offerings/{core.id}")

    dates = page.locator("#sessions")
    expect(dates.locator("tbody tr")).to_have_count(2)
    assert_no_axe_violations(page)
    dates.screenshot(path=str(SCREENSHOTS / "admin-dates-table.png"))

    label = session.local_start.strftime("%b %-d")
    dates.get_by_role("link", name=f"Move {label}").click()
    expect(page.get_by_role("heading", name="Move Core & Hip Strength")).to_be_visible()
    assert_no_axe_violations(page)
    page.get_by_label("New date").fill(day(7).isoformat())
    page.get_by_label("Start time").fill("17:30")
    page.get_by_label("End time").fill("18:30")
    page.get_by_label("Location").select_option(label="Robbinsdale")
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="Check the move")).to_be_visible()
    what = page.locator("#what-happens")
    expect(what).to_contain_text("Move Core & Hip Strength from")
    expect(what).to_contain_text("5:30 pm–6:30 pm")
    expect(what).to_contain_text("at Robbinsdale; 3 people will be emailed.")
    assert_no_axe_violations(page)
    page.screenshot(path=str(SCREENSHOTS / "admin-move-confirm.png"), full_page=True)
    db.session.expire_all()
    assert db.session.get(Session, session.id).sequence == 0  # nothing moved yet

    page.get_by_role("button", name="Move it and email 3 people").click()
    expect(
        page.get_by_text(re.compile(r"Moved Core & Hip Strength to .* at Robbinsdale\. 3 people are"))
    ).to_be_visible()
    moved_row = page.locator("#sessions tbody tr").first
    expect(moved_row).to_contain_text("5:30 pm–6:30 pm")
    expect(moved_row).to_contain_text("Robbinsdale")
    expect(moved_row).to_contain_text("(moved)")
    assert_no_axe_violations(page)

    db.session.expire_all()
    moved = db.session.get(Session, session.id)
    assert (moved.local_start.date(), moved.local_start.time(), moved.sequence) == (day(7), time(17, 30), 1)
    kinds = db.session.scalars(
        sa.select(OutboxEmail.kind).where(OutboxEmail.kind == EmailKind.SESSION_MOVED)
    ).all()
    assert len(kinds) == 3
