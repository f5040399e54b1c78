"""A class pass bought by card: what Stripe says about its PaymentIntent, applied once.

apply_pass_intent() is the pass's side of payments.services.apply_intent() (which calls it for
an intent whose metadata says purpose "pass"), so the webhook, the return from the payment page,
the answer to the charge and the reconcile sweep all go through this one function. It locks the
pass, then the payment (the one lock order: passes before payments), re-reads both and moves
them to match Stripe, never further. A success activates a held pass once (its purchase row,
its expiry, the email with its link); a success that finds nothing to buy (the hold lapsed and
the pass was voided, or the pass was paid already) is refunded once, by the unplaced-payment
path, and the holder is told.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from events import audit, pricing
from events.extensions import db
from events.models import (
    OPEN_PAYMENT_STATUSES,
    Pass,
    PassStatus,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    RefundKind,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_pass_email
from events.passes import ledger
from events.payments import refunds
from events.payments.gateway import IntentState
from events.payments.mirror import mirror_intent

# What Stripe is told a pass payment is for: a neutral label, never the product's name.
NEUTRAL_LABEL = "Class pass"


def issue(pass_: Pass, now: datetime) -> None:
    """A paid (or desk-sold) pass becomes usable, and its holder gets the link (once)."""
    ledger.activate(pass_, now)
    queue_pass_email(EmailKind.PASS_ISSUED, pass_)


def _upsert_payment(pass_: Pass, state: IntentState) -> Payment:
    payment = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == state.id))
    if payment is None:
        payment = Payment(
            pass_id=pass_.id,
            registration_id=None,
            stripe_payment_intent_id=state.id,
            method=PaymentMethod.CARD,
            purpose=PaymentPurpose.PASS,
            amount_cents=state.amount,
            currency=state.currency,
            status=PaymentStatus.REQUIRES_PAYMENT_METHOD,
        )
        db.session.add(payment)
    return mirror_intent(payment, state)


def apply_pass_intent(state: IntentState) -> Pass | None:
    """Bring a pass and its payment in line with a PaymentIntent, and commit. Idempotent."""
    if state.pass_id is None or db.session.get(Pass, state.pass_id) is None:
        db.session.commit()  # not ours
        return None
    now = utcnow()
    pass_ = ledger.lock_pass(state.pass_id)
    existing = db.session.scalar(
        sa.select(Payment).where(Payment.stripe_payment_intent_id == state.id).with_for_update()
    )
    already_applied = existing is not None and existing.status == PaymentStatus.SUCCEEDED
    payment = _upsert_payment(pass_, state)
    if state.status == "succeeded" and not already_applied:
        _apply_success(pass_, payment, now)
    db.session.commit()
    return pass_


def _apply_success(pass_: Pass, payment: Payment, now: datetime) -> None:
    db.session.flush()
    other_success = db.session.scalar(
        sa.select(Payment.id).where(
            Payment.pass_id == pass_.id,
            Payment.status == PaymentStatus.SUCCEEDED,
            Payment.id != payment.id,
        )
    )
    if pass_.status is PassStatus.HELD and other_success is None:
        # Paid while held, or just after the hold ran out but before the sweep voided it:
        # a pass has no seat anyone else could have taken meanwhile, so it is theirs.
        issue(pass_, now)
        audit.record(
            None,
            "pass.bought",
            "pass",
            pass_.id,
            name=pass_.name,
            amount_cents=payment.amount_cents,
            payment_id=payment.id,
        )
        return
    # Nothing to buy with this money: the purchase was voided (the hold lapsed), or the pass
    # was paid already (a second card payment). Refunded once, whatever delivers the success.
    _, queued = refunds.queue_refund(
        payment.id,
        payment.amount_cents,
        kind=RefundKind.UNPLACED_PAYMENT,
        key=f"unplaced-payment-{payment.stripe_payment_intent_id}",
        reason="Pass payment arrived with nothing to buy",
    )
    queue_pass_email(
        EmailKind.PASS_PAYMENT_REFUNDED,
        pass_,
        key_parts=(payment.stripe_payment_intent_id,),
        context={
            "refund_cents": queued,
            "paid_cents": payment.amount_cents,
            "currency": payment.currency,
            "paid_already": other_success is not None,
        },
    )
    audit.record(
        None,
        "pass.payment_refunded",
        "pass",
        pass_.id,
        name=pass_.name,
        amount_cents=payment.amount_cents,
        refund_cents=queued,
        payment_id=payment.id,
    )


def lapsed_pass_holds(now: datetime) -> sa.ColumnElement[bool]:
    """A held pass whose time ran out. One with a card payment in flight gets
    PAYMENT_GRACE_MINUTES more, like a seat's hold (the answer to a charge may be lost)."""
    grace = timedelta(minutes=current_app.config["PAYMENT_GRACE_MINUTES"])
    paying = (
        sa.select(Payment.id)
        .where(Payment.pass_id == Pass.id, Payment.status.in_(OPEN_PAYMENT_STATUSES))
        .exists()
    )
    return sa.and_(
        Pass.status == PassStatus.HELD,
        Pass.hold_expires_at <= now,
        sa.or_(Pass.hold_expires_at <= now - grace, ~paying),
    )


def void_lapsed_holds(now: datetime) -> int:
    """Void every pass whose purchase hold lapsed unpaid: one statement (cheap when none is
    due). A payment that succeeds later is refunded by apply_pass_intent. Commits."""
    voided = db.session.scalars(
        sa.update(Pass)
        .where(lapsed_pass_holds(now))
        .values(status=PassStatus.VOID)
        .returning(Pass.id)
        .execution_options(synchronize_session=False)
    ).all()
    # A promo code used by an unpaid purchase counts no more (events/pricing.py).
    pricing.release_for_passes(list(voided), now)
    db.session.commit()
    return len(voided)
