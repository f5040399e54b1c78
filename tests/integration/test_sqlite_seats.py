"""The seat rule holds on the embedded default too: SQLite serialises writers with BEGIN IMMEDIATE."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from events.extensions import db
from events.models import Registration, RegistrationStatus, Role, SeatPool, User, WaitlistStatus, utcnow
from events.registration import services
from events.registration.services import Outcome, Person
from events.staff import rosters
from events.staff.errors import RosterRefusal
from tests.conftest import LiveServer, make_test_app
from tests.factories import workshop
from tests.load import race_for_seats

pytestmark = pytest.mark.slow


def test_forty_at_once_for_the_last_three_seats_on_sqlite(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'race.sqlite3'}")
    with app.app_context():
        upgrade()
        offering = workshop(capacity=10)
        offering.sessions[0].seat_pool.seats_taken = 7
        db.session.commit()
        slug, pool_id = offering.slug, offering.sessions[0].seat_pool_id

    server = LiveServer(app)
    server.start()
    try:
        result = race_for_seats(server.url, slug, 40, email_prefix="sqlite")
    finally:
        server.stop()

    assert result.errors == 0 and result.other_4xx == 0
    assert (result.registered, result.told_full) == (3, 37)
    with app.app_context():
        confirmed = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Registration)
            .where(Registration.status == RegistrationStatus.CONFIRMED)
        )
        assert confirmed == 3
        assert db.session.get(SeatPool, pool_id).seats_taken == 10
        db.engine.dispose()


def test_walk_ins_without_email_and_the_full_refusal_on_sqlite(tmp_path):
    """The embedded default: several walk-ins with no email share the empty address (migration
    0010's partial index), and the last seat refuses the next one."""
    app = make_test_app(f"sqlite:///{tmp_path / 'walk-ins.sqlite3'}")
    with app.app_context():
        upgrade()
        teacher = User(email="t@clinic.example", name="Tess", role=Role.INSTRUCTOR)
        db.session.add(teacher)
        offering = workshop(capacity=2)
        session = offering.sessions[0]
        session.starts_at = utcnow() + timedelta(minutes=10)
        session.ends_at = session.starts_at + timedelta(hours=1)
        db.session.commit()
        for name in ("One", "Two"):
            rosters.add_walk_in(session, Person(name, ""), teacher)
        with pytest.raises(RosterRefusal, match="full"):
            rosters.add_walk_in(session, Person("Three", ""), teacher)
        db.session.rollback()
        assert db.session.get(SeatPool, session.seat_pool_id).seats_taken == 2
        names = db.session.scalars(sa.select(Registration.name).order_by(Registration.id)).all()
        assert names == ["One", "Two"]
        db.session.remove()
        db.engine.dispose()


def test_registering_while_waiting_keeps_the_place_until_a_seat_on_sqlite(tmp_path):
    """The embedded default: someone on the waitlist who registers for the full workshop keeps
    their place; once the freed seat is offered to them, registering takes it and ends it."""
    app = make_test_app(f"sqlite:///{tmp_path / 'waitlist.sqlite3'}")
    with app.app_context():
        upgrade()
        offering = workshop(capacity=1)
        db.session.commit()
        taken = services.register(offering, None, Person("Ana", "ana@example.com")).registration
        entry = services.join_waitlist(offering, None, Person("Wes", "wes@example.com")).entry

        full = services.register(offering, None, Person("Wes", "wes@example.com"))

        db.session.expire_all()
        assert full.outcome is Outcome.FULL and entry.status == WaitlistStatus.WAITING
        assert full.waiting is not None and full.waiting.id == entry.id

        services.cancel_registration(taken.id)  # the seat is offered to Wes
        booked = services.register(offering, None, Person("Wes", "wes@example.com"))

        assert booked.outcome is Outcome.CONFIRMED
        db.session.expire_all()
        assert (entry.status, entry.registration_id) == (WaitlistStatus.CLAIMED, booked.registration.id)
        assert db.session.get(SeatPool, offering.sessions[0].seat_pool_id).seats_taken == 1
        db.session.remove()
        db.engine.dispose()
