"""Booking with a class pass on a 390x844 phone: "I have a class pass" on the class's form, the
emailed link (read from the SMTP server), the confirm page's one button, the confirmation,
cancelling in time through the manage page and the credit back on the pass. Axe clean.
SCREENSHOT_DIR=docs/screenshots writes pass-booking-confirm.png (the confirm page)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.extensions import db as _db
from events.models import LedgerKind
from events.notifications.delivery import deliver_due
from events.passes import ledger
from events.registration import links
from tests.conftest import _watched_page
from tests.factories import make_clinic, make_location
from tests.passbook_helpers import ledger_kinds, make_class, make_pass, make_product
from tests.worker.conftest import smtp, smtp_server  # noqa: F401 (the SMTP server fixtures)

pytestmark = pytest.mark.browser

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]}}
PHONE = {"width": 390, "height": 844}
ME = "rosa.martin@example.com"


def assert_accessible(page: Page) -> None:
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


@pytest.fixture
def member_phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = _watched_page(context)
    yield page
    context.close()
    assert not page.csp_violations, page.csp_violations


def test_book_with_a_class_pass_through_the_emailed_link_and_cancel_on_time(
    member_phone,
    live_server,
    db,
    smtp,  # noqa: F811 (the fixture imported above)
):
    make_clinic(name="Revival Physical Therapy", email="desk@revival.example")
    location = make_location(slug="north-loop", name="North Loop", timezone="America/Chicago")
    cls = make_class(title="Strength & Balance", days=6, location=location, price_cents=1800)
    pass_ = make_pass(ME, make_product(credits=10, name="10-class pass"), name="Rosa Martin")
    db.session.commit()
    session = cls.sessions[0]
    pass_id = pass_.id
    pass_signed = links.sign(pass_.token, links.PASS_SALT)

    member = member_phone
    member.goto(f"{live_server.url}/offerings/{cls.slug}?session={session.id}")
    member.get_by_label("Your name").fill("Rosa Martin")
    member.get_by_label("Email").fill(ME)
    pass_button = member.get_by_role("button", name="I have a class pass")
    pass_button.scroll_into_view_if_needed()
    expect(pass_button).to_be_in_viewport()
    assert_accessible(member)
    pass_button.click()
    expect(member.get_by_role("status")).to_contain_text(f"We've emailed {ME} a link to confirm your booking")
    assert_accessible(member)
    no_sideways_scroll(member)

    deliver_due()
    [email] = smtp.to(ME)
    text = email.get_body(("plain",)).get_content()
    link = re.search(r"(https?://\S+/pass-booking/\S+)", text).group(1)
    member.goto(live_server.url + urlsplit(link).path)
    expect(member.get_by_role("heading", level=1)).to_have_text("Book with your class pass")
    expect(member.locator(".pass-confirm")).to_contain_text("With your 10-class pass: 1 credit.")
    expect(member.locator(".pass-confirm")).to_contain_text("9 of 10 left after.")
    book = member.get_by_role("button", name="Book it")
    expect(book).to_be_in_viewport()
    assert_accessible(member)
    no_sideways_scroll(member)
    shot(member, "pass-booking-confirm.png")
    book.click()

    expect(member.locator(".flash")).to_contain_text("You're booked!")
    expect(member.locator(".paid-with-pass")).to_contain_text(
        re.compile(r"Class pass: 1 credit \(9 of 10 left, expires \w{3} \d+, \d{4}\)")
    )
    expect(member.locator(".summary-price")).to_have_text("1 credit from your class pass")
    assert_accessible(member)
    no_sideways_scroll(member)
    shot(member, "pass-booking-booked.png")

    member.get_by_role("link", name="Cancel my registration").click()
    expect(member.locator(".cancel-outcome")).to_contain_text("Your 1 credit goes back on your class pass")
    assert_accessible(member)
    member.get_by_role("button", name="Yes, cancel my registration").click()
    expect(member.locator(".flash")).to_contain_text("Your registration is cancelled.")
    expect(member.locator(".paid-with-pass")).to_contain_text("Your 1 credit is back on your pass.")
    expect(member.locator(".paid-with-pass")).to_contain_text("(10 of 10 left")
    assert_accessible(member)
    no_sideways_scroll(member)

    # The pass's own page lists the class again, with its "Book" button (the partial).
    member.goto(f"{live_server.url}/pass/{pass_signed}")
    expect(member.locator("#pass-balance")).to_contain_text("10 of 10 credits left")
    item = member.locator(".pass-book-item").filter(has_text="Strength & Balance")
    expect(item).to_contain_text("10 seats left")
    expect(item.get_by_role("button", name=re.compile("^Book"))).to_be_visible()
    assert_accessible(member)
    no_sideways_scroll(member)
    shot(member, "pass-page-book.png")

    _db.session.expire_all()
    assert ledger.balance(pass_id) == 10
    assert ledger_kinds(pass_id) == [LedgerKind.PURCHASE, LedgerKind.SPEND, LedgerKind.RETURN]


def test_cancelling_a_booking_of_a_pass_since_refunded_tells_what_comes_back(member_phone, live_server, db):
    """The pass's unused credits were refunded after the booking: cancelling in time says,
    before and after, that what the credit cost comes back as money (it can't go back on a
    closed pass). SCREENSHOT_DIR writes pass-refunded-cancel.png (the question)."""
    from events.models import PaymentMethod, Role, User
    from events.passes import admin as pass_admin
    from events.passes import booking
    from events.registration.services import Person

    make_clinic(name="Revival Physical Therapy", email="desk@revival.example")
    location = make_location(slug="north-loop", name="North Loop", timezone="America/Chicago")
    cls = make_class(title="Strength & Balance", days=6, location=location)
    product = make_product(credits=10, price_cents=12000, name="10-class pass")
    desk = User(email="desk@revival.example", name="Desk", role=Role.ADMIN)
    db.session.add(desk)
    db.session.commit()
    pass_ = pass_admin.sell_at_desk(product.id, "Rosa Martin", ME, PaymentMethod.CASH, "", desk)
    booked = booking.book_with_pass(cls, cls.sessions[0].id, Person("Rosa Martin", ME, "", "en"))
    pass_admin.refund_unused(pass_.id, "Moving away", desk)
    signed = links.sign(booked.registration.token, links.MANAGE_SALT)

    member = member_phone
    member.goto(f"{live_server.url}/manage/{signed}/cancel")
    outcome = member.locator(".cancel-outcome")
    expect(outcome).to_contain_text("Your class pass had already been refunded")
    expect(outcome).to_contain_text("You'll get $12 back at the front desk (you paid by cash there).")
    assert_accessible(member)
    no_sideways_scroll(member)
    shot(member, "pass-refunded-cancel.png")
    member.get_by_role("button", name="Yes, cancel my registration").click()

    expect(member.locator(".flash")).to_contain_text("Your registration is cancelled.")
    expect(member.locator(".paid-with-pass")).to_contain_text(
        "You paid by cash at the desk, so we will return $12 to you there."
    )
    assert_accessible(member)
    no_sideways_scroll(member)
