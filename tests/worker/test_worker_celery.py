"""Through a real `celery -A worker.app worker` process on Redis."""

from __future__ import annotations

import os
import signal
import time

import icalendar
import pytest
import redis
import sqlalchemy as sa

from events.models import EmailStatus, OutboxEmail
from events.notifications.publish import wait_until_sent
from tests.factories import workshop
from tests.helpers import wait_until
from tests.worker.conftest import WorkerProcess, free_port, send_task, worker_env

pytestmark = pytest.mark.slow


def outbox(db):
    db.session.expire_all()
    return db.session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id)).all()


def test_confirmation_with_ics_arrives_through_the_worker(db, smtp, celery_worker, publish, book):
    offering = workshop(title="Strong Knees")
    db.session.commit()
    session = offering.sessions[0]
    expected = {
        "start": session.local_start,
        "end": session.local_end,
        "location": f"{session.location.name}, {session.location.full_address}",
    }
    book(offering, "worker@example.com")  # the commit nudges the worker through Redis

    [(rcpt, msg)] = smtp.wait_for(1)
    assert rcpt == "worker@example.com" and msg["Subject"].startswith("You're registered for ")
    assert "http://clinic.test/manage/" in msg.get_body(("plain",)).get_content()
    [part] = [p for p in msg.iter_attachments() if p.get_filename() == "invite.ics"]
    cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
    [event] = cal.walk("VEVENT")
    assert event.decoded("dtstart") == expected["start"]
    assert event.decoded("dtend") == expected["end"]
    assert event["dtstart"].params["TZID"] == event["dtend"].params["TZID"] == "America/Chicago"
    assert str(event["location"]) == expected["location"]
    assert [tz["tzid"] for tz in cal.walk("VTIMEZONE")] == ["America/Chicago"]
    wait_until(lambda: outbox(db)[0].status == EmailStatus.SENT, what="the email marked sent")
    assert outbox(db)[0].status == EmailStatus.SENT


def test_redis_down_registration_succeeds_email_follows(
    app, db, smtp, celery_worker, redis_test_db, book, monkeypatch
):
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setitem(app.config, "OUTBOX_PUBLISH", True)
    monkeypatch.setitem(app.config, "CELERY_BROKER_URL", dead_broker)
    app.extensions.pop("celery_publisher", None)
    offering = workshop()
    db.session.commit()
    started = time.monotonic()
    registration = book(offering, "outage@example.com")
    assert time.monotonic() - started < 5
    assert registration.status.value == "confirmed"
    [row] = outbox(db)
    assert row.status == EmailStatus.PENDING
    assert wait_until_sent()  # the nudge was tried, and failed, in the background
    celery_worker.work_through_queue(redis_test_db)  # nothing reached it
    assert smtp.messages == []
    app.extensions.pop("celery_publisher").close()

    send_task(redis_test_db)  # Redis is back: the next beat sweep
    smtp.wait_for(1)
    wait_until(lambda: outbox(db)[0].status == EmailStatus.SENT, what="the email marked sent, for good")
    assert [r for r, _ in smtp.messages] == ["outage@example.com"]


def test_worker_killed_mid_batch_its_emails_go_out_within_a_minute_once(app, db, smtp, book):
    """With the production settings (a 20 s claim lease, delivery swept every 10 s by beat),
    the emails a killed worker had claimed are sent by another worker within a minute."""
    broker = "redis://127.0.0.1:6379/14"
    redis.Redis.from_url(broker).flushdb()
    env = worker_env(app, smtp, redis_url=broker)
    offering = workshop(capacity=30)
    db.session.commit()
    emails = [f"k{i:02d}@example.com" for i in range(12)]
    for email in emails:
        book(offering, email)
    smtp.handler.delay = 0.4
    first = WorkerProcess(env, "celery-worker-killed").start()
    try:
        send_task(broker)
        smtp.wait_for(4, timeout=30)
        wait_until(lambda: smtp.handler.data_started > 4, what="the next message's DATA")  # (0.4 s long)
        os.killpg(first.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        first.process.wait(timeout=10)
    finally:
        first.stop()
    delivered = len(smtp.messages)
    assert 4 <= delivered < len(emails)
    states = {r.status for r in outbox(db)}
    assert EmailStatus.SENDING in states  # the dead worker's claims
    smtp.handler.delay = 0.0

    # Another worker and the beat, as in production; nobody nudges them.
    second = WorkerProcess(env, "celery-worker-other").start()
    beat = WorkerProcess(env, "celery-beat-after-kill", beat=True).start()
    try:
        smtp.wait_for(len(emails), timeout=90)
        delay = time.monotonic() - killed_at
        wait_until(lambda: {r.status for r in outbox(db)} == {EmailStatus.SENT}, what="every row marked sent")
    finally:
        beat.stop()
        second.stop()
    print(f"killed worker's emails delivered {delay:.1f} s after the kill")
    assert delay < 60
    received = sorted(r for r, _ in smtp.messages)
    assert received == sorted(emails)  # every one, none twice
    assert {r.status for r in outbox(db)} == {EmailStatus.SENT}
    redis.Redis.from_url(broker).flushdb()
