"""The reminder and follow-up sweep with nothing new to queue, against PostgreSQL.

N confirmed registrations sit inside an open 24 h reminder window and N more inside an open
follow-up window, every email already queued. Prints, for one idle sweep (queue_due, as the
beat runs it every minute): the statements it sent, its time, and the outbox ids it took
from the sequence. A one-line summary last.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("INSTANCE_PATH", str(Path("/tmp") / f"events-bench-sweep-{os.getpid()}"))

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
COUNT = int(os.environ.get("BENCH_SWEEP_REGISTRATIONS", "2500"))
SWEEPS = 10


def main() -> None:
    name = f"events_bench_sweep_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        run(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(db_url: str) -> None:
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from events.app import create_app
    from events.catalog.scheduling import add_session
    from events.extensions import db
    from events.models import Clinic, Location, Offering, OfferingKind, OutboxEmail, Registration, utcnow
    from events.notifications.schedule import queue_due

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True, "RATELIMIT_ENABLED": False})
    with app.app_context():
        upgrade()
        db.session.add(Clinic(name="Bench Clinic", timezone="America/Chicago"))
        location = Location(
            slug="bench",
            name="Bench Studio",
            address_line1="1 Main St",
            city="Minneapolis",
            region="MN",
            postal_code="55401",
            timezone="America/Chicago",
        )
        db.session.add(location)
        now = utcnow()
        # One workshop starting in 23.5 h (its 24 h reminder is due), one that ended 3 h ago
        # (its follow-up, 2 h after the end, is due).
        for slug, start in (
            ("soon", now + timedelta(hours=23, minutes=30)),
            ("done", now - timedelta(hours=4)),
        ):
            offering = Offering(
                slug=slug,
                kind=OfferingKind.WORKSHOP,
                topic="Posture",
                title=f"Bench {slug}",
                location=location,
                capacity=COUNT + 10,
            )
            db.session.add(offering)
            db.session.flush()
            local = start.astimezone(location.zone)
            session = add_session(
                offering, local.date(), local.time().replace(microsecond=0), timedelta(hours=1)
            )
            db.session.flush()
            session.seat_pool.seats_taken = COUNT
            created = now - timedelta(days=3)
            db.session.execute(
                sa.insert(Registration),
                [
                    dict(
                        seat_pool_id=session.seat_pool.id,
                        offering_id=offering.id,
                        session_id=None,
                        name=f"Person {i}",
                        email=f"{slug}{i}@example.com",
                        email_normalized=f"{slug}{i}@example.com",
                        status="confirmed",
                        price_cents=0,
                        currency="usd",
                        token=f"bench-{slug}-{i}",
                        created_at=created,
                        confirmed_at=created,
                    )
                    for i in range(COUNT)
                ],
            )
        db.session.commit()

        t0 = time.perf_counter()
        first = queue_due(utcnow())
        print(f"first sweep: queued {first} in {time.perf_counter() - t0:.2f} s")
        assert tuple(first) == (COUNT, COUNT), first
        # What autovacuum does within a minute or so of a bulk load: statistics for the
        # planner, and the visibility map for index-only scans.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))

        statements = []
        sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

        def last_id() -> int:
            with db.engine.connect() as conn:
                return conn.scalar(sa.text("SELECT last_value FROM outbox_emails_id_seq"))

        timings, counts, ids = [], [], []
        for _ in range(SWEEPS):
            before = last_id()
            statements.clear()
            t0 = time.perf_counter()
            result = queue_due(utcnow())
            timings.append((time.perf_counter() - t0) * 1000)
            counts.append(len(statements))
            ids.append(last_id() - before)
            assert tuple(result) == (0, 0), result
        rows = db.session.scalar(sa.select(sa.func.count(OutboxEmail.id)))
        print(f"idle sweep over {COUNT} + {COUNT} registrations in open windows, {rows} outbox rows:")
        print(f"  statements: {counts}")
        print(f"  ms: {[round(t, 1) for t in timings]}")
        print(f"  outbox ids taken: {ids}")
        print(
            f"SUMMARY registrations={2 * COUNT} idle_sweep_statements={max(counts)} "
            f"idle_sweep_ms_median={statistics.median(timings):.1f} idle_sweep_ms_max={max(timings):.1f} "
            f"ids_per_idle_sweep={max(ids)}"
        )
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
