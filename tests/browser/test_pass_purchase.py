"""Buying a class pass by card on a 390x844 phone: the passes page, the buy form, the Stripe
Elements page (test card 4242), then the emailed link (read from the SMTP server) opening the
pass page with "10 of 10 credits left". Axe clean at each step.
SCREENSHOT_DIR=docs/screenshots writes pass-buy.png (the payment page) and pass-page.png."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from events.models import OfferingKind, PassProduct, PassValidityStart
from events.notifications.delivery import deliver_due
from tests.browser.test_balance_payment_link import (
    AROUND_THE_CARD,
    assert_accessible,
    member_phone,  # noqa: F401 (the fixture)
    no_sideways_scroll,
    shot,
)
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import wait_for_webhooks
from tests.worker.conftest import smtp, smtp_server  # noqa: F401 (the SMTP server fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("localstripe")]


def test_buy_a_pass_by_card_on_a_phone_and_open_the_emailed_link(
    member_phone,  # noqa: F811
    live_server,
    db,
    smtp,  # noqa: F811
):
    make_clinic(name="Revival Physical Therapy and Wellness", email="desk@revival.example")
    location = make_location(slug="north-loop", name="North Loop", timezone="America/Chicago")
    strength = make_offering(location, OfferingKind.CLASS, title="Core & Hip Strength", price_cents=1800)
    make_session(strength, upcoming_day(3))
    make_session(strength, upcoming_day(10))
    db.session.add(
        PassProduct(
            name="10-class pass",
            description="Ten drop-in classes at either location, for the price of eight.",
            credits=10,
            price_cents=12000,
            validity_days=90,
            validity_starts=PassValidityStart.PURCHASE,
            offering_kinds="class",
        )
    )
    db.session.commit()

    page = member_phone
    page.goto(live_server.url + "/passes")
    expect(page.get_by_role("heading", name="10-class pass")).to_be_visible()
    expect(page.locator(".pass-product")).to_contain_text("drop-in classes")
    expect(page.locator(".pass-product")).to_contain_text("valid 90 days from purchase")
    assert_accessible(page)
    no_sideways_scroll(page)
    shot(page, "pass-products.png")
    page.get_by_role("link", name="Buy this pass").click()

    # The form says what is missing, then takes the name and email.
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.locator(".error-summary")).to_contain_text("Please tell us your name")
    assert_accessible(page)
    no_sideways_scroll(page)
    shot(page, "pass-buy-form-error.png")
    page.get_by_label("Your name").fill("Ana Lopez")
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_role("button", name="Continue to payment").click()

    expect(page.get_by_role("heading", name="Payment")).to_be_visible()
    expect(page.locator("#card-element input")).to_have_count(5)  # Stripe.js mounted the card
    assert_accessible(page, AROUND_THE_CARD)
    no_sideways_scroll(page)
    shot(page, "pass-buy.png")
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill("4242424242424242")
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("31")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("55401")
    pay = page.get_by_role("button", name="Pay $120")
    pay.scroll_into_view_if_needed()
    pay.click()
    expect(page.locator(".flash")).to_contain_text("your pass is ready", timeout=15000)
    expect(page.locator("#pass-balance")).to_have_text("10 of 10 credits left")

    # The email, and its link on a fresh visit.
    deliver_due()
    [email] = [m for m in smtp.to("ana@example.com") if m["Subject"].startswith("Your class pass")]
    text = email.get_body(("plain",)).get_content()
    link = re.search(r"(http\S+/pass/\S+)", text).group(1)
    page.goto(live_server.url + urlsplit(link).path)
    expect(page.locator("#pass-balance")).to_have_text("10 of 10 credits left")
    expect(page.locator("#pass-expiry")).to_contain_text(re.compile(r"Expires \w{3} \d+, \d{4}"))
    expect(page.locator(".pass-classes li")).to_have_count(2)
    expect(page.locator(".pass-history")).to_contain_text("bought, 10 credits")
    assert_accessible(page)
    no_sideways_scroll(page)
    shot(page, "pass-page.png")
    wait_for_webhooks(1)  # nothing left in flight for the next test


def test_staff_sell_a_pass_at_the_desk_and_adjust_it_on_a_phone(phone_page, live_server, db):
    from events.models import Pass, Role, User
    from events.passes import ledger

    make_clinic(name="Revival Physical Therapy and Wellness")
    admin = User(email="sam@clinic.example", name="Sam Rivera", role=Role.ADMIN)
    admin.set_password("correct horse battery")
    db.session.add(admin)
    db.session.add(PassProduct(name="10-class pass", credits=10, price_cents=12000, validity_days=90))
    db.session.commit()
    staff = phone_page
    staff.goto(live_server.url + "/staff/login")
    staff.get_by_label("Email").fill(admin.email)
    staff.get_by_label("Password").fill("correct horse battery")
    staff.get_by_role("button", name=re.compile("sign in", re.I)).click()

    staff.goto(live_server.url + "/staff/admin/passes")
    assert_accessible(staff)
    staff.get_by_role("link", name="Sell a pass at the desk").click()
    staff.get_by_role("button", name="Record the sale and send the pass").click()
    expect(staff.locator(".field-error").first).to_be_visible()  # nothing chosen: said so
    assert_accessible(staff)
    staff.get_by_label("Pass").select_option(label="10-class pass ($120.00)")
    staff.get_by_label("Name").fill("Bo Chen")
    staff.get_by_label("Email").fill("bo@example.com")
    staff.get_by_label("Cash").check()
    staff.get_by_label("Note (optional)").fill("receipt 88")
    staff.get_by_role("button", name="Record the sale and send the pass").click()
    expect(staff.locator(".flash")).to_contain_text("Pass sold to Bo Chen")
    expect(staff.locator("#staff-pass-balance")).to_have_text("10 of 10")
    assert_accessible(staff)
    no_sideways_scroll(staff)

    staff.get_by_label("Credits to add (a minus sign takes off)").fill("2")
    staff.locator("#reason").fill("Makeup for a cancelled class")
    staff.get_by_role("button", name="Adjust…").click()
    expect(staff.get_by_role("heading", name="Add 2 credits to Bo Chen's pass?")).to_be_visible()
    assert_accessible(staff)
    staff.get_by_role("button", name="Adjust the credits").click()
    expect(staff.locator("#staff-pass-balance")).to_have_text("12 of 10")
    shot(staff, "pass-staff.png")
    pass_id = db.session.scalar(sa.select(Pass.id))
    assert ledger.balance(pass_id) == 12
