"""The embedded default (SQLite, as `make run` serves it) against a bare Flask page on the same
server (issue 17, goal 5).

A fresh instance folder: `flask db upgrade` and `flask seed-demo`, as `make run` does. Then the
app and the bare page (bench/bare_app.py) each under `flask run` (the dev server `make run`
starts) and under gunicorn (2 workers, 8 threads), loaded by a keep-alive client in this process
for BENCH_SECONDS each, in alternating repetitions (BENCH_EMBEDDED_REPETITIONS, at least 3).
Prints requests per second, the ratio's median and range per server, and a verdict line (goal:
the schedule at least 0.5x the bare page on `make run`'s server).
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
REPETITIONS = max(3, int(os.environ.get("BENCH_EMBEDDED_REPETITIONS", "3")))
CLIENTS = 8
GOAL = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(url + "/", timeout=1).raise_for_status()
            return process, url
        except requests.RequestException:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"{command} did not start")


def load(url: str, seconds: float) -> float:
    """Requests per second of GET url from CLIENTS keep-alive connections."""
    requests.get(url, timeout=10).raise_for_status()  # warm: measure serving, not the first render
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].partition("/")[2]
    done = [0] * CLIENTS
    errors: list[str] = []
    stop = time.perf_counter() + seconds

    def client(n: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while time.perf_counter() < stop:
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(str(response.status))
                if response.getheader("Connection", "").lower() == "close" or response.version == 10:
                    connection.close()
                    connection = http.client.HTTPConnection(host, int(port), timeout=10)
                done[n] += 1
            except (OSError, http.client.HTTPException) as error:
                errors.append(repr(error))
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests to {url}: {errors[:3]}")
    return sum(done) / (time.perf_counter() - started)


def main() -> None:
    instance = Path(tempfile.mkdtemp(prefix="events-bench-embedded-"))
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "FLASK_APP": "wsgi.py",
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench",
            "RATELIMIT_ENABLED": "0",
        }
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    processes: list[subprocess.Popen] = []
    try:
        for step in (["db", "upgrade"], ["seed-demo"]):
            subprocess.run(
                [sys.executable, "-m", "flask", *step], cwd=ROOT, env=env, check=True, capture_output=True
            )
        flask_run = [sys.executable, "-m", "flask", "--app", "{app}", "run", "--port", "{port}"]
        gunicorn = [
            sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "8",
            "--bind", "127.0.0.1:{port}", "--log-level", "warning", "{app}",
        ]  # fmt: skip
        servers = {
            "make run (flask run)": (
                [part.replace("{app}", "wsgi.py") for part in flask_run],
                [part.replace("{app}", "bench/bare_app.py") for part in flask_run],
            ),
            "gunicorn": (
                [part.replace("{app}", "wsgi:app") for part in gunicorn],
                [part.replace("{app}", "bench.bare_app:app") for part in gunicorn],
            ),
        }
        verdict_ratio = 0.0
        for label, (app_command, bare_command) in servers.items():
            app_process, app_url = start(app_command, env)
            bare_process, bare_url = start(bare_command, env)
            processes += [app_process, bare_process]
            bare, schedule = [], []
            for _ in range(REPETITIONS):
                bare.append(load(bare_url + "/", SECONDS))
                schedule.append(load(app_url + "/", SECONDS))
            ratios = [s / b for s, b in zip(schedule, bare, strict=True)]
            ratio, low, high = statistics.median(ratios), min(ratios), max(ratios)
            print(
                f"{label:22s} bare {statistics.median(bare):6.0f} req/s, "
                f"schedule {statistics.median(schedule):6.0f} req/s: ratio median {ratio:.2f}, "
                f"range {low:.2f}-{high:.2f} ({REPETITIONS} alternating runs of {SECONDS:.0f} s)"
            )
            if label.startswith("make run"):
                verdict_ratio = ratio
            for process in (app_process, bare_process):
                process.terminate()
                process.wait(timeout=10)
        print(
            f"SUMMARY embedded: the schedule on make run's server {verdict_ratio:.2f}x a bare page "
            f"(goal {GOAL}x) {'OK' if verdict_ratio >= GOAL else 'BELOW TARGET'}"
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
