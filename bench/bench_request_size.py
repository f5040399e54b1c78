"""A gunicorn worker's memory under four concurrent 100 MB POSTs to /stripe/webhook.

Starts gunicorn as the Procfile does (2 workers, 4 threads) on a fresh SQLite instance,
samples each worker's RSS every 50 ms while four clients each send 100 MB with a bad
signature, and prints RSS before, at the peak and after, with each answer. With the body
limit the answers are 413 and the peak stays within a few MB of the start (about 110 MB);
without it (before the fix) a worker peaked at 800-920 MB from 109 MB at rest, each request
answered 400 only after the whole body was read.

    python bench/bench_request_size.py
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
POSTS, POST_MB = 4, 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_rss_mb(master_pid: int) -> dict[int, int]:
    out = subprocess.run(["ps", "--ppid", str(master_pid), "-o", "pid=,rss="], capture_output=True, text=True)
    return {int(pid): int(rss) // 1024 for pid, rss in (line.split() for line in out.stdout.splitlines())}


def post_large(port: int, results: list) -> None:
    chunk = b"x" * MB
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.putrequest("POST", "/stripe/webhook")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Stripe-Signature", "t=1,v1=bad")
    conn.putheader("Content-Length", str(POST_MB * MB))
    conn.endheaders()
    started = time.monotonic()
    try:
        for _ in range(POST_MB):
            conn.send(chunk)
    except OSError:
        pass  # the server may close early, having answered already
    try:
        response = conn.getresponse()
        response.read()
        status = response.status
    except (OSError, http.client.HTTPException) as error:
        status = type(error).__name__
    conn.close()
    results.append((status, time.monotonic() - started))


def main() -> None:
    port = free_port()
    instance = tempfile.mkdtemp(prefix="bench-request-size-")
    env = dict(os.environ, INSTANCE_PATH=instance, RATELIMIT_ENABLED="0", PYTHONPATH=str(ROOT))
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    flask_cmd = [sys.executable, "-m", "flask", "--app", "wsgi:app", "db", "upgrade"]
    subprocess.run(flask_cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [str(gunicorn), "--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(4):  # every worker imports and serves once before the baseline
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
        time.sleep(1)
        before = worker_rss_mb(server.pid)
        peak = dict(before)
        done = threading.Event()

        def sample():
            while not done.is_set():
                for pid, rss in worker_rss_mb(server.pid).items():
                    peak[pid] = max(peak.get(pid, 0), rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        results: list = []
        clients = [threading.Thread(target=post_large, args=(port, results)) for _ in range(POSTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        time.sleep(1)
        done.set()
        sampler.join()
        after = worker_rss_mb(server.pid)
        for status, seconds in results:
            print(f"POST {POST_MB} MB -> {status} in {seconds:.1f} s")
        for pid in sorted(before):
            rss = f"{before[pid]} MB before, {peak[pid]} MB at peak, {after.get(pid)} MB after"
            print(f"worker {pid}: RSS {rss}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
