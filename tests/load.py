"""A crowd registering at once, over real HTTP (used by the concurrency test and bench/)."""

from __future__ import annotations

import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass
class RaceResult:
    attempts: int
    registered: int  # redirected to their manage page
    told_full: int  # shown the waitlist
    other_4xx: int
    errors: int  # 5xx or connection failures
    latencies: list[float]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0

    @property
    def p95_ms(self) -> float:
        return self.percentile(95) * 1000


def race_for_seats(base_url: str, slug: str, attempts: int, email_prefix: str = "racer") -> RaceResult:
    """`attempts` different people open the offering and press Register at the same moment."""
    start_line = threading.Barrier(attempts, timeout=120)
    lock = threading.Lock()
    outcome = {"registered": 0, "full": 0, "other": 0, "errors": 0}
    latencies: list[float] = []

    def attempt(i: int) -> None:
        with requests.Session() as http:
            try:
                page = http.get(f"{base_url}/offerings/{slug}", timeout=60)
                token = TOKEN.search(page.text).group(1)
            except Exception:
                start_line.abort()
                raise
            start_line.wait()
            started = time.perf_counter()
            try:
                response = http.post(
                    f"{base_url}/offerings/{slug}/register",
                    data={
                        "csrf_token": token,
                        "name": f"Racer {i}",
                        "email": f"{email_prefix}{i}@example.com",
                    },
                    allow_redirects=False,
                    timeout=120,
                )
                status, body = response.status_code, response.text
            except requests.RequestException:
                status, body = 599, ""
            elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            if status == 302 and "/manage/" in response.headers.get("Location", ""):
                outcome["registered"] += 1
            elif status == 200 and "Join the waitlist" in body:
                outcome["full"] += 1
            elif status >= 500:
                outcome["errors"] += 1
            else:
                outcome["other"] += 1

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        list(pool.map(attempt, range(attempts)))
    return RaceResult(
        attempts, outcome["registered"], outcome["full"], outcome["other"], outcome["errors"], latencies
    )
