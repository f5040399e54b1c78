"""Every kind of email about an offering named in Spanish, Somali or Vietnamese, with em dashes
and curly quotes, short and long, for people and places named likewise: each is sent through
the real SMTP server, and its decoded subject, sender and body are what was meant.

A short non-ASCII subject ("You're registered: Café Posture") used to fail to encode, so
nobody registered for such an offering got a confirmation, reminder or follow-up.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from events.filters import format_day, format_time
from events.models import EmailStatus, OutboxEmail, Role, User, utcnow
from events.notifications.content import MISSED_SUBJECT, SUBJECTS, build
from events.notifications.delivery import deliver_due
from events.notifications.outbox import EmailKind, queue_email
from events.notifications.sender import Renderer
from events.registration.services import Person, join_waitlist, register
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

LANGUAGES = {
    "spanish": {
        "title": "Café Postura — “Espalda sana” para niños",
        "person": "José Ñúñez Peña",
        "place": "Clínica Año Nuevo — Peñasco",
        "clinic": "Fisioterapia Comunitaria São José — Señor’s",
    },
    "somali": {
        "title": "Xanuunka Dhabarka — Waxa La Sameeyo Marka Hore",
        "person": "Cabdiraxmaan Xaliimo Maxamed",
        "place": "Xarunta Caafimaadka ee Cedar–Riverside",
        "clinic": "Rugta Daaweynta Jirka ‘Hooyo’",
    },
    "vietnamese": {
        "title": "Chăm sóc lưng — “Đau lưng” và cách xử lý đầu tiên",
        "person": "Nguyễn Thị Hương",
        "place": "Trung tâm Sức khỏe Cộng đồng Phước Lộc",
        "clinic": "Phòng khám Vật lý Trị liệu Đồng Tâm",
    },
}


def _long(text: str) -> str:
    """A title near the form's 200-character limit: folded over several header lines."""
    words = (text + " — ") * 10
    return words[:195].rstrip(" —")


CASES = [(lang, size) for lang in LANGUAGES for size in ("short", "long")]


def _without_links(text: str) -> str:
    # Private links are signed with a timestamp: compare everything around them.
    return re.sub(r"https?://[^\s\"<>]+", "<link>", text)


@pytest.mark.parametrize("lang, size", CASES, ids=[f"{lang}-{size}" for lang, size in CASES])
def test_every_kind_of_email_in_other_languages_is_sent_and_reads_as_meant(
    db, smtp, app, monkeypatch, lang, size
):
    names = LANGUAGES[lang]
    title = names["title"] if size == "short" else _long(names["title"])
    assert len(title) <= 200 and not title.isascii()
    monkeypatch.setitem(app.config, "MAIL_DEFAULT_SENDER", "hello@clinic.test")  # shown as the clinic's name
    # Titled subjects (the clinic's choice): the title must survive encoding in the subject too.
    make_clinic(name=names["clinic"], email_subjects="titled")
    location = make_location(name=names["place"], city="Mineápolis")
    offering = make_offering(location, title=title, capacity=1, what_to_bring="Una toalla — “grande”")
    make_session(offering, upcoming_day(5))
    staff = User(email="staff@clinic.example", name=names["person"] + " (staff)", role=Role.INSTRUCTOR)
    staff.set_password("a long password here")
    db.session.add(staff)
    db.session.commit()

    registration = register(offering, None, Person(names["person"], "person@example.com")).registration
    entry = join_waitlist(offering, None, Person(names["person"] + " II", "wait@example.com")).entry
    session = offering.sessions[0]
    entry.offer_expires_at = utcnow() + timedelta(hours=12)
    session.cancel_reason = "La instructora está enferma — lo sentimos"
    money = {"refund_cents": 2500, "currency": "usd"}
    for kind, extra in [
        (EmailKind.PAYMENT_RECEIVED, {}),
        (EmailKind.REGISTRATION_LINK, {"key_parts": ("t1",)}),
        (EmailKind.PAYMENT_FAILED, {"context": {"message": "Tarjeta rechazada — “fondos”"}}),
        (EmailKind.REGISTRATION_CANCELLED, {"context": money}),
        (EmailKind.REFUND_ISSUED, {"context": money}),
        (EmailKind.LATE_PAYMENT_REFUNDED, {"context": money}),
        (EmailKind.SESSION_CANCELLED, {"session_id": session.id, "context": money}),
        (EmailKind.REMINDER, {"session_id": session.id, "key_parts": ("1440m",)}),
        (EmailKind.FOLLOW_UP, {"session_id": session.id, "context": {"variant": "attended"}}),
        (
            EmailKind.SESSION_MOVED,
            {
                "session_id": session.id,
                "key_parts": ("m1",),
                "context": {
                    "old_when": "mar. 1 déc., 18 h — “avant”",
                    "new_when": "mer. 2 déc., 18 h — “après”",
                    "old_place": names["place"],
                    "new_place": names["place"] + " — B",
                },
            },
        ),
        (
            EmailKind.INSTRUCTOR_CHANGED,
            {
                "session_id": session.id,
                "context": {"instructor_name": names["person"], "previous_name": "Zoë", "when": "mañana"},
            },
        ),
    ]:
        assert queue_email(kind, registration=registration, **extra)
    queue_email(EmailKind.WAITLIST_OFFER, waitlist_entry=entry)
    queue_email(EmailKind.WAITLIST_OFFER_EXPIRED, waitlist_entry=entry)
    queue_email(EmailKind.PASSWORD_RESET, user=staff)
    db.session.commit()

    stats = deliver_due()

    kinds = set(db.session.scalars(sa.select(OutboxEmail.kind)))
    # Every kind there is, and the staff one, but the two about a balance still owed (they need a
    # transfer onto a dearer date: tests/integration/test_balance_payments.py sends them).
    balance_kinds = {EmailKind.BALANCE_DUE, EmailKind.BALANCE_PAID}
    assert len(kinds) == 16 == len(SUBJECTS.keys() - balance_kinds) + 1
    assert (stats.sent, stats.failed) == (16, 0)
    db.session.expire_all()
    assert set(db.session.scalars(sa.select(OutboxEmail.status))) == {EmailStatus.SENT}

    local = session.local_start
    meant_subjects = {
        kind: template % {"title": title, "when": f"on {format_day(local)} at {format_time(local)}"}
        for kind, template in SUBJECTS.items()
    }
    meant_subjects[EmailKind.PASSWORD_RESET] = f"Reset your password for {names['clinic']}"
    assert MISSED_SUBJECT not in meant_subjects.values()

    rows = {row.dedupe_key: row for row in db.session.scalars(sa.select(OutboxEmail))}
    received = {msg["Message-ID"]: msg for _, msg in smtp.messages}
    assert len(received) == 16
    with app.test_request_context(base_url=app.config["PUBLIC_BASE_URL"]):
        renderer = Renderer()
        for row in rows.values():
            msg = next(m for mid, m in received.items() if mid.startswith(f"<outbox-{row.id}."))
            content = build(row)
            assert msg["Subject"] == content.subject == meant_subjects[row.kind], row.kind
            [sender] = msg["From"].addresses
            assert (sender.display_name, sender.addr_spec) == (names["clinic"], "hello@clinic.test")
            meant_text, meant_html = renderer.render_parts(row, content)
            text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
            html = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
            assert _without_links(text) == _without_links(meant_text.strip() + "\n"), row.kind
            assert _without_links(html.rstrip("\n")) == _without_links(meant_html.rstrip("\n")), row.kind
            # And what was meant says what it should, in the person's own words.
            assert f"Hello {names['person']}" in text
            if row.kind != EmailKind.PASSWORD_RESET:
                assert title in text and title in html
            if row.kind in (EmailKind.REGISTRATION_CONFIRMED, EmailKind.REMINDER):
                assert names["place"] in text
