"""Two people on phones open the last seat's form; the second to press Register is told, on
the page served from the page cache (events/catalog/cache.py, cached(fields=...)), that it has
just filled up, with their own answers still in the form and one tap to join the waitlist.
Someone already on the waitlist who presses Register on a page opened earlier is told the
class is still full and that they keep their place, with its number (not its link)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from events.models import WaitlistEntry, WaitlistStatus
from events.registration import services
from events.registration.services import Person
from tests.browser.test_phone_journeys import assert_accessible, in_viewport
from tests.factories import workshop

pytestmark = pytest.mark.browser


def test_the_second_to_press_register_keeps_their_answers_and_joins_the_waitlist(browser, live_server, db):
    workshop(capacity=1, slug="last-seat", title="Gentle Back Care")
    db.session.commit()
    phones = [
        browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        for _ in range(3)
    ]
    try:
        pages = [phone.new_page() for phone in phones]
        people = [
            ("Ana Reyes", "ana@example.com"),
            ('Bo "B" <Lee>', "bo@example.com"),
            ("Cy Olsen", "cy@example.com"),
        ]
        for page, (name, email) in zip(pages, people, strict=True):
            page.goto(f"{live_server.url}/offerings/last-seat")
            page.get_by_label("Your name").fill(name)
            page.get_by_label("Email").fill(email)
        for page in pages:
            page.get_by_role("button", name="Register - free").click()
            page.wait_for_load_state()

        expect(pages[0].get_by_text("You're registered!")).to_be_visible()
        for page, (name, email) in zip(pages[1:], people[1:], strict=True):
            notice = page.locator(".notice-warn", has_text="this workshop has just filled up")
            expect(notice).to_be_focused()
            assert in_viewport(page, ".notice-warn")
            expect(page.get_by_label("Your name")).to_have_value(name)
            expect(page.get_by_label("Email")).to_have_value(email)
        assert_accessible(pages[1])

        pages[1].get_by_role("button", name="Join the waitlist").click()
        expect(pages[1].get_by_text("number 1")).to_be_visible()
        pages[2].get_by_role("button", name="Join the waitlist").click()
        expect(pages[2].get_by_text("number 2")).to_be_visible()
    finally:
        for phone in phones:
            phone.close()
    db.session.expire_all()
    assert sorted(db.session.scalars(sa.select(WaitlistEntry.name))) == ['Bo "B" <Lee>', "Cy Olsen"]


def test_registering_from_an_old_page_while_on_the_waitlist_keeps_the_place(browser, live_server, db):
    offering = workshop(capacity=2, slug="still-full", title="Gentle Back Care")
    db.session.commit()
    services.register(offering, None, Person("Ana Reyes", "ana@example.com"))
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = phone.new_page()
        page.goto(f"{live_server.url}/offerings/still-full")  # one seat left when opened
        page.get_by_label("Your name").fill("Wes Gray")
        page.get_by_label("Email").fill("wes@example.com")
        # Meanwhile the last seat goes, and Wes joins the waitlist (on his other phone).
        services.register(offering, None, Person("Bo Lee", "bo@example.com"))
        services.join_waitlist(offering, None, Person("Jo Kim", "jo@example.com"))
        entry = services.join_waitlist(offering, None, Person("Wes Gray", "wes@example.com")).entry

        page.get_by_role("button", name="Register - free").click()
        page.wait_for_load_state()

        notice = page.locator("[data-still-waiting]")
        expect(notice).to_have_text(
            "This workshop is still full. You're still on the waitlist, and we'll email you if a seat "
            "opens. We've also emailed you the link to your place, which shows where you are in line."
        )
        expect(notice).to_be_focused()
        assert in_viewport(page, "[data-still-waiting]")
        assert page.locator('a[href*="/waitlist/"]').count() == 0  # never the link on the page
        assert_accessible(page)
        folder = os.environ.get("SCREENSHOT_DIR")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / "still-on-the-waitlist-phone.png"))
    finally:
        phone.close()
    db.session.expire_all()
    assert db.session.get(WaitlistEntry, entry.id).status == WaitlistStatus.WAITING
