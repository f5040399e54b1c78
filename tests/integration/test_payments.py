"""Stripe payments and refunds against localstripe as a real process.

The emulator delivers signed webhooks to the app served on a real port, so these tests see
both paths that confirm a payment: the card submission itself and the webhook after it.
"""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import stripe

from events.models import (
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    Registration,
    RegistrationStatus,
    WebhookEvent,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.payments.refunds import execute_due_refunds
from events.registration import links, seats, services
from events.registration.services import Person
from tests.conftest import deliver_webhooks
from tests.factories import workshop
from tests.helpers import cancel_form, charge_card, csrf_token, outbox_kinds, wait_until

SUCCESS = "4242424242424242"
DECLINE = "4000000000000341"
THREE_D_SECURE = "4000002500003155"

pytestmark = pytest.mark.usefixtures("localstripe")


@pytest.fixture
def stripe_client(localstripe):
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})


def card_token(stripe_client, number: str) -> str:
    """What Stripe.js does in the browser: turn card details into a token."""
    return stripe_client.v1.tokens.create(
        params={"card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    ).id


def held_registration(db, price_cents=3000, capacity=5, **kw):
    offering = workshop(price_cents=price_cents, capacity=capacity, **kw)
    db.session.commit()
    result = services.register(offering, None, Person("Pat Payer", "pat@example.com"))
    assert result.registration.status == RegistrationStatus.HELD
    return result.registration


def pay(client, registration, token):
    signed = links.sign(registration.token, links.MANAGE_SALT)
    page = client.get(f"/manage/{signed}/pay")
    assert page.status_code == 200
    response = client.post(
        f"/manage/{signed}/pay",
        json={"token": token},
        headers={"X-CSRFToken": csrf_token(page.get_data(as_text=True))},
    )
    return signed, response


def payment_row(registration, intent_id: str, status) -> None:
    """Our mirror of an intent, written directly (as an earlier step would have left it)."""
    from events.extensions import db

    db.session.add(
        Payment(
            registration_id=registration.id,
            stripe_payment_intent_id=intent_id,
            amount_cents=registration.price_cents,
            currency="usd",
            status=status,
        )
    )
    db.session.commit()


def refreshed(db, model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def test_card_payment_confirms_once_and_the_webhook_changes_nothing_more(client, db, stripe_client):
    registration = held_registration(db)

    signed, response = pay(client, registration, card_token(stripe_client, SUCCESS))

    assert response.status_code == 200 and response.json["status"] == "succeeded"
    registration = refreshed(db, Registration, registration.id)
    assert registration.status == RegistrationStatus.CONFIRMED
    payment = db.session.scalar(sa.select(Payment))
    assert (payment.status, payment.amount_cents) == (PaymentStatus.SUCCEEDED, 3000)
    # localstripe delivers payment_intent.succeeded about a second later.
    wait_until(
        lambda: db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) >= 1
        or db.session.expire_all(),
        what="the webhook",
    )
    # One email: the confirmation is the receipt (no separate "payment received").
    assert outbox_kinds(registration_id=registration.id) == [EmailKind.REGISTRATION_CONFIRMED]
    # What the receipt names, from Stripe's charge.
    db.session.expire_all()
    payment = db.session.scalar(sa.select(Payment))
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert payment.paid_at is not None and abs(payment.paid_at - utcnow()) < timedelta(minutes=1)
    complete = client.get(f"/manage/{signed}/pay/complete?payment_intent={payment.stripe_payment_intent_id}")
    assert complete.status_code == 302 and f"/manage/{signed}" in complete.headers["Location"]


def test_declined_card_shows_stripes_message_and_another_card_can_pay(client, db, stripe_client):
    registration = held_registration(db)

    _, declined = pay(client, registration, card_token(stripe_client, DECLINE))
    assert declined.json["status"] == "failed"
    assert "declined" in declined.json["message"].lower()
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.HELD
    assert outbox_kinds(registration_id=registration.id) == [EmailKind.PAYMENT_FAILED]

    _, paid = pay(client, registration, card_token(stripe_client, SUCCESS))
    assert paid.json["status"] == "succeeded"
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.CONFIRMED


@pytest.mark.parametrize(
    ("number", "code", "staff_words"),
    [
        (DECLINE, "card_declined", "Your card was declined."),  # declined when charged
        ("4000000000009995", "insufficient_funds", "insufficient funds"),  # declined when attached
        ("4000000000000069", "expired_card", "expired"),
        ("4000000000000127", "incorrect_cvc", "security code"),
        ("4000000000000119", "processing_error", "error occurred"),
        ("4000000000009979", "stolen_card", "declined"),
    ],
)
def test_a_decline_is_told_in_the_members_language_by_stripes_code_and_staff_keep_stripes_reason(
    app, client, db, stripe_client, number, code, staff_words
):
    from events.languages import in_language
    from events.models import OutboxEmail
    from events.payments import declines

    registration = held_registration(db)
    client.set_cookie("lang", "es")

    _, declined = pay(client, registration, card_token(stripe_client, number))

    with app.test_request_context("/"), in_language("es"):
        expected = declines.decline_message(code)
    assert declined.json["status"] == "failed" and declined.json["message"] == expected
    assert "stolen" not in declined.json["message"]  # a bank's suspicion is not repeated
    failed = db.session.scalar(
        sa.select(OutboxEmail).where(
            OutboxEmail.registration_id == registration.id, OutboxEmail.kind == EmailKind.PAYMENT_FAILED
        )
    )
    assert failed.context == {"decline_code": code}
    payment = db.session.scalar(sa.select(Payment).where(Payment.registration_id == registration.id))
    if payment is not None:  # (a card declined when attached never got its intent)
        assert payment.status is PaymentStatus.FAILED
        assert payment.last_error.startswith(f"{code}: ") and staff_words in payment.last_error


def test_each_decline_code_has_its_own_plain_words():
    from events.payments import declines

    codes = ("card_declined", "insufficient_funds", "expired_card", "incorrect_cvc", "processing_error")
    words = {declines.decline_message(code) for code in (*codes, "authentication_required", "unheard_of")}
    assert len(words) == 7


def test_three_d_secure_is_confirmed_after_authentication(client, db, stripe_client, localstripe):
    import requests

    registration = held_registration(db)
    signed, response = pay(client, registration, card_token(stripe_client, THREE_D_SECURE))
    assert response.json["status"] == "requires_action"
    intent_id, secret = response.json["intent_id"], response.json["client_secret"]
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.HELD

    # What Stripe.js's confirmCardPayment does when the person completes the bank's challenge.
    auth = requests.post(
        f"{localstripe}/v1/payment_intents/{intent_id}/_authenticate?success=true",
        json={"key": "pk_test_emulator", "client_secret": secret},
        timeout=10,
    )
    assert auth.status_code == 200

    complete = client.get(f"/manage/{signed}/pay/complete?payment_intent={intent_id}")
    assert complete.status_code == 302
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.CONFIRMED


def test_failed_three_d_secure_keeps_the_hold_and_says_so(client, db, stripe_client, localstripe):
    import requests

    registration = held_registration(db)
    signed, response = pay(client, registration, card_token(stripe_client, THREE_D_SECURE))
    requests.post(
        f"{localstripe}/v1/payment_intents/{response.json['intent_id']}/_authenticate?success=false",
        json={"key": "pk_test_emulator", "client_secret": response.json["client_secret"]},
        timeout=10,
    )
    complete = client.get(f"/manage/{signed}/pay/complete?payment_intent={response.json['intent_id']}")
    assert complete.status_code == 302 and complete.headers["Location"].endswith("/pay?retry=1")
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.HELD
    page = client.get(complete.headers["Location"]).get_data(as_text=True)
    assert "Your payment didn't go through</strong>, and nothing was charged" in page
    assert page.count('class="hold-until') == 1  # one message, with the time the seat is held until


def test_cancel_before_cutoff_refunds_in_full_once(client, db, stripe_client):
    registration = held_registration(db, days=10)
    signed, _ = pay(client, registration, card_token(stripe_client, SUCCESS))
    page = client.get(f"/manage/{signed}/cancel").get_data(as_text=True)
    assert "full refund of $30" in page and "5–10 business days" in page

    client.post(f"/manage/{signed}/cancel", data=cancel_form(page))
    client.post(f"/manage/{signed}/cancel", data=cancel_form(page))
    execute_due_refunds()  # what the worker does after the commit

    db.session.expire_all()
    refunds = db.session.scalars(sa.select(Refund)).all()
    assert len(refunds) == 1
    assert refunds[0].status == RefundStatus.SUCCEEDED and refunds[0].stripe_refund_id.startswith("re_")
    payment = db.session.scalar(sa.select(Payment))
    assert payment.amount_refunded_cents == 3000
    charge = stripe_client.v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
    assert charge.status == "succeeded"
    stripe_refunds = stripe_client.v1.refunds.list(
        params={"payment_intent": payment.stripe_payment_intent_id}
    )
    assert [r.amount for r in stripe_refunds.data] == [3000]
    # The charge.refunded webhook that follows is mirrored without a second refund row.
    wait_until(
        lambda: db.session.expire_all()
        or db.session.scalar(
            sa.select(sa.func.count()).select_from(WebhookEvent).where(WebhookEvent.type == "charge.refunded")
        )
        == 1,
        what="charge.refunded",
    )
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 1


def test_refund_made_in_the_stripe_dashboard_is_mirrored(client, db, stripe_client):
    registration = held_registration(db)
    pay(client, registration, card_token(stripe_client, SUCCESS))
    payment = db.session.scalar(sa.select(Payment))

    stripe_client.v1.refunds.create(
        params={"payment_intent": payment.stripe_payment_intent_id, "amount": 1000}
    )

    def mirrored():
        db.session.expire_all()
        return db.session.scalar(sa.select(Refund)) is not None

    wait_until(mirrored, what="the refund mirrored from charge.refunded")
    refund = db.session.scalar(sa.select(Refund))
    assert (refund.amount_cents, refund.status) == (1000, RefundStatus.SUCCEEDED)
    assert refreshed(db, Payment, payment.id).amount_refunded_cents == 1000
    assert outbox_kinds(registration_id=registration.id).count(EmailKind.REFUND_ISSUED) == 1


def test_payment_after_the_hold_expired_and_the_seat_went_is_refunded_once(client, db, stripe_client, app):
    from datetime import timedelta

    from events.models import utcnow
    from events.payments import services as payments

    registration = held_registration(db, capacity=1)
    # The hold lapses and someone else takes the only seat.
    later = utcnow() + timedelta(minutes=20)
    seats.sweep_lapsed(later)
    offering = registration.offering
    assert (
        services.register(offering, None, Person("Other", "other@example.com"), later).outcome.value == "held"
    )

    # Their payment still succeeds at Stripe (e.g. the page was open in another tab).
    state = charge_card(
        registration_id=registration.id,
        card_token=card_token(stripe_client, SUCCESS),
        amount=3000,
        currency="usd",
        description="late",
    )
    payments.apply_intent(state)
    payments.apply_intent(state)  # and the webhook applies it again
    execute_due_refunds()

    db.session.expire_all()
    assert db.session.get(Registration, registration.id).status == RegistrationStatus.EXPIRED
    refunds = db.session.scalars(sa.select(Refund)).all()
    assert [(r.amount_cents, r.status) for r in refunds] == [(3000, RefundStatus.SUCCEEDED)]
    assert outbox_kinds(registration_id=registration.id).count(EmailKind.LATE_PAYMENT_REFUNDED) == 1
    assert seats.lock_pool(registration.seat_pool_id).seats_taken == 1
    db.session.rollback()


def test_pay_endpoint_rejects_a_missing_or_odd_token(client, db):
    registration = held_registration(db)
    signed = links.sign(registration.token, links.MANAGE_SALT)
    html = client.get(f"/manage/{signed}/pay").get_data(as_text=True)
    for body in ({}, {"token": 5}, {"token": "x" * 300}, {"token": "pm_123"}):
        response = client.post(f"/manage/{signed}/pay", json=body, headers={"X-CSRFToken": csrf_token(html)})
        assert response.status_code == 400 and response.json["status"] == "failed"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0


def test_a_success_event_after_cancelling_does_not_refund_twice(client, db, stripe_client):
    from events.payments import services as payments
    from events.payments.gateway import get_gateway

    registration = held_registration(db, days=10)
    _, paid = pay(client, registration, card_token(stripe_client, SUCCESS))
    services.cancel_registration(registration.id)
    execute_due_refunds()

    # The payment_intent.succeeded webhook, late, and then again.
    state = get_gateway().retrieve_intent(paid.json["intent_id"])
    payments.apply_intent(state)
    payments.apply_intent(state)

    db.session.expire_all()
    assert [r.amount_cents for r in db.session.scalars(sa.select(Refund))] == [3000]
    assert db.session.get(Registration, registration.id).status == RegistrationStatus.CANCELLED


def test_reconcile_catches_up_when_the_webhook_endpoint_was_failing(
    client, db, stripe_client, localstripe, app
):
    import requests

    from events.payments import services as payments

    registration = held_registration(db)
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_rotated_wrongly"  # every delivery now fails with 400
    try:
        signed, response = pay(client, registration, card_token(stripe_client, THREE_D_SECURE))
        requests.post(
            f"{localstripe}/v1/payment_intents/{response.json['intent_id']}/_authenticate?success=true",
            json={"key": "pk_test_emulator", "client_secret": response.json["client_secret"]},
            timeout=10,
        )
        deliver_webhooks(localstripe)  # payment_intent.succeeded delivered, and refused
        assert refreshed(db, Registration, registration.id).status == RegistrationStatus.HELD
    finally:
        app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_test_secret"

    assert payments.reconcile_pending_payments() == 1
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.CONFIRMED
    assert payments.reconcile_pending_payments() == 0
    assert outbox_kinds(registration_id=registration.id).count(EmailKind.REGISTRATION_CONFIRMED) == 1


def test_a_late_payment_for_an_expired_hold_is_refunded_when_they_registered_again(client, db, stripe_client):
    from datetime import timedelta

    from events.models import utcnow
    from events.payments import services as payments

    first = held_registration(db, capacity=3)
    later = utcnow() + timedelta(minutes=20)
    seats.sweep_lapsed(later)
    again = services.register(
        first.offering, None, Person("Pat Payer", "pat@example.com"), later
    ).registration
    assert again.status == RegistrationStatus.HELD

    # The first attempt's payment completes after all (3D Secure finished late).
    state = charge_card(
        registration_id=first.id,
        card_token=card_token(stripe_client, SUCCESS),
        amount=3000,
        currency="usd",
        description="late",
    )
    payments.apply_intent(state)

    db.session.expire_all()
    assert db.session.get(Registration, first.id).status == RegistrationStatus.EXPIRED
    assert db.session.get(Registration, again.id).status == RegistrationStatus.HELD
    assert [r.amount_cents for r in db.session.scalars(sa.select(Refund))] == [3000]


def test_cancel_refunds_the_payment_that_paid_not_an_extra_one_already_returned(client, db, stripe_client):
    from events.payments import services as payments

    registration = held_registration(db, days=10)
    signed, paid = pay(client, registration, card_token(stripe_client, SUCCESS))
    assert paid.json["status"] == "succeeded"
    # The same person pays again elsewhere (a second tab): an extra payment, refunded at once.
    extra = charge_card(
        registration_id=registration.id,
        card_token=card_token(stripe_client, SUCCESS),
        amount=3000,
        currency="usd",
        description="second tab",
    )
    payments.apply_intent(extra)
    assert [r.amount_cents for r in db.session.scalars(sa.select(Refund))] == [3000]

    page = client.get(f"/manage/{signed}/cancel").get_data(as_text=True)
    client.post(f"/manage/{signed}/cancel", data=cancel_form(page))
    execute_due_refunds()

    db.session.expire_all()
    payments_by_intent = {p.stripe_payment_intent_id: p for p in db.session.scalars(sa.select(Payment))}
    assert all(p.amount_refunded_cents == 3000 for p in payments_by_intent.values())
    assert sorted(r.status.value for r in db.session.scalars(sa.select(Refund))) == ["succeeded", "succeeded"]


def test_paying_with_another_card_cancels_a_stalled_3d_secure_attempt(client, db, stripe_client):
    """A first card stalls at 3D Secure (the window was closed); they pay with another card.
    The stalled intent is cancelled at Stripe, so completing it later cannot charge them too."""
    import requests as http

    registration = held_registration(db, days=10)
    signed, first = pay(client, registration, card_token(stripe_client, THREE_D_SECURE))
    assert first.json["status"] == "requires_action"
    _, second = pay(client, registration, card_token(stripe_client, SUCCESS))
    assert second.json["status"] == "succeeded" and second.json["intent_id"] != first.json["intent_id"]

    stalled = stripe_client.v1.payment_intents.retrieve(first.json["intent_id"])
    assert stalled.status == "canceled"
    late = http.post(
        f"{stripe_client._requestor._options.base_addresses['api']}/v1/payment_intents/"
        f"{first.json['intent_id']}/_authenticate?success=true",
        json={"key": "pk_test_emulator", "client_secret": first.json["client_secret"]},
        timeout=10,
    )
    assert late.status_code >= 400
    db.session.expire_all()
    statuses = {p.stripe_payment_intent_id: p.status for p in db.session.scalars(sa.select(Payment))}
    assert statuses == {
        first.json["intent_id"]: PaymentStatus.CANCELED,
        second.json["intent_id"]: PaymentStatus.SUCCEEDED,
    }
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.CONFIRMED
    assert db.session.scalars(sa.select(Refund)).all() == []


def test_reconcile_cancels_an_uncharged_intent_once_the_hold_has_lapsed(client, db, stripe_client):
    """A 3D Secure attempt abandoned, and the hold lapsed: the intent is cancelled at Stripe
    (it can no longer charge them for a seat they don't hold) and not asked about again."""
    from datetime import timedelta

    from events.models import utcnow
    from events.payments.services import reconcile_pending_payments

    registration = held_registration(db)
    _, stalled = pay(client, registration, card_token(stripe_client, THREE_D_SECURE))
    assert stalled.json["status"] == "requires_action"
    assert reconcile_pending_payments() == 1  # still held: left alone for them to finish
    assert stripe_client.v1.payment_intents.retrieve(stalled.json["intent_id"]).status == "requires_action"

    # The hold runs out at 15 minutes; with a payment in flight it is kept 10 more (grace).
    seats.sweep_lapsed(utcnow() + timedelta(minutes=20))
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.HELD
    seats.sweep_lapsed(utcnow() + timedelta(minutes=26))
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.EXPIRED
    assert reconcile_pending_payments() == 1
    assert stripe_client.v1.payment_intents.retrieve(stalled.json["intent_id"]).status == "canceled"
    assert db.session.scalar(sa.select(Payment.status)) == PaymentStatus.CANCELED
    assert reconcile_pending_payments() == 0


@pytest.mark.parametrize("body", ["[]", '"tok_x"', "null", "3", '{"token": ["tok_x"]}'])
def test_pay_endpoint_answers_odd_json_with_a_400(client, db, body):
    registration = held_registration(db)
    signed = links.sign(registration.token, links.MANAGE_SALT)
    page = client.get(f"/manage/{signed}/pay").get_data(as_text=True)
    response = client.post(
        f"/manage/{signed}/pay",
        data=body,
        content_type="application/json",
        headers={"X-CSRFToken": csrf_token(page)},
    )
    assert response.status_code == 400 and response.json["status"] == "failed"


def test_two_card_submissions_at_once_charge_once(db, live_server, stripe_client):
    """Two tabs (or a double click that got past the page) send two card tokens at the same
    moment: one is charged, the other is turned away, and nothing needs refunding."""
    import threading

    import requests

    registration = held_registration(db)
    signed = links.sign(registration.token, links.MANAGE_SALT)
    url = f"{live_server.url}/manage/{signed}/pay"
    tabs = []
    for _ in range(2):
        http = requests.Session()
        token = csrf_token(http.get(url, timeout=10).text)
        tabs.append((http, token, card_token(stripe_client, SUCCESS)))
    start = threading.Barrier(2)
    answers = []

    def submit(tab):
        http, csrf, card = tab
        start.wait()
        answers.append(http.post(url, json={"token": card}, headers={"X-CSRFToken": csrf}, timeout=30).json())

    threads = [threading.Thread(target=submit, args=(tab,)) for tab in tabs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert "succeeded" in [a["status"] for a in answers], answers
    intents = [
        pi
        # Every page: the emulator lists oldest first, and a whole run makes more than one page.
        for pi in stripe_client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
        if (pi.metadata or {}).get("registration_id") == str(registration.id)
    ]
    assert sorted(pi.status for pi in intents if pi.status != "canceled") == ["succeeded"], answers
    db.session.expire_all()
    assert [
        p.status for p in db.session.scalars(sa.select(Payment)) if p.status != PaymentStatus.CANCELED
    ] == [PaymentStatus.SUCCEEDED]
    assert db.session.scalars(sa.select(Refund)).all() == []
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.CONFIRMED


def test_reconcile_gets_past_an_intent_stripe_does_not_know(client, db, stripe_client):
    """An intent Stripe has never heard of (a test-mode reset, a switched account) is marked
    failed and skipped: it must not stop reconcile from reaching the payments after it."""
    from events.payments.services import reconcile_pending_payments

    lost = held_registration(db)
    payment_row(lost, "pi_unknown_to_stripe", PaymentStatus.PROCESSING)
    waiting = held_registration(db, title="Later one")
    _, stalled = pay(client, waiting, card_token(stripe_client, THREE_D_SECURE))
    assert stalled.json["status"] == "requires_action"

    assert reconcile_pending_payments() == 1
    db.session.expire_all()
    statuses = {p.stripe_payment_intent_id: p.status for p in db.session.scalars(sa.select(Payment))}
    assert statuses == {
        "pi_unknown_to_stripe": PaymentStatus.FAILED,
        stalled.json["intent_id"]: PaymentStatus.REQUIRES_ACTION,
    }
    assert reconcile_pending_payments() == 1  # only the real one is asked about again


def _charge_whose_answer_was_lost(db, stripe_client, registration):
    """What a confirm that timed out leaves: charged at Stripe, our row still open."""
    from events.payments import services as payments
    from events.payments.gateway import IntentFor, get_gateway

    gateway = get_gateway()
    intent = gateway.create_intent(
        IntentFor(registration_id=registration.id, label="t"),
        card_token=card_token(stripe_client, SUCCESS),
        amount=3000,
        currency="usd",
    )
    payments.apply_intent(intent)
    charged = gateway.confirm_intent(intent.id)
    assert charged.status == "succeeded"
    return intent


def test_a_lost_charge_confirms_its_seat_even_if_the_hold_ran_out_before_the_retry(client, db, stripe_client):
    """The answer to the charge was lost, and the hold's time ran out before they tried again
    (not yet swept): the retry finds the charge and confirms the seat it paid for."""
    registration = held_registration(db)
    intent = _charge_whose_answer_was_lost(db, stripe_client, registration)
    registration.hold_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    # (from the payment page they still have open)
    signed = links.sign(registration.token, links.MANAGE_SALT)
    manage = client.get(f"/manage/{signed}").get_data(as_text=True)
    # Its seat is kept while the charge's answer is awaited: one state, nothing to do.
    assert "waiting for your bank" in manage and "Register again" not in manage
    page = client.get(f"/offerings/{registration.offering.slug}").get_data(as_text=True)
    retried = client.post(
        f"/manage/{signed}/pay",
        json={"token": card_token(stripe_client, SUCCESS)},
        headers={"X-CSRFToken": csrf_token(page)},
    )
    assert retried.json["status"] == "succeeded" and retried.json["intent_id"] == intent.id
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.CONFIRMED
    assert db.session.scalars(sa.select(Refund)).all() == []


def test_the_sweep_reads_open_payments_before_releasing_lapsed_holds(db, stripe_client):
    """Nobody retries and the webhook is lost: the periodic housekeeping confirms the charge
    before it would release the hold for running out, offer the seat to the waitlist and
    refund the money."""
    from events.models import WaitlistEntry
    from worker.tasks import housekeeping

    registration = held_registration(db, capacity=1)
    waiting = services.join_waitlist(registration.offering, None, Person("Wes", "wes@example.com")).entry
    _charge_whose_answer_was_lost(db, stripe_client, registration)
    registration.hold_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    housekeeping()

    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.CONFIRMED
    assert db.session.scalars(sa.select(Refund)).all() == []
    assert refreshed(db, WaitlistEntry, waiting.id).status.value == "waiting"


def test_a_lapsed_hold_is_not_offered_for_payment(client, db):
    registration = held_registration(db)
    registration.hold_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    signed = links.sign(registration.token, links.MANAGE_SALT)
    response = client.get(f"/manage/{signed}/pay")
    assert response.status_code == 302 and response.location.endswith(f"/manage/{signed}")
    assert "Your held seat has been released" in client.get(response.location).get_data(as_text=True)
    # And the page the browser lands on after paying says the same, not "still held".
    landed = client.get(f"/manage/{signed}/pay/complete")
    assert landed.location.endswith(f"/manage/{signed}")


def test_a_processing_payment_is_called_processing(client, db):
    registration = held_registration(db)
    payment_row(registration, "pi_processing_1", PaymentStatus.PROCESSING)
    signed = links.sign(registration.token, links.MANAGE_SALT)
    landed = client.get(f"/manage/{signed}/pay/complete")
    assert landed.location.endswith(f"/manage/{signed}")
    assert "Your payment is processing" in client.get(landed.location).get_data(as_text=True)


def test_a_late_answer_never_reopens_a_cancelled_intent(db):
    from events.payments import services as payments
    from events.payments.gateway import IntentState

    registration = held_registration(db)
    payment_row(registration, "pi_cancelled_1", PaymentStatus.CANCELED)
    stale = IntentState("pi_cancelled_1", "requires_action", 3000, "usd", "secret", registration.id, None)
    payments.apply_intent(stale)
    db.session.expire_all()
    assert db.session.scalar(sa.select(Payment.status)) == PaymentStatus.CANCELED


def test_a_hold_with_a_payment_in_flight_keeps_its_seat_past_its_time(client, db, stripe_client):
    """The charge's answer was lost and the hold's time ran out; before the sweep or the
    webhook settles it, someone else registers. The seat is still theirs (for the grace
    period), so the charge confirms it rather than being refunded."""
    from events.payments.services import reconcile_pending_payments

    registration = held_registration(db, capacity=1)
    _charge_whose_answer_was_lost(db, stripe_client, registration)
    registration.hold_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    other = services.register(registration.offering, None, Person("Olga", "olga@example.com"))
    assert other.outcome == services.Outcome.FULL
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.HELD

    assert reconcile_pending_payments() == 1
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.CONFIRMED
    assert db.session.scalars(sa.select(Refund)).all() == []


def test_a_second_tab_turned_away_reads_why_in_the_members_language(client, db, stripe_client, monkeypatch):
    """Another tab's intent is recorded between this submission's first look and its lock: this
    one charges nothing and says a payment is on its way, in the member's language (before, a
    seat's payer read it in English whatever their language; a balance's and a pass's did not)."""
    from events.payments import services as payments
    from events.payments.gateway import get_gateway

    registration = held_registration(db)
    gateway = get_gateway()
    create = gateway.create_intent

    def other_tab_first(intent_for, **kwargs):
        other = create(intent_for, **{**kwargs, "card_token": card_token(stripe_client, SUCCESS)})
        payments.apply_intent(other)  # recorded by the other tab, not yet charged
        return create(intent_for, **kwargs)

    monkeypatch.setattr(gateway, "create_intent", other_tab_first)
    client.set_cookie("lang", "es")
    _, response = pay(client, registration, card_token(stripe_client, SUCCESS))

    assert response.json["status"] == "failed"
    assert response.json["message"] == (
        "Ya hay un pago en camino para esto. Por favor, espere un momento y actualice la página."
    )
    db.session.expire_all()
    # Only the other tab's intent is ours to follow; this one was cancelled at Stripe unrecorded.
    assert [p.status for p in db.session.scalars(sa.select(Payment))] == [
        PaymentStatus.REQUIRES_PAYMENT_METHOD
    ]
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.HELD
