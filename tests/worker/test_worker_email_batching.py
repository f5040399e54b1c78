"""A batch of emails is written once per batch where it can be (issue 17 goal 7): a session's
"tomorrow at 6 pm" and each subject once per language (Prefetched.written), the links' serializer
and address once (registration/links.py BatchLinks), a pass booking's balance only for the
emails that show it. Each email must still read exactly as it would written alone.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from itsdangerous.timed import TimestampSigner

from events.clinic import current_clinic
from events.languages import in_language
from events.models import OutboxEmail, utcnow
from events.notifications.content import Prefetched, build
from events.notifications.outbox import EmailKind, email_language, queue_email
from events.notifications.sender import Renderer
from events.passes.booking import book_with_pass
from events.registration.links import BatchLinks, manage_url, waitlist_url
from events.registration.services import Person, join_waitlist, register
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.passbook_helpers import make_class, make_pass

SIGNED_AT = 1_900_000_000  # every link signed at the same second, so two writings can be compared


@pytest.fixture
def fixed_clock(monkeypatch):
    """The moments an email is made of (links' signatures, the invite's DTSTAMP) held still."""
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: SIGNED_AT)
    stamp = utcnow().replace(microsecond=0)
    monkeypatch.setattr("events.calendar.utcnow", lambda: stamp)
    return stamp


def _written(row: OutboxEmail, prefetched: Prefetched, renderer: Renderer) -> tuple:
    with in_language(email_language(row)):
        content = build(row, prefetched)
        text, html = renderer.render_parts(row, content)
    attachments = [(a.filename, a.content_type, a.method, a.data) for a in content.attachments]
    return content.subject, text, html, attachments


def _mixed_outbox(db) -> list[OutboxEmail]:
    """Reminders for two sessions to people in English, Spanish and Somali, their confirmations
    (with invites), a class pass booking's confirmation and reminder, and a waitlist place."""
    make_clinic(email="hello@clinic.example")
    location = make_location()
    workshop = make_offering(location, title="Back care", capacity=3, what_to_bring="A towel")
    first, second = make_session(workshop, upcoming_day(1)), make_session(workshop, upcoming_day(3))
    people = [("Ann", "en"), ("Ana", "es"), ("Cali", "so")]
    registrations = [
        register(workshop, None, Person(name, f"{name.lower()}@example.com", language=language)).registration
        for name, language in people
    ]
    entry = join_waitlist(workshop, None, Person("Wen", "wen@example.com", language="es")).entry
    assert entry is not None  # (the workshop is full: three seats)
    drop_in = make_class(days=1)
    make_pass("pat@example.com")
    pass_booking = book_with_pass(drop_in, drop_in.sessions[0].id, Person("Pat", "pat@example.com"))
    assert pass_booking.registration is not None and pass_booking.registration.pass_id is not None
    db.session.flush()
    for registration in registrations:
        for session in (first, second):
            queue_email(
                EmailKind.REMINDER, registration=registration, session_id=session.id, key_parts=("1440m",)
            )
    queue_email(
        EmailKind.REMINDER,
        registration=pass_booking.registration,
        session_id=drop_in.sessions[0].id,
        key_parts=("1440m",),
    )
    db.session.commit()
    rows = list(db.session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id)))
    kinds = {row.kind for row in rows}
    assert {EmailKind.REMINDER, EmailKind.REGISTRATION_CONFIRMED, EmailKind.WAITLIST_JOINED} <= kinds
    return rows


@pytest.mark.parametrize("subjects", ["neutral", "titled"])
def test_each_email_of_a_batch_reads_as_it_would_written_alone(db, app, fixed_clock, subjects):
    rows = _mixed_outbox(db)
    with app.test_request_context("/", base_url=app.config["PUBLIC_BASE_URL"]):
        current_clinic().email_subjects = subjects
        now = utcnow()
        prefetched, renderer = Prefetched(rows, now), Renderer()
        together = [_written(row, prefetched, renderer) for row in rows]
        alone = [_written(row, Prefetched([row], now), Renderer()) for row in rows]

    for row, batched, single in zip(rows, together, alone, strict=True):
        assert batched == single, (row.kind, email_language(row))
    # The control: the batch wrote a session's text once per language, not once per email,
    # and what it wrote differs between languages and sessions.
    reminders = [w for row, w in zip(rows, together, strict=True) if row.kind == EmailKind.REMINDER]
    assert len({subject for subject, *_ in reminders}) >= 4
    assert any("Pat" in text for _, text, _, _ in reminders)


def test_a_batch_of_pass_booking_reminders_reads_nothing_per_email(db, app, fixed_clock):
    """The pass's balance is shown by the confirmation and the cancellation, not a reminder:
    a reminder of a pass booking reads no pass or ledger row (it read both, per email)."""
    make_clinic()
    drop_in = make_class(days=1, capacity=10)
    session_id = drop_in.sessions[0].id
    for n in range(4):
        make_pass(f"holder{n}@example.com")
        booked = book_with_pass(drop_in, session_id, Person(f"Holder {n}", f"holder{n}@example.com"))
        assert booked.registration is not None and booked.registration.pass_id is not None
        queue_email(
            EmailKind.REMINDER, registration=booked.registration, session_id=session_id, key_parts=("1440m",)
        )
    db.session.commit()
    db.session.expunge_all()
    rows = list(
        db.session.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.kind == EmailKind.REMINDER).order_by(OutboxEmail.id)
        )
    )
    assert len(rows) == 4
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.test_request_context("/", base_url=app.config["PUBLIC_BASE_URL"]):
        prefetched = Prefetched(rows)
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            contents = [build(row, prefetched) for row in rows]
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        # The confirmation of the same booking still says how it was paid (the control).
        confirmation = db.session.scalar(
            sa.select(OutboxEmail).where(
                OutboxEmail.kind == EmailKind.REGISTRATION_CONFIRMED,
                OutboxEmail.registration_id == rows[0].registration_id,
            )
        )
        assert "Class pass: 1 credit" in build(confirmation).context["paid_with_pass"]

    assert statements == []  # (two per email before: the pass, its ledger's sum)
    assert [c.context["name"] for c in contents] == [f"Holder {n}" for n in range(4)]
    assert "paid_with_pass" not in contents[0].context


def test_batch_links_are_the_links_each_would_get(db, app, fixed_clock):
    make_clinic()
    workshop = make_offering(make_location(), capacity=1)
    make_session(workshop, upcoming_day(2))
    registration = register(workshop, None, Person("Ann", "ann@example.com")).registration
    entry = join_waitlist(workshop, None, Person("Bo", "bo@example.com")).entry
    db.session.commit()
    assert registration is not None and entry is not None

    with app.test_request_context("/", base_url=app.config["PUBLIC_BASE_URL"]):
        links = BatchLinks()
        assert links.manage_url(registration) == manage_url(registration)
        assert links.waitlist_url(entry) == waitlist_url(entry)
        assert links.manage_url(registration) == manage_url(registration)  # the address reused
        assert manage_url(registration).startswith(app.config["PUBLIC_BASE_URL"].rstrip("/") + "/manage/")

    # A site whose own address holds the stand-in: each link is built whole, still the same.
    odd = "http://signature-stand-in.example"
    with app.test_request_context("/", base_url=odd):
        links = BatchLinks()
        assert links.manage_url(registration) == manage_url(registration)
        assert manage_url(registration).startswith(odd + "/manage/")


def test_a_reminder_says_today_or_tomorrow_as_of_its_own_batch(db, app):
    """Prefetched.written keeps a session's words for its own batch only: a later batch says
    them again from its own moment."""
    make_clinic()
    workshop = make_offering(make_location(), capacity=5)
    session = make_session(workshop, upcoming_day(1))
    registration = register(workshop, None, Person("Ann", "ann@example.com")).registration
    queue_email(EmailKind.REMINDER, registration=registration, session_id=session.id, key_parts=("1440m",))
    db.session.commit()
    row = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.kind == EmailKind.REMINDER))
    with app.test_request_context("/", base_url=app.config["PUBLIC_BASE_URL"]):
        week_before = build(row, Prefetched([row], session.starts_at - timedelta(days=7)))
        same_day = build(row, Prefetched([row], session.starts_at - timedelta(minutes=1)))
    assert not week_before.context["when_text"].startswith(("today", "tomorrow"))
    assert same_day.context["when_text"].startswith("today")


def test_a_batch_longer_than_its_write_ahead_sends_each_email_once(db, smtp, monkeypatch):
    """Messages are written WRITE_AHEAD at a time ahead of their SMTP exchanges. Across several
    such runs in one batch, with one email that cannot be written in the middle of the second
    (its rollback reloads the batch's objects): every other email goes out once, in order, each
    with its own name and link, and the broken one is marked failed."""
    from events.notifications import delivery

    make_clinic()
    workshop = make_offering(make_location(), capacity=60)
    session = make_session(workshop, upcoming_day(1))
    count = delivery.WRITE_AHEAD * 2 + 3
    for n in range(count):
        registration = register(workshop, None, Person(f"Person {n}", f"p{n}@example.com")).registration
        queue_email(
            EmailKind.REMINDER, registration=registration, session_id=session.id, key_parts=("1440m",)
        )
    db.session.execute(sa.delete(OutboxEmail).where(OutboxEmail.kind != EmailKind.REMINDER))
    db.session.commit()
    reminders = list(db.session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id)))
    broken = reminders[delivery.WRITE_AHEAD + 2]
    build = delivery.build

    def build_or_break(row, prefetched):
        if row.id == broken.id:
            raise RuntimeError("a template bug")
        return build(row, prefetched)

    monkeypatch.setattr(delivery, "build", build_or_break)
    stats = delivery.deliver_due(batch_size=count)

    assert (stats.claimed, stats.sent, stats.failed) == (count, count - 1, 1)
    expected = [f"p{n}@example.com" for n in range(count) if n != delivery.WRITE_AHEAD + 2]
    assert [rcpt for rcpt, _ in smtp.messages] == expected  # once each, in order
    for rcpt, message in smtp.messages:
        n = int(rcpt.removeprefix("p").split("@")[0])
        text = message.get_body(("plain",)).get_content()
        assert f"Person {n}," in text and "/manage/" in text
    db.session.expire_all()
    failed = db.session.get(OutboxEmail, broken.id)
    assert failed.status.value == "failed" and failed.last_error.startswith("render: RuntimeError")
