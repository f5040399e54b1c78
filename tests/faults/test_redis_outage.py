"""Redis goes away under traffic: nothing that writes may fail because of it.

Redis is both the rate limiter's storage and Celery's broker. Here it is a private
redis-server of our own (the shared one on :6379 is never touched), killed while registrations
arrive at gunicorn (the production gunicorn.conf.py) beside a real Celery worker and beat:
every registration succeeds (the limiter keeps its limits in memory, the worker's nudge is
dropped after commit), staff sign-in, cancel and pay answer as they would, never 500; when
Redis is back, beat's sweep sends every confirmation exactly once.
"""

from __future__ import annotations

import os
import threading
import time
import types

import pytest
import requests
import sqlalchemy as sa

from events.models import OutboxEmail
from tests.conftest import free_port
from tests.factories import workshop
from tests.faults.conftest import csrf_from, engine_of, register_over_http
from tests.faults.redis_private import PrivateRedis
from tests.gunicorn_server import GunicornServer, web_env
from tests.helpers import cancel_form, wait_until
from tests.worker.conftest import WorkerProcess, worker_env

# gunicorn and Celery, processes of their own, read and write what the test does.
pytestmark = [pytest.mark.slow, pytest.mark.real_commits]
OUTAGE_SECONDS = float(os.environ.get("REDIS_OUTAGE_SECONDS", "10"))
THREADS = 3


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web_worker_and_beat(app, smtp_recorder, private_redis):
    """gunicorn, a Celery worker and beat (sweeping every 2 s), all on the private Redis."""
    web = GunicornServer(
        web_env(
            app,
            REDIS_URL=private_redis.url,
            REGISTER_RATE_LIMIT="100000 per minute",
            LOGIN_RATE_LIMIT="100000 per minute",
            PAY_RATE_LIMIT="100000 per minute",
        ),
        "outage-web",
    ).start()
    env = worker_env(app, types.SimpleNamespace(port=app.config["MAIL_PORT"]), private_redis.url)
    env.update(WORKER_SWEEP_SECONDS="2")
    worker = WorkerProcess(env, "outage-worker").start()
    beat = WorkerProcess(env, "outage-beat", beat=True).start()
    yield web, worker
    for process in (beat, worker, web):
        process.stop()


def test_registrations_succeed_while_redis_is_down_and_their_emails_go_out_once_after(
    app, db, smtp_recorder, private_redis, web_worker_and_beat
):
    web, worker = web_worker_and_beat
    offering = workshop(capacity=5000, title="Outage Workshop")
    paid = workshop(price_cents=1500, capacity=10, title="Paid Outage Workshop")
    db.session.commit()
    base = web.url

    # Redis up: the whole path works (nudge -> worker -> SMTP).
    with requests.Session() as http:
        assert (
            register_over_http(http, base, offering.slug, "Before Outage", "before@example.com").status == 302
        )
    wait_until(lambda: smtp_recorder.messages, 30, "the first confirmation")

    private_redis.kill()
    outage_started = time.monotonic()
    lock = threading.Lock()
    statuses: list[int] = []
    seconds: list[float] = []
    addresses: list[str] = []
    serial = iter(range(1_000_000))

    def visitor():
        while time.monotonic() - outage_started < OUTAGE_SECONDS:
            n = next(serial)
            email = f"outage{n}@example.com"
            with requests.Session() as http:
                started = time.monotonic()
                result = register_over_http(http, base, offering.slug, f"Outage {n}", email, timeout=30)
                took = time.monotonic() - started
            with lock:
                statuses.append(result.status)
                seconds.append(took)
                if result.status == 302:
                    addresses.append(email)

    threads = [threading.Thread(target=visitor) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    # Meanwhile the other limited forms: answered as usual, never a 500.
    others = other_limited_forms(base, paid.slug, manage_of=offering.slug)
    for thread in threads:
        thread.join(timeout=OUTAGE_SECONDS + 60)
    assert not any(thread.is_alive() for thread in threads)
    outage_seconds = time.monotonic() - outage_started

    assert statuses and all(status == 302 for status in statuses), sorted(set(statuses))
    # Quick too: no request waits on broker or limiter retries (kombu's alone took 2 s).
    assert sorted(seconds)[len(seconds) // 2] < 1.5, sorted(seconds)
    assert others == {"login": 400, "password_reset": 302, "waitlist": 409, "cancel": 302, "pay": 400}, others
    with engine_of(app).connect() as conn:
        unsent = conn.execute(
            sa.select(sa.func.count()).select_from(OutboxEmail).where(OutboxEmail.status != "sent")
        )
        assert unsent.scalar() >= len(addresses)  # committed, waiting for the broker

    private_redis.start()
    recovered = time.monotonic()
    expected = {"before@example.com", *addresses, "cancel-me@example.com"}

    def all_sent():
        with engine_of(app).connect() as conn:
            pending = conn.execute(
                sa.select(sa.func.count()).select_from(OutboxEmail).where(OutboxEmail.status != "sent")
            ).scalar()
        received = {rcpt for rcpt, _ in smtp_recorder.messages}
        return pending == 0 and expected <= received

    wait_until(all_sent, 120, "every email after Redis came back")
    delivered_in = time.monotonic() - recovered
    # Two more sweeps of the worker: a duplicate would arrive in them.
    sweeps = worker.finished("worker.tasks.deliver_outbox")
    wait_until(lambda: worker.finished("worker.tasks.deliver_outbox") >= sweeps + 2, 30, "two more sweeps")

    received = [rcpt for rcpt, _ in smtp_recorder.messages]
    message_ids = [msg["Message-ID"] for _, msg in smtp_recorder.messages]
    with engine_of(app).connect() as conn:
        sent_rows = conn.execute(
            sa.select(sa.func.count()).select_from(OutboxEmail).where(OutboxEmail.status == "sent")
        ).scalar()
    assert len(message_ids) == len(set(message_ids)) == sent_rows, "an email was delivered twice"
    once = {"before@example.com", *addresses}
    assert {address: received.count(address) for address in once} == dict.fromkeys(once, 1)
    assert received.count("cancel-me@example.com") == 2  # confirmed, then cancelled
    print(
        f"\n[redis outage {outage_seconds:.1f}s, {THREADS} threads] registrations attempted="
        f"{len(statuses)} succeeded={len(addresses)} 5xx={sum(s >= 500 for s in statuses)}, "
        f"slowest {max(seconds):.2f}s, median {sorted(seconds)[len(seconds) // 2]:.2f}s; "
        f"all {sent_rows} emails delivered {delivered_in:.1f}s after Redis came back, each once"
    )


def other_limited_forms(base: str, paid_slug: str, manage_of: str) -> dict[str, int]:
    """Staff sign-in (wrong password), a reset request, a waitlist join with seats free, a
    cancellation and a card submission with a bad token, during the outage."""
    answers = {}
    with requests.Session() as http:
        page = http.get(f"{base}/staff/login", timeout=30)
        answers["login"] = http.post(
            f"{base}/staff/login",
            data={"csrf_token": csrf_from(page.text), "email": "nobody@clinic.example", "password": "wrong"},
            allow_redirects=False,
            timeout=30,
        ).status_code
        page = http.get(f"{base}/staff/password-reset", timeout=30)
        answers["password_reset"] = http.post(
            f"{base}/staff/password-reset",
            data={"csrf_token": csrf_from(page.text), "email": "nobody@clinic.example"},
            allow_redirects=False,
            timeout=30,
        ).status_code
    with requests.Session() as http:
        page = http.get(f"{base}/offerings/{manage_of}", timeout=30)
        answers["waitlist"] = http.post(
            f"{base}/offerings/{manage_of}/waitlist",
            data={"csrf_token": csrf_from(page.text), "name": "Wait", "email": "wait@example.com"},
            allow_redirects=False,
            timeout=30,
        ).status_code
        registered = register_over_http(
            http, base, manage_of, "Cancel Me", "cancel-me@example.com", timeout=30
        )
        confirm = http.get(f"{base}{registered.location}/cancel", timeout=30)
        answers["cancel"] = http.post(
            f"{base}{registered.location}/cancel",
            data=cancel_form(confirm.text),
            allow_redirects=False,
            timeout=30,
        ).status_code
    with requests.Session() as http:
        held = register_over_http(http, base, paid_slug, "Pay Later", "pay@example.com", timeout=30)
        page = http.get(base + held.location, timeout=30)
        answers["pay"] = http.post(
            base + held.location,
            json={"token": "not-a-card-token"},
            headers={"X-CSRFToken": csrf_from(page.text)},
            timeout=30,
        ).status_code
    return answers


def test_with_redis_unreachable_each_form_works_and_keeps_its_limit_in_this_process(app, db):
    """The issue's reproduction (limit storage on a port where nothing listens): registering
    succeeds, and sign-in attempts are still limited, counted in the process's memory."""
    offering = workshop(capacity=50, title="No Redis Workshop")
    db.session.commit()
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    web = GunicornServer(
        web_env(app, REDIS_URL=nowhere, LOGIN_RATE_LIMIT="2 per minute", REGISTER_RATE_LIMIT="3 per minute"),
        "no-redis-web",
    ).start()
    try:
        with requests.Session() as http:
            registrations = [
                register_over_http(http, web.url, offering.slug, f"N {n}", f"n{n}@example.com").status
                for n in range(4)
            ]
            page = http.get(f"{web.url}/staff/login", timeout=30)
            form = {"csrf_token": csrf_from(page.text), "email": "nobody@clinic.example", "password": "wrong"}
            logins = [
                http.post(f"{web.url}/staff/login", data=form, timeout=30).status_code for _ in range(3)
            ]
    finally:
        web.stop()
    assert registrations == [302, 302, 302, 429]
    assert logins == [400, 400, 429]
