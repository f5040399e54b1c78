"""The nightly retention run against PostgreSQL at a clinic's ten-year size.

N registrations (BENCH_RETENTION_REGISTRATIONS, default 300,000; people of three bookings each,
their last sessions spread over the last four years, so about half are past the 24 months) and
an outbox row each, built by set-based SQL. Measured in alternating repetitions, the rows put
back between them:
- the retention run (anonymise_expired: find who is due, anonymise them in chunks, commit each);
- the baseline: the least any run must do, one UPDATE of the same rows' names by id in the same
  chunks (it finds no one and touches nothing else).
Then the run with nothing due (every night after the first): its time against the baseline's.
Prints median and range of each and their ratio.
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
os.environ.setdefault("INSTANCE_PATH", str(Path("/tmp") / f"events-bench-retention-{os.getpid()}"))

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
COUNT = int(os.environ.get("BENCH_RETENTION_REGISTRATIONS", "300000"))
REPEATS = int(os.environ.get("BENCH_RETENTION_REPEATS", "3"))
SESSIONS = 2000  # one workshop each, ending from four years ago to now


def main() -> None:
    name = f"events_bench_retention_{os.getpid()}"
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
    from events.extensions import db
    from events.models import Registration, utcnow
    from events.privacy import anonymise, retention

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True, "RATELIMIT_ENABLED": False})
    with app.app_context():
        upgrade()
        now = utcnow()
        sql = db.session.execute
        sql(
            sa.text(
                "INSERT INTO clinics (name, tagline, email, phone, website_url, currency, timezone) "
                "VALUES ('Bench', '', '', '', '', 'usd', 'America/Chicago')"
            )
        )
        sql(
            sa.text(
                "INSERT INTO locations (slug, name, address_line1, address_line2, city, region, postal_code, "
                "country, timezone, phone, directions, is_active) VALUES ('b', 'B', '1 Main', '', 'M', 'MN', "
                "'55401', 'US', 'America/Chicago', '', '', true)"
            )
        )
        start = now - timedelta(days=4 * 365)
        step = (now - start) / SESSIONS
        sql(
            sa.text(
                "INSERT INTO offerings (slug, kind, topic, title, summary, description, what_to_bring, location_id, "  # noqa: E501
                "price_cents, currency, capacity, cancellation_cutoff_hours, late_cancel_refund_percent, "
                "reminder_offsets, followup_delay_minutes, is_published, is_cancelled, created_at, updated_at) "  # noqa: E501
                "SELECT 'o' || g, 'workshop', 'Posture', 'Offering ' || g, '', '', '', 1, 1500, 'usd', 1000000, 24, 0, "  # noqa: E501
                "'1440', 120, true, false, :start, :start FROM generate_series(1, :n) g"
            ),
            {"n": SESSIONS, "start": start.replace(tzinfo=None)},
        )
        sql(
            sa.text(
                "INSERT INTO seat_pools (offering_id, capacity, seats_taken, version) "
                "SELECT id, 1000000, 0, 0 FROM offerings"
            )
        )
        sql(
            sa.text(
                "INSERT INTO sessions (offering_id, location_id, seat_pool_id, starts_at, ends_at, status, "
                "cancel_reason, sequence) SELECT o.id, 1, p.id, :start + (o.id * :step) - interval '1 hour', "
                ":start + (o.id * :step), 'scheduled', '', 0 FROM offerings o JOIN seat_pools p ON p.offering_id = o.id"  # noqa: E501
            ),
            {"start": start.replace(tzinfo=None), "step": step},
        )
        # Person k has bookings on three offerings near each other in time.
        sql(
            sa.text(
                "INSERT INTO registrations (seat_pool_id, offering_id, name, email, email_normalized, phone, status, "  # noqa: E501
                "price_cents, currency, token, source, browser_key, created_at, cancel_reason) "
                "SELECT p.id, p.offering_id, 'Person ' || (g / 3), 'p' || (g / 3) || '@example.com', "
                "'p' || (g / 3) || '@example.com', '612-555-0100', 'confirmed', 1500, 'usd', 't' || g, 'public', '', "  # noqa: E501
                ":start, '' FROM generate_series(0, :n - 1) g "
                # Person g/3's three bookings: offerings 7 apart (about two weeks), in id order.
                "JOIN seat_pools p ON p.offering_id = 1 + ((g / 3) * :sessions / (:n / 3) + (g % 3) * 7) % :sessions "  # noqa: E501
                "ORDER BY g"
            ),
            {"n": COUNT, "sessions": SESSIONS, "start": start.replace(tzinfo=None)},
        )
        sql(
            sa.text(
                "INSERT INTO outbox_emails (dedupe_key, kind, registration_id, to_email, status, send_after, attempts, "  # noqa: E501
                "last_error, context, created_at) SELECT 'registration_confirmed:r' || id, 'registration_confirmed', "  # noqa: E501
                "id, email, 'sent', created_at, 1, '', '{}', created_at FROM registrations"
            )
        )

        def put_back() -> None:
            """Every registration as it was built: a person is three ids in a row."""
            sql(
                sa.text(
                    "UPDATE registrations SET anonymised_at = NULL, name = 'Person', phone = '612-555-0100', "
                    "email = 'p' || ((id - :base) / 3) || '@example.com', email_normalized = 'p' || "
                    "((id - :base) / 3) || '@example.com', token = 'b' || id"
                ),
                {"base": base},
            )
            db.session.commit()
            sql(sa.text("ANALYZE"))
            db.session.commit()

        db.session.commit()
        base = db.session.scalar(sa.select(sa.func.min(Registration.id)))
        put_back()
        due = retention.due_rows(retention.retention_cutoff(now))
        total = db.session.scalar(sa.select(sa.func.count()).select_from(Registration))
        print(
            f"{total} registrations, {len(due.registration_ids)} due ({due.people} people), {SESSIONS} sessions"  # noqa: E501
        )

        def retention_run() -> float:
            began = time.perf_counter()
            result = retention.anonymise_expired(now)
            assert result is not None and result.registrations == len(due.registration_ids), result
            return time.perf_counter() - began

        def baseline() -> float:
            began = time.perf_counter()
            for ids in anonymise.chunks(due.registration_ids):
                sql(sa.update(Registration).where(Registration.id.in_(ids)).values(name="Person x"))
                db.session.commit()
            return time.perf_counter() - began

        runs: dict[str, list[float]] = {"retention": [], "baseline": []}
        for _ in range(REPEATS):
            runs["baseline"].append(baseline())
            runs["retention"].append(retention_run())
            idle_began = time.perf_counter()
            idle = retention.anonymise_expired(now)
            idle_s = time.perf_counter() - idle_began
            assert idle is not None and idle.registrations == 0
            runs.setdefault("idle", []).append(idle_s)
            put_back()

        def spread(values: list[float]) -> str:
            return f"median {statistics.median(values):.2f} s (range {min(values):.2f}-{max(values):.2f})"

        ratios = [r / b for r, b in zip(runs["retention"], runs["baseline"], strict=True)]
        idle_ratios = [i / b for i, b in zip(runs["idle"], runs["baseline"], strict=True)]
        print(f"baseline (one UPDATE of the due rows' names, chunked): {spread(runs['baseline'])}")
        print(
            f"retention run (find, anonymise rows, payments, refunds, outbox, audit): {spread(runs['retention'])}"  # noqa: E501
        )
        print(f"retention run with nothing due: {spread(runs['idle'])}")
        print(
            f"SUMMARY registrations={total} due={len(due.registration_ids)} "
            f"retention_over_baseline={statistics.median(ratios):.2f}x "
            f"(range {min(ratios):.2f}-{max(ratios):.2f}) "
            f"idle_over_baseline={statistics.median(idle_ratios):.2f}x"
        )
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
