""" "Find my registrations" on a phone (390x844): from any page's footer to the email (read from
the real SMTP server) and through its link back to the registration; axe-core on every state."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.notifications.delivery import deliver_due
from events.registration.services import Person, join_waitlist, register
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

pytestmark = pytest.mark.browser

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]}}


def assert_accessible(page: Page) -> None:
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, results.generate_report()


def in_viewport(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"]


def test_find_my_registrations_on_a_phone_from_footer_to_email_to_the_registration(
    phone_page, live_server, db, smtp, app
):
    page = phone_page
    make_clinic(name="Revival Physical Therapy and Wellness", email="hello@revival.example")
    location = make_location(name="North Loop")
    workshop = make_offering(location, title="Back Spasms: What to Do First")
    make_session(workshop, upcoming_day(3))
    full = make_offering(location, title="Balance Basics", capacity=1)
    make_session(full, upcoming_day(6))
    db.session.commit()
    register(workshop, None, Person("Zoë Smith", "zoe@example.com"))
    register(full, None, Person("Someone", "someone@example.com"))
    join_waitlist(full, None, Person("Zoë Smith", "zoe@example.com"))
    deliver_due()  # their confirmations: out of the way
    smtp.clear()

    page.goto(live_server.url + "/")
    page.locator("footer").get_by_role("link", name="Find my registrations").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Find my registrations")
    assert_accessible(page)

    # A mistyped address: the error is where the member is looking, and focus is on the field.
    page.get_by_label("Your email address").fill("zoe@example")
    page.get_by_role("button", name="Email me my registrations").click()
    expect(page.get_by_role("alert")).to_contain_text("That doesn't look like an email address.")
    expect(page.get_by_label("Your email address")).to_be_focused()
    assert in_viewport(page, ".error-summary") and in_viewport(page, "#email")
    assert_accessible(page)

    page.get_by_label("Your email address").fill("zoe@example.com")
    page.get_by_role("button", name="Email me my registrations").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.get_by_role("status")).to_contain_text("zoe@example.com")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert_accessible(page)

    assert deliver_due().sent == 1
    [message] = smtp.to("zoe@example.com")
    assert message["Subject"] == "Your registrations at Revival Physical Therapy and Wellness"
    text = message.get_body(("plain",)).get_content()
    assert "Back Spasms: What to Do First" in text and "Balance Basics" in text
    base = app.config["PUBLIC_BASE_URL"].rstrip("/")
    manage = re.search(re.escape(base) + r"(/manage/\S+)", text).group(1)
    waitlist = re.search(re.escape(base) + r"(/waitlist/\S+)", text).group(1)

    page.goto(live_server.url + manage)
    expect(page.locator("main")).to_contain_text("Back Spasms: What to Do First")
    expect(page.locator("main")).to_contain_text("Zoë Smith")
    page.goto(live_server.url + waitlist)
    expect(page.locator("main")).to_contain_text("Balance Basics")
    expect(page.get_by_text("number 1")).to_be_visible()
