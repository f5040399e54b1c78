"""Staff pages at a clinic's ten-year size, against the schedule page's cache miss (issue 17, goal 1).

Builds the data set on PostgreSQL with set-based SQL (INSERT ... SELECT generate_series, not
ORM objects): by default 10,000 sessions over ten years (500 weekly classes of 20 dates, the
last of them upcoming) and 300,000 registrations (30 a session; a tenth cancelled, some held,
paid classes with their payments), an email per registration (1 in 300 failed), audit entries
and attendance. Then, in the same run and process, times single requests (the Flask test
client, each request in an app context of its own) of every staff page and of the public
schedule rendered afresh (its page cache emptied first: what a miss costs), in alternating
repetitions, and prints each page's median and range, its ratio to the schedule's miss, its
SQL statement count, and a verdict line (goal: every page within 3x the miss).

    python bench/bench_staff_pages.py                                  # the ten-year size
    BENCH_STAFF_SESSIONS=1000 BENCH_STAFF_REGISTRATIONS=30000 python bench/bench_staff_pages.py
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("INSTANCE_PATH", str(Path("/tmp") / f"events-bench-staff-{os.getpid()}"))

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SESSIONS = int(os.environ.get("BENCH_STAFF_SESSIONS", "10000"))
REGISTRATIONS = int(os.environ.get("BENCH_STAFF_REGISTRATIONS", "300000"))
REPETITIONS = int(os.environ.get("BENCH_STAFF_REPETITIONS", "5"))
DATES_PER_CLASS = 20
GOAL_RATIO = 3.0
PASSWORD = "bench password 1"

FIRST_NAMES = [
    "Ana", "Ben", "Carla", "Dmitri", "Elena", "Farah", "Gustavo", "Hana", "Ivan", "Jamal",
    "Keiko", "Liam", "Maya", "Noor", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
]  # fmt: skip
LAST_NAMES = [
    "Lopez", "Nguyen", "Okafor", "Lindqvist", "Schmidt", "Haddad", "Kowalski", "Tanaka",
    "Moreau", "Silva", "Johansson", "Patel", "Murphy", "Rossi", "Novak", "Cohen", "Kim",
    "Olsen", "Baker", "Ibrahim",
]  # fmt: skip


def build(db_url: str) -> dict:
    """The data set, mostly in a few INSERT ... SELECT statements. Returns the ids pages need."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from events.app import create_app
    from events.extensions import db
    from events.models import Clinic, Location, Role, User

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False})
    started = time.perf_counter()
    with app.app_context():
        upgrade()
        db.session.add(Clinic(name="Bench Clinic", timezone="America/Chicago", email="desk@clinic.example"))
        for n in range(8):
            db.session.add(
                Location(
                    slug=f"studio-{n}",
                    name=f"Studio {n}",
                    address_line1=f"{n + 1} Main St",
                    city="Minneapolis",
                    region="MN",
                    postal_code="55401",
                    timezone="America/Chicago",
                )
            )
        for n in range(40):
            db.session.add(
                User(email=f"teacher{n}@clinic.example", name=f"Teacher {n}", role=Role.INSTRUCTOR)
            )
        admin = User(email="admin@clinic.example", name="Sam Admin", role=Role.ADMIN)
        admin.set_password(PASSWORD)
        db.session.add(admin)
        db.session.commit()
        classes = max(1, SESSIONS // DATES_PER_CLASS)
        per_session = max(1, REGISTRATIONS // (classes * DATES_PER_CLASS))
        params = {
            "classes": classes,
            "dates": DATES_PER_CLASS,
            "per_session": per_session,
            "first": FIRST_NAMES,
            "last": LAST_NAMES,
            "admin": admin.id,
        }
        statements = [
            # Weekly classes whose series start one after another over ten years (each a month
            # after it was made; the last few still upcoming), every other one paid.
            """
            INSERT INTO offerings (slug, kind, topic, title, summary, description, what_to_bring,
                location_id, instructor_id, price_cents, currency, capacity, cancellation_cutoff_hours,
                late_cancel_refund_percent, reminder_offsets, followup_delay_minutes, is_published,
                is_cancelled, created_at, updated_at)
            SELECT 'class-' || i, 'class', 'Topic ' || (i % 12), 'Class ' || i || ': ' || (ARRAY['Core',
                'Posture', 'Back Care', 'Balance', 'Mobility', 'Strength'])[1 + i % 6], 'A weekly class',
                '', '', (SELECT min(id) FROM locations) + i % 8, (SELECT min(id) FROM users) + i % 40,
                (i % 2) * 1500, 'usd', 40, 24, 0, '1440,120', 120, true, false,
                now() AT TIME ZONE 'UTC' - interval '10 years 1 month'
                    + i * (interval '10 years 2 months' / :classes),
                now() AT TIME ZONE 'UTC'
            FROM generate_series(0, :classes - 1) AS i
            """,
            "CREATE TEMP TABLE bench_dates AS SELECT o.id AS offering_id, w AS week, o.location_id, "
            "o.created_at + interval '30 days' + w * interval '7 days' AS starts_at "
            "FROM offerings o CROSS JOIN generate_series(0, :dates - 1) AS w",
            "ALTER TABLE bench_dates ADD COLUMN seat_pool_id integer",
            """
            WITH pools AS (
                INSERT INTO seat_pools (offering_id, capacity, seats_taken, version)
                SELECT offering_id, 40, 0, 1 FROM bench_dates ORDER BY offering_id, week
                RETURNING id, offering_id
            ), numbered AS (
                SELECT id, offering_id, row_number() OVER (PARTITION BY offering_id ORDER BY id) - 1 AS week
                FROM pools
            )
            UPDATE bench_dates d SET seat_pool_id = n.id
            FROM numbered n WHERE n.offering_id = d.offering_id AND n.week = d.week
            """,
            """
            INSERT INTO sessions (offering_id, location_id, instructor_id, seat_pool_id, starts_at, ends_at,
                status, cancel_reason)
            SELECT offering_id, location_id, NULL, seat_pool_id, date_trunc('hour', starts_at),
                date_trunc('hour', starts_at) + interval '45 minutes', 'scheduled', ''
            FROM bench_dates ORDER BY starts_at
            """,
            # Registrations in the order people made them (a few days before each class).
            """
            INSERT INTO registrations (seat_pool_id, offering_id, session_id, name, email, email_normalized,
                phone, status, price_cents, currency, token, source, created_at, confirmed_at, cancelled_at,
                cancel_reason, browser_key)
            SELECT s.seat_pool_id, s.offering_id, s.id, f.name || ' ' || l.name,
                f.name || '.' || l.name || s.id || '-' || n || '@example.com',
                lower(f.name || '.' || l.name || s.id || '-' || n || '@example.com'),
                '612-555-' || lpad((n * 37 % 10000)::text, 4, '0'),
                CASE WHEN n % 10 = 0 THEN 'cancelled'
                     WHEN n % 10 = 5 AND s.starts_at > now() AT TIME ZONE 'UTC' THEN 'held'
                     ELSE 'confirmed' END,
                o.price_cents, 'usd', 'bench-' || s.id || '-' || n, 'public',
                s.starts_at - interval '10 days' + n * interval '5 minutes',
                s.starts_at - interval '10 days' + n * interval '5 minutes',
                CASE WHEN n % 10 = 0 THEN s.starts_at - interval '2 days' END, '', ''
            FROM sessions s
            JOIN offerings o ON o.id = s.offering_id
            CROSS JOIN generate_series(1, :per_session) AS n
            CROSS JOIN LATERAL (SELECT (CAST(:first AS text[]))[1 + (s.id * 7 + n) % 20] AS name) f
            CROSS JOIN LATERAL (SELECT (CAST(:last AS text[]))[1 + (s.id * 3 + n * 11) % 20] AS name) l
            ORDER BY s.starts_at, n
            """,
            """
            UPDATE seat_pools p SET seats_taken = c.taken FROM (
                SELECT seat_pool_id, count(*) AS taken FROM registrations
                WHERE status IN ('held', 'confirmed') GROUP BY seat_pool_id
            ) c WHERE c.seat_pool_id = p.id
            """,
            """
            INSERT INTO payments (registration_id, stripe_payment_intent_id, amount_cents, currency, status,
                amount_refunded_cents, last_error, created_at, updated_at, card_brand, card_last4, paid_at)
            SELECT id, 'pi_bench_' || id, price_cents, 'usd', 'succeeded',
                CASE WHEN status = 'cancelled' THEN price_cents ELSE 0 END, '', created_at, created_at,
                'visa', '4242', created_at
            FROM registrations WHERE price_cents > 0 AND status <> 'held'
            """,
            """
            INSERT INTO outbox_emails (dedupe_key, kind, registration_id, session_id, to_email, status,
                send_after, attempts, sent_at, last_error, context, created_at)
            SELECT 'confirmation:r' || id, 'confirmation', id, session_id, email,
                CASE WHEN id % 300 = 0 THEN 'failed' ELSE 'sent' END, created_at,
                CASE WHEN id % 300 = 0 THEN 5 ELSE 1 END,
                CASE WHEN id % 300 = 0 THEN NULL ELSE created_at END,
                CASE WHEN id % 300 = 0 THEN '550 5.1.1 mailbox unavailable' ELSE '' END, '{}', created_at
            FROM registrations
            """,
            """
            INSERT INTO audit_entries (actor_id, action, target_type, target_id, details, created_at)
            SELECT CASE WHEN id % 2 = 0 THEN :admin ELSE NULL END, 'registration.cancelled', 'registration',
                id, json_build_object('reason', 'bench'), cancelled_at
            FROM registrations WHERE status = 'cancelled' ORDER BY cancelled_at
            """,
            """
            INSERT INTO attendance (registration_id, session_id, status, marked_at, marked_by_id)
            SELECT r.id, r.session_id, CASE WHEN r.id % 7 = 0 THEN 'absent' ELSE 'present' END, s.starts_at,
                :admin
            FROM registrations r JOIN sessions s ON s.id = r.session_id
            WHERE r.status = 'confirmed' AND s.starts_at < now() AT TIME ZONE 'UTC'
            """,
        ]
        for statement in statements:
            db.session.execute(sa.text(statement), params)
        db.session.commit()
        # Settle the new rows now (statistics, visibility), as autovacuum would within minutes.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        ids = read_ids()
        db.session.remove()
        db.engine.dispose()
    ids["seconds"] = time.perf_counter() - started
    return ids


def read_ids() -> dict:
    """The counts and ids the pages need, from a database built before (in an app context)."""
    import sqlalchemy as sa

    from events.extensions import db

    now = sa.func.timezone("UTC", sa.func.now())
    return (
        db.session.execute(
            sa.text(
                """
                SELECT (SELECT count(*) FROM sessions) AS sessions,
                       (SELECT count(*) FROM registrations) AS registrations,
                       (SELECT min(id) FROM sessions WHERE starts_at > :now) AS upcoming_session,
                       (SELECT max(id) FROM sessions WHERE starts_at < :now) AS past_session,
                       (SELECT max(offering_id) FROM sessions WHERE starts_at < :now) AS offering,
                       (SELECT max(id) FROM registrations WHERE price_cents > 0 AND status = 'cancelled')
                           AS registration
                """
            ),
            {"now": db.session.scalar(sa.select(now))},
        )
        .one()
        ._asdict()
    )


def staff_pages(ids: dict) -> list[tuple[str, str]]:
    return [
        ("staff home (sessions)", "/staff/"),
        ("admin home", "/staff/admin/"),
        ("offerings list", "/staff/admin/offerings"),
        ("an offering", f"/staff/admin/offerings/{ids['offering']}"),
        ("registrations list", "/staff/admin/registrations"),
        ("search: a name part", "/staff/admin/registrations?q=kowal"),
        ("search: an email part", f"/staff/admin/registrations?q={ids['past_session']}-7%40"),
        ("search: matches no one", "/staff/admin/registrations?q=zzyzx"),
        ("registrations held", "/staff/admin/registrations?status=held"),
        ("registrations, 2nd page", "/staff/admin/registrations?before={before}"),
        ("an offering's regs", f"/staff/admin/registrations?offering_id={ids['offering']}"),
        ("a registration", f"/staff/admin/registrations/{ids['registration']}"),
        ("roster (past class)", f"/staff/sessions/{ids['past_session']}"),
        ("roster (upcoming)", f"/staff/sessions/{ids['upcoming_session']}"),
        ("roster CSV", f"/staff/sessions/{ids['past_session']}/roster.csv"),
        ("roster print", f"/staff/sessions/{ids['past_session']}/print"),
        ("failed emails", "/staff/admin/emails/failed"),
        ("audit trail", "/staff/audit"),
        ("locations", "/staff/admin/locations"),
        ("instructors", "/staff/admin/instructors"),
        ("cancel a booking", f"/staff/admin/registrations/{ids['registration']}/cancel"),
        ("transfer a booking", f"/staff/admin/registrations/{ids['registration']}/transfer"),
        ("correct details", f"/staff/admin/registrations/{ids['registration']}/details"),
        ("move a date", f"/staff/admin/sessions/{ids['upcoming_session']}/move"),
        ("substitute", f"/staff/admin/sessions/{ids['upcoming_session']}/substitute"),
        ("cancel a date", f"/staff/admin/sessions/{ids['upcoming_session']}/cancel"),
        ("message a class", f"/staff/sessions/{ids['upcoming_session']}/message"),
        ("message an offering", f"/staff/admin/offerings/{ids['offering']}/message"),
    ]


def measure(db_url: str, ids: dict) -> None:
    import sqlalchemy as sa

    from events.app import create_app
    from events.catalog.cache import page_cache
    from events.catalog.seat_slots import schedule_pages
    from events.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False})
    client = app.test_client()
    login = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login).group(1)
    response = client.post(
        "/staff/login", data={"email": "admin@clinic.example", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.status_code
    first_page = client.get("/staff/admin/registrations").get_data(as_text=True)
    older = re.search(r"before=(\d+)", first_page)  # (none on a version without paging)
    pages = [
        (label, url.format(before=older.group(1) if older else ""))
        for label, url in staff_pages(ids)
        if older or "{before}" not in url
    ]

    with app.app_context():
        engine = db.engine
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def schedule_miss() -> float:
        with app.app_context():
            page_cache().clear()
            # Rendered afresh, as after a catalog change: not rebuilt from the parts kept for a
            # seat change (events/catalog/seat_slots.py; bench_schedule_miss.py times that one).
            schedule_pages().clear()
        started = time.perf_counter()
        assert client.get("/").status_code == 200
        return time.perf_counter() - started

    def one(url: str) -> tuple[float, int]:
        statements.clear()
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, (url, response.status_code)
        return elapsed, len(statements)

    schedule_miss()  # warm: templates compiled, connections open
    for _, url in pages:
        one(url)
    misses: list[float] = []
    times: dict[str, list[float]] = {label: [] for label, _ in pages}
    counts: dict[str, int] = {}
    for _ in range(REPETITIONS):
        for label, url in pages:
            misses.append(schedule_miss())  # alternating: a miss before every page
            elapsed, counts[label] = one(url)
            times[label].append(elapsed)
    miss = statistics.median(misses)
    print(
        f"schedule page, cache miss: median {miss * 1000:.1f} ms, "
        f"range {min(misses) * 1000:.1f}-{max(misses) * 1000:.1f} ms ({len(misses)} misses)"
    )
    print(f"{'page':26s} {'median':>9s} {'range':>17s} {'ratio':>6s} {'SQL':>4s}")
    worst_label, worst = "", 0.0
    for label, url in pages:
        median = statistics.median(times[label])
        ratio = median / miss
        if ratio > worst:
            worst_label, worst = label, ratio
        low, high = min(times[label]) * 1000, max(times[label]) * 1000
        print(
            f"{label:26s} {median * 1000:7.1f}ms {low:7.1f}-{high:.1f}ms {ratio:5.2f}x {counts[label]:4d}"
            f"  {url}"
        )
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    print(
        f"SUMMARY staff pages at {ids['sessions']} sessions / {ids['registrations']} registrations: "
        f"slowest {worst_label} {worst:.2f}x the schedule's cache miss ({miss * 1000:.1f} ms), "
        f"{REPETITIONS} alternating repetitions, goal within {GOAL_RATIO:.0f}x "
        f"{'OK' if worst <= GOAL_RATIO else 'BELOW TARGET'}"
    )


def main() -> None:
    name = f"events_bench_staff_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        ids = build(db_url)
        print(
            f"built {ids['sessions']} sessions and {ids['registrations']} registrations "
            f"in {ids['seconds']:.1f} s (set-based SQL)"
        )
        measure(db_url, ids)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
