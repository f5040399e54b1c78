"""The seat rules. We can never overbook a seat.

seats_taken on a SeatPool counts confirmed registrations, live payment holds and live
waitlist offers. It only changes while the pool row is locked, in the same transaction as the
registration or waitlist change that causes it:
- PostgreSQL: SELECT ... FOR UPDATE on the pool row;
- SQLite: every transaction starts with BEGIN IMMEDIATE (events/db_sqlite.py), so writers
  are already serialised.
The CHECK constraints on seat_pools (0 <= seats_taken <= capacity) are the backstop.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from events.extensions import db
from events.models import (
    OPEN_PAYMENT_STATUSES,
    Payment,
    Registration,
    RegistrationStatus,
    SeatPool,
    Session,
    SessionStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from events.notifications.outbox import EmailKind, queue_email


def lock_pool(pool_id: int) -> SeatPool:
    """Lock the pool row for the rest of the transaction and return it, freshly read."""
    return db.session.execute(
        sa.select(SeatPool)
        .where(SeatPool.id == pool_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def lock_offering_pools(offering_id: int) -> list[SeatPool]:
    """Lock every seat pool of an offering, in id order, before anything else is written.

    Every change that spans several pools takes them this way (pools first, in id order, then
    catalog rows), so two such changes wait for each other instead of deadlocking."""
    pool_ids = db.session.scalars(
        sa.select(SeatPool.id).where(SeatPool.offering_id == offering_id).order_by(SeatPool.id)
    ).all()
    return [lock_pool(pool_id) for pool_id in pool_ids]


def pool_first_start(pool: SeatPool) -> datetime | None:
    """When the thing registered for begins: the first scheduled session of the pool."""
    return db.session.scalar(
        sa.select(sa.func.min(Session.starts_at)).where(
            Session.seat_pool_id == pool.id, Session.status == SessionStatus.SCHEDULED
        )
    )


def _take(pool: SeatPool, n: int = 1) -> None:
    if pool.seats_taken + n > pool.capacity:
        raise AssertionError("seat rule broken: taking a seat that is not free")
    pool.seats_taken += n
    pool.version += 1


def _free(pool: SeatPool, n: int = 1) -> None:
    pool.seats_taken = max(pool.seats_taken - n, 0)
    pool.version += 1


def take_seat(pool: SeatPool) -> None:
    _take(pool)


def free_seat(pool: SeatPool, now: datetime) -> None:
    """Give a seat back and offer it to the waitlist."""
    _free(pool)
    offer_free_seats(pool, now)


def lapsed_hold(now: datetime) -> sa.ColumnElement[bool]:
    """The condition for a hold whose time ran out.

    A hold with a payment in flight (an intent recorded whose outcome we have not heard) gets
    PAYMENT_GRACE_MINUTES more: the card may have been charged in time with the answer lost,
    and the seat it paid for must still be there when reconcile or the webhook says so."""
    grace = timedelta(minutes=current_app.config["PAYMENT_GRACE_MINUTES"])
    paying = (
        sa.select(Payment.id)
        .where(Payment.registration_id == Registration.id, Payment.status.in_(OPEN_PAYMENT_STATUSES))
        .exists()
    )
    return sa.and_(
        Registration.status == RegistrationStatus.HELD,
        Registration.hold_expires_at <= now,
        sa.or_(Registration.hold_expires_at <= now - grace, ~paying),
    )


def release_lapsed(pool: SeatPool, now: datetime) -> None:
    """Expire holds and waitlist offers whose time ran out, then offer freed seats on.

    Called lazily whenever a pool is locked, and by the worker's sweep for every pool.
    """
    expired_holds = db.session.scalars(
        sa.select(Registration).where(Registration.seat_pool_id == pool.id, lapsed_hold(now))
    ).all()
    for registration in expired_holds:
        registration.status = RegistrationStatus.EXPIRED
        _free(pool)

    lapsed_offers = db.session.scalars(
        sa.select(WaitlistEntry).where(
            WaitlistEntry.seat_pool_id == pool.id,
            WaitlistEntry.status == WaitlistStatus.OFFERED,
            WaitlistEntry.offer_expires_at <= now,
        )
    ).all()
    for entry in lapsed_offers:
        entry.status = WaitlistStatus.EXPIRED
        _free(pool)
        queue_email(EmailKind.WAITLIST_OFFER_EXPIRED, waitlist_entry=entry)

    if expired_holds or lapsed_offers:
        offer_free_seats(pool, now)


def offer_window(now: datetime, starts_at: datetime) -> timedelta:
    """How long a waitlist offer stays open: shorter as the session nears.

    A quarter of the time left, between 15 minutes and WAITLIST_OFFER_HOURS (default 12 h),
    and never past the start.
    """
    longest = timedelta(hours=current_app.config["WAITLIST_OFFER_HOURS"])
    window = min(max((starts_at - now) / 4, timedelta(minutes=15)), longest)
    return min(window, starts_at - now)


def offer_free_seats(pool: SeatPool, now: datetime) -> list[WaitlistEntry]:
    """Offer each free seat to the next person waiting; an offer holds the seat for them."""
    starts_at = pool_first_start(pool)
    if starts_at is None or starts_at <= now:
        return []  # no offers for something that has started
    offered = []
    while pool.seats_taken < pool.capacity:
        entry = db.session.scalar(
            sa.select(WaitlistEntry)
            .where(WaitlistEntry.seat_pool_id == pool.id, WaitlistEntry.status == WaitlistStatus.WAITING)
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
            .limit(1)
        )
        if entry is None:
            break
        entry.status = WaitlistStatus.OFFERED
        entry.offered_at = now
        entry.offer_expires_at = now + offer_window(now, starts_at)
        _take(pool)
        # One offer email per offer (an entry is offered at most once).
        queue_email(EmailKind.WAITLIST_OFFER, waitlist_entry=entry)
        offered.append(entry)
    return offered


def waitlist_position(entry: WaitlistEntry) -> int:
    """1 for the next person to be offered a seat."""
    # (A count always has its one row.)
    return db.session.execute(
        sa.select(sa.func.count())
        .select_from(WaitlistEntry)
        .where(
            WaitlistEntry.seat_pool_id == entry.seat_pool_id,
            WaitlistEntry.status == WaitlistStatus.WAITING,
            sa.or_(
                WaitlistEntry.created_at < entry.created_at,
                sa.and_(WaitlistEntry.created_at == entry.created_at, WaitlistEntry.id <= entry.id),
            ),
        )
    ).scalar_one()


def pools_with_lapsed(now: datetime) -> list[int]:
    """Ids of pools holding an expired hold or offer (for the worker's sweep)."""
    held = sa.select(Registration.seat_pool_id).where(lapsed_hold(now))
    offered = sa.select(WaitlistEntry.seat_pool_id).where(
        WaitlistEntry.status == WaitlistStatus.OFFERED, WaitlistEntry.offer_expires_at <= now
    )
    return sorted(set(db.session.scalars(held.union(offered))))


def sweep_lapsed(now: datetime) -> int:
    """Release every lapsed hold and offer, one pool per transaction. Returns pools touched."""
    pool_ids = pools_with_lapsed(now)
    db.session.rollback()
    for pool_id in pool_ids:
        pool = lock_pool(pool_id)
        release_lapsed(pool, now)
        db.session.commit()
    return len(pool_ids)
