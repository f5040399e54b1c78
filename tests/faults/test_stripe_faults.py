"""The Stripe emulator down, or too slow to answer, when someone pays.

The person is told plainly (status "unavailable", HTTP 503), their seat stays held, and paying
again once Stripe is back charges them exactly once: the same card token replays the first
attempt (the gateway's idempotency keys), and a new token (what the page sends: Stripe.js
tokenizes the card on every submission) finds the first attempt's intent named in our payment
row and asks Stripe how it ended before charging anything.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
import stripe

from events.models import Payment, PaymentStatus, Registration, RegistrationStatus, SeatPool
from events.payments.gateway import StripeGateway
from tests.faults.conftest import DelayProxy
from tests.helpers import csrf_token
from tests.integration.test_payments import SUCCESS, card_token, held_registration, pay, refreshed

KEY = "sk_test_emulator"


def stripe_client(base: str) -> stripe.StripeClient:
    return stripe.StripeClient(KEY, base_addresses={"api": base})


def intents_for(client: stripe.StripeClient, registration_id: int) -> list:
    intents = client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()  # every page
    return [pi for pi in intents if (pi.metadata or {}).get("registration_id") == str(registration_id)]


def assert_still_held(db, registration):
    registration = refreshed(db, Registration, registration.id)
    assert registration.status == RegistrationStatus.HELD
    pool = db.session.get(SeatPool, registration.seat_pool_id)
    assert pool.seats_taken == 1
    succeeded = db.session.scalar(
        sa.select(sa.func.count()).select_from(Payment).where(Payment.status == PaymentStatus.SUCCEEDED)
    )
    assert succeeded == 0


def assert_paid_once(db, registration, emulator_client):
    registration = refreshed(db, Registration, registration.id)
    assert registration.status == RegistrationStatus.CONFIRMED
    payments = db.session.scalars(sa.select(Payment)).all()
    assert [(p.status, p.amount_cents) for p in payments] == [(PaymentStatus.SUCCEEDED, 3000)]
    intents = intents_for(emulator_client, registration.id)
    assert [(pi.status, pi.amount) for pi in intents] == [("succeeded", 3000)]
    assert payments[0].stripe_payment_intent_id == intents[0].id


def test_stripe_down_when_paying_keeps_the_hold_and_the_retry_charges_once(
    client, db, private_stripe, use_stripe
):
    use_stripe(private_stripe.url)
    emulator = stripe_client(private_stripe.url)
    registration = held_registration(db)
    token = card_token(emulator, SUCCESS)  # Stripe.js tokenized the card before the outage

    private_stripe.kill()
    started = time.monotonic()
    _, response = pay(client, registration, token)
    answered_in = time.monotonic() - started

    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert "couldn't reach the payment service" in response.json["message"]
    assert "still held" in response.json["message"]
    assert answered_in < 15
    assert_still_held(db, registration)

    private_stripe.start()
    signed, retried = pay(client, registration, token)
    assert retried.status_code == 200 and retried.json["status"] == "succeeded"
    # The same submission arriving again (a double click, a browser retry) changes nothing.
    # (A booked registration's manage page has no form; its cancel confirmation has the token.)
    page = client.get(f"/manage/{signed}/cancel").get_data(as_text=True)
    again = client.post(
        f"/manage/{signed}/pay", json={"token": token}, headers={"X-CSRFToken": csrf_token(page)}
    )
    assert again.status_code == 200 and again.json["status"] == "succeeded"
    assert_paid_once(db, registration, emulator)
    print(
        f"\n[fault stripe down] pay answered 503 'unavailable' in {answered_in:.2f}s, hold kept; "
        f"after restart: retry succeeded, 1 PaymentIntent, 1 payment row"
    )


def slow_gateway(proxy_url: str) -> StripeGateway:
    """The app's gateway with a 1.5 s client timeout (the app's is 15 s; a test cannot wait
    3 x 15 s), still retrying twice on a timeout."""
    gateway = StripeGateway(KEY, proxy_url)
    gateway._client = stripe.StripeClient(
        KEY,
        base_addresses={"api": proxy_url},
        max_network_retries=2,
        http_client=stripe.RequestsClient(timeout=1.5),
    )
    return gateway


def slow_confirms(method: str, path: str) -> bool:
    return method == "POST" and path.startswith("/v1/payment_intents/") and path.endswith("/confirm")


def test_stripe_too_slow_when_paying_keeps_the_hold_and_the_retry_charges_once(
    client, db, private_stripe, use_stripe
):
    """The charge goes through at Stripe but the answer never arrives in time.

    The proxy forwards the confirm (the call that charges) at once and answers after 4 s; the
    gateway gives up after 1.5 s, and its 2 automatic retries, replayed by the idempotency key,
    time out too. The person tries again with a new card token once Stripe is fast again: they
    must be told they paid, and not be charged a second time.
    """
    proxy = DelayProxy(private_stripe.url)
    try:
        use_stripe(proxy.url, slow_gateway(proxy.url))
        emulator = stripe_client(private_stripe.url)
        registration = held_registration(db)

        proxy.delay, proxy.is_slow = 4.0, slow_confirms
        started = time.monotonic()
        _, response = pay(client, registration, card_token(emulator, SUCCESS))
        answered_in = time.monotonic() - started

        assert response.status_code == 503
        assert response.json["status"] == "unavailable"
        assert "still held" in response.json["message"]
        assert answered_in < 15
        assert_still_held(db, registration)
        # Stripe did the work: one intent, charged, whose answer was lost (3 deliveries, 1 charge).
        confirms = [f for f in proxy.forwarded if slow_confirms(f[0], f[1])]
        assert len(confirms) == 3
        assert [pi.status for pi in intents_for(emulator, registration.id)] == ["succeeded"]

        proxy.delay = 0.0
        _, retried = pay(client, registration, card_token(emulator, SUCCESS))  # a new token
        assert retried.status_code == 200 and retried.json["status"] == "succeeded"
        assert_paid_once(db, registration, emulator)
        print(
            f"\n[fault stripe slow] pay answered 503 'unavailable' in {answered_in:.2f}s "
            f"(3 x 1.5 s timeouts, charge made at Stripe), hold kept; "
            f"retry with a new card token: succeeded, still 1 PaymentIntent, 1 payment row"
        )
    finally:
        proxy.stop()


def test_a_charge_whose_answer_was_lost_is_confirmed_by_reconcile(client, db, private_stripe, use_stripe):
    """As above, but the person never comes back (and no webhook arrives): the sweep's
    reconcile finds the intent named in our payment row and confirms the registration."""
    from events.payments.services import reconcile_pending_payments

    proxy = DelayProxy(private_stripe.url)
    try:
        use_stripe(proxy.url, slow_gateway(proxy.url))
        emulator = stripe_client(private_stripe.url)
        registration = held_registration(db)
        proxy.delay, proxy.is_slow = 4.0, slow_confirms
        _, response = pay(client, registration, card_token(emulator, SUCCESS))
        assert response.status_code == 503
        assert_still_held(db, registration)

        proxy.delay = 0.0
        assert reconcile_pending_payments() == 1
        assert_paid_once(db, registration, emulator)
        assert reconcile_pending_payments() == 0  # settled: not asked about again
    finally:
        proxy.stop()
