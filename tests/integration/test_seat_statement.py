"""A registration takes its seat in one statement, then commits (seats.take_seat_and_register):
the seat pool's row lock is held for that statement and the COMMIT, nothing in between, and the
statement writes everything a registration needs (the seat, the row, its confirmation email,
the notification cached pages listen for)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
import sqlalchemy as sa
from flask import g
from psycopg import _queries as psycopg_queries

from events.extensions import db as _db
from events.models import (
    OutboxEmail,
    Payment,
    PaymentStatus,
    Registration,
    RegistrationStatus,
    SeatPool,
    WaitlistEntry,
    WaitlistStatus,
)
from events.registration import services
from events.registration.services import Outcome, Person
from tests.factories import workshop
from tests.helpers import csrf_token
from tests.isolation import is_savepoint_statement


@pytest.fixture
def statements(db):
    """The statements sent to the database, and "COMMIT" where a transaction committed."""
    sent: list[str] = []

    def on_execute(_conn, _cursor, statement, *_args):
        sent.append(statement)

    def on_commit(_conn):
        sent.append("COMMIT")

    sa.event.listen(_db.engine, "before_cursor_execute", on_execute)
    sa.event.listen(_db.engine, "commit", on_commit)
    yield sent
    sa.event.remove(_db.engine, "before_cursor_execute", on_execute)
    sa.event.remove(_db.engine, "commit", on_commit)


@pytest.mark.real_commits  # (the notification is delivered on a real COMMIT)
def test_the_seat_the_registration_and_its_email_are_one_statement_then_commit(app, db, statements):
    offering = workshop(capacity=10)
    pool = offering.sessions[0].seat_pool
    pool.seats_taken = 3
    db.session.commit()
    version = pool.version
    listener = psycopg.connect(app.config["SQLALCHEMY_DATABASE_URI"].replace("+psycopg", ""), autocommit=True)
    listener.execute("LISTEN catalog_changed")
    statements.clear()

    result = services.register(offering, None, Person("Ana Lopez", "Ana@Example.com", "612 555 0100"))

    assert result.outcome == Outcome.CONFIRMED
    taking = [i for i, s in enumerate(statements) if "UPDATE seat_pools" in s]
    assert len(taking) == 1, statements
    statement = statements[taking[0]]
    assert "INSERT INTO registrations" in statement and "INSERT INTO outbox_emails" in statement
    assert "seats_taken < seat_pools.capacity" in statement and "pg_notify" in statement
    # The lock is taken by that statement and released by the COMMIT that directly follows it.
    assert statements[taking[0] + 1] == "COMMIT"
    assert not any("FOR UPDATE" in s for s in statements)

    notices = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
    listener.close()
    assert notices == [f"seats:{pool.id}=6@{version + 1}"]
    db.session.expire_all()
    pool = db.session.get(SeatPool, pool.id)
    assert (pool.seats_taken, pool.version) == (4, version + 1)
    registration = db.session.get(Registration, result.registration.id)
    assert (registration.status, registration.email, registration.email_normalized) == (
        RegistrationStatus.CONFIRMED,
        "Ana@Example.com",
        "ana@example.com",
    )
    assert (registration.phone, registration.price_cents, registration.source) == (
        "612 555 0100",
        0,
        "public",
    )
    assert registration.confirmed_at is not None and registration.hold_expires_at is None
    email = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.registration_id == registration.id))
    assert (email.kind, email.dedupe_key, email.to_email) == (
        "registration_confirmed",
        f"registration_confirmed:r{registration.id}",
        "Ana@Example.com",
    )


def test_a_paid_seat_is_held_without_an_email(db):
    offering = workshop(capacity=10, price_cents=2500)
    db.session.commit()

    result = services.register(offering, None, Person("Ana Lopez", "ana@example.com"))

    assert result.outcome == Outcome.HELD
    db.session.expire_all()
    registration = db.session.get(Registration, result.registration.id)
    assert registration.status == RegistrationStatus.HELD and registration.hold_expires_at is not None
    assert registration.price_cents == 2500 and registration.confirmed_at is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0
    assert db.session.get(SeatPool, registration.seat_pool_id).seats_taken == 1


def test_the_statement_takes_no_seat_for_someone_on_the_waitlist(db):
    """Registering directly ends a waitlist place, which only the locked path does: the
    statement refuses them even with a seat free, and writes nothing."""
    offering = workshop(capacity=10)
    pool = offering.sessions[0].seat_pool
    db.session.add(
        WaitlistEntry(
            seat_pool_id=pool.id,
            name="Ana",
            email="ana@example.com",
            email_normalized="ana@example.com",
            status=WaitlistStatus.WAITING,
            token="waiting-ana",
        )
    )
    db.session.commit()
    registration = services._new_registration(
        pool, offering, None, Person("Ana", "ana@example.com"), "public", services.utcnow()
    )

    assert services.seats.take_seat_and_register(pool, registration) is False
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0
    assert db.session.get(SeatPool, pool.id).seats_taken == 0

    # Through register(): the locked path ends their place and takes the seat.
    result = services.register(offering, None, Person("Ana", "ana@example.com"))
    assert result.outcome == Outcome.CONFIRMED
    db.session.expire_all()
    assert db.session.scalar(sa.select(WaitlistEntry.status)) == WaitlistStatus.LEFT
    assert db.session.get(SeatPool, pool.id).seats_taken == 1


def test_a_registration_post_reads_twice_then_takes_its_seat(client, db, statements):
    """Everything a registration POST sends the database: the offering (with the consent
    document its booking asks for), the pool with the person's live registration in it (none),
    and the seat statement, which draws the registration's id itself. Each statement costs the
    web process CPU, which is what limits a burst of registrations for a popular class."""
    offering = workshop(capacity=10)
    db.session.commit()
    g.pop("csrf_token", None)  # (this browser's own, made from its own session)
    token = csrf_token(client.get(f"/offerings/{offering.slug}").get_data(as_text=True))
    statements.clear()

    response = client.post(
        f"/offerings/{offering.slug}/register",
        data={"csrf_token": token, "name": "Ana Reyes", "email": "ana@example.com"},
    )

    assert response.status_code == 302 and "/manage/" in response.headers["Location"]
    sent = [" ".join(s.split()[:2]) for s in statements if s != "COMMIT" and not is_savepoint_statement(s)]
    assert sent == ["SELECT offerings.id,", "SELECT sessions.id,", "WITH seat"], statements


@pytest.mark.parametrize("with_email", [True, False])
def test_the_seat_statement_is_the_same_text_every_time(db, with_email):
    """Its text is compiled once (no IN list expanded per execution), and it stays within what
    psycopg keeps converted (a statement of more than 50 parameters or 4 KB is parsed again on
    every execution: about 5% of a registration POST's CPU)."""
    compiled = services.seats._seat_statement(with_email).compile(dialect=db.engine.dialect)

    assert not compiled.literal_execute_params and not compiled.post_compile_params
    assert len(compiled.params) <= psycopg_queries.MAX_CACHED_STATEMENT_PARAMS
    assert len(compiled.string.encode()) <= psycopg_queries.MAX_CACHED_STATEMENT_LENGTH


def test_a_full_pool_is_locked_only_when_a_lapsed_hold_or_offer_or_their_waitlist_place_is_there(app, db):
    """Everyone who finds a class full is asked one question, built once with the moment as a
    parameter: is there a hold or offer to release, or a waitlist place of theirs to end?"""
    offering = workshop(capacity=3, price_cents=2000)
    pool = offering.sessions[0].seat_pool
    pool.seats_taken = 3
    db.session.commit()
    now = services.utcnow()
    grace = timedelta(minutes=app.config["PAYMENT_GRACE_MINUTES"])

    def needs_the_lock(email: str = "new@example.com", at=now) -> bool:
        return services._needs_the_lock(pool.id, email, at)

    assert not needs_the_lock()

    hold = services._new_registration(pool, offering, None, Person("Held", "held@example.com"), "public", now)
    db.session.add(hold)
    db.session.commit()
    assert not needs_the_lock()  # its time has not run out
    hold.hold_expires_at = now - timedelta(minutes=1)
    db.session.commit()
    assert needs_the_lock()  # ran out, nothing paying
    db.session.add(
        Payment(
            registration_id=hold.id,
            stripe_payment_intent_id="pi_in_flight",
            amount_cents=2000,
            currency="usd",
            status=PaymentStatus.PROCESSING,
        )
    )
    db.session.commit()
    assert not needs_the_lock()  # a payment in flight: its grace
    assert needs_the_lock(at=now + grace)  # and past it
    hold.status = RegistrationStatus.CONFIRMED
    db.session.commit()
    assert not needs_the_lock()

    entry = WaitlistEntry(
        seat_pool_id=pool.id,
        name="Wen",
        email="wen@example.com",
        email_normalized="wen@example.com",
        status=WaitlistStatus.WAITING,
        token="waiting-wen",
    )
    db.session.add(entry)
    db.session.commit()
    assert needs_the_lock("wen@example.com") and not needs_the_lock()
    entry.status = WaitlistStatus.OFFERED
    entry.offer_expires_at = now + timedelta(minutes=5)
    db.session.commit()
    assert not needs_the_lock()
    assert needs_the_lock(at=now + timedelta(minutes=5))  # the offer ran out
