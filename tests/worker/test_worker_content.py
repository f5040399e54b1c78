"""Every kind of email renders, as readable text and escaped HTML, with what it must say."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from events.filters import format_short_day
from events.models import EmailStatus, OutboxEmail, SessionStatus, utcnow
from events.notifications.delivery import deliver_due
from events.notifications.outbox import EmailKind, queue_email
from events.registration.services import Person, join_waitlist
from tests.factories import make_clinic, workshop


def test_every_kind_renders_and_sends(db, smtp, book):
    make_clinic(email_subjects="titled")  # subjects with the title, so each kind is told apart below
    offering = workshop(capacity=1, title="Neck Care")
    db.session.commit()
    reg = book(offering, "reg@example.com")
    entry = join_waitlist(offering, None, Person("Wendy", "wait@example.com")).entry
    assert entry is not None
    session = offering.sessions[0]
    entry.offer_expires_at = utcnow() + timedelta(hours=12)
    session.cancel_reason = "Instructor ill"
    money = {"refund_cents": 2500, "currency": "usd"}
    for kind, kw in [
        (EmailKind.PAYMENT_RECEIVED, {}),
        (EmailKind.PAYMENT_FAILED, {"context": {"decline_code": "expired_card"}}),
        (EmailKind.REGISTRATION_CANCELLED, {"context": money}),
        (EmailKind.REFUND_ISSUED, {"context": money}),
        (EmailKind.LATE_PAYMENT_REFUNDED, {"context": money}),
        (EmailKind.SESSION_CANCELLED, {"session_id": session.id, "context": money}),
        (EmailKind.REMINDER, {"session_id": session.id, "key_parts": ("1440m",)}),
        (EmailKind.FOLLOW_UP, {"session_id": session.id, "context": {"variant": "attended"}}),
    ]:
        assert queue_email(kind, registration=reg, **kw)
    queue_email(EmailKind.WAITLIST_OFFER, waitlist_entry=entry)
    queue_email(EmailKind.WAITLIST_OFFER_EXPIRED, waitlist_entry=entry)
    session.status = SessionStatus.CANCELLED
    db.session.commit()

    stats = deliver_due()
    assert stats.failed == 0 and stats.sent == 12
    db.session.expire_all()
    assert set(db.session.scalars(sa.select(OutboxEmail.status))) == {EmailStatus.SENT}

    by_subject = {}
    for _, msg in smtp.messages:
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert "Neck Care" in text and "Neck Care" in html and "{{" not in text + html
        by_subject[msg["Subject"]] = text
    assert "number 1 in line" in by_subject["You're on the waitlist: Neck Care"]
    offer = by_subject["A seat is open for you: Neck Care"]
    deadline = entry.offer_expires_at.astimezone(session.location.zone)
    assert f"{deadline:%B} {deadline.day}" in offer and deadline.tzname() in offer and "/waitlist/" in offer
    assert "$25" in by_subject["Registration cancelled: Neck Care"]
    assert "$25" in by_subject["Refund issued: Neck Care"]
    assert "$25" in by_subject["Your payment is being refunded: Neck Care"]
    assert "Instructor ill" in by_subject["Session cancelled: Neck Care"]
    failed = by_subject["Your payment did not go through: Neck Care"]
    assert "Your card has expired. Try another card." in failed


def test_password_reset_email_carries_a_link_that_works_once(db, smtp, client):
    import re

    from events.models import Role, User
    from events.staff.accounts import request_password_reset

    user = User(email="maya@clinic.example", name="Maya", role=Role.INSTRUCTOR)
    user.set_password("old password here")
    db.session.add(user)
    db.session.commit()
    assert request_password_reset("Maya@Clinic.example") is True
    assert request_password_reset("nobody@clinic.example") is False

    assert deliver_due().sent == 1
    ((_, msg),) = smtp.messages
    assert msg["To"] == "maya@clinic.example" and "Reset your password" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    path = re.search(r"https?://[^/\s]+(/staff/password-reset/\S+)", text).group(1)
    form = client.get(path)
    assert form.status_code == 200
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.get_data(as_text=True)).group(1)
    data = {"csrf_token": token, "password": "new password 123", "confirm": "new password 123"}
    assert client.post(path, data=data).status_code == 302
    assert client.get(path).status_code == 410  # used


def test_a_sender_name_with_a_comma_is_one_mailbox_in_from_envelope_and_invite(
    db, smtp, book, monkeypatch, app
):
    """MAIL_DEFAULT_SENDER as a clinic would write it, unquoted: one From mailbox (the name
    quoted), the right envelope sender, and the invite's ORGANIZER the same address."""
    import icalendar

    monkeypatch.setitem(app.config, "MAIL_DEFAULT_SENDER", "Revival PT, North Loop <hello@clinic.test>")
    offering = workshop(title="Desk Set-up")
    db.session.commit()
    book(offering, "ana@example.com")
    deliver_due()

    [message] = smtp.to("ana@example.com")
    assert message["From"].addresses[0].addr_spec == "hello@clinic.test"
    assert len(message["From"].addresses) == 1
    assert message["From"].addresses[0].display_name == "Revival PT, North Loop"
    assert message["X-Envelope-From"] == "hello@clinic.test"
    [invite] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    [event] = icalendar.Calendar.from_ical(invite.get_payload(decode=True)).walk("VEVENT")
    assert str(event["organizer"]) == "mailto:hello@clinic.test"


def test_a_bare_sender_address_is_shown_with_the_clinics_name(db, smtp, book, monkeypatch, app):
    from tests.factories import make_clinic

    monkeypatch.setitem(app.config, "MAIL_DEFAULT_SENDER", "hello@clinic.test")
    make_clinic(name="Revival Physical Therapy and Wellness")
    offering = workshop(title="Posture Basics")
    db.session.commit()
    book(offering, "bo@example.com")
    deliver_due()
    [message] = smtp.to("bo@example.com")
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Revival Physical Therapy and Wellness",
        "hello@clinic.test",
    )


def test_a_late_payment_email_promises_only_the_amount_queued(db, smtp, book):
    """The whole payment, the part not already refunded, or (nothing left) no money at all."""
    offering = workshop(title="Hip Mobility")
    db.session.commit()
    told = {}
    for email, queued in (("full@example.com", 2500), ("part@example.com", 1500), ("none@example.com", 0)):
        reg = book(offering, email)
        context = {"refund_cents": queued, "paid_cents": 2500, "currency": "usd"}
        assert queue_email(EmailKind.LATE_PAYMENT_REFUNDED, registration=reg, context=context)
    db.session.commit()
    deliver_due()
    for email in ("full@example.com", "part@example.com", "none@example.com"):
        [message] = [m for m in smtp.to(email) if "late" in m["Subject"] or "refunded" in m["Subject"]]
        told[email] = (message["Subject"], message.get_body(("plain",)).get_content())
    day = format_short_day(offering.sessions[0].local_start)  # neutral subjects: the date
    assert told["full@example.com"][0] == f"Your payment for {day} is being refunded"
    assert "refunding the full $25" in told["full@example.com"][1]
    assert (
        "refunding the $15" in told["part@example.com"][1]
        and "not already refunded" in told["part@example.com"][1]
    )
    assert "the full" not in told["part@example.com"][1]
    assert told["none@example.com"][0] == f"Your payment for {day} came too late for a seat"
    assert "nothing more for us to refund" in told["none@example.com"][1]
    assert "We are refunding" not in told["none@example.com"][1]
