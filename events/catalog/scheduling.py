"""Creating offerings and their sessions, with the seat pools the seat rules lock on.

Times come in as local wall-clock times at the location and are stored in UTC, so a weekly
series stays at 6 pm local across daylight-saving changes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from events.extensions import db
from events.models import Location, Offering, SeatPool, Session, User


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    # fold=0: an ambiguous time on the day clocks go back means the first (daylight) one.

    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def pool_for_new_session(offering: Offering) -> SeatPool:
    """Drop-in classes count seats per session; workshops and courses share one pool."""
    if not offering.kind.per_session:
        existing = db.session.scalar(db.select(SeatPool).where(SeatPool.offering_id == offering.id).limit(1))
        if existing is not None:
            return existing
    pool = SeatPool(offering=offering, capacity=offering.capacity, seats_taken=0)
    db.session.add(pool)
    return pool


def add_session(
    offering: Offering,
    day: date,
    start: time,
    duration: timedelta,
    location: Location | None = None,
    instructor: User | None = None,
) -> Session:
    location = location or offering.location
    starts_at = local_to_utc(day, start, location.zone)
    if offering.id is None:
        db.session.flush()
    session = Session(
        offering=offering,
        location=location,
        instructor=instructor,
        seat_pool=pool_for_new_session(offering),
        starts_at=starts_at,
        ends_at=starts_at + duration,
    )
    db.session.add(session)
    return session


def weekly_dates(first_day: date, weeks: int) -> list[date]:
    return [first_day + timedelta(weeks=i) for i in range(weeks)]


def add_weekly_series(
    offering: Offering,
    first_day: date,
    start: time,
    duration: timedelta,
    weeks: int,
    location: Location | None = None,
) -> list[Session]:
    return [add_session(offering, day, start, duration, location) for day in weekly_dates(first_day, weeks)]
