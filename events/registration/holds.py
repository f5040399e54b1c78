"""When a seat held for payment has run out: shared by the seat rules (events/registration/seats.py)
and the promo code counts (events/pricing.py), which must agree on it."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from events.models import OPEN_PAYMENT_STATUSES, Payment, Registration, RegistrationStatus


def lapsed_hold(now: datetime) -> sa.ColumnElement[bool]:
    """The condition for a hold whose time ran out.

    A hold with a payment in flight (an intent recorded whose outcome we have not heard) gets
    PAYMENT_GRACE_MINUTES more: the card may have been charged in time with the answer lost,
    and the seat it paid for must still be there when reconcile or the webhook says so."""
    return lapsed_hold_as_of(now, payment_grace_start(now))


def payment_grace_start(now: datetime) -> datetime:
    """A hold with a payment in flight whose time ran out before this has lapsed too."""
    return now - timedelta(minutes=current_app.config["PAYMENT_GRACE_MINUTES"])


def lapsed_hold_as_of(
    now: datetime | sa.ColumnElement[datetime], grace_start: datetime | sa.ColumnElement[datetime]
) -> sa.ColumnElement[bool]:
    """lapsed_hold() with both moments given (grace_start: payment_grace_start(now)), as values
    or as bound parameters of a statement built once."""
    paying = (
        sa.select(Payment.id)
        .where(Payment.registration_id == Registration.id, Payment.status.in_(OPEN_PAYMENT_STATUSES))
        .exists()
    )
    return sa.and_(
        Registration.status == RegistrationStatus.HELD,
        Registration.hold_expires_at <= now,
        sa.or_(Registration.hold_expires_at <= grace_start, ~paying),
    )
