"""Payments: one idempotent function applies what Stripe says about a PaymentIntent.

apply_intent() is called from the webhook, from the page the browser returns to, and right
after a card is charged. It may run any number of times, in any order, concurrently: it locks
the seat pool, re-reads our rows and moves them to match Stripe, never further.
Refunds are written as rows first (with an idempotency key) and sent to Stripe after commit,
so a crash between the two is retried with the same key and never refunds twice.
Both apply_intent() and mirror_charge_refunds() own their transaction: they commit, and what the
caller wrote before them in it (the webhook's event id) commits with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext, lazy_gettext
from sqlalchemy.exc import IntegrityError

from events import audit, pricing
from events.extensions import db
from events.models import (
    OPEN_PAYMENT_STATUSES,
    Pass,
    PassStatus,
    Payment,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
    SeatPool,
    WebhookEvent,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_email
from events.passes.purchase import apply_pass_intent
from events.payments import refunds
from events.payments.balances import balance_due
from events.payments.declines import decline_message, staff_reason
from events.payments.gateway import (
    ChargeState,
    GatewayRejected,
    GatewayUnavailable,
    IntentState,
    PaymentDeclined,
    get_gateway,
)
from events.payments.mirror import mirror_intent
from events.registration import seats
from events.registration.services import HOLD_RELEASED, find_live_registration, hold_is_live, hold_released


@dataclass(frozen=True)
class PaymentAttempt:
    """What the payment page should do next."""

    status: str  # "succeeded" | "requires_action" | "failed" | "unavailable" | "closed"
    message: str = ""
    client_secret: str = ""
    intent_id: str = ""


UNAVAILABLE = lazy_gettext(
    "We couldn't reach the payment service. Your seat is still held; please try again."
)


def neutral_label(registration_id: int) -> str:
    """What Stripe is told a payment is for."""
    return f"Registration {registration_id}"


def pay_with_card(registration_id: int, card_token: str) -> PaymentAttempt:
    """Charge a held registration with a tokenized card, then apply the result.

    Our payment row names the PaymentIntent before the card is charged, so when Stripe's answer
    is lost (a timeout) the next attempt, and the reconcile, ask Stripe how that one ended
    instead of charging again: each submission brings a new card token, so idempotency keys
    alone could not stop a second charge. Recording takes the seat pool's lock, so of two
    submissions at once only one goes on to charge.
    """
    registration = db.session.get_one(Registration, registration_id)
    if registration.status == RegistrationStatus.CONFIRMED:
        return PaymentAttempt("succeeded")
    # Stripe sees ids and a neutral label, never the offering's title (it can say something
    # about someone's health).
    amount, currency, description = (
        registration.price_cents,
        registration.currency,
        neutral_label(registration_id),
    )
    earlier = _open_intent_id(registration_id)
    # End the transaction before the network calls: no lock is held while Stripe answers.
    db.session.commit()
    gateway = get_gateway()
    intent = None
    try:
        # First how an earlier attempt ended, even if the hold has run out meanwhile: a charge
        # whose answer was lost must confirm the seat it was made for, not be refunded.
        if earlier is not None:
            settled = _settle_earlier_attempt(earlier)
            if settled is not None:
                return settled
        closed = _closed_attempt(db.session.get_one(Registration, registration_id))
        if closed is not None:
            db.session.commit()
            return closed
        intent = gateway.create_intent(
            registration_id=registration_id,
            card_token=card_token,
            amount=amount,
            currency=currency,
            description=description,
        )
        refused = _record_new_intent(registration_id, intent)
        if refused is not None:
            gateway.cancel_intent(intent.id)  # it charged nothing, and now never will
            return refused
        state = gateway.confirm_intent(intent.id)
    except PaymentDeclined as declined:
        record_failure(registration_id, declined, intent_id=intent.id if intent else None)
        return PaymentAttempt("failed", decline_message(declined.code))
    except GatewayRejected as rejected:
        # Stripe refused the request itself (say, the intent was cancelled as the hold lapsed).
        current_app.logger.warning(
            "Stripe refused a payment step for registration %s: %s", registration_id, rejected
        )
        db.session.rollback()
        return _closed_attempt(db.session.get_one(Registration, registration_id)) or PaymentAttempt(
            "failed", gettext("Your card was not charged. Please try again.")
        )
    except GatewayUnavailable:
        current_app.logger.warning("Stripe unavailable for registration %s", registration_id)
        return PaymentAttempt("unavailable", str(UNAVAILABLE))
    apply_intent(state)
    return _attempt_for(state)


def payment_processing(registration: Registration) -> bool:
    """The registration's latest payment is going through (a bank transfer can take days)."""
    latest = db.session.scalar(
        sa.select(Payment.status)
        .where(Payment.registration_id == registration.id)
        .order_by(Payment.id.desc())
        .limit(1)
    )
    return latest == PaymentStatus.PROCESSING


class ReturnOutcome(Enum):
    """Where a registration stands when the browser comes back from paying."""

    CONFIRMED = "confirmed"
    PROCESSING = "processing"  # the money is on its way (a bank transfer can take days)
    RETRY = "retry"  # not paid, and the seat is still held: pay again
    RELEASED = "released"  # not paid, and the hold has run out
    OTHER = "other"  # cancelled, or expired and already swept


def complete_after_return(registration_id: int, intent_id: str | None) -> tuple[ReturnOutcome, Registration]:
    """Confirm from Stripe's state, as the webhook would (so a lost webhook strands nobody),
    then say where the registration stands. `intent_id`: the one the browser came back with."""
    if intent_id is not None:
        db.session.commit()  # no transaction (or SQLite write lock) open across the network call
        try:
            state = get_gateway().retrieve_intent(intent_id)
        except GatewayUnavailable:
            state = None
        if state is not None and state.registration_id == registration_id:
            apply_intent(state)
    registration = db.session.get_one(Registration, registration_id)
    if registration.status == RegistrationStatus.CONFIRMED:
        return ReturnOutcome.CONFIRMED, registration
    if payment_processing(registration):
        return ReturnOutcome.PROCESSING, registration
    if hold_is_live(registration):
        return ReturnOutcome.RETRY, registration
    if hold_released(registration):
        return ReturnOutcome.RELEASED, registration
    return ReturnOutcome.OTHER, registration


def _closed_attempt(registration: Registration) -> PaymentAttempt | None:
    """What to answer instead of charging, if this registration can't be paid for now."""
    if registration.status == RegistrationStatus.CONFIRMED:
        return PaymentAttempt("succeeded")
    if not hold_is_live(registration):
        return PaymentAttempt("closed", str(HOLD_RELEASED))
    return None


def _record_new_intent(registration_id: int, intent: IntentState) -> PaymentAttempt | None:
    """Record the new intent before charging it, unless the registration is no longer held or
    another submission's intent is already recorded (then say so instead)."""
    registration = db.session.get_one(Registration, registration_id)
    seats.lock_pool(registration.seat_pool_id)  # one submission at a time gets past here
    db.session.refresh(registration)
    refused = _closed_attempt(registration)
    if refused is None and _open_intent_id(registration_id) is not None:
        refused = PaymentAttempt(
            "failed",
            "A payment for this registration is already on its way. Please wait a moment and refresh.",
        )
    if refused is not None:
        db.session.commit()
        return refused
    apply_intent(intent)
    return None


def _open_intent_id(registration_id: int) -> str | None:
    """The latest of this registration's intents whose outcome we have not heard."""
    return db.session.scalar(
        sa.select(Payment.stripe_payment_intent_id)
        .where(Payment.registration_id == registration_id, Payment.status.in_(OPEN_PAYMENT_STATUSES))
        .order_by(Payment.id.desc())
        .limit(1)
    )


UNCHARGED_INTENT_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_action")


def _settle_earlier_attempt(intent_id: str) -> PaymentAttempt | None:
    """How an earlier attempt ended, if it charged (or is charging) the card. An attempt that
    charged nothing is cancelled, so it never can, and None is returned: try the new card."""
    try:
        state = cancel_if_uncharged(get_gateway().retrieve_intent(intent_id))
    except GatewayRejected:  # Stripe doesn't know it (a test key reset, an account switch)
        _forget_unknown_intent(intent_id)
        return None
    apply_intent(state)
    return None if state.status == "canceled" else _attempt_for(state)


def _forget_unknown_intent(intent_id: str) -> None:
    payment = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent_id))
    if payment is not None and payment.status in OPEN_PAYMENT_STATUSES:
        payment.status, payment.last_error = PaymentStatus.FAILED, "Stripe does not know this PaymentIntent."
    db.session.commit()


def cancel_if_uncharged(state: IntentState) -> IntentState:
    """Cancel an intent that has charged nothing; returns its state afterwards."""
    if state.status not in UNCHARGED_INTENT_STATUSES:
        return state
    gateway = get_gateway()
    try:
        gateway.cancel_intent(state.id)
    except GatewayRejected:  # it moved on meanwhile (say, 3D Secure just completed)
        pass
    return gateway.retrieve_intent(state.id)


def _attempt_for(state: IntentState) -> PaymentAttempt:
    if state.status == "succeeded":
        return PaymentAttempt("succeeded", intent_id=state.id)
    if state.status == "requires_action":
        return PaymentAttempt("requires_action", client_secret=state.client_secret, intent_id=state.id)
    if state.status == "processing":
        return PaymentAttempt("succeeded", gettext("Your payment is processing."), intent_id=state.id)
    if state.error_message or state.error_code:
        return PaymentAttempt("failed", decline_message(state.error_code))
    return PaymentAttempt("failed", gettext("Your card was not charged. Please try another card."))


def record_failure(registration_id: int, declined: PaymentDeclined, intent_id: str | None = None) -> None:
    """A declined card: tell the person once (they may retry while the hold lasts). The
    payment row keeps Stripe's code and English reason (staff read it); the email says it in
    the member's words, chosen by the code."""
    registration = db.session.get_one(Registration, registration_id)
    if intent_id is not None:
        payment = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent_id))
        if payment is not None and payment.status in OPEN_PAYMENT_STATUSES:
            payment.status = PaymentStatus.FAILED
            payment.last_error = staff_reason(declined.code, str(declined))[:500]
    if registration.status == RegistrationStatus.HELD:
        queue_email(
            EmailKind.PAYMENT_FAILED, registration=registration, context={"decline_code": declined.code}
        )
    db.session.commit()


def _upsert_payment(registration: Registration, state: IntentState) -> Payment:
    payment = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == state.id))
    if payment is None:
        payment = Payment(
            registration_id=registration.id,
            stripe_payment_intent_id=state.id,
            amount_cents=state.amount,
            currency=state.currency,
            status=PaymentStatus.REQUIRES_PAYMENT_METHOD,
            purpose=PaymentPurpose(state.purpose),
        )
        db.session.add(payment)
    return mirror_intent(payment, state)


def apply_intent(state: IntentState) -> Registration | None:
    """Bring our registration and payment in line with a PaymentIntent, and commit. Idempotent.

    A refund it decides on (money that found no seat) is written as a pending row; the worker
    sends it after commit, so a person waiting on a payment page never waits on a refund.
    A class pass's intent (purpose "pass") is applied to its pass (events/passes/purchase.py)."""
    if state.purpose == PaymentPurpose.PASS.value:
        apply_pass_intent(state)
        return None
    registration = db.session.get(Registration, state.registration_id) if state.registration_id else None
    if registration is None:
        db.session.commit()  # not ours: nothing to change (the caller's event id still commits)
        return None
    now = utcnow()
    pool = seats.lock_pool(registration.seat_pool_id)
    db.session.refresh(registration)
    existing = db.session.scalar(
        sa.select(Payment).where(Payment.stripe_payment_intent_id == state.id).with_for_update()
    )
    # A success is applied once per payment: later deliveries of it change nothing, even
    # if the registration was cancelled (and refunded) in between.
    already_applied = existing is not None and existing.status == PaymentStatus.SUCCEEDED
    payment = _upsert_payment(registration, state)

    if state.status == "succeeded" and not already_applied:
        _apply_success(registration, payment, pool, now)
    elif payment.status == PaymentStatus.FAILED and registration.status == RegistrationStatus.HELD:
        queue_email(
            EmailKind.PAYMENT_FAILED, registration=registration, context={"decline_code": state.error_code}
        )
    db.session.commit()
    return registration


def _apply_success(registration: Registration, payment: Payment, pool: SeatPool, now: datetime) -> None:
    db.session.flush()  # the payment needs its id before we compare against it
    if payment.purpose is PaymentPurpose.BALANCE:
        _apply_balance_success(registration, payment)
        return
    other_success = db.session.scalar(
        sa.select(Payment.id).where(
            Payment.registration_id == registration.id,
            Payment.status == PaymentStatus.SUCCEEDED,
            Payment.id != payment.id,
        )
    )
    if registration.status == RegistrationStatus.CONFIRMED and other_success is None:
        return  # already confirmed by this payment
    # A price with a promo code stands only if the code's use still fits its limits (a hold
    # that lapsed gave its use back): pricing.keep_use_for_payment, under the code's lock.
    if registration.status == RegistrationStatus.HELD and other_success is None:
        if pricing.keep_use_for_payment(registration, now):
            _confirm(registration, now)
            return
    elif registration.status == RegistrationStatus.EXPIRED and other_success is None:
        # Paid after the hold lapsed: keep the seat if one is still free and they have not
        # registered again meanwhile (then that registration is theirs, and this money goes back).
        seats.release_lapsed(pool, now)
        registered_again = find_live_registration(pool.id, registration.email_normalized)
        if (
            registered_again is None
            and pool.seats_taken < pool.capacity
            and pricing.keep_use_for_payment(registration, now)
        ):
            seats.take_seat(pool)
            _confirm(registration, now)
            return
    # No seat for this money (hold lapsed and seat gone, cancelled meanwhile, or paid twice):
    # refund it automatically, once (the pool is locked; queue_refund takes the payment).
    _, queued = refunds.queue_refund(
        payment.id,
        payment.amount_cents,
        kind=RefundKind.UNPLACED_PAYMENT,
        key=f"unplaced-payment-{payment.stripe_payment_intent_id}",
        reason="Payment arrived without a seat",
    )
    # Told the amount actually queued: 0 when all of it was already refunded (say, in Stripe's
    # dashboard before this success reached us), and then no money is promised.
    queue_email(
        EmailKind.LATE_PAYMENT_REFUNDED,
        registration=registration,
        key_parts=(payment.stripe_payment_intent_id,),
        context={"refund_cents": queued, "paid_cents": payment.amount_cents, "currency": payment.currency},
    )


def _apply_balance_success(registration: Registration, payment: Payment) -> None:
    """A balance paid by card through the member's payment link: it settles what the booking
    owes, once. If nothing is owed any more (the desk took it meanwhile, another tab paid it
    first, or the booking was cancelled), the money found nothing to pay for: it is refunded,
    once, by the unplaced-payment path, and the member is told why. The pool is locked."""
    owed = balance_due(registration, leaving_out=payment.id)
    if registration.status == RegistrationStatus.CONFIRMED and owed >= payment.amount_cents > 0:
        queue_email(
            EmailKind.BALANCE_PAID,
            registration=registration,
            key_parts=(payment.stripe_payment_intent_id,),
            context={
                "paid_cents": payment.amount_cents,
                "currency": payment.currency,
                "payment_id": payment.id,
            },
        )
        audit.record_about(
            None,
            "payment.balance_paid",
            registration,
            amount_cents=payment.amount_cents,
            payment_id=payment.id,
        )
        return
    _, queued = refunds.queue_refund(
        payment.id,
        payment.amount_cents,
        kind=RefundKind.UNPLACED_PAYMENT,
        key=f"unplaced-payment-{payment.stripe_payment_intent_id}",
        reason="Balance payment arrived with nothing left to pay",
    )
    queue_email(
        EmailKind.LATE_PAYMENT_REFUNDED,
        registration=registration,
        key_parts=(payment.stripe_payment_intent_id,),
        context={
            "refund_cents": queued,
            "paid_cents": payment.amount_cents,
            "currency": payment.currency,
            "balance": True,
        },
    )
    audit.record_about(
        None,
        "payment.extra_balance_refunded",
        registration,
        amount_cents=payment.amount_cents,
        refund_cents=queued,
        payment_id=payment.id,
    )


def _confirm(registration: Registration, now: datetime) -> None:
    registration.status = RegistrationStatus.CONFIRMED
    registration.confirmed_at = now
    registration.hold_expires_at = None
    # One email, "You're booked": the confirmation with its invite is also the receipt (the
    # payment row is written in this transaction, so the email built later finds it).
    queue_email(EmailKind.REGISTRATION_CONFIRMED, registration=registration)


# --- Refunds ---

# Stripe refund statuses under which no money goes back.
STRIPE_REFUND_NOT_GIVEN = ("failed", "canceled")


def mirror_charge_refunds(charge: ChargeState) -> Payment | None:
    """Mirror refunds made anywhere (ours or the Stripe dashboard) from Stripe's charge, and
    commit. Takes the refund locks (pool, then payment) like every path that writes refunds."""
    payment_id = (
        db.session.scalar(
            sa.select(Payment.id).where(Payment.stripe_payment_intent_id == charge.payment_intent_id)
        )
        if charge.payment_intent_id
        else None
    )
    if payment_id is None:
        db.session.commit()  # not ours
        return None
    payment = refunds.lock_for_refund(payment_id)
    for stripe_refund in charge.refunds:
        known = db.session.scalar(
            sa.select(Refund).where(
                sa.or_(
                    Refund.stripe_refund_id == stripe_refund.id,
                    Refund.idempotency_key == refunds.mirrored_key(stripe_refund.id),
                )
            )
        )
        if known is not None:
            if (
                known.stripe_refund_id == stripe_refund.id
                and known.status == RefundStatus.SUCCEEDED
                and stripe_refund.status in STRIPE_REFUND_NOT_GIVEN
            ):
                # Counted as given while Stripe said pending; it never reached the card.
                known.status = RefundStatus.FAILED
                known.last_error = f"Stripe reports the refund {stripe_refund.status}."
            continue
        # Ours? Our gateway puts our row's id in every refund's metadata; the row is ours whatever
        # its stripe_refund_id holds (a staff retry sends it again under a new Stripe id), and the
        # worker records it. No metadata means made in Stripe's dashboard: never matched to a row
        # of ours by amount, or a dashboard refund would hide behind one we have not sent.
        if stripe_refund.refund_row_id is not None and (
            db.session.scalar(
                sa.select(Refund.id).where(
                    Refund.id == stripe_refund.refund_row_id, Refund.payment_id == payment.id
                )
            )
            is not None
        ):
            continue
        # A mirrored row records what Stripe did; it is never ours to send (it has a Stripe id,
        # and the worker claims only rows without one). Pending at Stripe counts as given: the
        # money is on its way back, and counting it keeps us from refunding it again.
        given = stripe_refund.status not in STRIPE_REFUND_NOT_GIVEN
        refund = Refund(
            payment_id=payment.id,
            stripe_refund_id=stripe_refund.id,
            idempotency_key=refunds.mirrored_key(stripe_refund.id),
            kind=RefundKind.MIRRORED,
            amount_cents=stripe_refund.amount,
            status=RefundStatus.SUCCEEDED if given else RefundStatus.FAILED,
            reason="Refunded in Stripe",
            last_error="" if given else f"Stripe reports the refund {stripe_refund.status}."[:500],
        )
        db.session.add(refund)
        db.session.flush()
        if stripe_refund.status in ("succeeded", "pending"):
            refunds.queue_refund_issued(payment, stripe_refund.id, stripe_refund.amount)
    # Stripe's total is the truth.
    payment.amount_refunded_cents = min(charge.amount_refunded, payment.amount_cents)
    db.session.commit()
    return payment


def apply_event_once(event_id: str, event_type: str, apply: Callable[[], object]) -> bool:
    """Record a Stripe event's id and apply its change (`apply` commits both together). A
    concurrent or repeated delivery waits on the unique id, finds it taken, and does nothing:
    False."""
    try:
        db.session.add(WebhookEvent(stripe_event_id=event_id, type=event_type, processed_at=utcnow()))
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    apply()
    return True


def stop_superseded_intent(intent_id: str) -> None:
    """After a seat was paid at the desk: cancel the card payment that was open for it, so it
    can never charge, and apply how it ended. If it charged meanwhile, apply_intent finds the
    seat paid and refunds it (the unplaced-payment path). Stripe out of reach: the reconcile
    sweep does this later (it asks about open intents of confirmed registrations too)."""
    db.session.commit()  # no transaction open across the network calls
    try:
        state = cancel_if_uncharged(get_gateway().retrieve_intent(intent_id))
    except GatewayRejected:
        _forget_unknown_intent(intent_id)
        return
    except GatewayUnavailable:
        current_app.logger.warning("Could not cancel PaymentIntent %s yet; the reconcile will", intent_id)
        return
    apply_intent(state)


def _balance_attempt_in_progress(
    registration_id: int,
    registration_status: RegistrationStatus,
    purpose: PaymentPurpose,
    created_at: datetime,
    now: datetime,
) -> bool:
    """A balance payment the member may still be completing (their bank's check open): the
    balance is still owed and the attempt is younger than a hold. Anything else open on a
    confirmed booking (the desk took the balance, or it was paid by another tab) is stopped."""
    if purpose is not PaymentPurpose.BALANCE or registration_status != RegistrationStatus.CONFIRMED:
        return False
    if created_at < now - timedelta(minutes=current_app.config["HOLD_MINUTES"]):
        return False
    return balance_due(db.session.get_one(Registration, registration_id)) > 0


def reconcile_pending_payments() -> int:
    """Ask Stripe about payments still open (a webhook or the answer to a charge may be lost).

    Run periodically by the worker's sweep. An intent that charged nothing for a registration
    no longer held (the hold lapsed, or it was cancelled) is cancelled at Stripe, so it cannot
    charge later and is not asked about again. Returns how many payments were re-read.
    """
    open_payments = db.session.execute(
        sa.select(
            Payment.stripe_payment_intent_id,
            Registration.status,
            Payment.purpose,
            Payment.created_at,
            Registration.id,
        )
        .join(Registration, Registration.id == Payment.registration_id)
        .where(
            Payment.status.in_(OPEN_PAYMENT_STATUSES),
            # Confirmed too: a seat paid at the desk while a card was entered (its intent
            # is cancelled right after; this catches a cancel that could not reach Stripe).
            Registration.status.in_(
                (
                    RegistrationStatus.HELD,
                    RegistrationStatus.EXPIRED,
                    RegistrationStatus.CANCELLED,
                    RegistrationStatus.CONFIRMED,
                )
            ),
        )
        .order_by(Payment.id)
    ).all()
    db.session.commit()
    checked = 0
    now = utcnow()
    for intent_id, registration_status, purpose, created_at, registration_id in open_payments:
        waiting = registration_status == RegistrationStatus.HELD or _balance_attempt_in_progress(
            registration_id, registration_status, purpose, created_at, now
        )
        db.session.commit()  # no transaction (or SQLite write lock) open across the network call
        try:
            state = get_gateway().retrieve_intent(intent_id)
            if not waiting:
                state = cancel_if_uncharged(state)
        except GatewayRejected:  # unknown to Stripe: nothing to wait for (and don't block the rest)
            current_app.logger.warning("Reconcile: Stripe does not know %s", intent_id)
            _forget_unknown_intent(intent_id)
            continue
        except GatewayUnavailable:
            current_app.logger.warning("Reconcile: Stripe unavailable, will retry")
            break
        apply_intent(state)
        checked += 1
    return checked + reconcile_pending_pass_payments()


def reconcile_pending_pass_payments() -> int:
    """The same for class passes bought by card: an open intent of a pass still held is asked
    about; one of a pass no longer held (voided, or paid by another intent) is cancelled at
    Stripe if it charged nothing, else applied (and then refunded once)."""
    open_payments = db.session.execute(
        sa.select(Payment.stripe_payment_intent_id, Pass.status)
        .join(Pass, Pass.id == Payment.pass_id)
        .where(Payment.status.in_(OPEN_PAYMENT_STATUSES), Payment.pass_id.is_not(None))
        .order_by(Payment.id)
    ).all()
    db.session.commit()
    checked = 0
    for intent_id, pass_status in open_payments:
        try:
            state = get_gateway().retrieve_intent(intent_id)
            if pass_status is not PassStatus.HELD:
                state = cancel_if_uncharged(state)
        except GatewayRejected:
            current_app.logger.warning("Reconcile: Stripe does not know %s", intent_id)
            _forget_unknown_intent(intent_id)
            continue
        except GatewayUnavailable:
            current_app.logger.warning("Reconcile: Stripe unavailable, will retry")
            break
        apply_intent(state)
        checked += 1
    return checked


# --- A booking's balance, paid by card through the member's payment link ---

# Shown to the member who pays (translated when a payment attempt is made, in their language).
NOTHING_OWED = lazy_gettext("Nothing is owed on this booking now.")


def pay_balance_with_card(registration_id: int, card_token: str) -> PaymentAttempt:
    """Charge what a booking still owes (after a transfer onto a dearer date) with a tokenized
    card, then apply the result through apply_intent, like a seat's payment.

    As in pay_with_card, the intent is recorded before it is charged, under the seat pool's
    lock: of two submissions at once (two tabs, a double click) only the first is charged, and
    one arriving after the balance was paid (by card or at the desk) charges nothing. A success
    that still finds nothing owed is refunded once (_apply_balance_success)."""
    registration = db.session.get_one(Registration, registration_id)
    owed, currency = balance_due(registration), registration.currency
    earlier = _open_intent_id(registration_id)
    db.session.commit()  # no lock held while Stripe answers
    if owed == 0 and earlier is None:
        return PaymentAttempt("closed", str(NOTHING_OWED))
    gateway = get_gateway()
    intent = None
    try:
        if earlier is not None:
            settled = _settle_earlier_attempt(earlier)
            if settled is not None:
                return settled
            owed = balance_due(db.session.get_one(Registration, registration_id))
            db.session.commit()
            if owed == 0:
                return PaymentAttempt("closed", str(NOTHING_OWED))
        intent = gateway.create_intent(
            registration_id=registration_id,
            card_token=card_token,
            amount=owed,
            currency=currency,
            description="Balance",  # neutral: never the class's title
            purpose=PaymentPurpose.BALANCE.value,
        )
        refused = _record_new_balance_intent(registration_id, intent)
        if refused is not None:
            gateway.cancel_intent(intent.id)  # it charged nothing, and now never will
            return refused
        state = gateway.confirm_intent(intent.id)
    except PaymentDeclined as declined:
        record_failure(registration_id, declined, intent_id=intent.id if intent else None)
        return PaymentAttempt("failed", decline_message(declined.code))
    except GatewayRejected as rejected:
        current_app.logger.warning(
            "Stripe refused a balance payment step for registration %s: %s", registration_id, rejected
        )
        db.session.rollback()
        return PaymentAttempt("failed", gettext("Your card was not charged. Please try again."))
    except GatewayUnavailable:
        current_app.logger.warning("Stripe unavailable for registration %s", registration_id)
        return PaymentAttempt(
            "unavailable", gettext("We couldn't reach the payment service. Please try again.")
        )
    apply_intent(state)
    return _attempt_for(state)


def _record_new_balance_intent(registration_id: int, intent: IntentState) -> PaymentAttempt | None:
    """Record the balance intent before charging it, unless nothing is owed now (paid by another
    tab, or at the desk) or another submission's intent is already recorded."""
    registration = db.session.get_one(Registration, registration_id)
    seats.lock_pool(registration.seat_pool_id)  # one submission at a time gets past here
    db.session.refresh(registration)
    refused = None
    if balance_due(registration) < intent.amount:
        refused = PaymentAttempt("closed", str(NOTHING_OWED))
    elif _open_intent_id(registration_id) is not None:
        refused = PaymentAttempt(
            "failed", gettext("A payment for this is already on its way. Please wait a moment and refresh.")
        )
    if refused is not None:
        db.session.commit()
        return refused
    apply_intent(intent)
    return None


class BalanceOutcome(Enum):
    """Where a balance stands when the browser comes back from paying it."""

    PAID = "paid"  # nothing is owed (this payment settled it, or it was settled before)
    PROCESSING = "processing"
    RETRY = "retry"  # still owed: pay again
    NOT_OWED = "not_owed"  # the booking is no longer booked (cancelled): nothing to pay


def complete_balance_after_return(
    registration_id: int, intent_id: str | None
) -> tuple[BalanceOutcome, Registration]:
    """Apply Stripe's state as the webhook would (a lost webhook strands nobody), then say
    where the balance stands. `intent_id`: the one the browser came back with."""
    if intent_id is not None:
        db.session.commit()
        try:
            state = get_gateway().retrieve_intent(intent_id)
        except GatewayUnavailable:
            state = None
        if state is not None and state.registration_id == registration_id and state.purpose == "balance":
            apply_intent(state)
    registration = db.session.get_one(Registration, registration_id)
    if registration.status != RegistrationStatus.CONFIRMED:
        return BalanceOutcome.NOT_OWED, registration
    if balance_due(registration) == 0:
        return BalanceOutcome.PAID, registration
    if payment_processing(registration):
        return BalanceOutcome.PROCESSING, registration
    return BalanceOutcome.RETRY, registration
