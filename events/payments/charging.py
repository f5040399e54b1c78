"""Charging a card, once, for whatever it pays for: a seat's price, what a booking still owes,
a class pass (the owner: a ChargeOwner, see the callers in events/payments/services.py and
events/passes/buying.py).

Our payment row names the PaymentIntent before the card is charged, so when Stripe's answer is
lost (a timeout) the next attempt, and the reconcile, ask Stripe how that one ended instead of
charging again: each submission brings a new card token, so idempotency keys alone could not
stop a second charge. The intent is recorded under the owner's lock (a seat pool, or the pass),
so of two submissions at once (two tabs, a double click) only one goes on to charge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext, lazy_gettext

from events.extensions import db
from events.models import OPEN_PAYMENT_STATUSES, Payment, PaymentStatus
from events.payments.declines import decline_message
from events.payments.gateway import (
    GatewayRejected,
    GatewayUnavailable,
    IntentFor,
    IntentState,
    PaymentDeclined,
    get_gateway,
)


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


@dataclass(frozen=True)
class Due:
    """What an owner asks to be paid now, or what to answer instead of charging (paid already,
    the hold has lapsed, nothing is owed)."""

    amount: int
    currency: str
    answer: PaymentAttempt | None = None


class ChargeOwner(Protocol):
    """What a card payment pays for, and its rules."""

    @property
    def intent_for(self) -> IntentFor:
        """Who Stripe is told pays: ids and a neutral label (the idempotency keys come from it)."""

    @property
    def payments(self) -> sa.ColumnElement[bool]:
        """Which payment rows are this owner's (an earlier attempt is the latest open one)."""

    @property
    def log_name(self) -> str:
        """For the logs: ids only ("registration 12")."""

    @property
    def unavailable_message(self) -> str:
        """What the member reads when Stripe can't be reached."""

    def due(self, charging: int | None = None) -> Due:
        """The amount due now, or the answer instead. `charging`: the amount of the intent
        about to be charged (asked under the lock, so a balance paid meanwhile is not paid twice)."""

    def lock(self) -> None:
        """Lock the owner for the rest of the transaction, in the one order: seat pools ->
        promo code -> passes -> payments."""

    def record_decline(self, intent_id: str | None, declined: PaymentDeclined) -> None:
        """A declined card: mark its payment failed with Stripe's code and reason (for staff),
        and tell whom it concerns; commits."""

    def apply(self, state: IntentState) -> object:
        """Bring our rows in line with the intent, and commit (idempotent)."""


def charge_card(owner: ChargeOwner, card_token: str) -> PaymentAttempt:
    """Charge `owner` to a tokenized card, then apply the result."""
    first = owner.due()
    earlier = open_intent_id(owner.payments)
    # End the transaction before the network calls: no lock is held while Stripe answers.
    db.session.commit()
    # Paid already, or nothing to pay and no earlier attempt to ask about: Stripe is not called.
    if first.answer is not None and (first.answer.status == "succeeded" or earlier is None):
        return first.answer
    gateway = get_gateway()
    intent = None
    try:
        # First how an earlier attempt ended, even if the hold has run out meanwhile: a charge
        # whose answer was lost must confirm what it was made for, not be refunded.
        if earlier is not None:
            settled = settle_earlier_attempt(earlier, owner.apply)
            if settled is not None:
                return settled
        due = owner.due()
        db.session.commit()
        if due.answer is not None:
            return due.answer
        intent = gateway.create_intent(
            owner.intent_for, card_token=card_token, amount=due.amount, currency=due.currency
        )
        refused = _record_new_intent(owner, intent)
        if refused is not None:
            gateway.cancel_intent(intent.id)  # it charged nothing, and now never will
            return refused
        state = gateway.confirm_intent(intent.id)
    except PaymentDeclined as declined:
        owner.record_decline(intent.id if intent else None, declined)
        return PaymentAttempt("failed", decline_message(declined.code))
    except GatewayRejected as rejected:
        # Stripe refused the request itself (say, the intent was cancelled as the hold lapsed).
        current_app.logger.warning("Stripe refused a payment step for %s: %s", owner.log_name, rejected)
        db.session.rollback()
        return owner.due().answer or PaymentAttempt(
            "failed", gettext("Your card was not charged. Please try again.")
        )
    except GatewayUnavailable:
        current_app.logger.warning("Stripe unavailable for %s", owner.log_name)
        return PaymentAttempt("unavailable", str(owner.unavailable_message))
    owner.apply(state)
    return attempt_for(state)


def _record_new_intent(owner: ChargeOwner, intent: IntentState) -> PaymentAttempt | None:
    """Record the new intent before charging it, unless the owner can't be charged now or
    another submission's intent is already recorded (then say so instead)."""
    owner.lock()  # one submission at a time gets past here
    refused = owner.due(charging=intent.amount).answer
    if refused is None and open_intent_id(owner.payments) is not None:
        refused = PaymentAttempt(
            "failed", gettext("A payment for this is already on its way. Please wait a moment and refresh.")
        )
    if refused is not None:
        db.session.commit()
        return refused
    owner.apply(intent)
    return None


def open_intent_id(owner_payments: sa.ColumnElement[bool]) -> str | None:
    """The latest of these payments' intents whose outcome we have not heard."""
    return db.session.scalar(
        sa.select(Payment.stripe_payment_intent_id)
        .where(owner_payments, Payment.status.in_(OPEN_PAYMENT_STATUSES))
        .order_by(Payment.id.desc())
        .limit(1)
    )


def settle_earlier_attempt(intent_id: str, apply: Callable[[IntentState], object]) -> PaymentAttempt | None:
    """How an earlier attempt ended, if it charged (or is charging) the card. An attempt that
    charged nothing is cancelled, so it never can, and None is returned: try the new card."""
    try:
        state = cancel_if_uncharged(get_gateway().retrieve_intent(intent_id))
    except GatewayRejected:  # Stripe doesn't know it (a test key reset, an account switch)
        forget_unknown_intent(intent_id)
        return None
    apply(state)
    return None if state.status == "canceled" else attempt_for(state)


UNCHARGED_INTENT_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_action")


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


def forget_unknown_intent(intent_id: str) -> None:
    """Stripe doesn't know this intent: its open payment row is failed, not waited on. Commits."""
    mark_payment_failed(intent_id, "Stripe does not know this PaymentIntent.")
    db.session.commit()


def mark_payment_failed(intent_id: str | None, message: str) -> None:
    """Our row of an intent that failed, if it is still open (in the caller's transaction)."""
    if intent_id is None:
        return
    payment = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent_id))
    if payment is not None and payment.status in OPEN_PAYMENT_STATUSES:
        payment.status, payment.last_error = PaymentStatus.FAILED, message[:500]


def attempt_for(state: IntentState) -> PaymentAttempt:
    """What the page does next, from where the charged intent stands."""
    if state.status == "succeeded":
        return PaymentAttempt("succeeded", intent_id=state.id)
    if state.status == "requires_action":
        return PaymentAttempt("requires_action", client_secret=state.client_secret, intent_id=state.id)
    if state.status == "processing":
        return PaymentAttempt("succeeded", gettext("Your payment is processing."), intent_id=state.id)
    if state.error_message or state.error_code:
        return PaymentAttempt("failed", decline_message(state.error_code))
    return PaymentAttempt("failed", gettext("Your card was not charged. Please try another card."))
