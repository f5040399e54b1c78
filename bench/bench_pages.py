"""Public schedule and JSON API under load, beside a bare Flask page served the same way.

PostgreSQL seeded at scale (1,000 upcoming sessions, 20,000 registrations); the app and the
bare page each under gunicorn (2 workers); load from wrk in a second process on loopback.

Besides the headline figures (a first-time visitor, no cookie) it prints the schedule for a
returning visitor (a signed session cookie to check) and the schedule while registrations
commit all the time (each changes the seats shown, so every page is rendered afresh after it).
Also counts SQL statements per request at 10, 100 and 1,000 sessions (must not grow).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, time, timedelta
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_registration import ADMIN_URL, free_port, serve  # noqa: E402

DURATION = os.environ.get("BENCH_SECONDS", "10")
WRITES_PER_SECOND = float(os.environ.get("BENCH_WRITES_PER_SECOND", "10"))


def seed(app, sessions: int, registrations: int) -> None:
    import sqlalchemy as sa

    from events.catalog.scheduling import add_weekly_series
    from events.extensions import db
    from events.models import Clinic, Location, Offering, OfferingKind, Registration, SeatPool, utcnow

    with app.app_context():
        db.session.add(Clinic(name="Bench Clinic", timezone="America/Chicago"))
        location = Location(
            slug="bench",
            name="Bench",
            address_line1="1 Main",
            city="Minneapolis",
            region="MN",
            postal_code="55401",
            timezone="America/Chicago",
        )
        db.session.add(location)
        weeks = min(20, sessions)
        for n in range(sessions // weeks):
            offering = Offering(
                slug=f"class-{n}",
                kind=OfferingKind.CLASS,
                topic=f"Topic {n % 7}",
                title=f"Class {n}",
                summary="A class",
                location=location,
                price_cents=1500,
                capacity=30,
            )
            db.session.add(offering)
            db.session.flush()
            add_weekly_series(
                offering,
                date.today() + timedelta(days=1 + n % 7),
                time(6 + n % 12, 0),
                timedelta(minutes=45),
                weeks,
            )
        db.session.commit()
        pools = db.session.execute(sa.select(SeatPool.id, SeatPool.offering_id)).all()
        per_pool = registrations // len(pools)
        now = utcnow()
        rows = [
            dict(
                seat_pool_id=pool_id,
                offering_id=offering_id,
                name=f"P {i}",
                email=f"p{pool_id}-{i}@ex.com",
                email_normalized=f"p{pool_id}-{i}@ex.com",
                status="confirmed",
                price_cents=1500,
                currency="usd",
                token=secrets.token_urlsafe(24),
                source="public",
                created_at=now,
                confirmed_at=now,
                phone="",
                cancel_reason="",
            )
            for pool_id, offering_id in pools
            for i in range(per_pool)
        ]
        db.session.execute(sa.insert(Registration), rows)
        db.session.execute(sa.update(SeatPool).values(seats_taken=per_pool, version=SeatPool.version + 1))
        db.session.commit()
        # Settle the new rows now, not in an autovacuum that competes with the first measurement.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


def wrk(url: str, *headers: str) -> dict:
    requests.get(url, timeout=10).raise_for_status()  # warm: measure serving, not the first render
    header_args = [arg for header in headers for arg in ("-H", header)]
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{DURATION}s", "--latency", *header_args, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def latency(p):
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(\w+)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?):\s*(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"rps": rps, "p50": latency(50), "p99": latency(99), "errors": errors}


def registering_meanwhile(app, per_second: float, stop: threading.Event) -> list[int]:
    """Registers people one after another at about `per_second` until stopped (from this
    process: each commit notifies the web workers, whose cached pages all go stale)."""
    import sqlalchemy as sa

    from events.extensions import db
    from events.models import Offering
    from events.registration.services import Person, register

    done = []
    with app.app_context():
        offerings = db.session.scalars(sa.select(Offering).order_by(Offering.id)).all()
        n = 0
        while not stop.wait(1 / per_second):
            offering = offerings[n % len(offerings)]
            register(offering, offering.sessions[0].id, Person(f"W {n}", f"writer{n}@example.com"))
            done.append(n)
            n += 1
        db.session.remove()
    return done


def queries_per_request(database_url: str) -> dict:
    """SQL statements per request at 10, 100 and 1,000 sessions, rendered without the cache."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from events.app import create_app
    from events.extensions import db

    results = {}
    for size in (10, 100, 1000):
        name = f"events_bench_q{size}_{os.getpid()}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            app = create_app(
                {
                    "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
                    "PAGE_CACHE_ENABLED": False,
                    "TESTING": True,
                }
            )
            with app.app_context():
                upgrade()
            seed(app, size, size * 20)
            counts = {}
            with app.app_context():
                statements = []
                sa.event.listen(db.engine, "before_cursor_execute", lambda *a, s=statements: s.append(1))
                client = app.test_client()
                for path in ("/", "/api/v1/sessions", "/offerings/class-0"):
                    statements.clear()
                    assert client.get(path).status_code == 200
                    counts[path] = len(statements)
                db.engine.dispose()
            results[size] = counts
        finally:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return results


def serve_on_a_free_port(app: str, env: dict) -> tuple[subprocess.Popen, str]:
    """`app` under gunicorn as the product runs (bench_registration.serve), on a port of its own."""
    port = free_port()
    return serve({**env, "PORT": str(port)}, app), f"http://127.0.0.1:{port}"


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk (make bench installs it)")
    from flask_migrate import upgrade

    from events.app import create_app

    name = f"events_bench_pages_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": "bench", "INSTANCE_PATH": f"/tmp/{name}"}
    processes = []
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": env["SECRET_KEY"]})
        with app.app_context():
            upgrade()
        seed(app, 1000, 20000)
        app_process, app_url = serve_on_a_free_port("wsgi:app", env)
        bare_process, bare_url = serve_on_a_free_port("bench.bare_app:app", env)
        processes += [app_process, bare_process]

        bare_before = wrk(bare_url + "/")
        schedule = wrk(app_url + "/")
        api = wrk(app_url + "/api/v1/sessions")
        # A returning visitor: their session holds a form token (as after viewing an offering).
        signed = app.session_interface.get_signing_serializer(app).dumps({"csrf_token": "0" * 40})
        with_session = wrk(app_url + "/", f"Cookie: session={signed}")
        stop = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            writer = pool.submit(registering_meanwhile, app, WRITES_PER_SECOND, stop)
            try:
                under_writes = wrk(app_url + "/")
            finally:
                stop.set()
            writes = writer.result()  # raises if a registration failed
        bare_after = wrk(bare_url + "/")
        # The baseline is the better of two measurements, before and after (conservative).
        bare = max(bare_before, bare_after, key=lambda r: r["rps"])
        print(f"bare flask, before/after: {bare_before['rps']:.0f} / {bare_after['rps']:.0f} req/s")
        rows = (
            ("bare flask", bare),
            ("schedule /", schedule),
            ("api /api/v1/sessions", api),
            ("schedule, returning visitor", with_session),
            (f"schedule, {len(writes) / float(DURATION):.0f} regs/s", under_writes),
        )
        for label, r in rows:
            print(
                f"{label:26s} {r['rps']:8.0f} req/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  "
                f"errors {r['errors']}  ratio {r['rps'] / bare['rps']:.2f}"
            )
        counts = queries_per_request(db_url.replace("/" + name, "/postgres"))
        for size, per_path in counts.items():
            print(
                f"queries per request at {size:5d} sessions: "
                + ", ".join(f"{p} {n}" for p, n in per_path.items())
            )
        constant = len({tuple(c.values()) for c in counts.values()}) == 1
        ok = min(schedule["rps"], api["rps"]) / bare["rps"] >= 0.5 and not any(r["errors"] for _, r in rows)
        print(
            f"SUMMARY pages: schedule {schedule['rps'] / bare['rps']:.2f}x, "
            f"api {api['rps'] / bare['rps']:.2f}x, with a session {with_session['rps'] / bare['rps']:.2f}x, "
            f"under writes {under_writes['rps'] / bare['rps']:.2f}x "
            f"bare Flask ({bare['rps']:.0f} req/s), errors {sum(r['errors'] for _, r in rows)}, "
            f"queries constant: {constant} {'OK' if ok and constant else 'BELOW TARGET'}"
        )
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
