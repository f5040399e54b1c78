"""Reports in Chromium: an admin on a desktop reads a year of the demo clinic with its charts and
tables and downloads a CSV; an instructor on a phone (390 x 844) reads their own sessions and
gets a plain error for dates that make no sense. axe (WCAG 2.2 AA tags) on every state, the
strict CSP watched by the page fixtures, screenshots into docs/screenshots/."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.demo import DEMO_ADMIN_EMAIL, INSTRUCTORS, seed_demo
from events.models import Role, User

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]


def assert_accessible(page: Page) -> None:
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    assert results.violations_count == 0, results.generate_report()


@pytest.fixture
def demo(db):
    seed_demo()
    db.session.add(User(email=DEMO_ADMIN_EMAIL, name="Clinic Admin", role=Role.ADMIN))
    db.session.flush()
    for email in (DEMO_ADMIN_EMAIL, INSTRUCTORS[0]["email"]):
        db.session.query(User).filter_by(email=email).one().set_password(PASSWORD)
    db.session.commit()


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(base + "/staff/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()
    expect(page.get_by_role("link", name="Reports")).to_be_visible()


def test_an_admin_reads_a_year_with_charts_and_downloads_a_table(page: Page, live_server, demo):
    sign_in(page, live_server.url, DEMO_ADMIN_EMAIL)
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    assert_accessible(page)  # the default: the last 4 weeks

    today = datetime.now(ZoneInfo("America/Chicago")).date()
    page.get_by_label("Dates", exact=True).select_option("custom")
    page.get_by_label("From").fill((today - timedelta(days=364)).isoformat())
    page.get_by_label("To (included)").fill(today.isoformat())
    page.get_by_label("Break down by").select_option("location")
    page.get_by_role("button", name="Show the report").click()

    held = page.locator('[data-figure="sessions_held"]')
    expect(held).to_have_text(re.compile(r"^[1-9][\d,]*$"))  # a year of demo sessions
    expect(page.locator('[data-figure="attendance_rate"]')).to_have_text(
        re.compile(r"^\d+% \([\d,]+ of [\d,]+\)$")
    )
    # Three charts, each an image with a name, each beside a table with a caption.
    for name in ("Visits per month", "Fill rate at start, by offering", "Attendance by location"):
        expect(page.get_by_role("img", name=name)).to_be_visible()
        expect(page.get_by_role("table", name=re.compile(re.escape(name)))).to_be_visible()
    expect(page.get_by_role("table", name="Every figure by location")).to_contain_text("North Loop")
    assert_accessible(page)
    page.screenshot(path=str(SHOTS / "reports-desktop.png"), full_page=True)

    link = page.get_by_role("link", name="Download this table (CSV)")
    response = page.request.get(live_server.url + link.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text().splitlines()
    assert lines[0].startswith("Location,Sessions held") and lines[-1].startswith("All,")


def test_an_instructor_on_a_phone_reads_their_own_sessions(phone_page: Page, live_server, demo):
    page = phone_page
    sign_in(page, live_server.url, INSTRUCTORS[0]["email"])
    page.goto(live_server.url + "/staff/reports?preset=this_year&by=month")
    expect(page.get_by_role("heading", name="Reports for my sessions")).to_be_visible()
    expect(page.locator('[data-figure="sessions_held"]')).to_have_text(re.compile(r"^[1-9][\d,]*$"))
    # Her workshops and course only: another instructor's classes are not in her report.
    table = page.get_by_role("table", name="Fill rate at start, by offering: the numbers")
    expect(table).to_contain_text("Back Spasms")
    expect(table).not_to_contain_text("Core & Hip Strength")
    # Nothing wider than the phone: the wide table scrolls inside its own region.
    widths = page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    assert_accessible(page)
    page.screenshot(path=str(SHOTS / "reports-phone.png"), full_page=False)
    page.get_by_role("img", name=re.compile("Visits per month")).scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "reports-phone-chart.png"), full_page=False)

    page.get_by_label("Dates", exact=True).select_option("custom")
    page.get_by_label("From").fill("2026-03-31")
    page.get_by_label("To (included)").fill("2026-03-01")
    page.get_by_role("button", name="Show the report").click()
    expect(page.get_by_text("The last day is before the first day.").first).to_be_visible()
    assert_accessible(page)
