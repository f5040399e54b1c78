"""The seat rules. We can never overbook a seat.

seats_taken on a SeatPool counts confirmed registrations, live payment holds and live
waitlist offers. It only changes while the pool row is locked, in the same transaction as the
registration or waitlist change that causes it:
- PostgreSQL: SELECT ... FOR UPDATE on the pool row;
- SQLite: every transaction starts with BEGIN IMMEDIATE (events/db_sqlite.py), so writers
  are already serialised.
The CHECK constraints on seat_pools (0 <= seats_taken <= capacity) are the backstop.

A new registration takes its seat in take_seat_and_register(): on PostgreSQL one statement
whose conditional UPDATE (... WHERE seats_taken < capacity) is the lock and the check at once,
so the pool row is locked for that statement and the COMMIT that follows it, not across the
reads and checks before it.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from events import pricing
from events.catalog.cache import note_seats_changed, seats_notification_sql
from events.extensions import db
from events.models import (
    WAITLIST_ACTIVE_STATUSES,
    Offering,
    OutboxEmail,
    Registration,
    RegistrationStatus,
    SeatPool,
    Session,
    SessionStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from events.notifications.outbox import EmailKind, email_row, queue_email, registration_email_key
from events.notifications.publish import mark_queued
from events.registration.holds import lapsed_hold, lapsed_hold_as_of


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


def take_seat_and_register(pool: SeatPool, registration: Registration) -> bool:
    """Take a free seat in `pool` and write the new `registration` in it, with its confirmation
    email if it is confirmed (a paid one is held while they pay: no email yet), in the caller's
    transaction, which the caller commits at once. False, with nothing written, when the pool
    has no free seat or the person holds a place on its waitlist (the caller then takes
    lock_pool(), releases lapsed holds and offers, ends their waitlist place and tries again).

    Everything that must happen under the seat's lock when a seat is taken for a new
    registration happens here (and nothing else should): a pass credit spent for it belongs here.

    On PostgreSQL it is one statement: UPDATE seat_pools ... WHERE seats_taken < capacity
    locks the row and checks for a free seat at once (waiting for any holder of the lock and
    then re-checking the row as committed); the INSERTs of the registration and its outbox row
    and the notification for cached pages (pg_notify, sent on commit) happen only if it took a
    seat. The lock lasts from this statement to the caller's COMMIT. A concurrent twin (the
    same email in the same pool) fails the whole statement on the unique index: IntegrityError,
    nothing written. Elsewhere (SQLite) writers are already serialised (BEGIN IMMEDIATE)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return _take_seat_and_register_locked(pool, registration)
    db.session.flush()  # (whatever the caller changed first goes before the seat)
    params = {"pool_id": pool.id, **_insert_params("r_", Registration, registration)}
    email = email_row(EmailKind.REGISTRATION_CONFIRMED, registration=registration)
    with_email = False
    if registration.status == RegistrationStatus.CONFIRMED and email is not None:
        # Its registration_id and the id ending its dedupe key are the one the INSERT draws.
        email |= {
            "registration_id": None,
            "dedupe_key": registration_email_key(EmailKind.REGISTRATION_CONFIRMED),
        }
        params |= _insert_params("e_", OutboxEmail, OutboxEmail(**email))
        with_email = True
    taken = db.session.execute(_seat_statement(with_email), params).one_or_none()
    if taken is None:
        return False
    # The session learns what the statement wrote, as if it had flushed it.
    registration.id = taken.registration_id
    registration.created_at = taken.created_at
    set_committed_value(pool, "seats_taken", taken.seats_taken)
    set_committed_value(pool, "version", taken.version)
    make_transient_to_detached(registration)
    db.session.add(registration)
    note_seats_changed(db.session(), {pool.id: (pool.capacity - taken.seats_taken, taken.version)})
    if taken.emails:
        mark_queued(db.session())
    return True


@functools.cache
def _seat_statement(with_email: bool) -> sa.Select:
    """take_seat_and_register()'s statement (built once: its values are bound parameters):

        WITH seat AS (UPDATE seat_pools SET seats_taken = seats_taken + 1, version = version + 1
                      WHERE id = :pool_id AND seats_taken < capacity AND NOT <on its waitlist>
                      RETURNING ...),
             new_registration AS (INSERT INTO registrations (...) SELECT :r_... FROM seat
                                  RETURNING id, created_at),
             queued_email AS (INSERT INTO outbox_emails (...)
                              SELECT :e_..., id, :e_dedupe_key || id FROM new_registration
                              RETURNING id)
        SELECT seats_taken, version, <the registration's id and created_at>,
               (SELECT count(*) FROM queued_email), pg_notify(...) FROM seat

    The registration's id is drawn by its INSERT (no round trip of its own before), and the
    outbox row's dedupe key ends with it (outbox.registration_email_key), so no row can have
    that key yet: a plain INSERT, no ON CONFLICT (which would also keep the statement out of
    SQLAlchemy's compiled cache)."""
    pools = cast(sa.Table, SeatPool.__table__)
    registrations = cast(sa.Table, Registration.__table__)
    outbox = cast(sa.Table, OutboxEmail.__table__)
    pool_id = sa.bindparam("pool_id", type_=pools.c.id.type)
    waitlisted = (
        sa.select(WaitlistEntry.id)
        .where(
            WaitlistEntry.seat_pool_id == pool_id,
            WaitlistEntry.email_normalized == sa.bindparam("r_email_normalized"),
            WaitlistEntry.status.in_([_sql_constant(status) for status in WAITLIST_ACTIVE_STATUSES]),
        )
        .exists()
    )
    one: sa.ColumnElement[int] = sa.literal_column("1")
    seat = (
        sa.update(pools)
        .where(pools.c.id == pool_id, pools.c.seats_taken < pools.c.capacity, ~waitlisted)
        .values(seats_taken=pools.c.seats_taken + one, version=pools.c.version + one)
        .returning(pools.c.id, pools.c.capacity, pools.c.seats_taken, pools.c.version)
        .cte("seat")
    )
    # created_at is the moment the seat was taken (after any wait for the lock), as when a
    # flush wrote it under lock_pool(): a session moved meanwhile tells exactly those
    # registered before its move (events/staff/moves.py).
    seat_taken_at = sa.func.timezone(_sql_constant("UTC"), sa.func.clock_timestamp())
    written = (
        sa.insert(registrations)
        .from_select(
            _insert_columns(registrations),
            sa.select(
                *(
                    seat_taken_at if name == "created_at" else sa.bindparam("r_" + name, type_=column.type)
                    for name, column in (
                        (name, registrations.c[name]) for name in _insert_columns(registrations)
                    )
                )
            ).select_from(seat),
        )
        .returning(registrations.c.id, registrations.c.created_at)
        .cte("new_registration")
    )
    email_count: sa.ColumnElement[int] = sa.literal(0)
    if with_email:
        drawn = {
            "registration_id": written.c.id,
            "dedupe_key": sa.bindparam("e_dedupe_key", type_=outbox.c.dedupe_key.type)
            + sa.cast(written.c.id, outbox.c.dedupe_key.type),
        }
        queued = (
            sa.insert(outbox)
            .from_select(
                _insert_columns(outbox),
                sa.select(
                    *(
                        drawn.get(name, sa.bindparam("e_" + name, type_=outbox.c[name].type))
                        for name in _insert_columns(outbox)
                    )
                ).select_from(written),
            )
            .returning(outbox.c.id)
            .cte("queued_email")
        )
        email_count = sa.select(sa.func.count()).select_from(queued).scalar_subquery()
    return sa.select(
        seat.c.seats_taken,
        seat.c.version,
        sa.select(written.c.id).scalar_subquery().label("registration_id"),
        sa.select(written.c.created_at).scalar_subquery().label("created_at"),
        email_count.label("emails"),
        seats_notification_sql(seat.c.id, seat.c.capacity - seat.c.seats_taken, seat.c.version),
    ).add_cte(written)


def _sql_constant(value: str) -> sa.ColumnElement[str]:
    """A constant of the code written into the statement, not a parameter: the statement's
    text is then the same on every execution (no IN list expanded each time), and it stays
    under psycopg's 50 parameters, beyond which psycopg converts its text again on every
    execution (tests/integration/test_seat_statement.py checks both)."""
    assert "'" not in value and "%" not in value  # (only the code's own words: nothing to escape)
    return sa.literal_column(f"'{value}'")


def _insert_columns(table: sa.Table) -> list[str]:
    """The columns the statement writes: all but the id, which the INSERT draws."""
    return [c.name for c in table.columns if not c.primary_key]


def _insert_params(prefix: str, model: type, obj: Any) -> dict[str, Any]:
    """The values of every column an INSERT of the new `obj` writes, the columns' Python-side
    defaults filled in (on the object too, as a flush would: the session then knows them all)."""
    values = obj.__dict__  # (the ORM keeps a mapped object's attributes in its __dict__)
    params = {}
    for key, name, default in _written_attributes(prefix, model):
        value = values.get(key)
        if value is None and default is not None:
            value = default.arg(None) if default.is_callable else default.arg
            setattr(obj, key, value)
        elif key not in values:
            setattr(obj, key, value)
        params[name] = value
    return params


@functools.cache
def _written_attributes(prefix: str, model: type) -> tuple[tuple[str, str, sa.ColumnDefault | None], ...]:
    """For _insert_params (read from the mapper once): each written column's attribute, its
    parameter's name and its Python-side default."""
    mapper: sa.orm.Mapper[Any] = sa.inspect(model)
    written = set(_insert_columns(cast(sa.Table, mapper.local_table)))
    return tuple(
        (
            attribute.key,
            prefix + column.name,
            column.default if isinstance(column.default, sa.ColumnDefault) else None,
        )
        for attribute in mapper.column_attrs
        if (column := attribute.columns[0]).name in written
    )


def _take_seat_and_register_locked(pool: SeatPool, registration: Registration) -> bool:
    """take_seat_and_register() in the ORM's steps, for a database whose writers are serialised."""
    pool = lock_pool(pool.id)
    waitlisted = db.session.scalar(
        sa.select(WaitlistEntry.id)
        .where(
            WaitlistEntry.seat_pool_id == pool.id,
            WaitlistEntry.email_normalized == registration.email_normalized,
            WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES),
        )
        .limit(1)
    )
    if pool.seats_taken >= pool.capacity or waitlisted is not None:
        return False
    take_seat(pool)
    db.session.add(registration)
    db.session.flush()
    if registration.status == RegistrationStatus.CONFIRMED:
        queue_email(EmailKind.REGISTRATION_CONFIRMED, registration=registration)
    return True


def free_seat(pool: SeatPool, now: datetime) -> None:
    """Give a seat back and offer it to the waitlist."""
    _free(pool)
    offer_free_seats(pool, now)


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
    # A promo code used by a hold that lapsed is given back (events/pricing.py).
    pricing.release_for_registrations([r.id for r in expired_holds if r.promo_code_id is not None], now)

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
    """Offer each free general seat to the next person waiting; an offer holds the seat for them.

    A waitlist offer is for a general seat: a community seat still kept (events/pricing.py
    community_seats) is not offered, whoever freed it, until it joins general sale at its
    release time (the sweep then offers it: pools_with_released_community_seats). Someone
    offered a seat may still claim it at the community price while one is kept; their general
    seat then goes to the next person (claim_offer)."""
    starts_at = pool_first_start(pool)
    if starts_at is None or starts_at <= now:
        return []  # no offers for something that has started
    general_left = pricing.community_seats(pool.offering, pool, now).left_for_general
    offered = []
    while general_left > 0:
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
        general_left -= 1
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


def lapsed_in_pool(
    pool_id: int | sa.ColumnElement[int],
    now: datetime | sa.ColumnElement[datetime],
    grace_start: datetime | sa.ColumnElement[datetime],
) -> sa.ColumnElement[bool]:
    """The condition: the pool holds a hold or a waitlist offer that ran out, not yet released
    (grace_start: holds.payment_grace_start(now)). Values, or bound parameters of a statement
    built once."""
    held = (
        sa.select(Registration.id)
        .where(Registration.seat_pool_id == pool_id, lapsed_hold_as_of(now, grace_start))
        .exists()
    )
    offered = (
        sa.select(WaitlistEntry.id)
        .where(
            WaitlistEntry.seat_pool_id == pool_id,
            WaitlistEntry.status == WaitlistStatus.OFFERED,
            WaitlistEntry.offer_expires_at <= now,
        )
        .exists()
    )
    return sa.or_(held, offered)


def pools_with_lapsed(now: datetime) -> list[int]:
    """Ids of pools holding an expired hold or offer (for the worker's sweep)."""
    held = sa.select(Registration.seat_pool_id).where(lapsed_hold(now))
    offered = sa.select(WaitlistEntry.seat_pool_id).where(
        WaitlistEntry.status == WaitlistStatus.OFFERED, WaitlistEntry.offer_expires_at <= now
    )
    return sorted(set(db.session.scalars(held.union(offered))))


def pools_with_released_community_seats(now: datetime) -> list[int]:
    """Ids of pools whose kept community seats have joined general sale while people wait and
    seats are free: their waitlist is offered those seats (for the worker's sweep). Read
    without a lock; offer_free_seats decides under it."""
    candidates = db.session.execute(
        sa.select(SeatPool.id, Offering.community_release_hours, sa.func.min(Session.starts_at))
        .join(Offering, Offering.id == SeatPool.offering_id)
        .join(Session, Session.seat_pool_id == SeatPool.id)
        .where(
            Offering.community_seats > 0,
            SeatPool.seats_taken < SeatPool.capacity,
            Session.status == SessionStatus.SCHEDULED,
            sa.select(WaitlistEntry.id)
            .where(WaitlistEntry.seat_pool_id == SeatPool.id, WaitlistEntry.status == WaitlistStatus.WAITING)
            .exists(),
        )
        .group_by(SeatPool.id, Offering.community_release_hours)
    ).tuples()
    return sorted(
        pool_id
        for pool_id, release_hours, first_start in candidates
        if first_start is not None and first_start - timedelta(hours=release_hours) <= now < first_start
    )


def sweep_lapsed(now: datetime) -> int:
    """Release every lapsed hold and offer, and offer community seats that joined general sale
    to the waitlist, one pool per transaction. Returns pools touched."""
    lapsed = set(pools_with_lapsed(now))
    released = set(pools_with_released_community_seats(now))
    db.session.rollback()
    for pool_id in sorted(lapsed | released):
        pool = lock_pool(pool_id)
        release_lapsed(pool, now)
        if pool_id in released:
            offer_free_seats(pool, now)
        db.session.commit()
    return len(lapsed | released)
