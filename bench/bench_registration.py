"""Registration bursts on PostgreSQL, served by gunicorn (gunicorn.conf.py, 2 workers) on loopback.

Goal 3 of issue 17, measured in one run, in repetitions that alternate between the reference and
the product (median and range of REPETITIONS):
- the reference: pgbench committing the same transaction shape as a registration on one row
  (lock the seat pool row with a conditional UPDATE, insert a registration, insert its outbox
  row, COMMIT: one statement per round trip) with CLIENTS clients;
- registrations/s on one offering with plenty of seats: CLIENTS threads each posting the
  register form for visitors who opened the form beforehand (untimed: the form page is a page
  view, not a registration), every POST a new person taking a seat;
- the race: RACERS people at once for the last 5 seats: how many got one, errors, p95.

The goal: registrations/s >= 0.3 x pgbench's commits/s (median of the ratios), and every race
exactly 5 confirmed with 0 errors, p95 under 1 s (median of the races' p95s).
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.load import race_for_seats  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
REPETITIONS = 3
CLIENTS = 16
REGISTRATIONS = 400  # per repetition
PGBENCH_SECONDS = 5
RACERS = 200
LAST_SEATS = 5
GOAL_RATIO = 0.3
GOAL_P95_MS = 1000
# The broker the web process nudges the worker through after a commit that queued an email, as
# in production (without it a SQLite file serves as broker). Nobody consumes the nudges: the
# queue is emptied at the end. Give the bench a Redis database of its own.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")

# One registration's transaction, as an application sends it: each statement a round trip.
PGBENCH_SCRIPT = """\\set n random(1, 2000000000)
BEGIN;
UPDATE seat_pools SET seats_taken = seats_taken + 1, version = version + 1
  WHERE id = :pool AND seats_taken < capacity;
INSERT INTO registrations (seat_pool_id, offering_id, name, email, email_normalized, phone, status,
  price_cents, currency, token, source, browser_key, created_at, confirmed_at, cancel_reason)
  VALUES (:pool, :offering, 'Pg Bench', 'pgb' || :client_id || '-' || :n || '@example.com',
  'pgb' || :client_id || '-' || :n || '@example.com', '', 'confirmed', 0, 'usd',
  md5(:client_id || '-' || :n || clock_timestamp()::text), 'public', '', now(), now(), '');
INSERT INTO outbox_emails (dedupe_key, kind, registration_id, to_email, status, send_after, attempts,
  last_error, context, created_at)
  VALUES ('registration_confirmed:r' || currval('registrations_id_seq'), 'registration_confirmed',
  currval('registrations_id_seq'), 'pgb@example.com', 'pending', now(), 0, '', '{}', now());
COMMIT;
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(env: dict) -> subprocess.Popen:
    """The product as Procfile runs it (gunicorn.conf.py), without the access log."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--access-logfile",
            "/dev/null",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{env['PORT']}"
    for _ in range(150):
        try:
            requests.get(url + "/", timeout=1)
            return process
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def worker_cpu_seconds(master_pid: int) -> float:
    """CPU time (user + system) used so far by the gunicorn master's worker processes: the cost
    of a registration in CPU, which a machine busy with other work inflates less than time."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def pgbench_commits_per_second(db_url: str, pool_id: int, offering_id: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT)
    try:
        done = subprocess.run(
            [
                "pgbench",
                "-n",
                "-c",
                str(CLIENTS),
                "-j",
                "2",
                "-T",
                str(PGBENCH_SECONDS),
                "-f",
                script.name,
                "-D",
                f"pool={pool_id}",
                "-D",
                f"offering={offering_id}",
                db_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    if match is None:
        raise RuntimeError(f"pgbench said:\n{done.stdout}\n{done.stderr}")
    return float(match.group(1))


def registrations_per_second(
    app_url: str, slug: str, repetition: int, master_pid: int
) -> tuple[float, int, float]:
    """CLIENTS threads post the form of REGISTRATIONS people who each opened it first.
    Returns registrations/s, how many failed, and the web workers' CPU ms per registration."""

    def open_form(i: int) -> tuple[requests.Session, str]:
        http = requests.Session()
        token = TOKEN.search(http.get(f"{app_url}/offerings/{slug}", timeout=30).text).group(1)
        http.close()  # (keeps the cookies) they post later, as a browser would, on a new connection
        return http, token

    with ThreadPoolExecutor(CLIENTS) as pool:
        visitors = list(pool.map(open_form, range(REGISTRATIONS)))

    def register(i: int) -> bool:
        http, token = visitors[i]
        response = http.post(
            f"{app_url}/offerings/{slug}/register",
            allow_redirects=False,
            data={"csrf_token": token, "name": f"B {i}", "email": f"roomy{repetition}-{i}@example.com"},
            timeout=60,
        )
        return response.status_code == 302 and "/manage/" in response.headers.get("Location", "")

    cpu = worker_cpu_seconds(master_pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(register, range(REGISTRATIONS)))
    elapsed = time.perf_counter() - started
    cpu_ms = (worker_cpu_seconds(master_pid) - cpu) * 1000 / REGISTRATIONS
    for http, _ in visitors:
        http.close()
    return sum(results) / elapsed, results.count(False), cpu_ms


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return (
        f"{fmt.format(statistics.median(values))} (range {fmt.format(min(values))}-{fmt.format(max(values))})"
    )


def main() -> None:
    name = f"events_bench_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "RATELIMIT_ENABLED": "0",
        "SECRET_KEY": "bench",
        "INSTANCE_PATH": f"/tmp/{name}",
        "FLASK_APP": "wsgi.py",
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": "2",
        "REDIS_URL": REDIS_URL,
    }
    app_url = f"http://127.0.0.1:{env['PORT']}"
    process = None
    try:
        subprocess.run(
            [sys.executable, "-m", "flask", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=env, check=True)
        with psycopg.connect(db_url) as conn:
            pool_id, offering_id = conn.execute(
                "SELECT p.id, o.id FROM seat_pools p JOIN offerings o ON o.id = p.offering_id"
                " WHERE o.slug = 'bench-pgbench'"
            ).fetchone()
        process = serve(env)

        pgbench_rates, app_rates, ratios, races, cpu_costs, race_costs = [], [], [], [], [], []
        for repetition in range(REPETITIONS):
            pg_rate = pgbench_commits_per_second(db_url, pool_id, offering_id)
            app_rate, failed, cpu_ms = registrations_per_second(
                app_url, "bench-roomy", repetition, process.pid
            )
            cpu = worker_cpu_seconds(process.pid)
            race = race_for_seats(
                app_url, f"bench-last-seats-{repetition}", RACERS, email_prefix=f"race{repetition}-"
            )
            # (Each racer opens the form, then posts it: both are counted.) The web workers' CPU is
            # what a busy machine inflates least; p95 also waits for whatever else runs on it.
            race_cpu_ms = (worker_cpu_seconds(process.pid) - cpu) * 1000 / RACERS
            pgbench_rates.append(pg_rate)
            app_rates.append(app_rate)
            ratios.append(app_rate / pg_rate)
            races.append(race)
            cpu_costs.append(cpu_ms)
            race_costs.append(race_cpu_ms)
            print(
                f"repetition {repetition + 1}: pgbench same-row commits/s={pg_rate:.0f} "
                f"registrations/s={app_rate:.1f} (failed {failed}, web CPU {cpu_ms:.1f} ms each) "
                f"ratio={app_rate / pg_rate:.2f}; "
                f"race {RACERS} on {LAST_SEATS}: confirmed={race.registered} told_full={race.told_full} "
                f"other={race.other_4xx} errors={race.errors} p50={race.p50_ms:.0f}ms "
                f"p95={race.p95_ms:.0f}ms (web CPU {race_cpu_ms:.1f} ms a racer), "
                f"load average {os.getloadavg()[0]:.1f}"
            )

        p95s = [race.p95_ms for race in races]
        exact = all(race.registered == LAST_SEATS for race in races)
        errors = sum(race.errors + race.other_4xx for race in races)
        ratio_ok = statistics.median(ratios) >= GOAL_RATIO
        race_ok = exact and errors == 0 and statistics.median(p95s) < GOAL_P95_MS
        print(f"pgbench same-row commits/s: {spread(pgbench_rates, '{:.0f}')}")
        print(f"registrations/s on one offering: {spread(app_rates, '{:.0f}')}")
        print(f"web workers' CPU per registration, ms: {spread(cpu_costs, '{:.1f}')}")
        print(f"web workers' CPU per racer (form page and POST), ms: {spread(race_costs, '{:.1f}')}")
        print(f"ratio registrations / pgbench: {spread(ratios)} (goal >= {GOAL_RATIO})")
        print(
            f"race {RACERS} on the last {LAST_SEATS}: confirmed {[race.registered for race in races]}, "
            f"errors {errors}, p95 ms {spread(p95s, '{:.0f}')} (goal exactly {LAST_SEATS}, 0 errors, "
            f"p95 < {GOAL_P95_MS} ms)"
        )
        print(
            f"SUMMARY registration: {statistics.median(ratios):.2f} x pgbench same-row commits "
            f"({'OK' if ratio_ok else 'FAILED'}); race {RACERS} on {LAST_SEATS}: "
            f"{'exact' if exact else 'NOT exact'}, {errors} errors, p95 {statistics.median(p95s):.0f} ms "
            f"({'OK' if race_ok else 'FAILED'})"
        )
        if not (ratio_ok and race_ok):
            sys.exit(1)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=20)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        redis.Redis.from_url(REDIS_URL).delete("celery")  # the unconsumed nudges


SETUP = f"""
from events.app import create_app
from events.extensions import db
from tests.factories import workshop
app = create_app()
with app.app_context():
    for repetition in range({REPETITIONS}):
        last = workshop(capacity=30, slug=f"bench-last-seats-{{repetition}}")
        last.sessions[0].seat_pool.seats_taken = 30 - {LAST_SEATS}
    workshop(capacity=1000000, slug="bench-roomy")
    workshop(capacity=10000000, slug="bench-pgbench")
    db.session.commit()
"""

if __name__ == "__main__":
    main()
