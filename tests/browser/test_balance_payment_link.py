"""A transfer onto a dearer date, paid by the member's payment link, on a 390x844 phone:
staff transfer Ana from a $15 class to a $25 one and send the link; the email reaches her
(read from the SMTP server); she pays the $10 with a 4242 card on the same Stripe Elements
flow as registering; the roster and her registration page say paid by card. Axe clean.
SCREENSHOT_DIR=docs/screenshots writes balance-payment.png (the member's pay page)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.models import (
    OfferingKind,
    Payment,
    PaymentStatus,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from events.notifications.delivery import deliver_due
from events.registration.services import Person, register
from tests.conftest import _watched_page
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import wait_for_webhooks
from tests.worker.conftest import smtp, smtp_server  # noqa: F401 (the SMTP server fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("localstripe")]

PASSWORD = "correct horse battery"
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]}}
AROUND_THE_CARD = {"exclude": [["#card-element"]]}  # Stripe's own widget
PHONE = {"width": 390, "height": 844}


def assert_accessible(page: Page, context=None) -> None:
    results = Axe().run(page, context=context, options=WCAG)
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


def test_staff_transfer_to_a_dearer_date_and_the_member_pays_the_link_on_a_phone(
    phone_page,
    member_phone,
    live_server,
    db,
    smtp,  # noqa: F811 (the fixture imported above)
):
    make_clinic(name="Revival Physical Therapy and Wellness", email="desk@revival.example")
    location = make_location(slug="north-loop", name="North Loop", timezone="America/Chicago")
    admin = User(email="sam@clinic.example", name="Sam Rivera", role=Role.ADMIN)
    admin.set_password(PASSWORD)
    db.session.add(admin)
    core = make_offering(location, OfferingKind.CLASS, title="Core Flow", price_cents=1500, capacity=8)
    hip = make_offering(
        location, OfferingKind.CLASS, title="Core & Hip Strength", price_cents=2500, capacity=8
    )
    tuesday = make_session(core, upcoming_day(6))
    wednesday = make_session(hip, upcoming_day(7))
    db.session.commit()
    ana = register(core, tuesday.id, Person("Ana Lopez", "ana@example.com")).registration
    db.session.add(
        Payment(
            registration_id=ana.id,
            stripe_payment_intent_id="pi_browser_balance_ana",
            amount_cents=1500,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
            card_brand="visa",
            card_last4="4242",
            paid_at=utcnow(),
        )
    )
    ana.status, ana.confirmed_at, ana.hold_expires_at = RegistrationStatus.CONFIRMED, utcnow(), None
    db.session.commit()

    # Staff, on a phone: transfer to the dearer date, with the payment link.
    staff = phone_page
    staff.goto(live_server.url + "/staff/login")
    staff.get_by_label("Email").fill(admin.email)
    staff.get_by_label("Password").fill(PASSWORD)
    staff.get_by_role("button", name=re.compile("sign in", re.I)).click()
    staff.goto(f"{live_server.url}/staff/admin/registrations/{ana.id}/transfer")
    staff.get_by_label("Move to").select_option(f"{hip.id}-{wednesday.id}")
    staff.get_by_label("Reason (kept in the audit trail)").fill("Prefers Wednesdays")
    staff.get_by_role("button", name="Review the transfer").click()
    expect(staff.locator("#confirm-transfer")).to_contain_text("collect the difference, $10.00")
    link_box = staff.get_by_label(re.compile("Email Ana Lopez a link to pay the \\$10.00 by card"))
    expect(link_box).to_be_checked()
    assert_accessible(staff)
    staff.get_by_role("button", name="Transfer the booking").click()
    expect(staff.locator(".flash")).to_contain_text(
        "A link to pay the difference, $10.00, by card is emailed"
    )
    new_page_url = staff.url

    # The email reaches her; the link opens her pay page.
    deliver_due()
    [email] = [m for m in smtp.to("ana@example.com") if m["Subject"].startswith("Payment still due")]
    assert "desk@revival.example" in str(email["Reply-To"])
    text = email.get_body(("plain",)).get_content()
    link = re.search(r"Pay it by card here \(the link works for 14 days\): (\S+)", text).group(1)
    member = member_phone
    member.goto(live_server.url + urlsplit(link).path)
    due = member.locator("#balance-due")
    expect(due).to_contain_text(
        re.compile(
            r"\$10 still due for Core & Hip Strength, \w{3} \w{3} \d+, \d+:\d\d [ap]m C[SD]T, "
            r"after your booking was moved to a dearer date"
        )
    )
    expect(member.locator("#card-element input")).to_have_count(5)  # Stripe.js mounted the card
    assert_accessible(member, AROUND_THE_CARD)
    no_sideways_scroll(member)
    shot(member, "balance-payment.png")

    card = member.locator("#card-element")
    card.get_by_placeholder("number").fill("4242424242424242")
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("31")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("55401")
    # Right below the card, a short scroll on a phone (the language switch sits above the page).
    pay = member.get_by_role("button", name="Pay $10")
    pay.scroll_into_view_if_needed()
    expect(pay).to_be_in_viewport()
    pay.click()
    expect(member.locator(".flash")).to_contain_text("Payment received: nothing more is owed", timeout=15000)
    expect(member.locator("#balance-paid")).to_contain_text("Your booking is fully paid")
    expect(member.get_by_text("Visa ending 4242").first).to_be_visible()
    assert_accessible(member)
    no_sideways_scroll(member)
    shot(member, "balance-paid.png")

    # The receipt, once.
    deliver_due()
    receipts = [m for m in smtp.to("ana@example.com") if m["Subject"].startswith("Payment received")]
    assert len(receipts) == 1

    # Staff see it paid by card: the registration page and the roster.
    staff.goto(new_page_url)
    expect(staff.locator(".payment-line")).to_contain_text("Balance paid $10.00 by card (Visa ending 4242)")
    expect(staff.get_by_text("Email a link to pay")).to_have_count(0)
    assert_accessible(staff)
    staff.goto(f"{live_server.url}/staff/sessions/{wednesday.id}")
    row = staff.locator("li, tr").filter(has_text="Ana Lopez").first
    expect(row).to_contain_text("paid")
    expect(row).not_to_contain_text("part paid")
    assert_accessible(staff)
    wait_for_webhooks(1)  # nothing left in flight for the next test
