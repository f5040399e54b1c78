"""The reminder and follow-up sweep against PostgreSQL: its first pass with everything due,
then its idle passes with nothing new to queue.

N confirmed registrations sit inside an open 24 h reminder window and N more inside an open
follow-up window. First, the pass that queues all 2N emails: the set-based sweep (queue_due,
one INSERT ... SELECT per kind) against the per-row path it replaced (load the N due
registrations, queue_email for each: kept here only, as the baseline), in alternating
repetitions, the outbox emptied of them before each. Then, every email queued, one idle
sweep (as the beat runs it every minute): the statements it sent, its time, and the outbox
ids it took from the sequence. A one-line summary last.
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
COUNT = int(os.environ.get("BENCH_SWEEP_REGISTRATIONS", "10000"))
# Repetitions of the first pass, each way (the per-row baseline takes 35-45 s at 10,000 + 10,000).
REPEATS = int(os.environ.get("BENCH_SWEEP_REPEATS", "3"))
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
    from events.models import (
        Clinic,
        Location,
        Offering,
        OfferingKind,
        OutboxEmail,
        Registration,
        RegistrationStatus,
        utcnow,
    )
    from events.notifications.outbox import EmailKind, queue_email
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
        sessions = {}
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
            sessions[slug] = session.id
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

        def vacuum() -> None:
            # What autovacuum does within a minute or so of a bulk change: statistics for the
            # planner, and the visibility map for index-only scans.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))

        def per_row_sweep() -> tuple[int, int]:
            """The baseline: the sweep's per-row path before it was set-based (one read of the
            due registrations, then queue_email, one INSERT, for each), on this bench's windows."""
            queued = []
            for slug, kind, key_parts, context in (
                ("soon", EmailKind.REMINDER, ("1440m",), None),
                ("done", EmailKind.FOLLOW_UP, (), {"variant": "neutral"}),
            ):
                due = db.session.scalars(
                    sa.select(Registration)
                    .join(Offering, Registration.offering_id == Offering.id)
                    .where(Offering.slug == slug, Registration.status == RegistrationStatus.CONFIRMED)
                    .order_by(Registration.id)
                ).all()
                added = 0
                for registration in due:
                    added += bool(
                        queue_email(
                            kind,
                            registration=registration,
                            session_id=sessions[slug],
                            key_parts=key_parts,
                            context=context,
                        )
                    )
                db.session.commit()
                queued.append(added)
            return queued[0], queued[1]

        statements: list[str] = []
        sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

        # The first pass, 2 x COUNT due: set-based and per-row in alternating order, the outbox
        # emptied of reminders and follow-ups (and vacuumed) before each.
        first: dict[str, list[float]] = {"set-based": [], "per-row": []}
        first_statements: dict[str, int] = {}
        sweeps = {"set-based": lambda: tuple(queue_due(utcnow()) or ()), "per-row": per_row_sweep}
        for repetition in range(REPEATS):
            for way in ("set-based", "per-row") if repetition % 2 == 0 else ("per-row", "set-based"):
                db.session.execute(
                    sa.delete(OutboxEmail).where(
                        OutboxEmail.kind.in_([EmailKind.REMINDER, EmailKind.FOLLOW_UP])
                    )
                )
                db.session.commit()
                vacuum()
                statements.clear()
                t0 = time.perf_counter()
                queued = sweeps[way]()
                first[way].append(time.perf_counter() - t0)
                first_statements[way] = len(statements)
                assert tuple(queued) == (COUNT, COUNT), (way, queued)
                took = first[way][-1]
                print(f"first sweep, {way}: queued {queued} in {took:.2f} s, {len(statements)} statements")
        vacuum()  # (both ways leave the same rows: the idle sweep below finds every email queued)

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
        set_based, per_row = statistics.median(first["set-based"]), statistics.median(first["per-row"])
        speedups = [b / a for a, b in zip(first["set-based"], first["per-row"], strict=True)]

        def spread(values: list[float]) -> str:
            return f"median {statistics.median(values):.2f} (range {min(values):.2f}-{max(values):.2f})"

        print(f"first sweep with {COUNT} + {COUNT} due ({REPEATS} alternating repetitions):")
        print(f"  set-based s: {spread(first['set-based'])}")
        print(f"  per-row s: {spread(first['per-row'])}")
        print(f"  per-row / set-based: {spread(speedups)}")
        print(f"  first / idle sweep: {set_based * 1000 / statistics.median(timings):.0f}x")
        print(
            f"SUMMARY registrations={2 * COUNT} first_sweep_s={set_based:.2f} "
            f"first_sweep_statements={first_statements['set-based']} per_row_first_sweep_s={per_row:.2f} "
            f"per_row_first_sweep_statements={first_statements['per-row']} "
            f"speedup={statistics.median(speedups):.1f}x idle_sweep_statements={max(counts)} "
            f"idle_sweep_ms_median={statistics.median(timings):.1f} idle_sweep_ms_max={max(timings):.1f} "
            f"ids_per_idle_sweep={max(ids)} verdict={'ok' if statistics.median(timings) < 100 else 'SLOW'}"
        )
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
