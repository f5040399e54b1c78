"""A declined card on a 390x844 phone in Spanish: the emulator answers Stripe's own codes for
Stripe's test cards (not enough money, expired, a wrong security code, a plain decline when
charged), and the pay page says each in the member's language, in plain words chosen by the
code, never Stripe's English; then a good card pays. The words are read from the catalogue
(the English msgid until translators fill it in), not typed here."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from events.languages import in_language
from events.models import OfferingKind, Payment, Registration, RegistrationStatus
from events.payments import declines
from tests.browser.test_money_journeys import AROUND_THE_CARD, assert_accessible, fill_card
from tests.browser.test_pay_in_spanish_and_somali import SCREENSHOTS, words
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("localstripe")]

CARDS = [  # Stripe's test card -> the code Stripe answers for it
    ("4000000000009995", "insufficient_funds"),
    ("4000000000000069", "expired_card"),
    ("4000000000000127", "incorrect_cvc"),
    ("4000000000000341", "card_declined"),  # declined when charged, not when attached
]


def test_each_declined_card_is_explained_in_spanish_then_another_card_pays(app, db, live_server, phone_page):
    make_clinic(name="Revival Physical Therapy and Wellness")
    location = make_location(name="North Loop", city="Minneapolis")
    offering = make_offering(location, OfferingKind.CLASS, title="Core & Hip Strength", price_cents=1800)
    make_session(offering, upcoming_day(4))
    db.session.commit()
    asked = ("Your name", "Email", "Continue to payment", "Confirmed")
    name, email, pay_on, confirmed = words(app, "es", *asked)
    with app.test_request_context("/"), in_language("es"):
        expected = {code: declines.decline_message(code) for _, code in CARDS}
    assert len(set(expected.values())) == len(CARDS)  # each code has its own words

    page = phone_page
    page.context.add_cookies([{"name": "lang", "value": "es", "url": live_server.url}])
    page.goto(f"{live_server.url}/offerings/{offering.slug}")
    page.get_by_label(name).fill("Maria Lopez")
    page.get_by_label(email, exact=True).fill("maria.declines@example.com")
    page.get_by_role("button", name=pay_on).click()
    expect(page.locator("#card-element input")).to_have_count(5)

    error = page.locator("#payment-error")
    for number, code in CARDS:
        fill_card(page, number)
        page.locator("#pay-button").click()
        expect(error).to_have_text(expected[code], timeout=15000)
        expect(page.locator("html")).to_have_attribute("lang", "es")
    assert_accessible(page, AROUND_THE_CARD)
    page.screenshot(path=str(SCREENSHOTS / "pay-declined-es-phone.png"))
    for stripe_english in ("insufficient funds", "security code is incorrect", "Your card has expired."):
        assert stripe_english not in page.content()

    fill_card(page, "4242424242424242")
    page.locator("#pay-button").click()
    expect(page.get_by_text(confirmed, exact=True)).to_be_visible(timeout=15000)

    db.session.expire_all()
    registration = db.session.scalar(sa.select(Registration))
    assert registration.status == RegistrationStatus.CONFIRMED and registration.language == "es"
    # Staff keep Stripe's code and reason: the charge-time decline left its payment row.
    reasons = db.session.scalars(sa.select(Payment.last_error).where(Payment.last_error != "")).all()
    assert reasons == ["card_declined: Your card was declined."]
