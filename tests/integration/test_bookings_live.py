"""The booking changes' money and seat rules with real commits: two staff transferring into
the last seat at once over HTTP (real threads, the live server), and a desk payment racing a
card payment at the Stripe emulator. PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa
import stripe

from events.models import (
    OfferingKind,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
    Role,
    SeatPool,
)
from events.payments.gateway import GatewayRejected, IntentFor, PaymentDeclined, get_gateway
from events.payments.refunds import execute_due_refunds
from events.payments.services import apply_intent, reconcile_pending_payments
from events.registration.services import Person, register, succeeded_payment
from events.staff import bookings
from tests.factories import make_location, make_offering, make_session, upcoming_day, workshop
from tests.helpers import csrf_token
from tests.integration.test_payments import SUCCESS, card_token
from tests.integration.test_staff import PASSWORD, make_user


def staff_http(base_url: str, email: str) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{base_url}/staff/login").text
    signed_in = http.post(
        f"{base_url}/staff/login",
        data={"csrf_token": csrf_token(page), "email": email, "password": PASSWORD},
        allow_redirects=False,
    )
    assert signed_in.status_code == 302
    return http


def test_two_staff_transferring_into_the_last_seat_at_once_one_succeeds(live_server, db):
    """Ana (on the first date) and Ben (on the third) are moved to the second date, which has
    one seat left, by two admins at the same moment. Their lock orders (pools by id: first and
    second; second and third) meet on the second date's pool: one gets the seat, the other is
    told it is full, and the seat count is exact."""
    for email in ("sam@clinic.example", "kim@clinic.example"):
        make_user(db, email, Role.ADMIN)
    core = make_offering(make_location(), OfferingKind.CLASS, title="Core Flow", capacity=2)
    first, second, third = (make_session(core, upcoming_day(days)) for days in (3, 5, 7))
    db.session.commit()
    ana = register(core, first.id, Person("Ana Lopez", "ana@example.com")).registration
    ben = register(core, third.id, Person("Ben Bell", "ben@example.com")).registration
    register(core, second.id, Person("Cy Cole", "cy@example.com"))  # one seat left on the second
    target = f"{core.id}-{second.id}"
    assert first.seat_pool_id < second.seat_pool_id < third.seat_pool_id

    posts = []
    for email, registration in (("sam@clinic.example", ana), ("kim@clinic.example", ben)):
        http = staff_http(live_server.url, email)
        url = f"{live_server.url}/staff/admin/registrations/{registration.id}/transfer"
        token = csrf_token(http.get(url).text)
        data = {"csrf_token": token, "target": target, "reason": "Moved", "expected_difference": "0"}
        posts.append((http, url, data))
    start = threading.Barrier(len(posts))

    def transfer(post):
        http, url, data = post
        start.wait()
        return http.post(url, data=data, allow_redirects=False)

    with ThreadPoolExecutor(len(posts)) as pool:
        responses = list(pool.map(transfer, posts))

    codes = sorted(r.status_code for r in responses)
    assert codes == [302, 400], codes
    refused = next(r for r in responses if r.status_code == 400)
    assert "That one is full (2 of 2 seats taken)" in refused.text
    db.session.expire_all()
    on_second = db.session.scalars(
        sa.select(Registration.name).where(
            Registration.session_id == second.id, Registration.status == RegistrationStatus.CONFIRMED
        )
    ).all()
    assert len(on_second) == 2 and "Cy Cole" in on_second
    assert db.session.get(SeatPool, second.seat_pool_id).seats_taken == 2
    moved = "Ana Lopez" if "Ana Lopez" in on_second else "Ben Bell"
    stayed = ben if moved == "Ana Lopez" else ana
    assert db.session.get(Registration, stayed.id).status == RegistrationStatus.CONFIRMED
    seats_left_behind = {first.seat_pool_id: 0 if moved == "Ana Lopez" else 1}
    seats_left_behind[third.seat_pool_id] = 1 - seats_left_behind[first.seat_pool_id]
    for pool_id, taken in seats_left_behind.items():
        assert db.session.get(SeatPool, pool_id).seats_taken == taken


# --- A desk payment and a card payment are never both live ---


@pytest.fixture
def stripe_client(localstripe):
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})


def held_with_open_card_payment(db, stripe_client):
    """A seat held while they pay, with a card entered at our pay page: the intent created and
    recorded (open), not yet charged."""
    admin = make_user(db, "sam@clinic.example", Role.ADMIN)
    offering = workshop(price_cents=3000)
    db.session.commit()
    held = register(offering, None, Person("Pat Payer", "pat@example.com")).registration
    intent = get_gateway().create_intent(
        IntentFor(registration_id=held.id, label="Workshop"),
        card_token=card_token(stripe_client, SUCCESS),
        amount=3000,
        currency="usd",
    )
    apply_intent(intent)
    card = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent.id))
    assert card.status == PaymentStatus.REQUIRES_PAYMENT_METHOD
    return admin, held, intent


def test_a_desk_payment_cancels_the_card_payment_left_open(db, stripe_client):
    admin, held, intent = held_with_open_card_payment(db, stripe_client)

    bookings.take_desk_payment(held.id, PaymentMethod.CASH, "", admin)

    gateway = get_gateway()
    assert gateway.retrieve_intent(intent.id).status == "canceled"
    with pytest.raises((GatewayRejected, PaymentDeclined)):
        gateway.confirm_intent(intent.id)  # the card can no longer be charged
    db.session.expire_all()
    registration = db.session.get(Registration, held.id)
    card = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent.id))
    assert registration.status == RegistrationStatus.CONFIRMED
    assert card.status == PaymentStatus.CANCELED
    assert succeeded_payment(registration).method == PaymentMethod.CASH
    live = db.session.scalars(
        sa.select(Payment.method).where(
            Payment.registration_id == held.id, Payment.status == PaymentStatus.SUCCEEDED
        )
    ).all()
    assert live == [PaymentMethod.CASH]


def test_staff_cancelling_a_held_seat_cancels_its_open_card_payment(db, stripe_client):
    """The member left the card form open; staff cancel the hold: the card can no longer charge
    for a seat given up."""
    admin, held, intent = held_with_open_card_payment(db, stripe_client)

    bookings.cancel_booking(held.id, bookings.RefundChoice.NONE, "Called to cancel", admin, 0)

    gateway = get_gateway()
    assert gateway.retrieve_intent(intent.id).status == "canceled"
    with pytest.raises((GatewayRejected, PaymentDeclined)):
        gateway.confirm_intent(intent.id)
    db.session.expire_all()
    assert db.session.get(Registration, held.id).status == RegistrationStatus.CANCELLED
    card = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent.id))
    assert card.status == PaymentStatus.CANCELED


def test_a_card_charged_just_before_the_cancel_is_refunded_in_full(db, stripe_client, monkeypatch):
    """The member's card goes through between the desk payment's commit and our cancel of the
    intent: the cancel finds it charged, and the unplaced-payment path sends it all back. The
    seat stays booked by the cash payment; no money is kept twice."""
    admin, held, intent = held_with_open_card_payment(db, stripe_client)
    stop = bookings.stop_superseded_intent

    def charged_first(intent_id):
        get_gateway().confirm_intent(intent_id)  # the pay page's charge lands first
        stop(intent_id)

    monkeypatch.setattr(bookings, "stop_superseded_intent", charged_first)
    bookings.take_desk_payment(held.id, PaymentMethod.CASH, "", admin)

    db.session.expire_all()
    registration = db.session.get(Registration, held.id)
    card = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent.id))
    assert registration.status == RegistrationStatus.CONFIRMED
    assert succeeded_payment(registration).method == PaymentMethod.CASH
    assert card.status == PaymentStatus.SUCCEEDED
    refund = db.session.scalar(sa.select(Refund).where(Refund.payment_id == card.id))
    assert (refund.kind, refund.amount_cents) == (RefundKind.UNPLACED_PAYMENT, 3000)
    assert execute_due_refunds() == 1
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == RefundStatus.SUCCEEDED
    assert db.session.get(Payment, card.id).amount_refunded_cents == 3000


def test_the_reconcile_cancels_a_card_payment_the_desk_could_not_stop(db, stripe_client, monkeypatch):
    """Stripe out of reach right after the desk payment: the open intent is left, and the
    periodic reconcile (which asks about confirmed registrations' open intents too) cancels it."""
    admin, held, intent = held_with_open_card_payment(db, stripe_client)
    monkeypatch.setattr(bookings, "stop_superseded_intent", lambda intent_id: None)
    bookings.take_desk_payment(held.id, PaymentMethod.CHECK, "#1043", admin)
    assert get_gateway().retrieve_intent(intent.id).status != "canceled"

    assert reconcile_pending_payments() == 1
    assert get_gateway().retrieve_intent(intent.id).status == "canceled"
    db.session.expire_all()
    card = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent.id))
    assert card.status == PaymentStatus.CANCELED
    assert succeeded_payment(db.session.get(Registration, held.id)).method == PaymentMethod.CHECK
