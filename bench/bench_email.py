"""Email throughput: 10,000 due reminders sent by the outbox sender to a local SMTP server.

Against PostgreSQL and an aiosmtpd server in a process of its own on loopback. In each of
BENCH_EMAIL_REPETITIONS (3) alternating rounds: plain smtplib sends the same rendered message
BENCH_EMAILS (10,000) times over one connection into the server, then the reminder sweep queues
a reminder for each of 10,000 registrations and the worker's delivery run
(deliver_due_concurrently: claim batches, build, render, SMTP over one connection per thread,
mark sent) sends them; the outbox is emptied before the next round. Prints each round (with
the sender's wall and CPU time per email), the median and range of the sender's rate over
plain smtplib's (the goal: at least 0.8), the duplicates and missing per round (what the
server received per recipient; the goal: none), and a verdict line. BENCH_EMAIL_ROOT times
another checkout's sender (a before/after).
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg

ROOT = Path(os.environ.get("BENCH_EMAIL_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))
os.environ.setdefault("INSTANCE_PATH", str(Path("/tmp") / f"events-bench-email-{os.getpid()}"))


ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
COUNT = int(os.environ.get("BENCH_EMAILS", "10000"))
REPETITIONS = int(os.environ.get("BENCH_EMAIL_REPETITIONS", "3"))
GOAL = 0.8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RemoteCounts:
    """What the SMTP server process received, per recipient."""

    def __init__(self, process):
        self.process = process

    def received(self) -> Counter[str]:
        self.process.stdin.write("REPORT\n")
        self.process.stdin.flush()
        return Counter(json.loads(self.process.stdout.readline()))


def main() -> None:
    name = f"events_bench_email_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    # The SMTP server runs in its own process, as a real mail server would: it must not share
    # the measured sender's interpreter (and GIL).
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("smtp_counting_server.py")), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout.readline().strip() == "READY"
    handler = RemoteCounts(server)
    try:
        run(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", handler, port)
    finally:
        server.stdin.close()
        server.wait(timeout=10)
        from events.extensions import db

        if APP is not None:
            with APP.app_context():
                db.session.remove()
                db.engine.dispose()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


APP = None


def run(db_url: str, handler: RemoteCounts, port: int) -> None:
    global APP
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from events.app import create_app
    from events.extensions import db
    from events.models import (
        Clinic,
        EmailStatus,
        Location,
        Offering,
        OfferingKind,
        OutboxEmail,
        Registration,
        utcnow,
    )
    from events.notifications.delivery import deliver_due, deliver_due_concurrently
    from events.notifications.schedule import queue_due_reminders
    from events.notifications.sender import render_message

    app = APP = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": db_url,
            "TESTING": True,
            "RATELIMIT_ENABLED": False,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": port,
            "MAIL_USE_TLS": False,
            "MAIL_DEFAULT_SENDER": "Bench Clinic <hello@clinic.test>",
            "PUBLIC_BASE_URL": "http://clinic.test",
        }
    )
    with app.app_context():
        upgrade()
        from events.catalog.scheduling import add_session

        db.session.add(Clinic(name="Bench Clinic", timezone="America/Chicago"))
        location = Location(
            slug="bench",
            name="Bench Studio",
            address_line1="1 Main St",
            city="Minneapolis",
            region="MN",
            postal_code="55401",
            timezone="America/Chicago",
        )
        offering = Offering(
            slug="bench",
            kind=OfferingKind.WORKSHOP,
            topic="Posture",
            title="Bench Posture",
            location=location,
            capacity=COUNT + 10,
        )
        db.session.add_all([location, offering])
        db.session.flush()
        start = utcnow() + timedelta(hours=23, minutes=30)  # inside the 24 h reminder window
        local = start.astimezone(location.zone)
        session = add_session(offering, local.date(), local.time().replace(microsecond=0), timedelta(hours=1))
        db.session.flush()
        pool = session.seat_pool
        pool.seats_taken = COUNT
        created = utcnow() - timedelta(days=3)
        db.session.execute(
            sa.insert(Registration),
            [
                dict(
                    seat_pool_id=pool.id,
                    offering_id=offering.id,
                    session_id=None,
                    name=f"Person {i}",
                    email=f"p{i}@example.com",
                    email_normalized=f"p{i}@example.com",
                    status="confirmed",
                    price_cents=0,
                    currency="usd",
                    token=f"bench-token-{i}",
                    created_at=created,
                    confirmed_at=created,
                )
                for i in range(COUNT)
            ],
        )
        db.session.commit()

        # Plain smtplib sends the message the sender would send for the first reminder.
        assert queue_due_reminders(utcnow()) == COUNT
        row = db.session.scalar(sa.select(OutboxEmail).order_by(OutboxEmail.id).limit(1))
        with app.test_request_context("/", base_url="http://clinic.test"):
            message = render_message(row)
        payload = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        db.session.execute(sa.delete(OutboxEmail))
        db.session.commit()

        rounds = []
        for repetition in range(REPETITIONS):
            t0 = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for i in range(COUNT):
                    smtp.sendmail("hello@clinic.test", [f"baseline{i}@example.com"], payload)
            plain_rate = COUNT / (time.perf_counter() - t0)

            before = handler.received()
            t0 = time.perf_counter()
            queued = queue_due_reminders(utcnow())
            sweep_seconds = time.perf_counter() - t0
            assert queued == COUNT, queued
            assert queue_due_reminders(utcnow()) == 0  # a second sweep queues nothing
            t0, cpu0 = time.perf_counter(), time.process_time()
            stats = deliver_due_concurrently()  # what the worker's task runs
            sender_seconds = time.perf_counter() - t0
            # The sender's own CPU (all its threads; the SMTP server is another process): on a
            # shared machine a steadier figure than the rate.
            sender_cpu_us = (time.process_time() - cpu0) / max(stats.sent, 1) * 1e6
            sender_rate = stats.sent / sender_seconds
            db.session.expire_all()
            not_sent = db.session.scalar(
                sa.select(sa.func.count(OutboxEmail.id)).where(OutboxEmail.status != EmailStatus.SENT)
            )
            again = deliver_due(now=utcnow() + timedelta(days=1))  # a second run finds nothing left
            time.sleep(0.5)
            after = handler.received()
            got = {
                k: after[k] - before[k]
                for k in after
                if not k.startswith("baseline") and after[k] > before[k]
            }
            duplicates = sum(v - 1 for v in got.values())
            missing = COUNT - len(got)
            rounds.append((sender_rate / plain_rate, duplicates, missing))
            print(
                f"round {repetition + 1}: plain smtplib {plain_rate:.0f}/s ({len(payload)} bytes each), "
                f"sender {stats.sent} sent in {sender_seconds:.1f} s = {sender_rate:.0f}/s "
                f"({sender_seconds / max(stats.sent, 1) * 1e6:.0f} us wall, {sender_cpu_us:.0f} us CPU each) "
                f"(failed {stats.failed}, retried {stats.retried}): ratio {sender_rate / plain_rate:.2f}; "
                f"duplicates {duplicates}, missing {missing}, rows not sent {not_sent}, "
                f"second run sent {again.sent}; sweep queued {queued} in {sweep_seconds:.1f} s",
                flush=True,
            )
            db.session.execute(sa.delete(OutboxEmail))
            db.session.commit()
    ratios = [ratio for ratio, _, _ in rounds]
    duplicates = sum(d for _, d, _ in rounds)
    missing = sum(m for _, _, m in rounds)
    median = statistics.median(ratios)
    ok = median >= GOAL and duplicates == 0 and missing == 0
    print(
        f"SUMMARY email: {COUNT} reminders through one worker, sender / plain smtplib "
        f"median {median:.2f} (range {min(ratios):.2f}-{max(ratios):.2f}, {REPETITIONS} alternating rounds); "
        f"duplicates {duplicates}, missing {missing}; goal >= {GOAL} with none {'OK' if ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
