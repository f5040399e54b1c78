"""The schedule page's cache miss after a seat change, beside a bare Flask page (issue 17, goal 4).

PostgreSQL seeded as bench_pages.py does (1,000 upcoming sessions, 20,000 registrations). Single
requests through the Flask test client, in the same process and run:

- "seat change miss": before each request another process takes a seat on the first session of
  the first page (seats_taken and the pool's version, and the NOTIFY with the seats left that a
  registration's flush sends); the timer starts once this process has heard of the change, so
  every timed request misses the page cache (checked) and shows the new seats (checked);
- "own seat change miss": the same change made by this process (its ORM, as a registration):
  it learns the pool's seats at its commit, as it does the notifications' (no statement);
- "catalog change miss": the same after a change to the catalog (catalog_state bumped, as an
  admin edit does): the page is rendered in full;
- "bare page": bench/bare_app.py's page through its own test client.

Repetitions alternate (bare, seat miss, catalog miss); each repetition's figure is the median of
its requests. Prints each kind's median and range over the repetitions, the ratios (bare page
time / miss time: how many misses a second beside bare pages a second) and a verdict line
(goal: a seat change miss >= 0.2x a bare page).

    python bench/bench_schedule_miss.py
    BENCH_MISS_REPETITIONS=5 BENCH_MISS_REQUESTS=100 python bench/bench_schedule_miss.py
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("INSTANCE_PATH", str(Path("/tmp") / f"events-bench-miss-{os.getpid()}"))

from bench_pages import seed  # noqa: E402
from bench_registration import ADMIN_URL  # noqa: E402

REPETITIONS = int(os.environ.get("BENCH_MISS_REPETITIONS", "5"))
REQUESTS = int(os.environ.get("BENCH_MISS_REQUESTS", "60"))
GOAL_RATIO = 0.2
SEATS = re.compile(r"(\d+ seats left|\d+ left|Full - join waitlist)")


def measure(db_url: str) -> None:
    from bare_app import app as bare_app

    from events.app import create_app
    from events.catalog.cache import catalog_listener, page_cache, seats_notification
    from events.extensions import db
    from events.models import SeatPool

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False})
    client, bare = app.test_client(), bare_app.test_client()
    with app.app_context():
        listener = catalog_listener()
        cache = page_cache()
    assert listener is not None, "the bench needs PostgreSQL's catalog listener"
    while not listener.connected:
        time.sleep(0.05)
    assert client.get("/").status_code == 200
    writer = psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True)
    # The first session on the first page: the changed card is on the page measured.
    pool_id, capacity = writer.execute(
        "SELECT sp.id, sp.capacity FROM sessions s JOIN seat_pools sp ON sp.id = s.seat_pool_id "
        "WHERE s.starts_at > now() ORDER BY s.starts_at, s.id LIMIT 1"
    ).fetchone()
    taken = [0]
    settled = [0]  # the listener version at which this process's own last notification is heard

    def settle() -> None:
        """Wait for the notification of this process's own last change (it arrives after the
        commit has counted it): heard later, it would stand for the next change measured."""
        while listener.version < settled[0]:
            time.sleep(0.0005)

    def change(sql: str) -> None:
        settle()
        version = listener.version
        writer.execute(f"{sql}; NOTIFY catalog_changed")
        while listener.version == version:  # heard of in this process: the next request misses
            time.sleep(0.0005)

    def take_a_seat() -> None:
        """Another process takes a seat (its notification brings the seats left, as a flush's does)."""
        settle()
        taken[0] = (taken[0] + 1) % (capacity + 1)
        version = listener.version
        (pool_version,) = writer.execute(
            f"UPDATE seat_pools SET seats_taken = {taken[0]}, version = version + 1 WHERE id = {pool_id} "
            "RETURNING version"
        ).fetchone()
        writer.execute(seats_notification({pool_id: (capacity - taken[0], pool_version)}))
        while listener.version == version:  # heard of in this process: the next request misses
            time.sleep(0.0005)

    def take_a_seat_here() -> None:
        """This process takes a seat (the ORM, as a registration does): it learns the pool's
        seats at its commit."""
        settle()
        taken[0] = (taken[0] + 1) % (capacity + 1)
        settled[0] = listener.version + 2  # counted at the commit, then heard
        with app.app_context():
            pool = db.session.get(SeatPool, pool_id)
            pool.seats_taken = taken[0]
            pool.version += 1
            db.session.commit()

    def edit_catalog() -> None:
        change("UPDATE catalog_state SET version = version + 1 WHERE id = 1")

    def timed(before: Callable[[], None] | None, request: Callable[[], object]) -> float:
        if before is not None:
            before()
        misses = cache.misses
        started = time.perf_counter()
        response = request()
        elapsed = time.perf_counter() - started
        if before is not None:
            assert cache.misses > misses, "the request did not miss the page cache"
            page = response.get_data(as_text=True)  # type: ignore[attr-defined]
            left = capacity - taken[0]
            shown = SEATS.search(page).group(1)  # type: ignore[union-attr]
            assert shown in (f"{left} seats left", f"{left} left", "Full - join waitlist"), (shown, left)
        return elapsed

    kinds: dict[str, tuple[Callable[[], None] | None, Callable[[], object]]] = {
        "bare page": (None, lambda: bare.get("/")),
        "seat change miss": (take_a_seat, lambda: client.get("/")),
        "own seat change miss": (take_a_seat_here, lambda: client.get("/")),
        "catalog change miss": (edit_catalog, lambda: client.get("/")),
    }
    for before, request in kinds.values():  # warm: templates compiled, connections open
        for _ in range(5):
            timed(before, request)
    runs: dict[str, list[float]] = {label: [] for label in kinds}
    for _ in range(REPETITIONS):
        for label, (before, request) in kinds.items():
            runs[label].append(statistics.median(timed(before, request) for _ in range(REQUESTS)))
    writer.close()

    bare_runs = runs["bare page"]
    ratios = {
        label: [bare_time / miss_time for bare_time, miss_time in zip(bare_runs, times, strict=True)]
        for label, times in runs.items()
    }
    print(f"{'request':22s} {'median':>9s} {'range':>17s} {'ratio to bare':>14s} {'ratio range':>12s}")
    for label, times in runs.items():
        low, high = min(times) * 1000, max(times) * 1000
        r = ratios[label]
        print(
            f"{label:22s} {statistics.median(times) * 1000:7.2f}ms {low:7.2f}-{high:.2f}ms "
            f"{statistics.median(r):13.3f}x {min(r):.3f}-{max(r):.3f}"
        )
    seat = ratios["seat change miss"]
    print(
        f"SUMMARY schedule cache miss after a seat change at 1000 sessions: "
        f"{statistics.median(seat):.3f}x a bare Flask page (range {min(seat):.3f}-{max(seat):.3f}, "
        f"{REPETITIONS} alternating repetitions of {REQUESTS} requests; after this process's own "
        f"seat change {statistics.median(ratios['own seat change miss']):.3f}x, after a catalog change "
        f"{statistics.median(ratios['catalog change miss']):.3f}x), goal >= {GOAL_RATIO}x "
        f"{'OK' if statistics.median(seat) >= GOAL_RATIO else 'BELOW TARGET'}"
    )


def main() -> None:
    from flask_migrate import upgrade

    from events.app import create_app

    name = f"events_bench_miss_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": "bench"})
        with app.app_context():
            upgrade()
        seed(app, 1000, 20000)
        measure(db_url)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
