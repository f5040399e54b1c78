"""The paid journeys on a 390x844 phone (issue 12): a declined card, then leaving the pay page
and registering again (the seat is resumed, and a stranger typing the same email gets no way
in; the link reaches the held address by email); an expired hold with its one action; and
cancelling without JavaScript, which asks once and ends with other dates to book.

Screenshots of each state go to $SCREENSHOT_DIR when it is set (docs/screenshots/ holds the
committed ones)."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.models import OfferingKind, Registration, utcnow
from events.notifications.delivery import deliver_due
from events.payments.services import apply_intent
from events.registration import links
from events.registration.services import Person, register
from tests.conftest import _watched_page
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import charge_card, wait_for_webhooks
from tests.worker.conftest import smtp, smtp_server  # noqa: F401 (the SMTP server fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("localstripe")]

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]}}
# The card element is Stripe's widget (an iframe on real Stripe); we check our page around it.
AROUND_THE_CARD = {"exclude": [["#card-element"]]}
PHONE = {"width": 390, "height": 844}


def assert_accessible(page: Page, context=None) -> None:
    results = Axe().run(page, context=context, options=WCAG)
    assert results.violations_count == 0, results.generate_report()


def no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


@pytest.fixture
def phone_without_js(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, java_script_enabled=False)
    page = _watched_page(context)
    yield page
    context.close()


@pytest.fixture
def stranger_phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = _watched_page(context)
    yield page
    context.close()
    assert not page.csp_violations, page.csp_violations


def paid_class(db, capacity=8):
    make_clinic(name="Revival Physical Therapy and Wellness", phone="612-555-0100")
    location = make_location(
        name="North Loop",
        address_line1="800 N Washington Ave",
        address_line2="Suite 5",
        city="Minneapolis",
        postal_code="55401",
    )
    offering = make_offering(
        location,
        OfferingKind.CLASS,
        slug="core-hip-strength",
        title="Core & Hip Strength",
        price_cents=1800,
        capacity=capacity,
        late_cancel_refund_percent=50,
        what_to_bring="Athletic shoes and water.",
    )
    sessions = [make_session(offering, upcoming_day(days)) for days in (4, 11, 18)]
    db.session.commit()
    return offering, sessions


def fill_card(page: Page, number: str) -> None:
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill(number)
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("31")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("55401")


def register_on(page: Page, url: str, email: str = "maria@example.com") -> None:
    page.goto(url)
    page.get_by_label("Your name").fill("Maria Lopez")
    page.get_by_label("Email").fill(email)
    page.locator("#register button[type=submit]").click()


def test_a_declined_card_then_coming_back_later_resumes_the_held_seat(
    phone_page,
    stranger_phone,
    live_server,
    db,
    smtp,  # noqa: F811
):
    offering, (_, second, _) = paid_class(db)
    offering_url = f"{live_server.url}/offerings/{offering.slug}?session={second.id}"
    register_on(phone_page, offering_url)

    expect(phone_page.get_by_role("heading", name="Payment")).to_be_visible()
    expect(phone_page.locator("#card-element input")).to_have_count(5)  # Stripe.js mounted the card
    summary = phone_page.locator(".booking")
    start = second.local_start
    for said in (
        "Core & Hip Strength",
        f"{start:%A}, {start:%B} {start.day}",
        "North Loop",
        "800 N Washington Ave",
        "$18",
    ):
        expect(summary).to_contain_text(said)
    expect(phone_page.locator(".hold-until")).to_be_in_viewport()
    shot(phone_page, "pay-page.png")
    assert_accessible(phone_page, AROUND_THE_CARD)
    no_sideways_scroll(phone_page)

    fill_card(phone_page, "4000000000000341")
    phone_page.get_by_role("button", name=re.compile("^Pay")).click()
    expect(phone_page.locator("#payment-error")).to_contain_text("declined", timeout=15000)
    shot(phone_page, "pay-declined.png")

    # They leave, and later register again from the class page: back to their payment.
    register_on(phone_page, offering_url)
    expect(phone_page.get_by_role("heading", name="Payment")).to_be_visible()
    registration = db.session.scalar(sa.select(Registration))
    until = registration.hold_expires_at.astimezone(offering.location.zone)
    hour = until.strftime("%I").lstrip("0")
    expect(phone_page.locator(".hold-until")).to_contain_text(
        re.compile(rf"Continue to payment: your seat is held until {hour}(:\d\d)? [ap]m C[SD]T")
    )
    expect(phone_page.locator(".hold-until")).to_be_in_viewport()
    shot(phone_page, "hold-resume.png")
    assert_accessible(phone_page, AROUND_THE_CARD)

    # Someone else, typing her email on their own phone: told neutrally, and given no link.
    register_on(stranger_phone, offering_url)
    notice = stranger_phone.get_by_text("This email is already registered for this class")
    expect(notice).to_be_visible()
    assert "/pay" not in stranger_phone.content() and "/manage/" not in stranger_phone.content()
    assert_accessible(stranger_phone)
    # The link went to her address (read from the SMTP server), and takes her to the payment.
    deliver_due()
    held_emails = [m for m in smtp.to("maria@example.com") if m["Subject"].startswith("Your seat is held")]
    [email] = held_emails
    text = email.get_body(("plain",)).get_content()
    pay_link = re.search(r"Continue to payment: (\S+)", text).group(1)
    phone_page.goto(live_server.url + urlsplit(pay_link).path)
    expect(phone_page.get_by_role("button", name="Pay $18")).to_be_visible()

    fill_card(phone_page, "4242424242424242")
    phone_page.get_by_role("button", name=re.compile("^Pay")).click()
    expect(phone_page.locator(".flash")).to_contain_text("you're booked", timeout=15000)
    expect(phone_page.get_by_text("Visa ending 4242").first).to_be_visible()
    assert_accessible(phone_page)
    no_sideways_scroll(phone_page)
    shot(phone_page, "booked.png")
    wait_for_webhooks(1)  # nothing left in flight for the next test


def test_an_expired_hold_is_one_state_with_one_way_back_to_that_date(phone_page, live_server, db):
    offering, (_, second, _) = paid_class(db)
    registration = register(offering, second.id, Person("Maria Lopez", "maria@example.com")).registration
    registration.hold_expires_at = utcnow() - timedelta(minutes=2)
    db.session.commit()

    phone_page.goto(f"{live_server.url}/manage/{links.sign(registration.token, links.MANAGE_SALT)}")

    state = phone_page.locator(".state")
    expect(state).to_contain_text("Your held seat has been released")
    expect(state.get_by_role("link")).to_have_count(1)
    # No action on the booking (the page's only buttons are "Your data": download or delete it).
    expect(phone_page.locator("main > :not(#my-data)").get_by_role("button")).to_have_count(0)
    expect(phone_page.locator("#my-data").get_by_role("button")).to_have_count(2)
    for contradiction in ("Awaiting payment", "Complete payment", "Cancel"):
        expect(phone_page.get_by_text(contradiction)).to_have_count(0)
    expect(state.get_by_role("link", name="Register again")).to_be_in_viewport()
    shot(phone_page, "expired-hold.png")
    assert_accessible(phone_page)
    no_sideways_scroll(phone_page)

    state.get_by_role("link", name="Register again").click()
    expect(phone_page.locator(f"#session-{second.id}")).to_be_checked()
    assert_accessible(phone_page)


def test_cancelling_without_javascript_asks_once_then_offers_another_date(
    phone_without_js, phone_page, live_server, db, stripe_client
):
    """Clicked through with JavaScript off; each page is also opened in a phone with it on,
    where axe and the layout checks can run (Playwright cannot evaluate a script in a page
    whose JavaScript is off)."""
    page, checked = phone_without_js, phone_page
    offering, (first, second, third) = paid_class(db, capacity=1)
    registration = register(offering, first.id, Person("Maria Lopez", "maria@example.com")).registration
    token = stripe_client.v1.tokens.create(
        params={"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    ).id
    apply_intent(
        charge_card(
            registration_id=registration.id, card_token=token, amount=1800, currency="usd", description="t"
        )
    )
    register(offering, third.id, Person("Someone", "someone@example.com"))  # that date is full
    wait_for_webhooks(1)  # nothing left in flight for the next test

    def check(name: str) -> None:
        checked.goto(page.url)
        shot(checked, name)
        assert_accessible(checked)
        no_sideways_scroll(checked)

    page.goto(f"{live_server.url}/manage/{links.sign(registration.token, links.MANAGE_SALT)}")
    expect(page.locator(".receipt")).to_contain_text("Visa ending 4242")
    check("booked-manage.png")
    page.get_by_role("link", name="Cancel my registration").click()

    expect(page.get_by_role("heading", name="Cancel your registration?")).to_be_visible()
    outcome = page.locator(".cancel-outcome")
    expect(outcome).to_contain_text("full refund of $18")
    expect(outcome).to_contain_text("Visa ending 4242")
    expect(outcome).to_contain_text("5–10 business days")
    expect(page.get_by_role("button", name="Yes, cancel my registration")).to_be_in_viewport()
    check("cancel-confirm.png")

    page.get_by_role("button", name="Yes, cancel my registration").click()

    expect(page.locator(".flash")).to_contain_text("A refund of $18 is on its way")
    another = page.locator("section", has=page.get_by_role("heading", name="Book another date"))
    expect(another.locator(".other-dates li")).to_have_count(1)  # the second date; the third is full
    checked.goto(page.url)
    checked.get_by_role("heading", name="Book another date").scroll_into_view_if_needed()
    shot(checked, "booked-another-date.png")
    assert_accessible(checked)
    no_sideways_scroll(checked)

    another.locator(".other-dates a").click()
    expect(page.locator(f"#session-{second.id}")).to_be_checked()


@pytest.fixture
def stripe_client(localstripe):
    import stripe

    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})
