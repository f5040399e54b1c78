"""The emails about money, as the member receives them (read from the SMTP server): one
"You're booked" email that is also the receipt, the link of a held seat sent to its own
address, and every payment email saying what, when, where and the price."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import stripe

from events.filters import format_short_day
from events.models import OfferingKind, Payment, Registration, utcnow
from events.notifications.delivery import deliver_due
from events.notifications.outbox import EmailKind, queue_email
from events.payments.gateway import PaymentDeclined
from events.payments.services import apply_intent, record_failure
from events.registration.services import Outcome, Person, register
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import charge_card, wait_for_webhooks

pytestmark = pytest.mark.usefixtures("localstripe")

SUCCESS = "4242424242424242"


@pytest.fixture
def stripe_client(localstripe):
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})


def paid_class(db):
    location = make_location(
        name="North Loop", address_line1="800 N Washington Ave", city="Minneapolis", postal_code="55401"
    )
    offering = make_offering(location, OfferingKind.CLASS, title="Core & Hip Strength", price_cents=1800)
    session = make_session(offering, upcoming_day(4))
    db.session.commit()
    return offering, session


def pay(db, stripe_client, registration: Registration) -> None:
    token = stripe_client.v1.tokens.create(
        params={"card": {"number": SUCCESS, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    ).id
    state = charge_card(
        registration_id=registration.id, card_token=token, amount=1800, currency="usd", description="t"
    )
    apply_intent(state)
    apply_intent(state)  # a second copy changes nothing
    wait_for_webhooks(len(db.session.scalars(sa.select(Payment.id)).all()))  # none left in flight


def says_what_when_where_and_price(text: str, session, amount: str = "$18") -> None:
    start = session.local_start
    for said in (
        "Core & Hip Strength",
        f"{start:%A}, {start:%B} {start.day}",
        start.tzname(),
        "North Loop",
        "800 N Washington Ave, Minneapolis, MN 55401",
        amount,
    ):
        assert said in text, (said, text)


def test_a_paid_booking_sends_one_email_that_is_also_the_receipt(db, smtp, stripe_client):
    offering, session = paid_class(db)
    registration = register(offering, session.id, Person("Ana Reyes", "ana@example.com")).registration
    pay(db, stripe_client, registration)

    assert deliver_due().sent == 1
    [msg] = smtp.to("ana@example.com")
    # Neutral by default: the date, never the title (it can say something about someone's health).
    assert msg["Subject"] == f"You're booked for {format_short_day(session.local_start)}"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    says_what_when_where_and_price(text, session)
    paid = db.session.get(Registration, registration.id).payments[0]
    number = f"R-{paid.id:06d}"
    paid_day = paid.paid_at.astimezone(session.location.zone)
    for said in (f"Receipt {number}", "Amount paid: $18", "Paid with:   Visa ending 4242"):
        assert said in text, said
    assert f"Date paid:   {paid_day:%A}, {paid_day:%B} {paid_day.day}, {paid_day.year}" in text
    assert number in html and "Visa ending 4242" in html
    # Still the confirmation: the invite is attached and the manage link is there.
    assert [part.get_filename() for part in msg.iter_attachments()] == ["invite.ics"]
    assert "/manage/" in text


def test_a_held_seats_link_goes_only_to_its_own_address_and_leads_to_the_payment(db, smtp, client):
    offering, session = paid_class(db)
    held = register(offering, session.id, Person("Ana Reyes", "ana@example.com"), browser_key="a")
    assert held.outcome == Outcome.HELD
    stranger = register(offering, session.id, Person("Eve", "ana@example.com"), browser_key="b")
    assert stranger.outcome == Outcome.ALREADY_REGISTERED

    assert deliver_due().sent == 1
    [msg] = smtp.to("ana@example.com")
    assert msg["Subject"] == f"Your seat is held for {format_short_day(session.local_start)}"
    text = msg.get_body(("plain",)).get_content()
    says_what_when_where_and_price(text, session)
    until = held.registration.hold_expires_at.astimezone(session.location.zone)
    assert f"held until {until.strftime('%I').lstrip('0')}" in text
    pay_link = re.search(r"Continue to payment: (\S+)", text).group(1)
    page = client.get(urlsplit(pay_link).path)
    assert page.status_code == 200 and "Pay $18" in page.get_data(as_text=True)


def test_every_payment_email_says_what_when_where_and_the_price(db, smtp, stripe_client):
    offering, session = paid_class(db)
    held = register(offering, session.id, Person("Ana Reyes", "ana@example.com")).registration
    record_failure(held.id, PaymentDeclined("Your card has insufficient funds.", "insufficient_funds"))
    paid_class_2, session_2 = paid_class(db)
    booked = register(paid_class_2, session_2.id, Person("Ana Reyes", "bo@example.com")).registration
    pay(db, stripe_client, booked)
    money = {"refund_cents": 1800, "currency": "usd"}
    for kind, extra in [
        (EmailKind.REGISTRATION_CANCELLED, {"context": money}),
        (EmailKind.REFUND_ISSUED, {"context": money, "key_parts": ("re_1",)}),
        (EmailKind.LATE_PAYMENT_REFUNDED, {"context": {**money, "paid_cents": 1800}}),
    ]:
        queue_email(kind, registration=booked, **extra)
    db.session.commit()

    deliver_due()

    [failed] = smtp.to("ana@example.com")
    assert failed["Subject"] == f"Your payment did not go through ({format_short_day(session.local_start)})"
    failed_text = failed.get_body(("plain",)).get_content()
    says_what_when_where_and_price(failed_text, session)
    assert "Try the payment again: " in failed_text and "/pay" in failed_text
    to_bo = smtp.to("bo@example.com")
    assert len(to_bo) == 4
    for msg in to_bo:
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        says_what_when_where_and_price(text, session_2)
        assert "Core &amp; Hip Strength" in html and "North Loop" in html
        if not msg["Subject"].startswith("You're booked"):
            assert "Visa ending 4242" in text, msg["Subject"]


def test_a_link_asked_for_a_hold_that_ran_out_meanwhile_says_so_and_leads_back_to_that_date(db, smtp):
    offering, session = paid_class(db)
    held = register(offering, session.id, Person("Ana Reyes", "ana@example.com"), browser_key="a")
    register(offering, session.id, Person("Eve", "ana@example.com"), browser_key="b")
    held.registration.hold_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    deliver_due()

    [msg] = smtp.to("ana@example.com")
    assert msg["Subject"] == f"Your held seat for {format_short_day(session.local_start)} was released"
    text = msg.get_body(("plain",)).get_content()
    assert "You weren't charged." in text and "/pay" not in text
    assert (
        f"Register again: http://127.0.0.1:5000/offerings/{offering.slug}?session={session.id}#register"
        in text
    )
