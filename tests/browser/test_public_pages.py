"""The public schedule in a real browser: filtering, an offering page, a phone, accessibility."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.models import OfferingKind
from tests.factories import make_clinic, make_instructor, make_location, make_offering, make_session

pytestmark = pytest.mark.browser

CHICAGO = ZoneInfo("America/Chicago")


def day(n: int):
    return datetime.now(CHICAGO).date() + timedelta(days=n)


@pytest.fixture
def schedule(db):
    """A committed schedule at two locations (the live server reads it through its own sessions)."""
    make_clinic(name="Revival Physical Therapy and Wellness", tagline="Community workshops and classes.")
    north = make_location(
        slug="north-loop",
        name="North Loop",
        address_line1="800 N Washington Ave",
        address_line2="Suite 5",
        city="Minneapolis",
        postal_code="55401",
        directions="Street parking on Washington Ave.",
    )
    robb = make_location(
        slug="robbinsdale",
        name="Robbinsdale",
        address_line1="4123 W Broadway",
        city="Robbinsdale",
        postal_code="55422",
    )
    maya = make_instructor(name="Maya Lindqvist, PT, DPT", bio="Orthopedic physical therapist.")
    core = make_offering(
        north,
        OfferingKind.CLASS,
        slug="core-hip-strength",
        title="Core & Hip Strength",
        topic="Strength",
        price_cents=1500,
        instructor=maya,
        capacity=12,
        summary="A weekly drop-in class.",
        what_to_bring="Athletic shoes.",
    )
    posture = make_offering(
        robb,
        OfferingKind.COURSE,
        slug="posture-reset",
        title="Posture Reset",
        topic="Posture",
        price_cents=12000,
        instructor=maya,
        capacity=3,
        summary="A four-week course.",
    )
    spasm = make_offering(
        north,
        OfferingKind.WORKSHOP,
        slug="back-spasms",
        title="Back Spasms: What to Do First",
        topic="Back pain relief",
        price_cents=0,
        capacity=2,
    )
    desk = make_offering(
        robb,
        OfferingKind.WORKSHOP,
        slug="desk-set-up",
        title="Desk Set-Up Clinic",
        topic="Ergonomics",
        price_cents=0,
    )
    for n in (1, 8, 15):
        make_session(core, day(n), time(18, 0), minutes=45)
    for n in (2, 9, 16, 23):
        make_session(posture, day(n), time(18, 30))
    spasm_session = make_session(spasm, day(3), time(10, 0), minutes=75)
    spasm_session.seat_pool.seats_taken = 2  # full
    make_session(desk, day(4), time(17, 30))
    db.session.commit()
    return {"north": north, "robbinsdale": robb}


def session_titles(page: Page) -> list[str]:
    return page.locator(".session-title").all_inner_texts()


def assert_no_axe_violations(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def filter_by_location(page: Page, base_url: str, location_name: str) -> None:
    page.goto(base_url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Workshops and classes")
    form = page.get_by_role("search", name="Filter the schedule")
    expect(form).to_be_hidden()  # the filters start folded away
    page.locator("summary", has_text="More filters").click()
    expect(form).to_be_visible()
    form.get_by_label("Location", exact=True).select_option(label=location_name)
    form.get_by_role("button", name="Show sessions").click()
    page.wait_for_url(re.compile(r"location="))


@pytest.mark.parametrize("viewport", ["page", "phone_page"])
def test_filter_by_location_then_open_an_offering(request, live_server, schedule, viewport):
    page: Page = request.getfixturevalue(viewport)
    page.goto(live_server.url + "/")
    all_titles = session_titles(page)
    assert len(all_titles) == 9
    assert "Posture Reset" in all_titles and "Core & Hip Strength" in all_titles

    filter_by_location(page, live_server.url, "Robbinsdale")
    assert "location=robbinsdale" in page.url
    titles = session_titles(page)
    assert titles == [
        "Posture Reset",
        "Desk Set-Up Clinic",
        "Posture Reset",
        "Posture Reset",
        "Posture Reset",
    ]
    expect(page.locator(".result-count")).to_have_text("5 upcoming sessions match your filters.")
    expect(page.locator("summary")).to_contain_text("(filters on)")
    expect(page.get_by_label("Location", exact=True)).to_have_value("robbinsdale")

    page.get_by_role("link", name="Desk Set-Up Clinic").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Desk Set-Up Clinic")
    where = page.locator("section", has=page.get_by_role("heading", name="Where"))
    expect(where).to_contain_text("4123 W Broadway")
    expect(where).to_contain_text("Robbinsdale, MN 55422")
    map_link = where.get_by_role("link", name=re.compile("Open in a map"))
    expect(map_link).to_have_attribute(
        "href", re.compile(r"^https://www\.google\.com/maps/search/\?api=1&query=4123\+W\+Broadway")
    )
    dates = page.locator(".date-item")
    expect(dates).to_have_count(1)
    the_day = day(4)
    expect(dates.first).to_contain_text(f"{the_day:%A}, {the_day:%B} {the_day.day}")
    expect(dates.first).to_contain_text("5:30 pm")
    expect(page.locator(".offering-price")).to_contain_text("Free")


def test_offering_page_lists_all_dates_and_the_address(page, live_server, schedule):
    page.goto(live_server.url + "/offerings/core-hip-strength")
    expect(page.get_by_role("heading", level=1)).to_have_text("Core & Hip Strength")
    expect(page.locator(".date-item")).to_have_count(3)
    for n in (1, 8, 15):
        expect(page.locator(".offering")).to_contain_text(f"{day(n):%A}, {day(n):%B} {day(n).day}")
    expect(page.locator(".date-item").first).to_contain_text("6 pm")
    expect(page.locator(".offering-side")).to_contain_text("800 N Washington Ave, Suite 5")
    expect(page.locator(".offering-side")).to_contain_text("Maya Lindqvist, PT, DPT")
    expect(page.get_by_role("link", name=re.compile("Open in a map"))).to_have_attribute("target", "_blank")
    expect(page.locator(".offering-price")).to_contain_text("$15")


def test_a_full_workshop_says_so(page, live_server, schedule):
    page.goto(live_server.url + "/?kind=workshop")
    card = page.locator(".session-card", has_text="Back Spasms")
    expect(card).to_contain_text("Full - join waitlist")
    expect(card).to_contain_text("Free")


def test_phone_layout_has_no_sideways_scrolling(phone_page, live_server, schedule):
    for path in ("/", "/offerings/posture-reset", "/locations/north-loop"):
        phone_page.goto(live_server.url + path)
        scroll_width = phone_page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 390, (path, scroll_width)


def test_location_page_lists_only_that_location(page, live_server, schedule):
    page.goto(live_server.url + "/locations/north-loop")
    expect(page.get_by_role("heading", level=1)).to_have_text("North Loop")
    titles = session_titles(page)
    assert titles == [
        "Core & Hip Strength",
        "Back Spasms: What to Do First",
        "Core & Hip Strength",
        "Core & Hip Strength",
    ]
    expect(page.locator("address")).to_contain_text("800 N Washington Ave, Suite 5")


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?location=robbinsdale&kind=course",
        "/offerings/core-hip-strength",
        "/offerings/back-spasms",
        "/locations/robbinsdale",
        "/offerings/no-such-offering",
        "/?page=abc",
    ],
)
def test_no_accessibility_violations(page, live_server, schedule, path):
    page.goto(live_server.url + path)
    if path == "/":
        page.locator("summary", has_text="More filters").click()  # check the open form too
    assert_no_axe_violations(page)


def test_no_accessibility_violations_on_a_phone(phone_page, live_server, schedule):
    for path in ("/", "/offerings/posture-reset", "/locations/north-loop"):
        phone_page.goto(live_server.url + path)
        assert_no_axe_violations(phone_page)
