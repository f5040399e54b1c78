"""Sliding-scale prices and promo codes on a 390x844 phone, against the Stripe emulator, axe
clean: choosing the Community tier and paying $5 by card; a wrong code told next to its field,
then a partner's code taking 20% off the Standard price at checkout, paid $12.

SCREENSHOT_DIR=docs/screenshots writes sliding-scale.png (the price choice on the class page)
and promo-code.png (the pay page with the code's line)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.models import (
    OfferingKind,
    Payment,
    PaymentStatus,
    PriceTier,
    PromoCode,
    PromoKind,
    Registration,
    RegistrationStatus,
)
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import wait_for_webhooks

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("localstripe")]

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]}}
AROUND_THE_CARD = {"exclude": [["#card-element"]]}  # Stripe's own widget
PHONE = {"width": 390, "height": 844}


def assert_accessible(page: Page, context=None) -> None:
    results = Axe().run(page, context=context, options=WCAG)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def shot(page: Page, name: str, locator=None) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        if locator is not None:
            locator.scroll_into_view_if_needed()
        page.screenshot(path=str(Path(folder) / name))


def sliding_scale_workshop(db):
    make_clinic(name="Revival Physical Therapy and Wellness", phone="612-555-0100")
    location = make_location(
        name="North Loop", address_line1="800 N Washington Ave", city="Minneapolis", postal_code="55401"
    )
    offering = make_offering(
        location,
        OfferingKind.WORKSHOP,
        slug="healthy-back-workshop",
        title="Healthy Back Workshop",
        price_cents=1500,
        capacity=12,
    )
    offering.price_tiers = [
        PriceTier(name="Supported", description="Helps fund community seats", price_cents=2500, position=0),
        PriceTier(name="Standard", description="", price_cents=1500, position=1),
        PriceTier(name="Community", description="No questions asked", price_cents=500, position=2),
    ]
    make_session(offering, upcoming_day(9))
    db.session.add(
        PromoCode(
            code="NORTHLOOP-WELL",
            code_normalized="NORTHLOOP-WELL",
            kind=PromoKind.PERCENT_OFF,
            value=20,
            partner_tag="north-loop-employers",
        )
    )
    db.session.commit()
    return offering


def fill_card(page: Page, number: str = "4242424242424242") -> None:
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill(number)
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("31")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("55401")


def fill_person(page: Page, email: str) -> None:
    page.get_by_label("Your name").fill("Maria Lopez")
    page.get_by_label("Email").fill(email)


def test_choose_a_sliding_scale_tier_and_pay_it(phone_page, live_server, db):
    offering = sliding_scale_workshop(db)
    phone_page.goto(f"{live_server.url}/offerings/{offering.slug}")

    choices = phone_page.get_by_role("group", name="Choose your price")
    expect(choices).to_be_visible()
    expect(choices.get_by_role("radio", name=re.compile(r"^Standard \$15"))).to_be_checked()
    community = choices.get_by_role("radio", name=re.compile(r"^Community \$5"))
    expect(choices).to_contain_text("Helps fund community seats")
    expect(choices).to_contain_text("No questions asked")
    # A big target: the whole row is the label.
    box = choices.locator("label[for^=price-tier]").last.bounding_box()
    assert box is not None and box["height"] >= 44
    community.check()
    shot(phone_page, "sliding-scale.png", choices)
    assert_accessible(phone_page)
    no_sideways_scroll(phone_page)

    fill_person(phone_page, "maria@example.com")
    phone_page.locator("#register button[type=submit]").click()

    expect(phone_page.get_by_role("heading", name="Payment")).to_be_visible()
    expect(phone_page.locator(".booking")).to_contain_text("$5")
    expect(phone_page.locator("[data-price-breakdown]")).to_contain_text("Community $5, total $5")
    fill_card(phone_page)
    phone_page.get_by_role("button", name="Pay $5").click()
    expect(phone_page.locator(".flash")).to_contain_text("you're booked", timeout=15000)
    registration = db.session.scalar(sa.select(Registration))
    db.session.refresh(registration)
    assert (registration.status, registration.price_cents) == (RegistrationStatus.CONFIRMED, 500)
    assert registration.price_tier.name == "Community"
    assert_accessible(phone_page)
    wait_for_webhooks(1)


def test_pay_with_a_promo_code_at_checkout(phone_page, live_server, db):
    offering = sliding_scale_workshop(db)
    phone_page.goto(f"{live_server.url}/offerings/{offering.slug}")
    fill_person(phone_page, "ana@example.com")

    # Out of the way until asked for.
    code_box = phone_page.get_by_label("Code", exact=True)
    expect(code_box).to_be_hidden()
    phone_page.get_by_text("Have a code?").click()
    code_box.fill("NORTHLOOP-WEL")  # a typo: told beside the field, nothing taken
    phone_page.locator("#register button[type=submit]").click()
    expect(phone_page.locator("#error-summary")).to_contain_text("We don't know that code")
    expect(phone_page.locator("#code-error")).to_contain_text("We don't know that code")
    expect(phone_page.get_by_label("Code", exact=True)).to_be_visible()  # still open, with their text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0
    assert_accessible(phone_page)

    phone_page.get_by_label("Code", exact=True).fill("northloop-well")
    phone_page.locator("#register button[type=submit]").click()

    expect(phone_page.get_by_role("heading", name="Payment")).to_be_visible()
    breakdown = phone_page.locator("[data-price-breakdown]")
    expect(breakdown).to_contain_text("Standard $15, code NORTHLOOP-WELL -$3, total $12")
    expect(phone_page.get_by_role("button", name="Pay $12")).to_be_visible()
    shot(phone_page, "promo-code.png", breakdown)
    assert_accessible(phone_page, AROUND_THE_CARD)
    no_sideways_scroll(phone_page)

    fill_card(phone_page)
    phone_page.get_by_role("button", name="Pay $12").click()
    expect(phone_page.locator(".flash")).to_contain_text("you're booked", timeout=15000)
    expect(phone_page.locator("[data-price-breakdown]")).to_contain_text("code NORTHLOOP-WELL -$3, paid $12")
    payment = db.session.scalar(sa.select(Payment))
    assert (payment.status, payment.amount_cents) == (PaymentStatus.SUCCEEDED, 1200)
    assert_accessible(phone_page)
    wait_for_webhooks(1)
