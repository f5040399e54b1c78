"""An admin in a real browser: sign in, create an offering with a weekly series, see it public.
Every admin page visited is checked with axe."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.models import Role, Session, User
from tests.factories import make_clinic, make_location

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def assert_no_axe_violations(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


@pytest.fixture
def admin(db):
    make_clinic(name="Revival Physical Therapy and Wellness")
    make_location(slug="north-loop", name="North Loop", timezone="America/Chicago")
    user = User(email="admin@clinic.example", name="Alex Admin", role=Role.ADMIN)
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    return user


def test_admin_creates_an_offering_with_a_weekly_series_and_it_is_on_the_schedule(
    page, live_server, admin, db
):
    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()

    page.get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
    assert_no_axe_violations(page)

    page.get_by_role("main").get_by_role("link", name="New offering").click()
    expect(page.get_by_role("heading", name="New offering")).to_be_visible()
    assert_no_axe_violations(page)
    page.get_by_label("Kind").select_option("course")
    page.get_by_label("Title").fill("Knee Care Evenings")
    page.get_by_label("Topic").fill("Knee pain")
    page.get_by_label("Summary (one line)").fill("Four evenings for happier knees.")
    page.get_by_label("Price in dollars").fill("60")
    page.get_by_label("Capacity (seats)").fill("8")
    page.get_by_role("button", name="Create offering").click()

    expect(page.get_by_role("heading", name="Knee Care Evenings")).to_be_visible()
    assert_no_axe_violations(page)
    page.get_by_label("Date (first date for a series)").fill("2027-10-26")
    page.get_by_label("Start time (local)").fill("18:00")
    page.get_by_label("Duration (minutes)").fill("90")
    page.get_by_label("Number of weeks").fill("4")
    page.get_by_role("button", name="Add dates").click()

    expect(page.get_by_text("4 dates added.")).to_be_visible()
    dates = page.locator("#sessions tbody tr")
    expect(dates).to_have_count(4)
    expect(dates.nth(3)).to_contain_text("Tue Nov 16, 2027")
    expect(dates.nth(3)).to_contain_text("6 pm–7:30 pm CST")
    assert_no_axe_violations(page)

    db.session.expire_all()
    hours = [s.starts_at.hour for s in db.session.scalars(sa.select(Session).order_by(Session.starts_at))]
    assert hours == [23, 23, 0, 0]

    for path in (
        "/staff/admin/offerings",
        "/staff/admin/locations",
        "/staff/admin/instructors/new",
        "/staff/admin/registrations",
        "/staff/admin/emails/failed",
    ):
        page.goto(live_server.url + path)
        assert_no_axe_violations(page)

    page.goto(live_server.url + "/?q=knee")
    expect(page.get_by_role("link", name="Knee Care Evenings").first).to_be_visible()


def test_admin_deactivates_an_instructor_and_their_open_session_ends(page, browser, live_server, admin, db):
    maya = User(email="maya@clinic.example", name="Maya Lindqvist", role=Role.INSTRUCTOR)
    maya.set_password(PASSWORD)
    db.session.add(maya)
    db.session.commit()
    # Maya signed in on her phone.
    phone = browser.new_context()
    maya_page = phone.new_page()
    maya_page.goto(live_server.url + "/staff/login")
    maya_page.get_by_label("Email").fill(maya.email)
    maya_page.get_by_label("Password").fill(PASSWORD)
    maya_page.get_by_role("button", name=re.compile("sign in", re.I)).click()
    expect(maya_page.get_by_role("link", name="My sessions")).to_be_visible()

    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()
    page.goto(live_server.url + "/staff/admin/instructors")
    row = page.get_by_role("row", name=re.compile("Maya Lindqvist"))
    expect(row).to_contain_text("active")
    assert_no_axe_violations(page)
    row.get_by_role("link", name="Deactivate Maya Lindqvist").click()
    expect(page.get_by_role("heading", name="Deactivate Maya Lindqvist?")).to_be_visible()
    assert_no_axe_violations(page)
    page.get_by_role("button", name="Deactivate Maya Lindqvist").click()
    expect(page.get_by_text("Maya Lindqvist is deactivated and signed out everywhere.")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Maya Lindqvist"))).to_contain_text("deactivated")
    assert_no_axe_violations(page)

    # Her next page asks her to sign in.
    maya_page.reload()
    expect(maya_page).to_have_url(re.compile(r"/staff/login"))
    phone.close()
