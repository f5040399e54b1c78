"""Registration bursts on PostgreSQL, served by gunicorn (gunicorn.conf.py, 2 workers) on loopback.

Goal 3 of issue 17, measured in one run, in repetitions that alternate between the reference and
the product (median and range of REPETITIONS):
- the reference: pgbench committing the same transaction shape as a registration on one row
  (lock the seat pool row with a conditional UPDATE, insert a registration, insert its outbox
  row, COMMIT: one statement per round trip) with CLIENTS clients for SECONDS;
- registrations/s on one offering with plenty of seats: wrk (a C client, as pgbench is) posting
  the register form from CLIENTS connections for SECONDS, for visitors who opened the form
  beforehand (untimed: the form page is a page view, not a registration), every POST a new
  person taking a seat; counted as the registrations the database confirmed in that time;
- the floor: a bare Flask form (bench/bare_app.py: CSRF, session cookie, validation, flash,
  redirect, no database) posted the same way on the same server: what Flask alone costs;
- the race: RACERS people at once for the last 5 seats: how many got one, errors, p95.
Each run also prints what the clients cost (pgbench's and wrk's CPU, and their share of the
machine's cores) and how busy the whole machine was meanwhile.

The goal: registrations/s >= 0.3 x pgbench's commits/s (median of the ratios), and every race
exactly 5 confirmed with 0 errors, p95 under 1 s (median of the races' p95s).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

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
SECONDS = 5  # each timed run: pgbench's, wrk's
WRK_THREADS = 2
# People who opened the form before a timed run: more than it can post (a run that posts them
# all is run again with twice as many).
VISITORS = 1500
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


def serve(env: dict, app: str = "wsgi:app") -> subprocess.Popen:
    """The product as Procfile runs it (gunicorn.conf.py), without the access log; or `app`
    (bench/bare_app.py's) served the same way."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--access-logfile",
            "/dev/null",
            app,
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


def pgbench_commits_per_second(db_url: str, pool_id: int, offering_id: int) -> tuple[float, float]:
    """pgbench's commits/s, and its own CPU seconds (user + system) as a share of the run's
    time on every core: the client's share of the machine."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
                str(SECONDS),
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
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    return float(match.group(1)), client_cpu / (SECONDS * os.cpu_count())


def prepare_visitors(page_url: str, count: int, email_prefix: str) -> Path:
    """`count` people open the form page (untimed: a page view, not a registration). Writes a
    file for bench/post_visitors.lua, one a line: the Cookie header their browser would send and
    their form filled in (their own token, a new email each)."""

    def open_form(i: int) -> str:
        with requests.Session() as http:
            page = http.get(page_url, timeout=60)
            token = TOKEN.search(page.text).group(1)
            cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
        form = urlencode({"csrf_token": token, "name": f"B {i}", "email": f"{email_prefix}{i}@example.com"})
        return f"{cookie}\t{form}"

    with ThreadPoolExecutor(CLIENTS) as pool:
        lines = list(pool.map(open_form, range(count)))
    with tempfile.NamedTemporaryFile("w", suffix=".visitors", delete=False) as visitors:
        visitors.write("\n".join(lines) + "\n")
    return Path(visitors.name)


@dataclass
class Posting:
    """One wrk run of form posts: what wrk saw, and the CPU it and the web workers used."""

    seconds: float
    posted: int
    redirected: int
    other: int
    spares: int  # GET / sent by a thread with no prepared visitor left
    socket_errors: int
    other_statuses: str  # the HTTP statuses of answers that were neither a redirect nor a 200
    client_cpu_s: float  # wrk's own user + system time
    web_cpu_s: float  # the gunicorn workers'
    machine_busy: float  # the share of every core busy meanwhile, whoever used it (0..1)


def post_with_wrk(base_url: str, post_path: str, visitors: Path, master_pid: int) -> Posting:
    """Post the prepared visitors' forms for SECONDS from CLIENTS connections (wrk: a C client,
    as pgbench is), each visitor at most once (bench/post_visitors.lua)."""
    env = {**os.environ, "VISITORS": str(visitors), "POST_PATH": post_path, "WRK_THREADS": str(WRK_THREADS)}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    web_before = worker_cpu_seconds(master_pid)
    machine_before = machine_cpu_ticks()
    out = subprocess.run(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{CLIENTS}",
            f"-d{SECONDS}s",
            "--timeout",
            "30s",
            "-s",
            str(ROOT / "bench" / "post_visitors.lua"),
            base_url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    busy, total = (after - before for after, before in zip(machine_cpu_ticks(), machine_before, strict=True))
    web_cpu = worker_cpu_seconds(master_pid) - web_before
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    counts = re.search(r"posted (\d+) redirected (\d+) other (-?\d+) spares (\d+)", out)
    duration = re.search(r"requests in ([\d.]+)(m?s)", out)
    if counts is None or duration is None:
        raise RuntimeError(f"wrk said:\n{out}")
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Posting(
        seconds=float(duration.group(1)) / (1000 if duration.group(2) == "ms" else 1),
        posted=int(counts.group(1)),
        redirected=int(counts.group(2)),
        other=int(counts.group(3)),
        spares=int(counts.group(4)),
        socket_errors=socket_errors,
        other_statuses=" ".join(re.findall(r"other statuses:(.*)", out)).strip(),
        client_cpu_s=(children_after.ru_utime + children_after.ru_stime)
        - (children_before.ru_utime + children_before.ru_stime),
        web_cpu_s=web_cpu,
        machine_busy=busy / total if total else 0.0,
    )


def machine_cpu_ticks() -> tuple[int, int]:
    """All cores' busy and total ticks so far (/proc/stat: busy is all but idle and iowait)."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def database_now(db_url: str) -> datetime:
    """The database's clock, as a registration's created_at is written (UTC, naive)."""
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT timezone('UTC', clock_timestamp())").fetchone()[0]


def registrations_per_second(
    app_url: str, db_url: str, slug: str, visitors: int, repetition: int, master_pid: int
) -> tuple[float, int, Posting]:
    """Registrations/s on one offering: wrk posts the register form of people who opened it
    beforehand, every POST a new person taking a seat, for SECONDS. The rate is what the
    database confirmed in that time (the registrations it holds, created from the moment wrk
    started to the moment it ended), not what the client counted."""
    prepared = prepare_visitors(f"{app_url}/offerings/{slug}", visitors, f"roomy{repetition}-")
    try:
        started = database_now(db_url)
        posting = post_with_wrk(app_url, f"/offerings/{slug}/register", prepared, master_pid)
        ended = database_now(db_url)
    finally:
        prepared.unlink()
    if posting.spares:
        raise VisitorsRanOut(visitors)
    with psycopg.connect(db_url) as conn:
        confirmed = conn.execute(
            "SELECT count(*) FROM registrations r JOIN offerings o ON o.id = r.offering_id"
            " WHERE o.slug = %s AND r.status = 'confirmed' AND r.created_at BETWEEN %s AND %s",
            (slug, started, ended),
        ).fetchone()[0]
    return confirmed / (ended - started).total_seconds(), confirmed, posting


class VisitorsRanOut(Exception):
    """wrk posted every prepared visitor before its time was up: prepare more."""


def bare_form_posts_per_second(bare_url: str, visitors: int, master_pid: int) -> tuple[float, Posting]:
    """The floor: the bare Flask form (bench/bare_app.py) posted the same way."""
    prepared = prepare_visitors(f"{bare_url}/form", visitors, "bare-")
    try:
        posting = post_with_wrk(bare_url, "/form", prepared, master_pid)
    finally:
        prepared.unlink()
    if posting.spares:
        raise VisitorsRanOut(visitors)
    return posting.redirected / posting.seconds, posting


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return (
        f"{fmt.format(statistics.median(values))} (range {fmt.format(min(values))}-{fmt.format(max(values))})"
    )


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk (make bench installs it)")
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
    bare_env = {**env, "PORT": str(free_port())}
    app_url = f"http://127.0.0.1:{env['PORT']}"
    bare_url = f"http://127.0.0.1:{bare_env['PORT']}"
    processes = []
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
        processes.append(process)
        bare = serve(bare_env, "bench.bare_app:app")
        processes.append(bare)

        pgbench_rates, app_rates, ratios, races, cpu_costs, race_costs = [], [], [], [], [], []
        floor_rates, floor_costs, wrk_costs, failures = [], [], [], 0
        visitors = VISITORS
        for repetition in range(REPETITIONS):
            pg_rate, pgbench_share = pgbench_commits_per_second(db_url, pool_id, offering_id)
            while True:
                try:
                    app_rate, confirmed, posting = registrations_per_second(
                        app_url, db_url, "bench-roomy", visitors, repetition, process.pid
                    )
                    break
                except VisitorsRanOut:
                    visitors *= 2
            while True:
                try:
                    floor_rate, floor = bare_form_posts_per_second(bare_url, visitors, bare.pid)
                    break
                except VisitorsRanOut:
                    visitors *= 2
            cpu_ms = posting.web_cpu_s * 1000 / max(confirmed, 1)
            floor_ms = floor.web_cpu_s * 1000 / max(floor.redirected, 1)
            wrk_ms = posting.client_cpu_s * 1000 / max(posting.posted, 1)
            wrk_share = posting.client_cpu_s / (posting.seconds * os.cpu_count())
            failed = posting.other + posting.socket_errors + floor.other + floor.socket_errors
            failures += failed
            statuses = f", answered {posting.other_statuses}" if posting.other_statuses else ""
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
            floor_rates.append(floor_rate)
            floor_costs.append(floor_ms)
            wrk_costs.append(wrk_share)
            races.append(race)
            cpu_costs.append(cpu_ms)
            race_costs.append(race_cpu_ms)
            print(
                f"repetition {repetition + 1}: pgbench same-row commits/s={pg_rate:.0f} "
                f"(client {pgbench_share:.0%} of the cores) "
                f"registrations/s={app_rate:.1f} (web CPU {cpu_ms:.1f} ms each; wrk {wrk_ms:.2f} ms a post, "
                f"{wrk_share:.0%} of the cores; machine {posting.machine_busy:.0%} busy; "
                f"failed {posting.other + posting.socket_errors}{statuses}) ratio={app_rate / pg_rate:.2f}; "
                f"bare form posts/s={floor_rate:.0f} (web CPU {floor_ms:.1f} ms each); "
                f"race {RACERS} on {LAST_SEATS}: confirmed={race.registered} told_full={race.told_full} "
                f"other={race.other_4xx} errors={race.errors} p50={race.p50_ms:.0f}ms "
                f"p95={race.p95_ms:.0f}ms (web CPU {race_cpu_ms:.1f} ms a racer), "
                f"load average {os.getloadavg()[0]:.1f}"
            )

        p95s = [race.p95_ms for race in races]
        exact = all(race.registered == LAST_SEATS for race in races)
        errors = sum(race.errors + race.other_4xx for race in races)
        ratio_ok = statistics.median(ratios) >= GOAL_RATIO and failures == 0
        race_ok = exact and errors == 0 and statistics.median(p95s) < GOAL_P95_MS
        print(f"pgbench same-row commits/s: {spread(pgbench_rates, '{:.0f}')}")
        print(f"registrations/s on one offering: {spread(app_rates, '{:.0f}')} ({failures} posts failed)")
        print(f"web workers' CPU per registration, ms: {spread(cpu_costs, '{:.1f}')}")
        print(
            f"the floor, a bare Flask form post on the same server: {spread(floor_rates, '{:.0f}')}/s, "
            f"web CPU ms each {spread(floor_costs, '{:.1f}')}"
        )
        print(f"wrk's share of the cores while posting: {spread(wrk_costs, '{:.0%}')}")
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
        for process in processes:
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
