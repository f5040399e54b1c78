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
from events.payments.charging import (
    UNAVAILABLE,
    Due,
    PaymentAttempt,
    cancel_if_uncharged,
    charge_card,
    forget_unknown_intent,
    mark_payment_failed,
)
from events.payments.declines import staff_reason
from events.payments.gateway import (
    ChargeState,
    GatewayRejected,
    GatewayUnavailable,
    IntentFor,
    IntentState,
    PaymentDeclined,
    get_gateway,
)
from events.payments.mirror import mirror_intent
from events.registration import seats
from events.registration.services import HOLD_RELEASED, find_live_registration, hold_is_live, hold_released


def neutral_label(registration_id: int) -> str:
    """What Stripe is told a payment is for."""
    return f"Registration {registration_id}"


@dataclass(frozen=True)
class RegistrationCharge:
    """What a registration's two card payments (its price, its balance) share as charging's
    owners (events/payments/charging.py): its payment rows, the seat pool's lock, apply_intent."""

    registration_id: int

    @property
    def payments(self) -> sa.ColumnElement[bool]:
        return Payment.registration_id == self.registration_id

    @property
    def log_name(self) -> str:
        return f"registration {self.registration_id}"

    def lock(self) -> None:
        registration = db.session.get_one(Registration, self.registration_id)
        seats.lock_pool(registration.seat_pool_id)
        db.session.refresh(registration)

    def record_decline(self, intent_id: str | None, declined: PaymentDeclined) -> None:
        record_failure(self.registration_id, declined, intent_id=intent_id)

    def apply(self, state: IntentState) -> object:
        return apply_intent(state)


@dataclass(frozen=True)
class SeatPrice(RegistrationCharge):
    """A held registration's price: paying it confirms the seat."""

    @property
    def intent_for(self) -> IntentFor:
        # Stripe sees ids and a neutral label, never the offering's title (it can say something
        # about someone's health).
        return IntentFor(registration_id=self.registration_id, label=neutral_label(self.registration_id))

    @property
    def unavailable_message(self) -> str:
        return str(UNAVAILABLE)

    def due(self, charging: int | None = None) -> Due:
        registration = db.session.get_one(Registration, self.registration_id)
        return Due(registration.price_cents, registration.currency, _closed_attempt(registration))


def pay_with_card(registration_id: int, card_token: str) -> PaymentAttempt:
    """Charge a held registration with a tokenized card, then apply the result (see
    events/payments/charging.py)."""
    return charge_card(SeatPrice(registration_id), card_token)


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


def record_failure(registration_id: int, declined: PaymentDeclined, intent_id: str | None = None) -> None:
    """A declined card: tell the person once (they may retry while the hold lasts). The
    payment row keeps Stripe's code and English reason (staff read it); the email says it in
    the member's words, chosen by the code."""
    registration = db.session.get_one(Registration, registration_id)
    mark_payment_failed(intent_id, staff_reason(declined.code, str(declined)))
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
    if state.status == "succeeded" and registration.promo_code_id is not None:
        # A success may count the code's use again (keep_use_for_payment): its lock is taken
        # here, before the payment's, in the one order (pools -> promo code -> passes -> payments).
        pricing.lock_code(registration.promo_code_id)
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
            # (Seats kept for the community price are not for a general one, nor the reverse.)
            and pricing.seat_free_for(registration, pool, now)
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
        forget_unknown_intent(intent_id)
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
            forget_unknown_intent(intent_id)
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
            forget_unknown_intent(intent_id)
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


@dataclass(frozen=True)
class BookingBalance(RegistrationCharge):
    """What a booking still owes after a transfer onto a dearer date. Asked under the lock, a
    balance smaller than the intent about to be charged (paid by another tab, or at the desk)
    is not charged; a success that still finds nothing owed is refunded once
    (_apply_balance_success)."""

    @property
    def intent_for(self) -> IntentFor:
        return IntentFor(registration_id=self.registration_id, purpose="balance", label="Balance")

    @property
    def log_name(self) -> str:
        return f"the balance of registration {self.registration_id}"

    @property
    def unavailable_message(self) -> str:
        return gettext("We couldn't reach the payment service. Please try again.")

    def due(self, charging: int | None = None) -> Due:
        registration = db.session.get_one(Registration, self.registration_id)
        owed = balance_due(registration)
        nothing_owed = owed == 0 or (charging is not None and owed < charging)
        return Due(
            owed, registration.currency, PaymentAttempt("closed", str(NOTHING_OWED)) if nothing_owed else None
        )


def pay_balance_with_card(registration_id: int, card_token: str) -> PaymentAttempt:
    """Charge what a booking still owes with a tokenized card, then apply the result through
    apply_intent, like a seat's payment (events/payments/charging.py)."""
    return charge_card(BookingBalance(registration_id), card_token)


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
