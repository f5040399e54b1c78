"""Messages to a session's or an offering's people, and walk-ins' follow-ups, read from the real
SMTP server: each person exactly one email, from the clinic's address with its Reply-To, the
text as typed (escaped in the HTML part); nothing ever sent to a walk-in who gave no email."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from events.models import AuditEntry, OfferingKind, OutboxEmail, Registration, Role, StaffMessage
from events.notifications.delivery import deliver_due
from events.notifications.outbox import EmailKind
from events.notifications.schedule import queue_due_followups, queue_due_reminders
from events.registration.services import Person, join_waitlist, register
from events.staff import messages, rosters
from events.staff.errors import RosterRefusal
from tests.conftest import TEST_REDIS_URL
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token, wait_until
from tests.integration.test_staff import make_user, sign_in

BODY = "We're in room B <b>today</b>.\nBring a mat & water.\n\n  Indented line stays."


@pytest.fixture
def room(db):
    make_clinic(name="Revival Physical Therapy", email="hello@revival.example", email_subjects="titled")
    teacher = make_user(db, "a@clinic.example")
    make_user(db, "admin@clinic.example", Role.ADMIN)
    offering = make_offering(
        make_location(), OfferingKind.CLASS, title="Core A", instructor=teacher, capacity=2
    )
    first = make_session(offering, upcoming_day(2))
    second = make_session(offering, upcoming_day(9))
    db.session.commit()
    for name in ("Ana", "Ben"):
        register(offering, first.id, Person(name, f"{name.lower()}@example.com"))
    register(offering, second.id, Person("Ana", "ana@example.com"))  # Ana comes twice: one person
    join_waitlist(offering, first.id, Person("Wes", "wes@example.com"))
    return {"offering": offering, "first": first, "second": second, "teacher": teacher}


def preview_and_send(client, url, **fields):
    form = client.get(url)
    assert form.status_code == 200
    preview = client.post(
        url, data={"csrf_token": csrf_token(form.get_data(as_text=True)), "step": "preview", **fields}
    )
    assert preview.status_code == 200, preview.get_data(as_text=True)
    page = preview.get_data(as_text=True)
    key = re.search(r'name="request_key" value="([^"]+)"', page).group(1)
    send = {"csrf_token": csrf_token(page), "step": "send", "request_key": key, **fields}
    return page, send


def test_a_session_message_reaches_each_person_once_from_the_clinic(client, db, smtp, room):
    sign_in(client, "a@clinic.example")
    url = f"/staff/sessions/{room['first'].id}/message"
    page, send = preview_and_send(client, url, subject="Room B today", body=BODY)
    assert "Send to 2 people" in page and "Room B today" in page
    assert "&lt;b&gt;today&lt;/b&gt;" in page  # the preview shows the text, not markup

    sent = client.post(url, data=send, follow_redirects=True)
    assert "Message sent to 2 people." in sent.get_data(as_text=True)
    again = client.post(url, data=send, follow_redirects=True)  # a double tap on Send
    assert "already sent; it was not sent again" in again.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StaffMessage)) == 1

    deliver_due()
    for address in ("ana@example.com", "ben@example.com"):
        [message] = [m for m in smtp.to(address) if m["Subject"] == "Room B today"]
        [reply_to] = message["Reply-To"].addresses
        assert reply_to.addr_spec == "hello@revival.example"
        assert message["From"].addresses[0].addr_spec == "hello@clinic.test"
        text = message.get_body(("plain",)).get_content()
        assert BODY in text.replace("\r\n", "\n")
        html = message.get_body(("html",)).get_content()
        assert "&lt;b&gt;today&lt;/b&gt;" in html and "<b>today</b>" not in html and "mat &amp; water" in html
    assert [
        m for m in smtp.to("wes@example.com") if m["Subject"] == "Room B today"
    ] == []  # waitlist not asked
    [entry] = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "message.sent")).all()
    assert entry.actor_id == room["teacher"].id and entry.target_type == "session"
    assert entry.details["recipients"] == 2 and entry.details["subject"] == "Room B today"
    assert entry.details["offering_title"] == "Core A" and entry.details["include_waitlist"] is False


def test_an_offering_message_with_the_waitlist_is_one_email_per_address(client, db, smtp, room):
    sign_in(client, "admin@clinic.example")
    url = f"/staff/admin/offerings/{room['offering'].id}/message"
    page, send = preview_and_send(
        client, url, subject="New mats", body="Fresh mats {title} arrived.", include_waitlist="y"
    )
    assert "Send to 3 people" in page
    client.post(url, data=send)
    deliver_due()
    for address in ("ana@example.com", "ben@example.com", "wes@example.com"):
        got = [m for m in smtp.to(address) if m["Subject"] == "New mats"]
        assert len(got) == 1, address
        assert "Fresh mats {title} arrived." in got[0].get_body(("plain",)).get_content()
    keys = db.session.scalars(
        sa.select(OutboxEmail.dedupe_key).where(OutboxEmail.kind == EmailKind.STAFF_MESSAGE)
    ).all()
    assert len(keys) == len(set(keys)) == 3


def test_a_subject_with_a_line_break_is_refused_and_nothing_is_sent(client, db, room):
    sign_in(client, "a@clinic.example")
    url = f"/staff/sessions/{room['first'].id}/message"
    token = csrf_token(client.get(url).get_data(as_text=True))
    for subject in ("Hi\r\nBcc: all@evil.example", "Hi\nBcc: x@evil.example", "Hi\rthere"):
        response = client.post(
            url, data={"csrf_token": token, "step": "preview", "subject": subject, "body": "x"}
        )
        assert response.status_code == 400
        response = client.post(
            url,
            data={
                "csrf_token": token,
                "step": "send",
                "request_key": "k" * 24,
                "subject": subject,
                "body": "x",
            },
        )
        assert response.status_code == 400
    with pytest.raises(RosterRefusal):
        messages.send_message(
            room["teacher"], room["offering"], room["first"], "A\r\nB", "x", False, "k" * 24
        )
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StaffMessage)) == 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.kind == EmailKind.STAFF_MESSAGE)
        )
        == 0
    )


def test_a_walk_in_with_an_email_gets_the_follow_up_and_one_without_gets_nothing(db, smtp, room):
    teacher, offering, first = room["teacher"], room["offering"], room["first"]
    # A drop-in class (full: Ana and Ben hold its 2 seats) gets one more seat for the walk-ins.
    first.seat_pool.capacity = 4
    course = make_offering(make_location(), OfferingKind.COURSE, title="Back Basics", capacity=5)
    course_first = make_session(course, upcoming_day(3))
    course_second = make_session(course, upcoming_day(10))
    db.session.commit()
    during = first.starts_at + timedelta(minutes=5)
    dee = rosters.add_walk_in(first, Person("Dee Walkin", "dee@example.com"), teacher, now=during)
    rosters.add_walk_in(first, Person("Eli Nomail", ""), teacher, now=during)
    assert dee.session_id == first.id
    during_course = course_first.starts_at + timedelta(minutes=5)
    fay = rosters.add_walk_in(
        course_first, Person("Fay Walkin", "fay@example.com"), teacher, now=during_course
    )
    rosters.add_walk_in(course_first, Person("Gus Nomail", ""), teacher, now=during_course)
    assert fay.session_id is None  # a course: the walk-in joins the whole course

    # The follow-up after the class, and the course's next reminder: only to an address.
    queue_due_followups(first.ends_at + timedelta(minutes=offering.followup_delay_minutes))
    queue_due_reminders(course_second.starts_at - timedelta(minutes=100))
    walk_in_rows = db.session.execute(
        sa.select(OutboxEmail.kind, OutboxEmail.to_email)
        .join(Registration, Registration.id == OutboxEmail.registration_id)
        .where(Registration.source == "walk_in")
    ).all()
    assert sorted(walk_in_rows) == [
        (EmailKind.FOLLOW_UP, "dee@example.com"),
        (EmailKind.REMINDER, "fay@example.com"),
    ]
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(OutboxEmail).where(OutboxEmail.to_email == "")
        )
        == 0
    )

    deliver_due(now=course_second.starts_at - timedelta(minutes=99))
    # Checked in as they arrived: thanked for coming, like anyone checked in.
    assert [m["Subject"] for m in smtp.to("dee@example.com")] == ["Thank you for coming: Core A"]
    [reminder] = smtp.to("fay@example.com")
    assert reminder["Subject"].startswith("Reminder: Back Basics")


def test_a_message_goes_out_through_the_real_worker_once_each(client, db, smtp, celery_worker, publish, room):
    sign_in(client, "a@clinic.example")
    url = f"/staff/sessions/{room['first'].id}/message"
    _, send = preview_and_send(client, url, subject="Bring a towel", body="Bring a towel, please.")
    assert client.post(url, data=send).status_code == 302  # the commit nudges the worker through Redis

    def towels():
        return sorted(rcpt for rcpt, m in smtp.messages if m["Subject"] == "Bring a towel")

    wait_until(lambda: len(towels()) >= 2, what="the message delivered by the worker")
    celery_worker.work_through_queue(TEST_REDIS_URL)
    assert towels() == ["ana@example.com", "ben@example.com"]
