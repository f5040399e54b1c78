"""We can never overbook a seat: 200 people at once for the last 5 seats, on PostgreSQL.

The control removes the pool lock (and widens the race window, as pretix's concurrency
tests do) to show that this test would catch an oversell.
"""

import time

import pytest
import sqlalchemy as sa

from events.extensions import db as _db
from events.models import Registration, RegistrationStatus, SeatPool
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


def test_control_without_the_lock_the_same_crowd_oversells(live_server, db, monkeypatch):
    """If this control ever stops overselling, the test above proves nothing."""

    def lock_pool_without_locking(pool_id):
        pool = _db.session.execute(
            sa.select(SeatPool).where(SeatPool.id == pool_id).execution_options(populate_existing=True)
        ).scalar_one()
        time.sleep(0.05)  # widen the window between reading the count and writing it
        return pool

    monkeypatch.setattr(seats, "lock_pool", lock_pool_without_locking)
    offering = offering_with_last_seats(db)

    result = race_for_seats(live_server.url, offering.slug, 60, email_prefix="control")

    print(f"\ncontrol (no lock): attempts=60 confirmed={result.registered} errors={result.errors}")
    assert confirmed_count(db, offering) > LAST_SEATS
