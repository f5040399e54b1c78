"""Prices where members and the desk meet them, on a 390x844 phone, axe clean: a waitlist
claim offers the sliding-scale tiers and "Have a code?" as registering does, and the pay page
shows the price worked out; a class page offers a community seat only for a date that keeps
one; staff's "Register someone" takes a tier and a code and records the quoted price in cash.

SCREENSHOT_DIR=docs/screenshots writes waitlist-claim-price.png (the claim form with the price
choice), community-seat-per-date.png (a class date whose community seat is taken) and
staff-register-price.png (staff's form with the price and code)."""

from __future__ import annotations

import re
from datetime import time

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from events.models import (
    OfferingKind,
    Payment,
    PaymentMethod,
    PriceTier,
    PromoCode,
    PromoKind,
    Registration,
    RegistrationStatus,
    Role,
    User,
    WaitlistStatus,
)
from events.pricing import PriceChoice
from events.registration import links, services
from events.registration.services import Person
from tests.browser.test_pricing_on_a_phone import assert_accessible, no_sideways_scroll, shot
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("localstripe")]

PASSWORD = "correct horse battery"


def tiered_workshop(db, capacity: int = 12):
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
        capacity=capacity,
    )
    offering.price_tiers = [
        PriceTier(name="Supported", description="Helps fund community seats", price_cents=2500, position=0),
        PriceTier(name="Standard", description="", price_cents=1500, position=1),
        PriceTier(name="Community", description="No questions asked", price_cents=500, position=2),
    ]
    make_session(offering, upcoming_day(9))
    db.session.add(PromoCode(code="PARTNER", code_normalized="PARTNER", kind=PromoKind.PERCENT_OFF, value=20))
    db.session.commit()
    return offering


def test_claim_a_waitlist_seat_at_a_tier_with_a_code(phone_page: Page, live_server, db, app):
    offering = tiered_workshop(db, capacity=1)
    ana = services.register(offering, None, Person("Ana Reyes", "ana@example.com")).registration
    entry = services.join_waitlist(offering, None, Person("Maria Lopez", "maria@example.com")).entry
    services.cancel_registration(ana.id)
    db.session.refresh(entry)
    assert entry.status == WaitlistStatus.OFFERED
    with app.test_request_context():
        url = links.waitlist_url(entry, external=False)

    phone_page.goto(live_server.url + url)
    choices = phone_page.get_by_role("group", name="Choose your price")
    expect(choices.get_by_role("radio", name=re.compile(r"^Standard \$15"))).to_be_checked()
    choices.get_by_role("radio", name=re.compile(r"^Community \$5")).check()
    shot(phone_page, "waitlist-claim-price.png", choices)
    # A wrong code first: told beside its field, the offer still open.
    phone_page.get_by_text("Have a code?").click()
    phone_page.get_by_label("Code", exact=True).fill("PARTNR")
    phone_page.get_by_role("button", name="Claim my seat and pay").click()
    expect(phone_page.locator("#error-summary")).to_contain_text("We don't know that code")
    expect(phone_page.locator("#code-error")).to_contain_text("We don't know that code")
    expect(choices.get_by_role("radio", name=re.compile(r"^Community \$5"))).to_be_checked()  # kept
    assert_accessible(phone_page)
    no_sideways_scroll(phone_page)

    phone_page.get_by_label("Code", exact=True).fill("partner")
    phone_page.get_by_role("button", name="Claim my seat and pay").click()

    expect(phone_page.get_by_role("heading", name="Payment")).to_be_visible()
    expect(phone_page.locator("[data-price-breakdown]")).to_contain_text(
        "Community $5, code PARTNER -$1, total $4"
    )
    expect(phone_page.get_by_role("button", name="Pay $4")).to_be_visible()
    registration = db.session.scalar(sa.select(Registration).where(Registration.email == "maria@example.com"))
    assert (registration.status, registration.price_cents, registration.source) == (
        RegistrationStatus.HELD,
        400,
        "waitlist",
    )


def test_a_class_date_without_a_community_seat_left_shows_no_community_choice(
    phone_page: Page, live_server, db
):
    make_clinic(name="Revival Physical Therapy and Wellness")
    location = make_location(name="North Loop", address_line1="800 N Washington Ave")
    offering = make_offering(
        location,
        OfferingKind.CLASS,
        slug="core-flow",
        title="Core Flow",
        price_cents=1500,
        capacity=8,
        community_seats=1,
        community_price_cents=500,
    )
    taken = make_session(offering, upcoming_day(5), time(18, 0))
    make_session(offering, upcoming_day(12), time(18, 0))
    db.session.commit()
    services.register(
        offering, taken.id, Person("Ana", "ana@example.com"), price_choice=PriceChoice(community=True)
    )

    phone_page.goto(f"{live_server.url}/offerings/{offering.slug}")
    community = phone_page.get_by_role("radio", name=re.compile(r"^Community seat \$5"))
    dates = phone_page.locator("[data-register-form] input[name=session_id]")
    dates.nth(1).check()
    expect(community).to_be_visible()
    community.check()
    dates.nth(0).check()  # its community seat is taken: the choice goes, back to the list price
    expect(community).to_be_hidden()
    expect(phone_page.get_by_role("radio", name=re.compile(r"^Standard \$15"))).to_be_checked()
    shot(phone_page, "community-seat-per-date.png", phone_page.locator(".price-choices"))
    assert_accessible(phone_page)
    no_sideways_scroll(phone_page)


def test_staff_register_someone_at_a_tier_with_a_code_paid_in_cash(phone_page: Page, live_server, db):
    offering = tiered_workshop(db)
    admin = User(email="admin@clinic.example", name="Alex Admin", role=Role.ADMIN)
    admin.set_password(PASSWORD)
    db.session.add(admin)
    db.session.commit()
    offering_id = offering.id

    page = phone_page
    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()
    page.goto(f"{live_server.url}/staff/admin/offerings/{offering_id}/register")

    page.get_by_label("Name").fill("Dee Phone")
    page.get_by_label("Email").fill("dee@example.com")
    page.get_by_label("Price").select_option(label="Community tier, $5.00")
    page.get_by_label("Promo code (optional)").fill("partner")
    page.get_by_label("Paid in cash at the desk").check()
    shot(page, "staff-register-price.png", page.get_by_label("Price"))
    assert_accessible(page)
    no_sideways_scroll(page)
    page.get_by_role("button", name="Register", exact=True).click()

    expect(page.locator(".flash")).to_contain_text("paid by cash at the desk")
    expect(page.locator("body")).to_contain_text("at the Community tier with code PARTNER (-$1.00), $4.00")
    payment = db.session.scalar(sa.select(Payment))
    assert (payment.method, payment.amount_cents) == (PaymentMethod.CASH, 400)
