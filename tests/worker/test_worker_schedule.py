"""Reminders and follow-ups found by the sweep, with an injected `now`."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from events.models import (
    Attendance,
    AttendanceStatus,
    EmailStatus,
    OfferingKind,
    OutboxEmail,
    Registration,
    SessionStatus,
    utcnow,
)
from events.notifications.delivery import deliver_due
from events.notifications.outbox import EmailKind, dedupe_key, queue_email
from events.notifications.schedule import queue_due, queue_due_followups, queue_due_reminders
from events.registration.services import cancel_registration
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import wait_until
from tests.isolation import is_savepoint_statement

CHICAGO = ZoneInfo("America/Chicago")
M = timedelta(minutes=1)


def emails(db, kind):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(OutboxEmail).where(OutboxEmail.kind == kind).order_by(OutboxEmail.id)
    ).all()


def reminder_keys(db):
    return sorted((r.to_email, r.dedupe_key.rsplit(":", 1)[1]) for r in emails(db, EmailKind.REMINDER))


def setup_workshop(db, day, start=time(18, 0), kind=OfferingKind.WORKSHOP, sessions=1, capacity=20, **kw):
    offering = make_offering(make_location(), kind, capacity=capacity, **kw)
    made = [make_session(offering, day + timedelta(days=7 * i), start) for i in range(sessions)]
    db.session.commit()
    return offering, made


def test_reminders_at_24h_and_2h_windows_exactly_once(db, book):
    offering, [session] = setup_workshop(db, upcoming_day(5))
    early = session.starts_at - timedelta(days=4)
    book(offering, "early@example.com", created_at=early)
    start = session.starts_at

    assert queue_due_reminders(start - 1440 * M - timedelta(seconds=1)) == 0
    assert queue_due_reminders(start - 1440 * M) == 1
    assert queue_due_reminders(start - 1440 * M + timedelta(minutes=5)) == 0  # already queued
    assert reminder_keys(db) == [("early@example.com", "1440m")]
    assert queue_due_reminders(start - 120 * M) == 1
    assert queue_due_reminders(start - 10 * M) == 0
    assert queue_due_reminders(start) == 0
    assert reminder_keys(db) == [("early@example.com", "120m"), ("early@example.com", "1440m")]


def test_registered_inside_a_window_gets_no_reminder_for_it(db, book):
    offering, [session] = setup_workshop(db, upcoming_day(5))
    start = session.starts_at
    book(offering, "late@example.com", created_at=start - 600 * M)  # 10 h before: inside the 24 h window
    book(offering, "last@example.com", created_at=start - 30 * M)  # inside the 2 h window too

    queue_due_reminders(start - 540 * M)
    assert reminder_keys(db) == []
    queue_due_reminders(start - 100 * M)
    assert reminder_keys(db) == [("late@example.com", "120m")]


def test_after_an_outage_only_the_nearest_reminder(db, book):
    offering, [session] = setup_workshop(db, upcoming_day(5))
    book(offering, "a@example.com", created_at=session.starts_at - timedelta(days=3))
    queue_due_reminders(session.starts_at - 60 * M)
    assert reminder_keys(db) == [("a@example.com", "120m")]


def test_cancelled_registration_and_cancelled_session_get_none(db, book):
    offering, [session] = setup_workshop(db, upcoming_day(5))
    created = session.starts_at - timedelta(days=3)
    gone = book(offering, "gone@example.com", created_at=created)
    book(offering, "stays@example.com", created_at=created)
    cancel_registration(gone.id)
    queue_due_reminders(session.starts_at - 1440 * M)
    assert reminder_keys(db) == [("stays@example.com", "1440m")]

    session.status = SessionStatus.CANCELLED
    db.session.commit()
    queue_due_reminders(session.starts_at - 120 * M)
    assert reminder_keys(db) == [("stays@example.com", "1440m")]


def test_class_registration_covers_its_session_course_covers_all(db, book):
    drop_in, class_sessions = setup_workshop(db, upcoming_day(5), kind=OfferingKind.CLASS, sessions=2)
    course, course_sessions = setup_workshop(
        db, upcoming_day(5), start=time(9, 0), kind=OfferingKind.COURSE, sessions=2
    )
    created = class_sessions[0].starts_at - timedelta(days=3)
    book(drop_in, "week2@example.com", session=class_sessions[1], created_at=created)
    book(course, "course@example.com", created_at=created)

    queue_due_reminders(class_sessions[0].starts_at - 1440 * M)
    assert reminder_keys(db) == [("course@example.com", "1440m")]  # course's first session, 9 h earlier
    queue_due_reminders(class_sessions[1].starts_at - 1440 * M)
    keys = [(r.to_email, r.session_id) for r in emails(db, EmailKind.REMINDER)]
    assert ("week2@example.com", class_sessions[1].id) in keys
    assert ("course@example.com", course_sessions[1].id) in keys
    assert all(s != class_sessions[0].id for _, s in keys)


def test_dst_day_reminders_are_24_real_hours_before(db, book, smtp):
    # 2027-11-07: clocks in Chicago go back at 2 am; the session is at 6 pm CST (00:00 UTC).
    offering, [session] = setup_workshop(db, date(2027, 11, 7), time(18, 0), title="Fall Back Class")
    assert session.starts_at == datetime(2027, 11, 8, 0, 0, tzinfo=UTC)
    assert session.local_start.tzname() == "CST"
    book(offering, "dst@example.com", created_at=datetime(2027, 11, 1, tzinfo=UTC))

    day_before = datetime(2027, 11, 7, 0, 0, tzinfo=UTC)  # 7 pm CDT the evening before
    assert queue_due_reminders(day_before - timedelta(seconds=1)) == 0
    assert queue_due_reminders(day_before) == 1
    assert queue_due_reminders(datetime(2027, 11, 7, 21, 59, tzinfo=UTC)) == 0
    assert queue_due_reminders(datetime(2027, 11, 7, 22, 0, tzinfo=UTC)) == 1  # 4 pm CST
    [r24, r2] = sorted(emails(db, EmailKind.REMINDER), key=lambda r: r.dedupe_key)[::-1]
    assert r24.dedupe_key.endswith("1440m") and r2.dedupe_key.endswith("120m")

    deliver_due(now=datetime(2027, 11, 7, 22, 0, tzinfo=UTC))
    reminders = [m for m in smtp.to("dst@example.com") if m["Subject"].startswith("Reminder")]
    # Both built at 4 pm CST on the day: "today", and the body gives the date.
    assert {m["Subject"] for m in reminders} == {"Reminder: your session today at 6 pm"}
    texts = [m.get_body(("plain",)).get_content() for m in reminders]
    assert len(texts) == 2
    assert all("Sunday, November 7, 6 pm–7 pm CST" in t for t in texts)


def test_followups_thank_only_the_checked_in_and_miss_only_the_marked_absent(db, book, smtp):
    """Thanks for coming only to people checked in, "sorry we missed you" only to people marked
    absent; everyone else (no attendance taken for the session, or nothing marked for them)
    gets the neutral follow-up, which claims neither."""
    offering, [session] = setup_workshop(db, upcoming_day(5), followup_delay_minutes=120)
    later_offering_session = make_session(offering, upcoming_day(30))
    db.session.commit()
    other, [other_session] = setup_workshop(db, upcoming_day(6))
    came = book(offering, "came@example.com")
    missed = book(offering, "missed@example.com")
    book(offering, "unmarked@example.com")  # attendance taken, but nothing marked for them
    book(other, "nobody-checked@example.com")  # no attendance taken at all
    db.session.add_all(
        [
            Attendance(registration_id=came.id, session_id=session.id, status=AttendanceStatus.PRESENT),
            Attendance(registration_id=missed.id, session_id=session.id, status=AttendanceStatus.ABSENT),
        ]
    )
    db.session.commit()

    # A workshop's follow-up waits for its last session.
    assert queue_due_followups(session.ends_at + 121 * M) == 0
    later_offering_session.status = SessionStatus.CANCELLED
    db.session.commit()
    assert queue_due_followups(session.ends_at + 119 * M) == 0
    assert queue_due_followups(session.ends_at + 120 * M) == 3
    assert queue_due_followups(other_session.ends_at + 120 * M) == 1
    assert queue_due_followups(other_session.ends_at + 120 * M) == 0
    # Too old: not sent days late.
    old, [old_session] = setup_workshop(db, upcoming_day(9))
    book(old, "too-late@example.com")
    assert queue_due_followups(old_session.ends_at + timedelta(days=4)) == 0

    variants = {r.to_email: r.context["variant"] for r in emails(db, EmailKind.FOLLOW_UP)}
    assert variants == {
        "came@example.com": "attended",
        "missed@example.com": "missed",
        "unmarked@example.com": "neutral",
        "nobody-checked@example.com": "neutral",
    }
    deliver_due(now=other_session.ends_at + 121 * M)

    def follow_up(address):
        [message] = [m for m in smtp.to(address) if not m["Subject"].startswith("You're registered")]
        return message["Subject"], message.get_body(("plain",)).get_content()

    assert [m for m in smtp.to("too-late@example.com") if "registered" not in m["Subject"]] == []
    thanks, sorry = follow_up("came@example.com"), follow_up("missed@example.com")
    assert thanks[0].startswith("Thank you for coming") and "Thank you for coming" in thanks[1]
    assert sorry[0].startswith("Sorry we missed you") and "Next dates:" in sorry[1]
    for address in ("unmarked@example.com", "nobody-checked@example.com"):
        subject, text = follow_up(address)
        assert subject.startswith("Following up: "), subject
        assert "Thank you for coming" not in text and "missed you" not in text
        assert "Thank you for registering for" in text and "See the schedule" in text


def test_the_follow_up_links_every_resource_and_the_file_opens(db, app, book, smtp):
    """Handouts uploaded as files are linked in the follow-up (by their unguessable address),
    beside plain links, and the address serves the file to someone with no account."""
    import re
    from pathlib import Path

    from events.models import Resource, ResourceKind, utcnow
    from events.notifications.outbox import queue_email

    offering, [session] = setup_workshop(db, upcoming_day(5))
    uploads = Path(app.instance_path) / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads / f"{'ab' * 16}.pdf").write_bytes(b"%PDF-1.4 handout")
    db.session.add_all(
        [
            Resource(
                offering=offering,
                kind=ResourceKind.LINK,
                title="Stretch video",
                url="https://video.example/s",
            ),
            Resource(
                offering=offering,
                kind=ResourceKind.FILE,
                title="Back exercises",
                stored_filename=f"{'ab' * 16}.pdf",
                original_filename="Back exercises.pdf",
                content_type="application/pdf",
                position=1,
            ),
        ]
    )
    came = book(offering, "came@example.com")
    queue_email(
        EmailKind.FOLLOW_UP, registration=came, session_id=session.id, context={"variant": "attended"}
    )
    db.session.commit()
    deliver_due(now=utcnow())

    [thanks] = [m for m in smtp.to("came@example.com") if m["Subject"].startswith("Thank you for coming")]
    text = thanks.get_body(("plain",)).get_content()
    html = thanks.get_body(("html",)).get_content()
    assert "Stretch video: https://video.example/s" in text
    file_url = re.search(r"Back exercises: (\S+)", text).group(1)
    assert file_url.startswith(app.config["PUBLIC_BASE_URL"]) and f"/resources/{'ab' * 16}/" in file_url
    assert f'href="{file_url}"' in html
    with app.test_client().get(file_url.removeprefix(app.config["PUBLIC_BASE_URL"])) as served:
        assert served.status_code == 200 and served.data == b"%PDF-1.4 handout"


# --- An idle sweep costs nothing: no outbox ids, a handful of statements --------------------


def outbox_last_id(db) -> int:
    # last_value only moves when an id is taken (is_called is already true after the first).
    return db.session.execute(sa.text("SELECT last_value FROM outbox_emails_id_seq")).scalar()


def due_people(db, book, reminders: int, followups: int):
    """`reminders` people whose 24 h reminder and `followups` whose follow-up are due at the
    returned moment."""
    offering, [session] = setup_workshop(db, upcoming_day(5), capacity=60)
    past, [ended] = setup_workshop(db, upcoming_day(3))
    early = ended.starts_at - timedelta(days=2)
    for i in range(reminders):
        book(offering, f"soon{i}@example.com", created_at=early)
    for i in range(followups):
        book(past, f"done{i}@example.com", created_at=early)
    now = session.starts_at - 1440 * M
    assert ended.ends_at + 120 * M <= now < ended.ends_at + timedelta(days=3)
    return offering, now


class StatementCounter:
    def __init__(self, engine):
        self.engine, self.statements = engine, []

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self.statements

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, *args):
        if not is_savepoint_statement(statement):
            self.statements.append(statement)


def test_three_sweeps_take_no_more_outbox_ids_than_rows_they_add(db, book):
    _, now = due_people(db, book, reminders=6, followups=4)
    db.session.commit()
    before = outbox_last_id(db)
    added = [queue_due(now) for _ in range(3)]
    assert added == [(6, 4), (0, 0), (0, 0)]
    assert outbox_last_id(db) - before <= 10
    assert len(emails(db, EmailKind.REMINDER)) == 6 and len(emails(db, EmailKind.FOLLOW_UP)) == 4


def test_an_idle_sweep_is_a_handful_of_statements_however_many_are_due(db, book):
    offering, now = due_people(db, book, reminders=2, followups=2)
    assert queue_due(now) == (2, 2)
    with StatementCounter(db.engine) as few:
        assert queue_due(now) == (0, 0)

    early = offering.sessions[0].starts_at - timedelta(days=3)
    for i in range(40):
        book(offering, f"more{i}@example.com", created_at=early)
    assert queue_due(now) == (40, 0)
    before = outbox_last_id(db)
    with StatementCounter(db.engine) as many:
        assert queue_due(now) == (0, 0)
    assert len(many) == len(few) <= 8, many
    # One INSERT ... SELECT per kind, which finds nothing missing: no row, no id taken.
    inserts = [s for s in many if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 2 and all("SELECT" in s.upper() for s in inserts), inserts
    assert outbox_last_id(db) == before


def test_many_open_windows_are_read_in_several_statements_with_the_same_result(db, book, monkeypatch):
    from events.notifications import schedule

    monkeypatch.setattr(schedule, "WINDOWS_PER_STATEMENT", 1)  # SQLite caps SELECTs per statement
    drop_in, sessions = setup_workshop(db, upcoming_day(5), kind=OfferingKind.CLASS, sessions=2)
    course, _ = setup_workshop(db, upcoming_day(5), start=time(18, 30), kind=OfferingKind.COURSE, sessions=2)
    created = sessions[0].starts_at - timedelta(days=3)
    book(drop_in, "class@example.com", session=sessions[0], created_at=created)
    book(course, "course@example.com", created_at=created)
    now = sessions[0].starts_at - 100 * M  # the class in its 2 h window, the course in its 24 h one
    assert queue_due(now) == (2, 0)
    assert queue_due(now) == (0, 0)
    assert reminder_keys(db) == [("class@example.com", "120m"), ("course@example.com", "1440m")]


def test_a_new_sweep_outbox_id_past_32_bits(db, book):
    """The outbox's ids (and their sequence) are 64-bit: the ids cannot run out."""
    _, now = due_people(db, book, reminders=1, followups=0)
    db.session.execute(sa.text("SELECT setval('outbox_emails_id_seq', 2147483647)"))
    db.session.commit()
    assert queue_due(now) == (1, 0)
    [reminder] = emails(db, EmailKind.REMINDER)
    assert reminder.id == 2147483648


# --- Due emails are queued set-based: one INSERT per kind, however many are due -------------


def add_people(db, offering, count: int, prefix: str, created_at) -> None:
    """`count` confirmed registrations for a workshop, in one statement (booking each is slow)."""
    [session] = offering.sessions
    db.session.execute(
        sa.insert(Registration),
        [
            dict(
                seat_pool_id=session.seat_pool.id,
                offering_id=offering.id,
                session_id=None,
                name=f"Person {i}",
                email=f"{prefix}{i}@example.com",
                email_normalized=f"{prefix}{i}@example.com",
                status="confirmed",
                price_cents=0,
                currency="usd",
                token=f"{prefix}-{i}",
                created_at=created_at,
                confirmed_at=created_at,
            )
            for i in range(count)
        ],
    )
    db.session.commit()


def test_3_or_300_due_are_queued_by_the_same_statements_one_insert_per_kind(db, monkeypatch):
    from events.notifications import publish

    nudges: list[bool] = []
    monkeypatch.setattr(publish, "publish_delivery", lambda: nudges.append(True) or True)
    soon, [session] = setup_workshop(db, upcoming_day(5), capacity=400)
    past, [ended] = setup_workshop(db, upcoming_day(3), capacity=400)
    now = session.starts_at - 1440 * M  # the 24 h reminder and the follow-up both due
    early = ended.starts_at - timedelta(days=2)

    def sweep(count: int, prefix: str) -> list[str]:
        add_people(db, soon, count, f"soon-{prefix}", early)
        add_people(db, past, count, f"done-{prefix}", early)
        before = outbox_last_id(db)
        with StatementCounter(db.engine) as statements:
            assert queue_due(now) == (count, count)
        assert outbox_last_id(db) - before <= 2 * count  # no id taken by a conflict
        return statements

    few, many = sweep(3, "few"), sweep(300, "many")

    def inserts(statements: list[str]) -> list[str]:
        return [s for s in statements if s.lstrip().upper().startswith("INSERT")]

    assert len(inserts(few)) == len(inserts(many)) == 2, inserts(many)
    assert all("SELECT" in s.upper() for s in inserts(many))
    assert len(many) == len(few) <= 8, many
    assert len(emails(db, EmailKind.REMINDER)) == len(emails(db, EmailKind.FOLLOW_UP)) == 303
    # The worker is nudged after each commit that queued something, and only then.
    assert len(nudges) == 4
    assert queue_due(now) == (0, 0)
    assert len(nudges) == 4


def test_emails_queued_one_at_a_time_and_by_the_sweep_share_their_keys(db, book):
    """Rows queued by queue_email (as the sweep did before it was set-based) still dedupe the
    sweep's, on a moved session too (":v1"); the sweep's rows are the ones queue_email writes."""
    soon, [session] = setup_workshop(db, upcoming_day(5))
    past, [ended] = setup_workshop(db, upcoming_day(3))
    early = ended.starts_at - timedelta(days=2)
    now = session.starts_at - 1440 * M
    session.sequence = ended.sequence = 1  # both moved once
    db.session.commit()
    queued_before = book(soon, "before@example.com", created_at=early)
    swept = book(soon, "swept@example.com", created_at=early)
    walk_in = book(soon, "walk-in@example.com", created_at=early)
    followed_before = book(past, "followed@example.com", created_at=early)
    followed_swept = book(past, "followed-swept@example.com", created_at=early)
    walk_in.email = walk_in.email_normalized = ""  # a walk-in who gave no address
    db.session.commit()
    assert queue_email(
        EmailKind.REMINDER, registration=queued_before, session_id=session.id, key_parts=("1440m", "v1")
    )
    assert queue_email(
        EmailKind.FOLLOW_UP,
        registration=followed_before,
        session_id=ended.id,
        key_parts=("v1",),
        context={"variant": "neutral"},
    )
    db.session.commit()

    assert queue_due(now) == (1, 1)
    rows = {
        (r.kind, r.registration_id): r
        for r in emails(db, EmailKind.REMINDER) + emails(db, EmailKind.FOLLOW_UP)
    }
    assert set(rows) == {
        (EmailKind.REMINDER, queued_before.id),
        (EmailKind.REMINDER, swept.id),
        (EmailKind.FOLLOW_UP, followed_before.id),
        (EmailKind.FOLLOW_UP, followed_swept.id),
    }
    reminder, follow_up = rows[EmailKind.REMINDER, swept.id], rows[EmailKind.FOLLOW_UP, followed_swept.id]
    assert reminder.dedupe_key == dedupe_key(
        EmailKind.REMINDER, f"r{swept.id}", f"s{session.id}", "1440m", "v1"
    )
    assert follow_up.dedupe_key == dedupe_key(
        EmailKind.FOLLOW_UP, f"r{followed_swept.id}", f"s{ended.id}", "v1"
    )
    for row, registration, session_id, context in (
        (reminder, swept, session.id, {}),
        (follow_up, followed_swept, ended.id, {"variant": "neutral"}),
    ):
        assert (row.to_email, row.session_id, row.context) == (registration.email, session_id, context)
        assert (row.status, row.attempts, row.last_error, row.sent_at) == (EmailStatus.PENDING, 0, "", None)
        assert row.created_at == row.send_after and row.send_after <= utcnow()


# --- One sweep at a time across hosts ------------------------------------------------------


@pytest.mark.real_commits  # two threads, each with its own app context and connection
def test_two_sweeps_started_together_one_queues_the_other_is_skipped(app, db, book, caplog, monkeypatch):
    # (Alembic's fileConfig in the app fixture's upgrade() disables loggers that existed then.)
    monkeypatch.setattr(logging.getLogger("events.notifications.schedule"), "disabled", False)
    _, now = due_people(db, book, reminders=5, followups=3)
    db.session.commit()
    db.session.remove()

    start = threading.Barrier(2)
    inside, release = threading.Event(), threading.Event()
    results, sweepers = [], set()

    def hold_the_sweep_open(conn, cursor, statement, *args):
        # The sweep that got in waits at its first read, so the two surely overlap.
        if threading.current_thread() in sweepers and "FROM sessions" in statement and not inside.is_set():
            inside.set()
            release.wait(20)

    def sweep():
        with app.app_context():
            start.wait()
            results.append(queue_due(now))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    sweepers.update(threads)
    sa.event.listen(db.engine, "before_cursor_execute", hold_the_sweep_open)
    try:
        with caplog.at_level(logging.INFO, logger="events.notifications.schedule"):
            for thread in threads:
                thread.start()
            assert inside.wait(20)
            wait_until(lambda: results, timeout=20, what="the other sweep, skipped")
            skipped = list(results)
            release.set()
            for thread in threads:
                thread.join(20)
    finally:
        release.set()
        sa.event.remove(db.engine, "before_cursor_execute", hold_the_sweep_open)
    assert skipped == [None]
    assert sorted(results, key=str) == [(5, 3), None]
    assert "sweep skipped: another one is running" in caplog.text
    assert len(emails(db, EmailKind.REMINDER)) == 5 and len(emails(db, EmailKind.FOLLOW_UP)) == 3
    assert queue_due(now) == (0, 0)  # the lock was let go


def hang_up(db, other_host) -> None:
    """Close the other host's connection, and wait until PostgreSQL has ended its backend and so
    let go of its locks (closing does not wait for that)."""
    pid = other_host.info.backend_pid
    other_host.close()
    gone = sa.text("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :pid)")

    def ended() -> bool:
        db.session.execute(sa.text("SELECT pg_stat_clear_snapshot()"))  # (kept per transaction)
        return db.session.scalar(gone, {"pid": pid})

    wait_until(ended, what="the other host's backend to end")


@pytest.mark.real_commits  # "another host": a connection of its own
def test_a_sweep_is_skipped_while_another_host_holds_the_lock(app, db, book):
    import psycopg

    from events.locks import lock_key

    _, now = due_people(db, book, reminders=2, followups=0)
    db.session.commit()
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    other_host = psycopg.connect(url, autocommit=True)
    try:
        assert other_host.execute("SELECT pg_try_advisory_lock(%s)", [lock_key("queue_due")]).fetchone()[0]
        assert queue_due(now) is None
        assert emails(db, EmailKind.REMINDER) == []
    finally:
        hang_up(db, other_host)  # a beat that dies lets go of the lock with its connection
    assert queue_due(now) == (2, 0)


@pytest.mark.real_commits  # "another host": a connection of its own
def test_housekeeping_is_skipped_while_another_host_runs_it(app, db):
    """Two beats by mistake: the second housekeeping pass does nothing while the first runs."""
    import psycopg

    from events.locks import lock_key
    from worker.tasks import housekeeping

    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    other_host = psycopg.connect(url, autocommit=True)
    try:
        assert other_host.execute("SELECT pg_try_advisory_lock(%s)", [lock_key("housekeeping")]).fetchone()[0]
        assert housekeeping.run() == {"skipped": True}
    finally:
        hang_up(db, other_host)
    assert housekeeping.run() == {
        "pools": 0,
        "passes_voided": 0,
        "refunds": 0,
        "payments": 0,
        "addresses_forgotten": 0,
    }


@pytest.mark.real_commits  # "another host": a connection of its own
def test_pass_expiry_is_skipped_while_another_host_runs_it_and_is_on_beat(app, db):
    import subprocess
    import sys
    from types import SimpleNamespace

    import psycopg

    from events.locks import lock_key
    from tests.worker.conftest import worker_env
    from worker.tasks import expire_passes

    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    other_host = psycopg.connect(url, autocommit=True)
    try:
        assert other_host.execute("SELECT pg_try_advisory_lock(%s)", [lock_key("pass-expiry")]).fetchone()[0]
        assert expire_passes.run() == {"skipped": True}
    finally:
        hang_up(db, other_host)
    assert expire_passes.run() == {"expired": 0}
    # On beat, as often as housekeeping (read in a process of its own: building the worker's
    # Celery app makes it the default one).
    code = (
        "from worker.app import celery_app as c; s = c.conf.beat_schedule; "
        "print(s['expire-passes']['task'], s['expire-passes']['schedule'] == s['housekeeping']['schedule'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=worker_env(app, SimpleNamespace(port=25)),
    )
    assert out.stdout.split() == ["worker.tasks.expire_passes", "True"]


@pytest.mark.real_commits  # "another host": a connection of its own
def test_flask_sweep_says_when_it_skipped_so_cron_can_tell(app, db):
    """`flask sweep` and beat's housekeeping are one function behind one lock: while another
    host runs it, the command does nothing and exits 75 (EX_TEMPFAIL), not 0."""
    import psycopg

    from events.locks import lock_key

    runner = app.test_cli_runner()
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    other_host = psycopg.connect(url, autocommit=True)
    try:
        assert other_host.execute("SELECT pg_try_advisory_lock(%s)", [lock_key("housekeeping")]).fetchone()[0]
        skipped = runner.invoke(args=["sweep"])
        assert skipped.exit_code == 75
        assert "Another sweep is running" in skipped.output
    finally:
        hang_up(db, other_host)
    done = runner.invoke(args=["sweep"])
    assert done.exit_code == 0, done.output
    assert "Released lapsed seats in 0 pools; sent 0 refunds; re-read 0 payments." in done.output
