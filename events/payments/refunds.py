"""Refunds: written where they are decided, sent to Stripe by the worker after commit.

The money rule: for each payment, refunds pending + succeeded never exceed what was paid.
Every path that creates or changes a refund takes the same locks in the same order: the seat
pool(s) first (seats.lock_pool, or seats.lock_offering_pools for several, in id order), then
the payment row; what is left to refund is read under those locks, and the refund written is
capped by it. So two paths refunding one payment wait for each other instead of both counting
the same money (PostgreSQL: SELECT ... FOR UPDATE; SQLite: BEGIN IMMEDIATE already serialises
writers).

No web request calls Stripe to refund. A service writes the pending row in its own
transaction; after commit the worker is nudged (events/notifications/publish.py), and the
periodic housekeeping sweep finds anything a lost nudge missed. The worker claims a refund with
a lease, calls Stripe with the refund's idempotency key (a crash and a retry are still one
refund), and records what Stripe said: issued (then the "refund issued" email is queued),
failed with Stripe's reason (staff may retry), or not reached (tried again with backoff).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from events.extensions import db
from events.models import Pass, Payment, PaymentMethod, Refund, RefundKind, RefundStatus, Registration, utcnow
from events.notifications.outbox import EmailKind, queue_email, queue_pass_email
from events.notifications.publish import publish_task
from events.payments.gateway import GatewayRejected, GatewayUnavailable, PaymentDeclined, get_gateway
from events.registration import seats

FLAG = "refunds_queued"
TASK = "worker.tasks.execute_refunds"
# How long a claimed refund is left to the worker that claimed it: longer than one Stripe call
# with its retries. A worker that dies mid-call leaves it to be claimed again after this, and
# the retry carries the same idempotency key, so Stripe refunds once.
CLAIM_LEASE = timedelta(minutes=5)
BACKOFF_FIRST_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600


def mirrored_key(stripe_refund_id: str) -> str:
    """The key of our row mirroring a refund made in Stripe's dashboard (one row per refund)."""
    return f"stripe-{stripe_refund_id}"


def can_retry(refund: Refund) -> bool:
    """Staff may retry a refund Stripe refused, unless it was made in Stripe (retried there)."""
    return refund.status == RefundStatus.FAILED and refund.kind != RefundKind.MIRRORED


class RefundError(Exception):
    """A rule stops this refund change; the message is for staff."""


# --- Writing refunds (in the caller's transaction) ---


def lock_payment(payment_id: int) -> Payment:
    return db.session.execute(
        sa.select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def lock_for_refund(payment_id: int) -> Payment:
    """Take the refund locks in the one order: the payment's seat pool, then the payment.

    A caller that already holds the pool (or all of an offering's pools) loses nothing: locking
    a row twice in one transaction is a no-op. A class pass's payment has no seat: its pass is
    locked instead (passes come before payments in the one lock order)."""
    pool_id, pass_id = db.session.execute(
        sa.select(Registration.seat_pool_id, Payment.pass_id)
        .select_from(Payment)
        .outerjoin(Registration, Payment.registration_id == Registration.id)
        .where(Payment.id == payment_id)
    ).one()
    if pool_id is not None:
        seats.lock_pool(pool_id)
    else:
        db.session.execute(sa.select(Pass.id).where(Pass.id == pass_id).with_for_update())
    return lock_payment(payment_id)


def refundable_remaining(payment: Payment | None) -> int:
    """What can still be refunded: paid, minus refunds issued or on their way.

    Exact only under lock_for_refund(); unlocked it is a quote that may shrink."""
    if payment is None:
        return 0
    committed = db.session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_cents), 0)).where(
            Refund.payment_id == payment.id,
            Refund.status.in_((RefundStatus.PENDING, RefundStatus.SUCCEEDED)),
        )
    ).scalar_one()
    return max(payment.amount_cents - max(committed, payment.amount_refunded_cents), 0)


def queue_refund(
    payment_id: int,
    wanted_cents: int,
    *,
    kind: RefundKind,
    key: str,
    reason: str = "",
    actor_id: int | None = None,
) -> tuple[Refund | None, int]:
    """Write a pending refund of up to `wanted_cents`, capped at what is left, in the caller's
    transaction. Returns the row and the amount actually queued (0 and None when nothing is
    left): tell the person that amount, not the one asked for. The same key is one refund.

    A desk payment (cash or check) is refunded at the desk, never through Stripe: its row is
    recorded as given at once, "to be returned at the desk", and the worker never sees it. A
    comp paid nothing, so nothing is refunded."""
    payment = lock_for_refund(payment_id)
    existing = db.session.scalar(sa.select(Refund).where(Refund.idempotency_key == key))
    if existing is not None:
        return existing, existing.amount_cents
    amount = min(wanted_cents, refundable_remaining(payment))
    if amount <= 0:
        return None, 0
    if payment.method.at_desk:
        return _record_desk_refund(payment, amount, kind, key, reason, actor_id), amount
    refund = Refund(
        payment_id=payment.id,
        idempotency_key=key,
        kind=kind,
        amount_cents=amount,
        status=RefundStatus.PENDING,
        reason=reason[:200],
        created_by_id=actor_id,
        next_attempt_at=utcnow(),
    )
    db.session.add(refund)
    db.session.flush()
    mark_queued()
    return refund, amount


def refundable_total(payments: list[Payment]) -> int:
    """What can still be refunded of several payments of one seat (its first payment and a
    balance paid after a transfer). Exact only under their refund locks."""
    return sum(refundable_each(payments).values())


def refundable_each(payments: list[Payment]) -> dict[int, int]:
    """refundable_remaining() of each payment, by id, in one query however many there are."""
    if not payments:
        return {}
    rows = db.session.execute(
        sa.select(Refund.payment_id, sa.func.sum(Refund.amount_cents))
        .where(
            Refund.payment_id.in_([p.id for p in payments]),
            Refund.status.in_((RefundStatus.PENDING, RefundStatus.SUCCEEDED)),
        )
        .group_by(Refund.payment_id)
    ).all()
    committed = {payment_id: int(total) for payment_id, total in rows}
    return {
        p.id: max(p.amount_cents - max(committed.get(p.id, 0), p.amount_refunded_cents), 0) for p in payments
    }


def queue_refunds_across(
    payments: list[Payment],
    wanted_cents: int,
    *,
    kind: RefundKind,
    key: str,
    reason: str = "",
    actor_id: int | None = None,
) -> list[tuple[Payment, int]]:
    """Refund up to `wanted_cents` of a seat paid in several payments (in id order, the order
    their locks are taken in), each capped at what is left on it. The first payment keeps the
    key a single payment had; the others' keys name their payment. Returns each payment with
    the amount queued for it (0s left out)."""
    queued: list[tuple[Payment, int]] = []
    left = wanted_cents
    for n, payment in enumerate(sorted(payments, key=lambda p: p.id)):
        if left <= 0:
            break
        _, amount = queue_refund(
            payment.id,
            left,
            kind=kind,
            key=key if n == 0 else f"{key}-payment-{payment.id}",
            reason=reason,
            actor_id=actor_id,
        )
        if amount:
            queued.append((payment, amount))
            left -= amount
    return queued


DESK_REFUND_WORDING = "to be returned at the desk"


def desk_refund_reason(method: PaymentMethod, reason: str) -> str:
    """A desk refund's reason says where the money goes: "Cancelled (cash, to be returned at the desk)"."""
    where = f"{method.value}, {DESK_REFUND_WORDING}"
    return f"{reason[: 200 - len(where) - 3]} ({where})" if reason else f"{where[0].upper()}{where[1:]}"


def _record_desk_refund(
    payment: Payment, amount: int, kind: RefundKind, key: str, reason: str, actor_id: int | None
) -> Refund:
    """Recorded as given when decided: staff hand the cash (or a check) back at the desk, and
    no worker or Stripe is involved. Its email is the cancellation's (which names the desk)."""
    refund = Refund(
        payment_id=payment.id,
        idempotency_key=key,
        kind=kind,
        amount_cents=amount,
        status=RefundStatus.SUCCEEDED,
        reason=desk_refund_reason(payment.method, reason),
        created_by_id=actor_id,
        next_attempt_at=None,
    )
    db.session.add(refund)
    db.session.flush()
    recount_refunded(payment)
    return refund


def retry_failed_refund(refund_id: int) -> Refund:
    """Put a refund Stripe refused back in the queue (in the caller's transaction), if what is
    left on the payment still covers it. It goes to Stripe under a new idempotency key."""
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        raise RefundError("There is no such refund.")
    payment = lock_for_refund(refund.payment_id)
    refund = db.session.execute(
        sa.select(Refund)
        .where(Refund.id == refund_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if not can_retry(refund):
        if refund.status != RefundStatus.FAILED:
            raise RefundError("Only a failed refund can be retried.")
        raise RefundError("This refund was made in Stripe's dashboard; retry it there.")
    left = refundable_remaining(payment)
    if refund.amount_cents > left:
        raise RefundError(f"Only ${left / 100:.2f} is left to refund on this payment.")
    refund.status = RefundStatus.PENDING
    refund.retries += 1
    refund.attempts = 0
    refund.next_attempt_at = utcnow()
    refund.last_error = ""
    # The failed attempt's Stripe id goes: the new attempt gets its own, and until the worker
    # records it the row must look unsent (the mirror matches it by the metadata's row id).
    refund.stripe_refund_id = None
    mark_queued()
    return refund


def mark_queued() -> None:
    db.session().info[FLAG] = True


@sa.event.listens_for(sa.orm.Session, "after_commit")
def _after_commit(session: sa.orm.Session) -> None:
    if session.info.pop(FLAG, False):
        publish_task(TASK)


@sa.event.listens_for(sa.orm.Session, "after_rollback")
def _after_rollback(session: sa.orm.Session) -> None:
    session.info.pop(FLAG, None)


# --- Executing them (the worker) ---


@dataclass(frozen=True)
class _Job:
    refund_id: int
    payment_id: int
    intent_id: str
    amount: int
    idempotency_key: str


def execute_due_refunds(limit: int = 200) -> int:
    """Send every due pending refund to Stripe, one at a time, and record the answers.

    Safe to run in several workers at once and again after a crash. No transaction is open
    during a call to Stripe. Stops at the first refund Stripe could not be reached for (the
    rest would wait on the same outage; each keeps its turn). Returns how many were sent."""
    sent = 0
    for _ in range(limit):
        job = _claim_next(utcnow())
        if job is None:
            break
        sent += 1
        if not _execute(job):
            break
    return sent


def _claim_next(now: datetime) -> _Job | None:
    db.session.rollback()
    refund = db.session.scalar(
        sa.select(Refund)
        .where(
            Refund.status == RefundStatus.PENDING,
            # A row with a Stripe id records a refund Stripe already holds (mirrored from the
            # charge): sending it would refund the same money a second time.
            Refund.stripe_refund_id.is_(None),
            sa.or_(Refund.next_attempt_at.is_(None), Refund.next_attempt_at <= now),
            # A desk payment's refund is handed back at the desk, never sent to Stripe (it is
            # recorded as given at once; this keeps any row of one away from Stripe whatever).
            Refund.payment_id.in_(sa.select(Payment.id).where(Payment.method == PaymentMethod.CARD)),
        )
        .order_by(Refund.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if refund is None:
        db.session.commit()
        return None
    refund.attempts += 1
    refund.next_attempt_at = now + CLAIM_LEASE
    intent_id = refund.payment.stripe_payment_intent_id
    assert intent_id is not None  # only card payments' refunds are claimed (see the query)
    job = _Job(
        refund.id,
        refund.payment_id,
        intent_id,
        refund.amount_cents,
        refund.stripe_idempotency_key,
    )
    db.session.commit()
    return job


def _execute(job: _Job) -> bool:
    """Send one refund and record Stripe's answer; False if Stripe could not be reached."""
    try:
        result = get_gateway().refund(
            payment_intent_id=job.intent_id,
            amount=job.amount,
            idempotency_key=job.idempotency_key,
            refund_row_id=job.refund_id,
        )
    except GatewayRejected as error:
        # Stripe says this refund can never happen as asked (e.g. more than is left on the charge).
        current_app.logger.error("Refund %s refused by Stripe: %s", job.refund_id, error)
        _record(job, RefundStatus.FAILED, error=str(error))
    except (GatewayUnavailable, PaymentDeclined) as error:
        current_app.logger.warning("Refund %s not sent yet (will retry): %s", job.refund_id, error)
        _record(job, RefundStatus.PENDING, error=str(error))
        return False
    else:
        accepted = result.status in ("succeeded", "pending")  # "pending": on its way back to the card
        _record(
            job,
            RefundStatus.SUCCEEDED if accepted else RefundStatus.FAILED,
            stripe_refund_id=result.id,
            error="" if accepted else f"Stripe reports the refund {result.status}.",
        )
    return True


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_FIRST_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def _record(job: _Job, status: RefundStatus, *, stripe_refund_id: str | None = None, error: str = "") -> None:
    payment = lock_for_refund(job.payment_id)
    refund = db.session.execute(
        sa.select(Refund)
        .where(Refund.id == job.refund_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if refund.status != RefundStatus.PENDING:
        db.session.commit()  # recorded already (a lease that ran out and was claimed again)
        return
    refund.last_error = error[:500]
    if status == RefundStatus.PENDING:
        refund.next_attempt_at = utcnow() + backoff(refund.attempts)
        db.session.commit()
        return
    refund.status = status
    refund.next_attempt_at = None
    if stripe_refund_id:
        refund.stripe_refund_id = stripe_refund_id
    if status == RefundStatus.SUCCEEDED:
        recount_refunded(payment)
        # Told only now that Stripe has taken it (keyed by Stripe's id: the charge.refunded
        # mirror uses the same key, so it is one email).
        queue_refund_issued(payment, stripe_refund_id, refund.amount_cents)
    db.session.commit()


def queue_refund_issued(payment: Payment, stripe_refund_id: str | None, amount_cents: int) -> None:
    """The "refund issued" email: to the registration's person, or a class pass's holder."""
    context = {"refund_cents": amount_cents, "currency": payment.currency}
    if payment.pass_id is not None:
        pass_ = db.session.get_one(Pass, payment.pass_id)
        queue_pass_email(EmailKind.PASS_REFUND_ISSUED, pass_, key_parts=(stripe_refund_id,), context=context)
        return
    queue_email(
        EmailKind.REFUND_ISSUED,
        registration=payment.registration,
        key_parts=(stripe_refund_id,),
        context=context,
    )


def recount_refunded(payment: Payment) -> None:
    total = db.session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_cents), 0)).where(
            Refund.payment_id == payment.id, Refund.status == RefundStatus.SUCCEEDED
        )
    ).scalar_one()
    payment.amount_refunded_cents = min(max(total, payment.amount_refunded_cents), payment.amount_cents)
