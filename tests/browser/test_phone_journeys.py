"""The public pages as a member on a phone (390 x 844) sees them: errors that land where the
eye is, the date chosen on the schedule carried through, the register button in reach, the
schedule's one-tap filters, text that reflows at 320 px and at 200% zoom, axe on every state."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.models import OfferingKind
from events.registration import links
from events.registration.services import Person, join_waitlist, register
from tests.factories import make_clinic, make_instructor, make_location, make_offering, make_session

pytestmark = pytest.mark.browser

CHICAGO = ZoneInfo("America/Chicago")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]
LONG_NAME = ("Wolfeschlegelsteinhausenbergerdorff" * 4)[:117] + "-Jo"  # 120 characters, one word


def assert_accessible(page: Page) -> None:
    """axe-core with the WCAG 2.2 AA rules, on the page as it is now."""
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    assert results.violations_count == 0, results.generate_report()


def day(n: int):
    return datetime.now(CHICAGO).date() + timedelta(days=n)


def in_viewport(page: Page, selector: str) -> bool:
    """Wholly on screen, without scrolling."""
    return page.evaluate(
        """(selector) => {
            const box = document.querySelector(selector).getBoundingClientRect();
            return box.top >= 0 && box.bottom <= window.innerHeight && box.height > 0;
        }""",
        selector,
    )


def no_sideways_scroll(page: Page) -> tuple[int, int]:
    return page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")


@pytest.fixture
def world(db, app):
    """A clinic with a weekly class of six dates (the fifth full), a course, a free workshop
    with a long description typed with Windows line endings, and a registration and a waitlist
    place of someone with a 120-character name."""
    make_clinic(name="Revival Physical Therapy and Wellness", tagline="Community workshops and classes.")
    north = make_location(slug="north-loop", name="North Loop", address_line1="800 N Washington Ave")
    robb = make_location(slug="robbinsdale", name="Robbinsdale", address_line1="4123 W Broadway")
    maya = make_instructor(name="Maya Lindqvist, PT, DPT", bio="Orthopedic physical therapist.\r\n\r\nRuns.")
    core = make_offering(
        north,
        OfferingKind.CLASS,
        slug="core-hip-strength",
        title="Core & Hip Strength",
        topic="Strength",
        price_cents=1500,
        capacity=12,
        instructor=maya,
        description="Forty-five minutes of guided strength work.\r\n\r\nDrop in to any week.",
    )
    classes = [make_session(core, day(n), time(18, 0), minutes=45) for n in (1, 8, 15, 22, 29, 36)]
    classes[4].seat_pool.seats_taken = 12  # full
    course = make_offering(
        robb, OfferingKind.COURSE, slug="posture-reset", title="Posture Reset", price_cents=12000, capacity=3
    )
    for n in (2, 9, 16, 23):
        make_session(course, day(n), time(18, 30))
    desk = make_offering(
        north,
        OfferingKind.WORKSHOP,
        slug="desk-set-up",
        title="Desk Set-Up Clinic: Pneumonoultramicroscopicsilicovolcanoconiosis-proof ergonomics",
        topic="Ergonomics",
        description="First paragraph.\r\nSame paragraph, next line.\r\n\r\nSecond paragraph.\r\rThird.\n\n"
        + "Supercalifragilistic" * 8,
    )
    make_session(desk, day(4), time(17, 30))
    called_off = make_offering(north, slug="called-off", title="Called Off", is_cancelled=True)
    make_session(called_off, day(6))
    db.session.commit()
    registration = register(desk, None, Person(name=LONG_NAME, email="j" * 40 + "@example.com")).registration
    entry = join_waitlist(core, classes[4].id, Person(name=LONG_NAME, email="w@example.com")).entry
    assert registration is not None and entry is not None
    with app.test_request_context():
        manage, waitlist = (
            links.manage_url(registration, external=False),
            links.waitlist_url(entry, external=False),
        )
    return {"classes": classes, "manage": manage, "waitlist": waitlist}


def test_a_schedule_card_opens_its_date_chosen_and_in_view(phone_page, live_server, world):
    page = phone_page
    page.goto(live_server.url + "/")
    assert_accessible(page)
    fourth = world["classes"][3]
    cards = page.locator(".session-card", has_text="Core & Hip Strength")
    expect(cards).to_have_count(6)
    card = cards.nth(3)
    expect(card.get_by_role("link")).to_have_attribute(
        "href", f"/offerings/core-hip-strength?session={fourth.id}"
    )
    the_day = page.locator("section.day", has=page.locator(f"a[href$='?session={fourth.id}']")).locator("h2")
    expect(the_day).to_have_text(f"{fourth.local_start:%A}, {fourth.local_start:%B} {fourth.local_start.day}")
    card.locator(".session-when").click(force=True)  # a tap anywhere on the card opens it

    expect(page).to_have_url(re.compile(rf"/offerings/core-hip-strength\?session={fourth.id}$"))
    chosen = page.locator(f"#session-{fourth.id}")
    expect(chosen).to_be_checked()
    expect(page.locator("input[name=session_id]:checked")).to_have_count(1)
    assert in_viewport(page, f"label[for=session-{fourth.id}]"), "the chosen date is below the fold"
    expect(page.locator(f"label[for=session-{fourth.id}]")).to_contain_text("12 seats left")
    # The booking card comes before About on a phone.
    card_top, about_top = page.evaluate(
        "[document.getElementById('register').getBoundingClientRect().top,"
        " document.getElementById('about').getBoundingClientRect().top]"
    )
    assert card_top < about_top and card_top < 844
    assert_accessible(page)

    # The other dates are one tap away, each with its seats; a full one turns the form into the
    # waitlist's, and back.
    page.get_by_text("Choose a different date (5 more)").click()
    full = world["classes"][4]
    expect(page.locator(f"label[for=session-{full.id}]")).to_contain_text("Full - join waitlist")
    page.locator(f"label[for=session-{full.id}]").click()
    expect(page.get_by_role("button", name="Join the waitlist")).to_be_visible()
    expect(page.locator("form[data-register-form]")).to_have_attribute(
        "action", "/offerings/core-hip-strength/waitlist"
    )
    page.locator(f"label[for=session-{fourth.id}]").click()
    expect(page.get_by_role("button", name="Continue to payment")).to_be_visible()
    assert_accessible(page)


def test_register_errors_land_on_a_focused_summary_that_links_to_each_field(phone_page, live_server, world):
    page = phone_page
    page.goto(live_server.url + "/offerings/core-hip-strength")
    expect(page.locator("input[name=session_id]:checked")).to_have_count(0)  # no date guessed
    page.get_by_label("Email").fill("not an address")
    page.get_by_role("button", name="Continue to payment").click()

    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    assert in_viewport(page, ".error-summary"), "the error summary is off screen"
    expect(page).to_have_title(re.compile(r"^Error: Core & Hip Strength"))
    expect(summary.get_by_role("link")).to_have_text(
        [
            "Choose the date you'd like to come.",
            "Please tell us your name.",
            "That doesn't look like an email address.",
        ]
    )
    expect(page.get_by_label("Email")).to_have_value("not an address")  # what was typed is kept
    assert_accessible(page)

    summary.get_by_role("link", name="Please tell us your name.").click()
    expect(page.get_by_label("Your name")).to_be_focused()
    assert in_viewport(page, "label[for=name]"), "the field's label is off screen"
    page.locator(".error-summary").get_by_role("link", name=re.compile("Choose the date")).click()
    expect(page.locator(f"#session-{world['classes'][0].id}")).to_be_focused()
    assert in_viewport(page, ".date-choices legend")

    # Fixed, the registration goes through to the payment page.
    page.locator(f"label[for=session-{world['classes'][1].id}]").click()
    page.get_by_label("Your name").fill("Maria Lopez")
    page.get_by_label("Email").fill("maria@example.com")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_role("heading", name="Payment")).to_be_visible()


def test_without_javascript_the_summary_is_focused_and_in_view(browser, live_server, world):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, java_script_enabled=False
    )
    try:
        page = context.new_page()
        full = world["classes"][4]
        page.goto(f"{live_server.url}/offerings/core-hip-strength?session={full.id}")
        expect(page.get_by_role("heading", name="Join the waitlist", level=2)).to_be_visible()
        page.get_by_label("Your name").fill("Dee")
        page.get_by_role("button", name="Join the waitlist").click()
        expect(page.locator(".error-summary")).to_be_focused()  # the autofocus attribute
        assert in_viewport(page, ".error-summary")
        expect(page.locator(".error-summary")).to_contain_text("Please enter your email")
        expect(page.get_by_role("button", name="Join the waitlist")).to_be_visible()  # still the waitlist
        expect(page.locator(f"#session-{full.id}")).to_be_checked()
        # The link is a plain #fragment: the browser focuses the field, its label and error in view.
        page.locator(".error-summary").get_by_role("link").click()
        expect(page.get_by_label("Email")).to_be_focused()
        assert in_viewport(page, "label[for=email]") and in_viewport(page, "#email-error")
    finally:
        context.close()


def test_the_waitlist_form_speaks_on_a_phone_and_its_page_shows_the_date(phone_page, live_server, world):
    page = phone_page
    full = world["classes"][4]
    page.goto(f"{live_server.url}/offerings/core-hip-strength?session={full.id}")
    expect(page.locator(f"#session-{full.id}")).to_be_checked()
    expect(page.locator("#register")).to_contain_text("This date is full.")
    page.get_by_label("Your name").fill("Dee Waits")
    page.get_by_label("Email").fill("dee@")
    page.get_by_role("button", name="Join the waitlist").click()
    expect(page.locator(".error-summary")).to_be_focused()
    assert in_viewport(page, ".error-summary")
    assert_accessible(page)

    page.get_by_label("Email").fill("dee@example.com")
    page.get_by_role("button", name="Join the waitlist").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Waitlist: Core & Hip Strength")
    expect(page.get_by_text("number 2")).to_be_visible()
    when = f"{full.local_start:%A}, {full.local_start:%B} {full.local_start.day}"
    expect(page.locator(".date-list")).to_contain_text(when)
    expect(page.locator(".date-list")).to_contain_text("6 pm–6:45 pm")
    expect(page.get_by_text("800 N Washington Ave")).to_be_visible()
    assert_accessible(page)


def test_the_register_button_stays_in_reach(phone_page, live_server, world):
    page = phone_page
    page.goto(live_server.url + "/offerings/posture-reset")
    bar = page.locator("[data-book-bar]")
    expect(bar).to_be_hidden()  # the card itself is on screen
    page.locator("#policy").scroll_into_view_if_needed()
    expect(bar).to_be_visible()
    assert_accessible(page)
    bar.get_by_role("link", name="Register").click()
    expect(page.locator("#register-heading")).to_be_focused()
    assert in_viewport(page, "#register-heading")
    expect(bar).to_be_hidden()


def test_filter_chips_combine_and_a_bad_filter_is_shown_on_the_form(phone_page, live_server, world):
    page = phone_page
    page.goto(live_server.url + "/")
    chips = page.get_by_role("navigation", name="Quick filters")
    chips.get_by_role("link", name="North Loop").click()
    expect(page).to_have_url(re.compile(r"\?location=north-loop$"))
    page.get_by_role("navigation", name="Quick filters").get_by_role("link", name="Workshops").click()
    expect(page).to_have_url(re.compile(r"location=north-loop"))
    expect(page).to_have_url(re.compile(r"kind=workshop"))
    expect(page.locator(".session-title")).to_have_text([re.compile("^Desk Set-Up Clinic")])
    on = page.locator(".chip-on")
    expect(on).to_have_count(2)
    assert_accessible(page)
    on.filter(has_text="North Loop").click()  # a chip that is on turns off; the other stays
    expect(page).to_have_url(re.compile(r"/\?kind=workshop$"))
    expect(page.locator(".chip-on")).to_have_text([re.compile("^Workshops")])

    # The filter form: a reversed date range is answered on the form, the filters kept.
    # A chip's filter leaves the form folded, so the sessions follow the chips.
    expect(page.locator("details.filters")).not_to_have_attribute("open", "")
    page.locator("summary", has_text="More filters (filters on)").click()
    form = page.get_by_role("search", name="Filter the schedule")
    form.get_by_label("From", exact=True).fill(day(20).isoformat())
    form.get_by_label("To", exact=True).fill(day(10).isoformat())
    form.get_by_role("button", name="Show sessions").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    assert in_viewport(page, ".error-summary")
    expect(summary).to_contain_text("The 'To' date must be the same as or later than the 'From' date.")
    expect(form.get_by_label("Kind")).to_have_value("workshop")
    expect(form.get_by_label("From", exact=True)).to_have_value(day(20).isoformat())
    expect(form.get_by_label("To", exact=True)).to_have_value(day(10).isoformat())
    assert_accessible(page)
    summary.get_by_role("link").click()
    expect(form.get_by_label("To", exact=True)).to_be_focused()

    # A page past the last shows the last page.
    page.goto(live_server.url + "/?page=99&per_page=5")
    expect(page.locator(".pagination")).to_contain_text("Page 3 of 3")


@pytest.mark.parametrize("width,height", [(320, 640), (195, 422)], ids=["320px", "200pc-zoom"])
def test_every_public_page_reflows_without_sideways_scrolling(browser, live_server, world, width, height):
    """320 CSS px (WCAG 1.4.10), and a 390 px phone at 200% zoom (195 CSS px wide)."""
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        fourth = world["classes"][3]
        paths = [
            "/",
            "/?from=2031-01-10&to=2031-01-01",  # the filter form with its error
            f"/offerings/core-hip-strength?session={fourth.id}",
            "/offerings/posture-reset",
            "/offerings/desk-set-up",
            "/locations/north-loop",
            "/offerings/called-off",  # registration closed
            world["waitlist"],
            world["manage"],
            "/no-such-page",
        ]
        for path in paths:
            page.goto(live_server.url + path)
            scroll_width, client_width = no_sideways_scroll(page)
            assert scroll_width <= client_width, (path, scroll_width, client_width)
            if width == 320:
                assert_accessible(page)
        page.goto(live_server.url + "/offerings/core-hip-strength")
        page.get_by_role("button", name="Continue to payment").click()  # the error state
        scroll_width, client_width = no_sideways_scroll(page)
        assert scroll_width <= client_width, ("register errors", scroll_width, client_width)
        page.goto(live_server.url + "/staff/login")
        page.get_by_role("button", name="Sign in").click()  # the staff sign-in's error state
        expect(page.locator(".error-summary")).to_be_focused()
        scroll_width, client_width = no_sideways_scroll(page)
        assert scroll_width <= client_width, ("sign-in errors", scroll_width, client_width)
        assert_accessible(page)
    finally:
        context.close()


def test_text_keeps_its_paragraphs_and_long_words_wrap(phone_page, live_server, world):
    page = phone_page
    page.goto(live_server.url + "/offerings/desk-set-up")
    about = page.locator("section", has=page.get_by_role("heading", name="About")).locator("p")
    expect(about).to_have_count(4)
    expect(about.nth(0)).to_have_text("First paragraph.\nSame paragraph, next line.")
    expect(about.nth(2)).to_have_text("Third.")
    assert_accessible(page)
    page.goto(live_server.url + world["manage"])
    expect(page.get_by_text(LONG_NAME)).to_be_visible()
    assert no_sideways_scroll(page)[0] <= 390
    assert_accessible(page)
