"""We can never overbook a seat: 200 people at once for the last 5 seats, on PostgreSQL.

A seat is taken by one conditional UPDATE (seats.take_seat_and_register), and, when the pool
looks full, under the pool's row lock after lapsed holds are released (seats.lock_pool). Each
control takes one of them away (and widens the race window, as pretix's concurrency tests do)
to show that the test beside it would catch an oversell.
"""

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from events.extensions import db as _db
from events.models import Registration, RegistrationStatus, SeatPool, utcnow
from events.registration import seats
from tests.factories import workshop
from tests.load import race_for_seats

pytestmark = pytest.mark.slow

ATTEMPTS = 200
LAST_SEATS = 5


def offering_with_last_seats(db, capacity=30, free=LAST_SEATS):
    offering = workshop(capacity=capacity)
    offering.sessions[0].seat_pool.seats_taken = capacity - free
    db.session.commit()
    return offering


def confirmed_count(db, offering) -> int:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Registration)
        .where(Registration.offering_id == offering.id, Registration.status == RegistrationStatus.CONFIRMED)
    )


def test_two_hundred_at_once_for_the_last_five_seats(live_server, db):
    offering = offering_with_last_seats(db)

    result = race_for_seats(live_server.url, offering.slug, ATTEMPTS)

    print(
        f"\nconcurrency: attempts={result.attempts} confirmed={result.registered} "
        f"told_full={result.told_full} errors={result.errors} other={result.other_4xx} "
        f"p50={result.p50_ms:.0f}ms p95={result.p95_ms:.0f}ms"
    )
    assert result.errors == 0 and result.other_4xx == 0
    assert result.registered == LAST_SEATS
    assert result.told_full == ATTEMPTS - LAST_SEATS
    assert confirmed_count(db, offering) == LAST_SEATS
    pool = db.session.get(SeatPool, offering.sessions[0].seat_pool_id)
    assert pool.seats_taken == pool.capacity


def take_seat_without_the_condition(pool, registration):
    """take_seat_and_register() as read-then-write: no lock, no condition in the UPDATE."""
    taken, capacity = _db.session.execute(
        sa.select(SeatPool.seats_taken, SeatPool.capacity).where(SeatPool.id == pool.id)
    ).one()
    if taken >= capacity:
        return False
    time.sleep(0.05)  # widen the window between reading the count and writing it
    _db.session.execute(sa.update(SeatPool).where(SeatPool.id == pool.id).values(seats_taken=taken + 1))
    _db.session.add(registration)
    _db.session.flush()
    return True


def test_control_without_the_conditional_update_the_same_crowd_oversells(live_server, db, monkeypatch):
    """If this control ever stops overselling, the test above proves nothing."""
    monkeypatch.setattr(seats, "take_seat_and_register", take_seat_without_the_condition)
    offering = offering_with_last_seats(db)

    result = race_for_seats(live_server.url, offering.slug, 60, email_prefix="control")

    print(f"\ncontrol (no condition): attempts=60 confirmed={result.registered} errors={result.errors}")
    assert confirmed_count(db, offering) > LAST_SEATS


def offering_full_of_lapsed_holds(db, lapsed=LAST_SEATS, capacity=30):
    """Every seat taken, the last ones by holds that ran out unpaid and nobody has released yet."""
    offering = offering_with_last_seats(db, capacity=capacity, free=lapsed)
    pool = offering.sessions[0].seat_pool
    for i in range(lapsed):
        db.session.add(
            Registration(
                seat_pool_id=pool.id,
                offering_id=offering.id,
                name=f"Lapsed {i}",
                email=f"lapsed{i}@example.com",
                email_normalized=f"lapsed{i}@example.com",
                status=RegistrationStatus.HELD,
                hold_expires_at=utcnow() - timedelta(hours=1),
                token=f"lapsed-{offering.id}-{i}",
            )
        )
    pool.seats_taken = capacity
    db.session.commit()
    return offering


def test_seats_freed_by_lapsed_holds_go_to_exactly_that_many_of_a_crowd(live_server, db):
    """A pool that looks full takes the path under the lock: lapsed holds are released there."""
    offering = offering_full_of_lapsed_holds(db)

    result = race_for_seats(live_server.url, offering.slug, 100, email_prefix="afterholds")

    print(f"\nlapsed holds: attempts=100 confirmed={result.registered} errors={result.errors}")
    assert result.errors == 0 and result.other_4xx == 0
    assert result.registered == LAST_SEATS
    assert confirmed_count(db, offering) == LAST_SEATS
    db.session.expire_all()
    pool = db.session.get(SeatPool, offering.sessions[0].seat_pool_id)
    assert pool.seats_taken == pool.capacity
    statuses = db.session.scalars(
        sa.select(Registration.status).where(
            Registration.email.like("lapsed%"), Registration.offering_id == offering.id
        )
    ).all()
    assert statuses == [RegistrationStatus.EXPIRED] * LAST_SEATS


def test_control_without_the_lock_the_lapsed_holds_go_to_too_many(live_server, db, monkeypatch):
    """If this control ever stops overselling, the test above proves nothing."""

    def lock_pool_without_locking(pool_id):
        pool = _db.session.execute(
            sa.select(SeatPool).where(SeatPool.id == pool_id).execution_options(populate_existing=True)
        ).scalar_one()
        time.sleep(0.05)  # widen the window between reading the count and writing it
        return pool

    monkeypatch.setattr(seats, "lock_pool", lock_pool_without_locking)
    offering = offering_full_of_lapsed_holds(db)

    result = race_for_seats(live_server.url, offering.slug, 60, email_prefix="control")

    print(
        f"\ncontrol (no lock, lapsed holds): attempts=60 confirmed={result.registered} errors={result.errors}"
    )
    assert confirmed_count(db, offering) > LAST_SEATS
