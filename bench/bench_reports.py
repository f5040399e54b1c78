"""Report pages at a clinic's ten-year size, against the schedule page's cache miss (issue 16).

Builds the same data set as bench_staff_pages.py (set-based SQL on PostgreSQL: by default
10,000 weekly-class sessions over ten years and 300,000 registrations, with payments, refunds,
attendance and audit entries), adds waitlist entries on a tenth of the sessions, then in the
same run and process times single requests of each report page (presets, breakdowns, the
whole ten years, CSV, the JSON API, an instructor's own page) and of the public schedule
rendered afresh (its page cache emptied first), in alternating repetitions. Prints each
page's median and range, its ratio to the schedule's miss, its SQL statement count, and a
verdict (goal: every page within 3x the miss and well under a second).

The reports read the summary tables the worker keeps (events/reports/summaries.py): the bench
first refreshes them as the worker's sweep would and prints what a rebuild costs and what a
sweep with nothing changed costs (its fingerprint only).

    python bench/bench_reports.py
    BENCH_STAFF_SESSIONS=1000 BENCH_STAFF_REGISTRATIONS=30000 python bench/bench_reports.py
    BENCH_REPORTS_DB=bench_reports_kept python bench/bench_reports.py  # build once, then reuse
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
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("INSTANCE_PATH", str(Path("/tmp") / f"events-bench-reports-{os.getpid()}"))

from bench_staff_pages import ADMIN_URL, PASSWORD, build, read_ids  # noqa: E402

REPETITIONS = int(os.environ.get("BENCH_STAFF_REPETITIONS", "5"))
GOAL_RATIO = 3.0
GOAL_SECONDS = 1.0
DB_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
SUMMARY_TABLES = (
    "report_session_facts", "report_visits", "report_rollups", "report_fill_leads", "report_people_days",
    "report_summary_state",
)  # fmt: skip

REPORT_PAGES = [
    ("last 4 weeks, by offering", "/staff/reports?preset=last_4_weeks&by=offering"),
    ("this month, by location", "/staff/reports?preset=this_month&by=location"),
    ("last month, by instructor", "/staff/reports?preset=last_month&by=instructor"),
    ("this year, by offering", "/staff/reports?preset=this_year&by=offering"),
    ("this year, by week", "/staff/reports?preset=this_year&by=week"),
    ("last year, by month", "/staff/reports?preset=custom&date_from={last_year}-01-01"
        "&date_to={last_year}-12-31&by=month"),
    ("ten years, by month", "/staff/reports?preset=custom&date_from={ten_years_ago}"
        "&date_to={today}&by=month"),
    ("CSV: this year by topic", "/staff/reports/breakdown.csv?preset=this_year&by=topic"),
    ("API: this year", "/api/v1/reports?preset=this_year&by=kind"),
    ("instructor: this year", "instructor:/staff/reports?preset=this_year&by=offering"),
]  # fmt: skip


def add_waitlists(db_url: str) -> None:
    """Waitlists on every tenth session: five joined, two offered (one claimed, one expired)."""
    with psycopg.connect(db_url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute(
            """
            INSERT INTO waitlist_entries (seat_pool_id, name, email, email_normalized, phone, status, token,
                created_at, offered_at, offer_expires_at)
            SELECT s.seat_pool_id, 'Waiting ' || n, 'wait' || s.id || '-' || n || '@example.com',
                'wait' || s.id || '-' || n || '@example.com', '',
                CASE n WHEN 1 THEN 'claimed' WHEN 2 THEN 'expired' ELSE 'waiting' END,
                'bench-wait-' || s.id || '-' || n, s.starts_at - interval '6 days' + n * interval '1 hour',
                CASE WHEN n <= 2 THEN s.starts_at - interval '2 days' END,
                CASE WHEN n <= 2 THEN s.starts_at - interval '1 day' END
            FROM sessions s CROSS JOIN generate_series(1, 5) AS n
            WHERE s.id % 10 = 0
            """
        )
        conn.execute("ANALYZE waitlist_entries")


def sign_in(client, email: str) -> None:
    login = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login).group(1)
    response = client.post("/staff/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.status_code


def measure(db_url: str, ids: dict) -> None:
    import sqlalchemy as sa

    from events.app import create_app
    from events.catalog.cache import page_cache
    from events.catalog.seat_slots import schedule_pages
    from events.extensions import db
    from events.models import User

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False})
    with app.app_context():
        teacher = db.session.scalar(sa.select(User).where(User.email == "teacher0@clinic.example"))
        teacher.set_password(PASSWORD)
        db.session.commit()
        engine = db.engine
    admin = app.test_client()
    sign_in(admin, "admin@clinic.example")
    instructor = app.test_client()
    sign_in(instructor, "teacher0@clinic.example")

    from datetime import date

    today = date.today()
    values = {
        "today": today.isoformat(),
        "ten_years_ago": today.replace(year=today.year - 10).isoformat(),
        "last_year": today.year - 1,
    }
    pages = []
    for label, url in REPORT_PAGES:
        client = admin
        if url.startswith("instructor:"):
            client, url = instructor, url.removeprefix("instructor:")
        pages.append((label, url.format(**values), client))

    from events.reports import summaries

    with app.test_request_context():
        started = time.perf_counter()
        assert summaries.refresh(force=True) == {"rebuilt": True}
        rebuilt = time.perf_counter() - started
        unchanged = []
        for _ in range(3):
            started = time.perf_counter()
            assert summaries.refresh() == {"rebuilt": False}
            unchanged.append(time.perf_counter() - started)
    print(
        f"report summaries: rebuilt in {rebuilt:.2f} s; a sweep with nothing changed "
        f"median {statistics.median(unchanged) * 1000:.0f} ms, range {min(unchanged) * 1000:.0f}-"
        f"{max(unchanged) * 1000:.0f} ms"
    )

    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    miss_cpus: list[float] = []

    def schedule_miss() -> float:
        with app.app_context():
            page_cache().clear()
            schedule_pages().clear()
        started, cpu_started = time.perf_counter(), time.process_time()
        assert admin.get("/").status_code == 200
        miss_cpus.append(time.process_time() - cpu_started)
        return time.perf_counter() - started

    def one(client, url: str) -> tuple[float, float, int]:
        statements.clear()
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        assert response.status_code == 200, (url, response.status_code)
        return elapsed, cpu, len(statements)

    schedule_miss()  # warm: templates compiled, connections open
    for _, url, client in pages:
        one(client, url)
    misses: list[float] = []
    times: dict[str, list[float]] = {label: [] for label, _, _ in pages}
    cpus: dict[str, list[float]] = {label: [] for label, _, _ in pages}
    counts: dict[str, int] = {}
    for _ in range(REPETITIONS):
        for label, url, client in pages:
            misses.append(schedule_miss())  # alternating: a miss before every page
            elapsed, cpu, counts[label] = one(client, url)
            times[label].append(elapsed)
            cpus[label].append(cpu)
    miss = statistics.median(misses)
    print(
        f"schedule page, cache miss: median {miss * 1000:.1f} ms, "
        f"range {min(misses) * 1000:.1f}-{max(misses) * 1000:.1f} ms ({len(misses)} misses), "
        f"CPU median {statistics.median(miss_cpus) * 1000:.1f} ms"
    )
    # CPU: this process's (Python's) time per request, median; steadier than the wall clock
    # on a shared machine, and without the database's own time.
    print(f"{'report page':28s} {'median':>9s} {'range':>17s} {'ratio':>6s} {'CPU':>7s} {'SQL':>4s}")
    worst_label, worst, slowest = "", 0.0, 0.0
    for label, url, _ in pages:
        median = statistics.median(times[label])
        ratio = median / miss
        slowest = max(slowest, median)
        if ratio > worst:
            worst_label, worst = label, ratio
        low, high = min(times[label]) * 1000, max(times[label]) * 1000
        print(
            f"{label:28s} {median * 1000:7.1f}ms {low:7.1f}-{high:.1f}ms {ratio:5.2f}x "
            f"{statistics.median(cpus[label]) * 1000:5.1f}ms {counts[label]:4d}  {url}"
        )
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    ok = worst <= GOAL_RATIO and slowest < GOAL_SECONDS
    print(
        f"SUMMARY report pages at {ids['sessions']} sessions / {ids['registrations']} registrations: "
        f"slowest {worst_label} {worst:.2f}x the schedule's cache miss ({miss * 1000:.1f} ms), "
        f"{slowest * 1000:.0f} ms; {REPETITIONS} alternating repetitions, goal within {GOAL_RATIO:.0f}x "
        f"and under {GOAL_SECONDS:.0f} s {'OK' if ok else 'BELOW TARGET'}"
    )


def reuse(name: str) -> dict | None:
    """The ids of a database kept by an earlier run (BENCH_REPORTS_DB), or None to build it."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
            return None
    from events.app import create_app
    from events.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": DB_URL.format(name=name), "SECRET_KEY": "bench"})
    with app.app_context():
        ids = read_ids()
        db.session.remove()
        db.engine.dispose()
    # No summaries, as in a fresh build: each run's rebuild would otherwise leave the last one's
    # rows dead in the tables (this server runs no autovacuum), and reports would read through them.
    with psycopg.connect(DB_URL.format(name=name).replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(SUMMARY_TABLES)}")
        conn.execute(f"VACUUM ANALYZE {', '.join(SUMMARY_TABLES)}")
    return ids


def main() -> None:
    # BENCH_REPORTS_DB=<name>: build into that database once and keep it; later runs reuse it
    # (the build takes minutes at the ten-year size). Drop it by hand when done.
    kept = os.environ.get("BENCH_REPORTS_DB", "")
    name = kept or f"events_bench_reports_{os.getpid()}"
    ids = reuse(name) if kept else None
    if not kept:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    db_url = DB_URL.format(name=name)
    try:
        if ids is None:
            ids = build(db_url)
            add_waitlists(db_url)
            print(
                f"built {ids['sessions']} sessions and {ids['registrations']} registrations "
                f"in {ids['seconds']:.1f} s (set-based SQL)"
            )
        else:
            print(f"reused {name}: {ids['sessions']} sessions and {ids['registrations']} registrations")
        measure(db_url, ids)
    finally:
        if not kept:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
