"""What a booking still owes, and which payments paid for its seat.

A booking owes a balance when it was moved onto a dearer date (or a walk-in joined a paid
class): its price less what its payments kept. The balance is paid at the desk (cash, check,
comp) or by card through the member's payment link; both land here, so the two never both
count. Plain reads, no locks: callers that decide on money hold the seat pool's lock.
"""

from __future__ import annotations

import sqlalchemy as sa

from events.extensions import db
from events.models import (
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
)


def balance_due(registration: Registration, leaving_out: int | None = None) -> int:
    """What a booked registration still owes: its price less what its payments kept (a walk-in
    at a paid class, or a transfer onto a dearer date). Nothing for a held seat: the desk
    payment for a hold is its whole price. `leaving_out`: a payment id not to count (the one
    being applied, to ask whether it is still wanted). One statement, however many payments."""
    if registration.status != RegistrationStatus.CONFIRMED or not registration.price_cents:
        return 0
    succeeded = sa.and_(Payment.registration_id == registration.id, Payment.status == PaymentStatus.SUCCEEDED)
    if leaving_out is not None:
        succeeded = sa.and_(succeeded, Payment.id != leaving_out)
    paid, refunded_at_stripe, comped = db.session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(Payment.amount_cents), 0),
            sa.func.coalesce(sa.func.sum(Payment.amount_refunded_cents), 0),
            sa.func.count().filter(Payment.method == PaymentMethod.COMP),
        ).where(succeeded)
    ).one()
    # Refunds issued or on their way (a transfer onto a cheaper date refunds the difference).
    refunding = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_cents), 0))
        .join(Payment, Payment.id == Refund.payment_id)
        .where(succeeded, Refund.status.in_((RefundStatus.PENDING, RefundStatus.SUCCEEDED)))
    )
    kept = paid - max(refunding or 0, refunded_at_stripe)
    return 0 if comped else max(registration.price_cents - kept, 0)


def seat_payments(registration: Registration) -> list[Payment]:
    """Every payment that paid for the seat, in id order: the first (card or desk) and any
    balance paid after a transfer; not one sent back because it found nothing to pay for."""
    unconfirmed_and_gone = (RegistrationStatus.EXPIRED, RegistrationStatus.CANCELLED)
    if registration.confirmed_at is None and registration.status in unconfirmed_and_gone:
        return []
    extra = sa.select(Refund.payment_id).where(Refund.kind == RefundKind.UNPLACED_PAYMENT)
    return list(
        db.session.scalars(
            sa.select(Payment)
            .where(
                Payment.registration_id == registration.id,
                Payment.status == PaymentStatus.SUCCEEDED,
                Payment.id.not_in(extra),
            )
            .order_by(Payment.id)
        )
    )


def balance_payments(registration: Registration) -> list[Payment]:
    """Its balance payments by card that went through and were kept (for the pages and the receipt)."""
    return [p for p in seat_payments(registration) if p.purpose is PaymentPurpose.BALANCE]
