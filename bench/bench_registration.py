"""Registration under load, against PostgreSQL, served by gunicorn (2 workers) on loopback.

Prints: the race of 200 simultaneous attempts for the last 5 seats (confirmed, errors, p95),
and registrations per second on an offering with plenty of seats beside requests per second
of a bare Flask page served the same way in the same run (the ratio).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.load import race_for_seats  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(target: str, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--threads",
            "8",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            target,
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/", timeout=1)
            return process, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{target} did not start")


def requests_per_second(fn, count: int, concurrency: int = 16) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(fn, range(count)))
    elapsed = time.perf_counter() - started
    assert all(results), "some requests failed"
    return count / elapsed


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
    }
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
        app_process, app_url = serve("wsgi:app", env)
        bare_process, bare_url = serve("bench.bare_app:app", env)
        processes += [app_process, bare_process]

        race = race_for_seats(app_url, "bench-last-seats", 200, email_prefix="bench")
        print(
            f"race: attempts=200 confirmed={race.registered} told_full={race.told_full} "
            f"errors={race.errors} p50={race.p50_ms:.0f}ms p95={race.p95_ms:.0f}ms"
        )

        def register(i: int) -> bool:
            with requests.Session() as http:
                token = TOKEN.search(http.get(f"{app_url}/offerings/bench-roomy").text).group(1)
                response = http.post(
                    f"{app_url}/offerings/bench-roomy/register",
                    allow_redirects=False,
                    data={"csrf_token": token, "name": f"B {i}", "email": f"roomy{i}@example.com"},
                )
                return response.status_code == 302

        def bare(i: int) -> bool:  # the same two round trips, to a bare page
            with requests.Session() as http:
                return http.get(bare_url + "/").ok and http.get(bare_url + "/").ok

        bare_rps = requests_per_second(bare, 400)
        reg_rps = requests_per_second(register, 400)
        print(
            f"throughput: registrations/s={reg_rps:.1f} bare-page pairs/s={bare_rps:.1f} "
            f"ratio={reg_rps / bare_rps:.2f}"
        )
        ok = race.registered == 5 and race.errors == 0
        print(
            f"SUMMARY registration: race 5/5 confirmed={race.registered} errors={race.errors} "
            f"p95={race.p95_ms:.0f}ms; {reg_rps:.0f} registrations/s = {reg_rps / bare_rps:.2f} x bare Flask"
            f" {'OK' if ok else 'FAILED'}"
        )
        if not ok:
            sys.exit(1)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SETUP = """
from events.app import create_app
from events.extensions import db
from tests.factories import workshop
app = create_app()
with app.app_context():
    last = workshop(capacity=30, slug="bench-last-seats")
    last.sessions[0].seat_pool.seats_taken = 25
    workshop(capacity=100000, slug="bench-roomy")
    db.session.commit()
"""

if __name__ == "__main__":
    main()
