"""Registering and paying in Chromium, with the emulator's Stripe.js card element."""

import re

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from events.models import OfferingKind, Payment, PaymentStatus, Registration, RegistrationStatus
from tests.factories import make_location, make_offering, make_session, upcoming_day

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("localstripe")]

# The card element is Stripe's widget (an iframe on real Stripe); we check our page around it.
AXE_CONTEXT = {"exclude": [["#card-element"]]}


def assert_accessible(page, context=None):
    results = Axe().run(page, context=context)
    assert results.violations_count == 0, results.generate_report()


def paid_class(db, price_cents=1800):
    location = make_location(name="North Loop")
    offering = make_offering(
        location, OfferingKind.CLASS, title="Core & Hip Strength", price_cents=price_cents
    )
    session = make_session(offering, upcoming_day(4))
    db.session.commit()
    return offering, session


def fill_card(page, number):
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill(number)
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("31")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("55401")


def register_and_reach_payment(page, live_server, offering, email="maria@example.com"):
    page.goto(f"{live_server.url}/offerings/{offering.slug}")
    assert_accessible(page)
    page.get_by_label("Your name").fill("Maria Lopez")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_role("heading", name="Payment")).to_be_visible()
    expect(page.locator("#card-element input")).to_have_count(5)  # Stripe.js mounted the card


def test_pay_by_card_and_land_on_the_confirmation(page, live_server, db):
    offering, _ = paid_class(db)
    register_and_reach_payment(page, live_server, offering)
    assert_accessible(page, AXE_CONTEXT)

    fill_card(page, "4242424242424242")
    page.get_by_role("button", name=re.compile("^Pay")).click()

    expect(page.get_by_text("Payment received")).to_be_visible(timeout=15000)
    expect(page.get_by_text("Confirmed")).to_be_visible()
    assert_accessible(page)
    db.session.expire_all()
    registration = db.session.scalar(sa.select(Registration))
    assert registration.status == RegistrationStatus.CONFIRMED
    payment = db.session.scalar(sa.select(Payment))
    assert (payment.status, payment.amount_cents) == (PaymentStatus.SUCCEEDED, 1800)


def test_a_declined_card_shows_the_message_and_a_second_card_pays(page, live_server, db):
    offering, _ = paid_class(db)
    register_and_reach_payment(page, live_server, offering, email="dee@example.com")

    fill_card(page, "4000000000000341")
    page.get_by_role("button", name=re.compile("^Pay")).click()
    expect(page.locator("#payment-error")).to_contain_text("declined", timeout=15000)
    assert_accessible(page, AXE_CONTEXT)

    page.locator("#card-element").get_by_placeholder("number").fill("4242424242424242")
    page.get_by_role("button", name=re.compile("^Pay")).click()
    expect(page.get_by_text("Payment received")).to_be_visible(timeout=15000)


def test_three_d_secure_challenge_completes_the_payment_on_a_phone(phone_page, live_server, db):
    page = phone_page
    offering, _ = paid_class(db)
    register_and_reach_payment(page, live_server, offering, email="tess@example.com")

    fill_card(page, "4000002500003155")
    page.get_by_role("button", name=re.compile("^Pay")).click()
    # The emulator's stand-in for the bank's 3D Secure page.
    page.get_by_role("button", name="Complete authentication").click(timeout=15000)

    expect(page.get_by_text("Payment received")).to_be_visible(timeout=15000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    db.session.expire_all()
    assert db.session.scalar(sa.select(Registration)).status == RegistrationStatus.CONFIRMED
