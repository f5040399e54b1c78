"""The embedded default: SQLite database, .eml files, two sweeps in parallel."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from events.app import create_app
from events.extensions import db
from events.models import Attendance, AttendanceStatus, EmailStatus, OutboxEmail
from events.notifications.delivery import deliver_due
from events.registration.services import Person, register
from tests.factories import workshop


@pytest.fixture
def sqlite_app(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'events.sqlite3'}",
            "SECRET_KEY": "test",
            "RATELIMIT_ENABLED": False,
            "MAIL_SERVER": None,
            "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        }
    )
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_sqlite_outbox_to_eml_files_once_with_parallel_sweeps(sqlite_app, tmp_path):
    with sqlite_app.app_context():
        offering = workshop(capacity=30)
        db.session.commit()
        for i in range(12):
            register(offering, None, Person(f"P{i}", f"p{i}@example.com"))
        db.session.remove()

    results = []

    def sweep():
        with sqlite_app.app_context():
            results.append(deliver_due(batch_size=3))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in results) == 12
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 12
    with sqlite_app.app_context():
        statuses = db.session.scalars(sa.select(OutboxEmail.status)).all()
        assert statuses == [EmailStatus.SENT] * 12


def test_sqlite_sweep_queues_each_reminder_and_follow_up_once(sqlite_app):
    from datetime import timedelta

    from events.notifications.schedule import queue_due

    with sqlite_app.app_context():
        soon, past = workshop(capacity=5, days=5), workshop(capacity=5, days=3)
        db.session.commit()
        for offering, email in ((soon, "soon@example.com"), (past, "done@example.com")):
            registration = register(offering, None, Person("P", email)).registration
            registration.created_at = registration.created_at - timedelta(days=2)
        # Checked in: the follow-up's variant comes from the mark, in SQL.
        db.session.add(
            Attendance(
                registration_id=registration.id,
                session_id=past.sessions[0].id,
                status=AttendanceStatus.PRESENT,
            )
        )
        db.session.commit()
        now = soon.sessions[0].starts_at - timedelta(hours=24)
        assert [queue_due(now) for _ in range(3)] == [(1, 1), (0, 0), (0, 0)]
        swept = db.session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.kind != "registration_confirmed")
            .order_by(OutboxEmail.kind)
        ).all()
        assert [r.dedupe_key.split(":")[0] for r in swept] == ["follow_up", "reminder"]
        # The JSON context written by the set-based INSERT reads back as JSON on SQLite too.
        assert [r.context for r in swept] == [{"variant": "attended"}, {}]
        assert [(r.status, r.attempts, r.last_error) for r in swept] == [(EmailStatus.PENDING, 0, "")] * 2


def test_a_registration_nudges_the_worker_through_the_embedded_sqlite_broker(tmp_path):
    """`make run` has no Redis: the after-commit nudge goes through Celery's SQLite broker, so
    a confirmation leaves at once instead of waiting for beat's delivery sweep."""
    from kombu import Connection

    broker_url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    app = create_app(
        {
            "TESTING": True,
            "OUTBOX_PUBLISH": True,
            "CELERY_BROKER_URL": broker_url,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'events.sqlite3'}",
            "SECRET_KEY": "test",
            "RATELIMIT_ENABLED": False,
            "MAIL_SERVER": None,
            "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        }
    )
    with app.app_context():
        upgrade()
        offering = workshop(capacity=3)
        db.session.commit()
        register(offering, None, Person("Ana", "ana@example.com"))
        db.session.remove()
        db.engine.dispose()
    with Connection(broker_url) as conn:
        queue = conn.SimpleQueue("celery")
        message = queue.get(timeout=5)
        assert message.headers["task"] == "worker.tasks.deliver_outbox"
        message.ack()
        queue.close()
