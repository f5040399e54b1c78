"""Money back for class pass credits: the unused credits of a pass refunded pro rata, and
credits given back onto a pass whose unused credits were already refunded.

Functions here write in the caller's transaction and never commit. The caller holds the
pass's lock (ledger.lock_pass), and these lock its payments after it: passes before payments,
the one lock order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from events.extensions import db
from events.models import (
    LedgerKind,
    Pass,
    PassLedgerEntry,
    PassStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
)
from events.passes import ledger
from events.payments import refunds


def pro_rata_cents(pass_: Pass, payments: list[Payment], unused: int) -> int:
    """What the unused credits are worth: what was paid / credits x unused, in cents, floored.

    What was paid is the pass's price, never more than its payments can still give back: a
    second payment for the same pass is already being refunded whole (an unplaced payment), so
    it adds nothing, and a comp paid nothing."""
    if unused <= 0 or pass_.credits <= 0:
        return 0
    succeeded = [p for p in payments if p.status == PaymentStatus.SUCCEEDED]
    paid = min(pass_.price_cents, sum(refunds.refundable_each(succeeded).values()))
    # Credits staff added on top are not money: at most what was bought is refunded.
    return paid * min(unused, pass_.credits) // pass_.credits


@dataclass(frozen=True)
class RefundDecision:
    credits: int
    cents: int


def lock_pass_payments(pass_id: int) -> list[Payment]:
    """A pass's payments, locked in id order (the caller holds the pass's lock: passes first)."""
    return list(
        db.session.execute(
            sa.select(Payment)
            .where(Payment.pass_id == pass_id)
            .order_by(Payment.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
    )


def refund_unused_credits(
    pass_: Pass, payments: list[Payment], unused: int, reason: str, actor_id: int | None, ledger_reason: str
) -> RefundDecision:
    """The pro rata refund of `unused` credits, in the caller's transaction (never commits): a
    REFUND row takes the balance to zero, the pass becomes REFUNDED, and refund rows are queued
    across its successful payments in id order under one key per pass (so whoever decides it,
    staff or the holder's "Delete my data", it is one refund). The caller holds the pass's lock,
    then its payments' (lock_pass_payments), and has checked `unused` > 0 under them."""
    cents = pro_rata_cents(pass_, payments, unused)
    ledger.write(pass_, LedgerKind.REFUND, -unused, actor_id=actor_id, reason=ledger_reason)
    pass_.status = PassStatus.REFUNDED
    queued = refunds.queue_refunds_across(
        [p for p in payments if p.status == PaymentStatus.SUCCEEDED and p.amount_cents > 0],
        cents,
        kind=RefundKind.MANUAL,
        key=f"pass-{pass_.id}-unused",
        reason=reason,
        actor_id=actor_id,
    )
    return RefundDecision(unused, sum(amount for _, amount in queued))


def credits_value_cents(pass_: Pass, payments: list[Payment], credits: int) -> int:
    """What `credits` of this pass were bought for: the price paid / credits x `credits`, in
    cents, floored, never more than its payments can still give back. Unlike pro_rata_cents,
    the price per credit is what was paid at the start, not what is left after the unused
    credits were refunded."""
    if credits <= 0 or pass_.credits <= 0:
        return 0
    succeeded = [p for p in payments if p.status == PaymentStatus.SUCCEEDED]
    paid = min(pass_.price_cents, sum(p.amount_cents for p in succeeded))
    per_credits = paid * min(credits, pass_.credits) // pass_.credits
    return min(per_credits, sum(refunds.refundable_each(succeeded).values()))


def is_refunded(registration: Registration) -> bool:
    """Booked with a pass whose unused credits were refunded: credits given back can't go on it."""
    return registration.class_pass is not None and registration.class_pass.status is PassStatus.REFUNDED


def returned_credits_quote(registration: Registration) -> tuple[Payment | None, int]:
    """What giving this pass booking's credits back now would refund as money, and the first
    payment it goes to (unlocked: a quote for the confirmation pages); (None, 0) unless its
    pass was refunded."""
    if not registration.credits_spent or not is_refunded(registration):
        return None, 0
    assert registration.class_pass is not None  # (is_refunded says it is there)
    payments = sorted(registration.class_pass.payments, key=lambda p: p.id)
    cents = credits_value_cents(registration.class_pass, payments, registration.credits_spent)
    paid = [p for p in payments if p.status == PaymentStatus.SUCCEEDED and p.amount_cents > 0]
    return (paid[0] if paid else None), cents


def payments_of_refunded_passes(registrations: list[Registration]) -> list[Payment]:
    """The payments of the refunded passes these bookings were paid with (unlocked): a caller
    that will give their credits back locks them with its other payments, in one id order."""
    pass_ids = {r.pass_id for r in registrations if r.credits_spent and is_refunded(r)}
    if not pass_ids:
        return []
    return list(
        db.session.scalars(sa.select(Payment).where(Payment.pass_id.in_(pass_ids)).order_by(Payment.id))
    )


def refund_returned_credits(
    pass_: Pass,
    registration: Registration,
    credits: int,
    now: datetime,
    *,
    kind: RefundKind,
    reason: str,
    actor_id: int | None = None,
) -> list[tuple[Payment, int]]:
    """Credits just given back (a ledger RETURN) onto a pass whose unused credits were already
    refunded: they can't be used again, so they are refunded as money instead. A REFUND row
    takes them off the pass again, and their value (credits_value_cents) is queued across its
    successful payments under one key per booking. Returns each payment with the cents queued
    on it (0s left out), as queue_refunds_across does. The caller holds
    the pass's lock; its payments are locked here, after it, unless the caller already did."""
    payments = lock_pass_payments(pass_.id)
    cents = credits_value_cents(pass_, payments, credits)
    ledger.write(
        pass_,
        LedgerKind.REFUND,
        -credits,
        registration=registration,
        reason="Given back after the pass was refunded: refunded as money",
        now=now,
    )
    queued = refunds.queue_refunds_across(
        [p for p in payments if p.status == PaymentStatus.SUCCEEDED and p.amount_cents > 0],
        cents,
        kind=kind,
        key=returned_credits_key(pass_.id, registration.id),
        reason=reason,
        actor_id=actor_id,
    )
    return queued


def desk_method(queued: list[tuple[Payment, int]]) -> str:
    """ "cash" or "check" when every cent of these refunds is handed back at the desk (a pass
    bought there: recorded as given at once, never sent to a card); "" otherwise."""
    methods = {payment.method for payment, cents in queued if cents > 0}
    if len(methods) == 1:
        [method] = methods
        if method.at_desk:
            return method.value
    return ""


def returned_credits_key(pass_id: int, registration_id: int) -> str:
    """The refund key of a booking's credits refunded as money (a second payment's adds
    "-payment-<id>", as queue_refunds_across names them)."""
    return f"pass-{pass_id}-returned-registration-{registration_id}"


def returned_credits_refunds(registration: Registration) -> list[tuple[Payment, int]]:
    """The refunds a cancelled pass booking's credits were refunded as (refund_returned_credits),
    each with its payment, FAILED ones left out."""
    if registration.pass_id is None:
        return []
    key = returned_credits_key(registration.pass_id, registration.id)
    rows = db.session.execute(
        sa.select(Payment, Refund.amount_cents)
        .join(Refund, Refund.payment_id == Payment.id)
        .where(
            sa.or_(Refund.idempotency_key == key, Refund.idempotency_key.startswith(f"{key}-payment-")),
            Refund.status != RefundStatus.FAILED,
        )
    ).all()
    return [(payment, int(cents)) for payment, cents in rows]


def returned_credits_refunded(registration: Registration) -> list[tuple[Payment, int]] | None:
    """The refunds (returned_credits_refunds) a cancelled pass booking's credits were refunded
    as, when they came back onto a refunded pass (a REFUND ledger row names the booking; the
    list is empty when they were worth nothing); None when they did not."""
    if registration.pass_id is None:
        return None
    refunded_as_money = db.session.scalar(
        sa.select(PassLedgerEntry.id)
        .where(PassLedgerEntry.registration_id == registration.id, PassLedgerEntry.kind == LedgerKind.REFUND)
        .limit(1)
    )
    return None if refunded_as_money is None else returned_credits_refunds(registration)
