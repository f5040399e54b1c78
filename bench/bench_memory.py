"""A web worker's memory under mixed load (issue 17, goal 8): does it stay flat?

One gunicorn worker (4 threads) serves the embedded default (a fresh SQLite instance with the
demo data, as `make run` has) while 8 keep-alive clients in this process walk a mix of pages:
the schedule with changing filters and searches (each a new cache key, so the page caches must
stay bounded), offering pages, the JSON API, the iCal feed, a missing page and staff sign-in.
The worker's resident memory is sampled every BENCH_MEMORY_EVERY seconds for BENCH_MEMORY_SECONDS
(default 120; `BENCH_MEMORY_SECONDS=3600` for the hour the goal names). BENCH_MEMORY_RATE caps
the load in requests a second over all clients (0, the default: as fast as they go), so a long
run need not take the machine: `BENCH_MEMORY_SECONDS=3600 BENCH_MEMORY_RATE=30`. Prints the
samples (each as it is taken, so a long run can be watched), the RSS at start, every
BENCH_MEMORY_REPORT_EVERY seconds (default 600) and at the end, the ratio of the last third's
median to the median just after warm-up (the baseline, same run), the ratio of the last sample
to it, and a verdict line (flat: within 1.10x).
"""

from __future__ import annotations

import http.client
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_embedded import ROOT, free_port

SECONDS = float(os.environ.get("BENCH_MEMORY_SECONDS", "120"))
EVERY = float(os.environ.get("BENCH_MEMORY_EVERY", "5"))
WARM_UP = min(30.0, SECONDS / 4)
CLIENTS = 8
RATE = float(os.environ.get("BENCH_MEMORY_RATE", "0"))  # requests/s over all clients; 0: no cap
REPORT_EVERY = float(os.environ.get("BENCH_MEMORY_REPORT_EVERY", "600"))
FLAT = 1.10
WORDS = ["back", "posture", "strength", "mobility", "desk", "yoga", "core", "hip", "neck", "balance"]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def worker_pid(master: int) -> int:
    """The gunicorn worker: the master's one child."""
    for _ in range(100):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == master:
                    return int(entry.name)
        time.sleep(0.1)
    raise RuntimeError("no gunicorn worker found")


def paths(offering_slugs: list[str]) -> list[str]:
    word = random.choice(WORDS)
    return [
        "/",
        f"/?q={word}{random.randint(0, 10_000)}",  # a new search each time: a new cache key
        f"/?q={word}",
        "/?kind=class",
        "/?price=free",
        f"/offerings/{random.choice(offering_slugs)}",
        "/api/v1/sessions",
        "/calendar.ics",
        "/no-such-page",
        "/staff/login",
    ]


def main() -> None:
    instance = Path(tempfile.mkdtemp(prefix="events-bench-memory-"))
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"FLASK_APP": "wsgi.py", "INSTANCE_PATH": str(instance), "SECRET_KEY": "bench"})
    env["RATELIMIT_ENABLED"] = "0"
    for step in (["db", "upgrade"], ["seed-demo"]):
        subprocess.run(
            [sys.executable, "-m", "flask", *step], cwd=ROOT, env=env, check=True, capture_output=True
        )
    slugs = subprocess.run(
        [sys.executable, "-c", "import sqlite3,sys; print(*[r[0] for r in sqlite3.connect(sys.argv[1])"
         ".execute('select slug from offerings')])", str(instance / "events.sqlite3")],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    stop = threading.Event()
    served, failed = [0], [0]

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        interval = CLIENTS / RATE if RATE > 0 else 0.0  # each client's share of the capped rate
        next_at = time.monotonic()
        while not stop.is_set():
            for path in paths(slugs or ["none"]):
                if interval:
                    next_at += interval
                    if (pause := next_at - time.monotonic()) > 0:
                        if stop.wait(pause):
                            break
                try:
                    connection.request("GET", path)
                    response = connection.getresponse()
                    response.read()
                    served[0] += 1
                    if response.status >= 500:
                        failed[0] += 1
                except (OSError, http.client.HTTPException):
                    failed[0] += 1
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.close()

    try:
        for _ in range(200):
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                probe.request("GET", "/")
                probe.getresponse().read()  # the app is loaded: "start" is a worker that has served
                probe.close()
                break
            except OSError:
                time.sleep(0.1)
        pid = worker_pid(server.pid)
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        samples: list[tuple[float, int]] = []
        while (elapsed := time.monotonic() - started) < SECONDS:
            samples.append((elapsed, rss_kib(pid)))
            print(f"{elapsed:7.1f} s  {samples[-1][1] / 1024:7.1f} MiB  ({served[0]} requests)", flush=True)
            time.sleep(EVERY)
        samples.append((time.monotonic() - started, rss_kib(pid)))
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
        server.terminate()
        server.wait(10)
    baseline = [kib for elapsed, kib in samples if WARM_UP <= elapsed < WARM_UP + max(EVERY * 3, 15)]
    last_third = [kib for elapsed, kib in samples if elapsed >= SECONDS * 2 / 3]
    base, end = statistics.median(baseline or [samples[0][1]]), statistics.median(last_third)
    ratio = end / base
    curve = [samples[0]]
    for mark in range(1, int(SECONDS // REPORT_EVERY) + 1):
        curve.append(min(samples, key=lambda sample: abs(sample[0] - mark * REPORT_EVERY)))
    if curve[-1] is not samples[-1]:
        curve.append(samples[-1])
    print("curve: " + ", ".join(f"{elapsed / 60:.1f} min {kib / 1024:.1f} MiB" for elapsed, kib in curve))
    print(f"last sample / after warm-up: {samples[-1][1] / base:.3f}")
    verdict = "OK" if ratio <= FLAT and not failed[0] else "MISSED"
    print(
        f"SUMMARY worker RSS after warm-up {base / 1024:.1f} MiB, last third {end / 1024:.1f} MiB: "
        f"ratio {ratio:.3f} over {SECONDS:.0f} s, {served[0]} requests ({served[0] / SECONDS:.0f}/s), "
        f"{failed[0]} failed; goal flat (within {FLAT:.2f}x) {verdict}"
    )


if __name__ == "__main__":
    main()
