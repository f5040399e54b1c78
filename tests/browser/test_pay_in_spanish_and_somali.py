"""Register and pay by card in Spanish and in Somali on a 390x844 phone (issue 15's done-when):
every step in the chosen language (`<html lang>` and the text, read from the catalogue, not typed
here), axe clean with the WCAG 2.2 AA tags, and the registration remembers the language so its
emails are written in it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_babel import gettext
from playwright.sync_api import expect

from events.languages import in_language
from events.models import OfferingKind, Registration, RegistrationStatus
from tests.browser.test_money_journeys import (
    AROUND_THE_CARD,
    assert_accessible,
    fill_card,
    no_sideways_scroll,
)
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("localstripe")]


def words(app, code: str, *msgids: str) -> list[str]:
    """What the catalogue says for each msgid in that language."""
    with app.test_request_context("/"), in_language(code):
        return [gettext(msgid) for msgid in msgids]


@pytest.mark.parametrize("code", ["es", "so"])
def test_register_and_pay_by_card_in_the_members_language_on_a_phone(app, db, live_server, phone_page, code):
    make_clinic(name="Revival Physical Therapy and Wellness")
    location = make_location(name="North Loop", city="Minneapolis")
    offering = make_offering(location, OfferingKind.CLASS, title="Core & Hip Strength", price_cents=1800)
    make_session(offering, upcoming_day(4))
    db.session.commit()
    name, email, pay_on, confirmed = words(
        app, code, "Your name", "Email", "Continue to payment", "Confirmed"
    )
    assert name != "Your name" and confirmed != "Confirmed"  # the catalogue has them (the control)

    page = phone_page
    page.context.add_cookies([{"name": "lang", "value": code, "url": live_server.url}])
    page.goto(f"{live_server.url}/offerings/{offering.slug}")
    expect(page.locator("html")).to_have_attribute("lang", code)
    assert_accessible(page)
    no_sideways_scroll(page)

    page.get_by_label(name).fill("Maria Lopez")
    page.get_by_label(email, exact=True).fill(f"maria.{code}@example.com")
    page.get_by_role("button", name=pay_on).click()
    expect(page.locator("#card-element input")).to_have_count(5)  # Stripe.js mounted the card
    expect(page.locator("html")).to_have_attribute("lang", code)
    assert_accessible(page, AROUND_THE_CARD)
    page.screenshot(path=str(SCREENSHOTS / f"pay-{code}-phone.png"))

    fill_card(page, "4242424242424242")
    page.locator("#pay-button").click()
    expect(page.get_by_text(confirmed, exact=True)).to_be_visible(timeout=15000)
    expect(page.locator("html")).to_have_attribute("lang", code)
    assert_accessible(page)
    no_sideways_scroll(page)

    db.session.expire_all()
    registration = db.session.scalar(sa.select(Registration))
    assert registration.status == RegistrationStatus.CONFIRMED
    assert registration.language == code  # every later email to her is written in it
