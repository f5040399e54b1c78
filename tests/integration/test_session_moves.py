"""Moving a session, giving it a substitute, and the dates table's per-date actions (issue 13,
items 1-3), on PostgreSQL."""

from __future__ import annotations

import re
import threading
import time as clock
from datetime import time, timedelta
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from events.extensions import db as _db
from events.models import (
    AuditEntry,
    EmailStatus,
    OfferingKind,
    OutboxEmail,
    PaymentStatus,
    Registration,
    RegistrationStatus,
    Role,
    SeatPool,
    Session,
    SessionStatus,
    User,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.notifications.schedule import queue_due_reminders
from events.registration import links
from events.registration.services import Person, cancel_registration, join_waitlist, refund_quote, register
from events.staff import moves, substitutes
from events.staff.cancellations import cancel_session
from events.staff.errors import AdminError
from tests.factories import make_clinic, make_location, make_offering, make_session
from tests.helpers import csrf_token, wait_until
from tests.integration.conftest import day
from tests.integration.test_catalog_ical import _emails, _ics, events_by_uid, parse, uid
from tests.integration.test_payments import payment_row
from tests.integration.test_staff import make_user, sign_in


def moved_emails(db, **filters) -> list[OutboxEmail]:
    return list(
        db.session.scalars(
            sa.select(OutboxEmail).filter_by(kind=EmailKind.SESSION_MOVED, **filters).order_by(OutboxEmail.id)
        )
    )


@pytest.fixture
def room(db, app, monkeypatch):
    """A drop-in class taught by Ira (capacity 2: Ana and Ben registered, Wes waiting), a second
    class of Ira's two days later, another location, an admin and a spare instructor."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://classes.clinic.example")
    make_clinic(name="Test Clinic")
    north = make_location(slug="north", name="North Loop")
    robbinsdale = make_location(slug="robbinsdale", name="Robbinsdale")
    ira = make_user(db, "ira@clinic.example", name="Ira Instructor")
    sam = make_user(db, "sam@clinic.example", name="Sam Substitute")
    admin = make_user(db, "admin@clinic.example", Role.ADMIN, name="Ada Admin")
    core = make_offering(north, OfferingKind.CLASS, title="Core & Hip Strength", instructor=ira, capacity=2)
    session = make_session(core, day(5))
    other = make_offering(north, OfferingKind.CLASS, title="Balance", instructor=ira)
    other_session = make_session(other, day(7))
    db.session.commit()
    people = [
        register(core, session.id, Person(n, f"{n.lower()}@example.com")).registration for n in ("Ana", "Ben")
    ]
    waiting = join_waitlist(core, session.id, Person("Wes", "wes@example.com")).entry
    return {
        "session": session,
        "other_session": other_session,
        "north": north,
        "robbinsdale": robbinsdale,
        "ira": ira,
        "sam": sam,
        "admin": admin,
        "people": people,
        "waiting": waiting,
        "core": core,
    }


# --- Refused moves: nothing changes, a clear message ---


@pytest.mark.parametrize(
    "change, message",
    [
        ({"start": time(18, 0), "end": time(17, 0)}, "The end time must be after the start time."),
        ({"start": time(18, 0), "end": time(18, 0)}, "The end time must be after the start time."),
        ({"day_offset": -10}, "The new time is in the past."),
        ({}, "That is the same time and place"),
        # Ira teaches Balance on day 7 at 6 pm: moving Core onto it would put Ira in two places.
        (
            {"day_offset": 2, "start": time(18, 30), "end": time(19, 30)},
            "Ira Instructor teaches Balance then",
        ),
    ],
)
def test_a_move_is_refused_and_changes_nothing(db, room, change, message):
    session = room["session"]
    before = (session.starts_at, session.ends_at, session.location_id, session.sequence)
    new_day = day(5 + change.get("day_offset", 0))
    with pytest.raises(AdminError, match=re.escape(message)):
        moves.move_session(
            session.id,
            new_day,
            change.get("start", time(18, 0)),
            change.get("end", time(19, 0)),
            None,
            room["admin"],
        )
    db.session.rollback()
    db.session.refresh(session)
    assert (session.starts_at, session.ends_at, session.location_id, session.sequence) == before
    assert moved_emails(db) == []
    assert db.session.scalar(sa.select(AuditEntry).filter_by(action="session.moved")) is None


def test_a_move_onto_a_date_the_instructor_substitutes_on_is_refused(db, room):
    """A substitute's other sessions count: Sam covers Balance, so Core can't move onto it for Sam."""
    substitutes.substitute(room["session"].id, room["sam"].id, False, room["admin"])
    balance = make_offering(room["north"], OfferingKind.CLASS, title="Balance for Sam")
    busy = make_session(balance, day(9), instructor=room["sam"])
    db.session.commit()
    with pytest.raises(AdminError, match="Sam Substitute teaches Balance for Sam then"):
        moves.move_session(room["session"].id, day(9), time(17, 30), time(18, 30), None, room["admin"])
    db.session.rollback()
    assert busy.instructor_id == room["sam"].id
    assert db.session.get(Session, room["session"].id).local_start.date() == day(5)


def test_a_cancelled_date_cannot_be_moved(db, room):
    cancel_session(room["session"].id, room["admin"], "Room flooded")
    with pytest.raises(AdminError, match="cancelled"):
        moves.move_session(room["session"].id, day(6), time(18, 0), time(19, 0), None, room["admin"])


# --- A move: one email each, the invite updated in place, audited ---


def test_a_move_emails_everyone_once_with_the_invite_updated_in_place(app, db, room):
    session, (ana, ben), wes = room["session"], room["people"], room["waiting"]
    [confirmation] = [
        m
        for m in _emails(app, db, EmailKind.REGISTRATION_CONFIRMED)
        if m["To"].addresses[0].addr_spec == ana.email
    ]
    [first_invite] = _ics(confirmation, "invite.ics")[1].walk("VEVENT")

    result = moves.move_session(
        session.id, day(6), time(9, 30), time(10, 45), room["robbinsdale"], room["admin"]
    )

    assert result.emailed == 3
    db.session.refresh(session)
    assert (session.local_start.date(), session.local_start.time(), session.location.name) == (
        day(6),
        time(9, 30),
        "Robbinsdale",
    )
    assert session.sequence == 1 and session.moved_at is not None
    rows = moved_emails(db)
    assert {(r.registration_id, r.waitlist_entry_id) for r in rows} == {
        (ana.id, None),
        (ben.id, None),
        (None, wes.id),
    }
    assert len(rows) == 3
    # Ana's calendar gets the same event with a higher SEQUENCE, at the new time and place.
    messages = {m["To"].addresses[0].addr_spec: m for m in _emails(app, db, EmailKind.SESSION_MOVED)}
    method, cal = _ics(messages[ana.email], "invite.ics")
    [event] = cal.walk("VEVENT")
    assert method == "PUBLISH" and str(event["uid"]) == str(first_invite["uid"]) == uid(session, ana)
    assert event["sequence"] == 1 > first_invite["sequence"]
    assert event.decoded("dtstart") == session.local_start and "Robbinsdale" in str(event["location"])
    text = messages[ana.email].get_body(("plain",)).get_content()
    assert "Was: " in text and "North Loop" in text and "9:30 am–10:45 am" in text and "please cancel" in text
    # The waitlist is told too, with no invite (they have no event to update).
    assert not [p for p in messages[wes.email].iter_attachments() if p.get_content_type() == "text/calendar"]
    # The audit row says it in words.
    entry = db.session.scalar(sa.select(AuditEntry).filter_by(action="session.moved"))
    assert entry.actor_id == room["admin"].id and entry.target_id == session.id
    assert entry.details["offering_title"] == "Core & Hip Strength"
    assert entry.details["old_location"] == "North Loop" and entry.details["new_location"] == "Robbinsdale"
    assert entry.details["new_when"].endswith(("CST", "CDT")) and "9:30 am" in entry.details["new_when"]
    assert entry.details["people_emailed"] == 3 and entry.details["instructor_name"] == "Ira Instructor"

    # A second move is a second email each, with a higher SEQUENCE still; cancelling is higher again.
    moves.move_session(session.id, day(8), time(9, 30), time(10, 45), None, room["admin"])
    assert len(moved_emails(db)) == 6
    second = [
        m for m in _emails(app, db, EmailKind.SESSION_MOVED) if m["To"].addresses[0].addr_spec == ana.email
    ]
    assert [_ics(m, "invite.ics")[1].walk("VEVENT")[0]["sequence"] for m in second] == [2, 2]  # built now
    cancel_session(session.id, room["admin"], "Instructor ill")
    [cancelled] = [
        m
        for m in _emails(app, db, EmailKind.SESSION_CANCELLED)
        if m["To"].addresses[0].addr_spec == ana.email
    ]
    assert _ics(cancelled, "cancel.ics")[1].walk("VEVENT")[0]["sequence"] == 3


def test_retrying_a_moves_emails_queues_no_duplicate(db, room):
    """The dedupe key names the move: the same move's email queued again is still one row."""
    from events.notifications.outbox import queue_email

    moves.move_session(room["session"].id, day(6), time(18, 0), time(19, 0), None, room["admin"])
    ana = room["people"][0]
    again = queue_email(
        EmailKind.SESSION_MOVED, registration=ana, session_id=room["session"].id, key_parts=("m1",)
    )
    assert again is False and len(moved_emails(db, registration_id=ana.id)) == 1


def test_nobody_with_an_empty_address_is_emailed(db, room):
    """A walk-in may have no email: the move tells everyone else."""
    ben = room["people"][1]
    ben.email = ""
    db.session.commit()
    result = moves.move_session(room["session"].id, day(6), time(18, 0), time(19, 0), None, room["admin"])
    assert result.emailed == 2 and all(r.to_email for r in moved_emails(db))


# --- Reminders follow the new time ---


def test_reminders_follow_the_new_time_exactly_once_each(db, room):
    session = room["session"]
    ana, ben = room["people"]
    # Ana and Ben registered long before any reminder window (the sweep skips fresh registrations).
    for r in (ana, ben):
        r.created_at = utcnow() - timedelta(days=30)
    db.session.commit()

    def reminders(**filters):
        return db.session.scalars(
            sa.select(OutboxEmail).filter_by(kind=EmailKind.REMINDER, **filters).order_by(OutboxEmail.id)
        ).all()

    old_start = session.starts_at
    # The day-before reminder for the old time goes out (and is sent).
    assert queue_due_reminders(old_start - timedelta(hours=23)) == 2
    for row in reminders():
        row.status = EmailStatus.SENT
    # The 2-hour one is queued but not sent yet when the class moves a day later.
    assert queue_due_reminders(old_start - timedelta(minutes=100)) == 2
    db.session.commit()

    moves.move_session(session.id, day(6), time(18, 0), time(19, 0), None, room["admin"])
    db.session.refresh(session)
    new_start = session.starts_at
    assert new_start - old_start == timedelta(days=1)
    # The unsent one for the old time is gone; the sent ones stay as the record.
    assert [r.status for r in reminders()] == [EmailStatus.SENT, EmailStatus.SENT]

    # None for the old time after the move: the old windows are empty now.
    assert queue_due_reminders(old_start - timedelta(minutes=100)) == 0
    # The new time's day-before reminder, although one was sent for the old time: once each.
    assert queue_due_reminders(new_start - timedelta(hours=23)) == 2
    assert queue_due_reminders(new_start - timedelta(hours=22)) == 0
    assert queue_due_reminders(new_start - timedelta(minutes=100)) == 2
    assert queue_due_reminders(new_start - timedelta(minutes=30)) == 0
    keys = sorted(r.dedupe_key for r in reminders() if r.dedupe_key.endswith(":v1"))
    assert keys == sorted(
        f"reminder:r{r.id}:s{session.id}:{offset}m:v1" for r in (ana, ben) for offset in (1440, 120)
    )
    for person in (ana, ben):
        assert len(reminders(registration_id=person.id)) == 3  # 1440 (old, sent) + 1440 and 120 (new)


def test_follow_ups_after_a_moved_class_are_keyed_by_its_new_time_once_each(db, room):
    from events.notifications.schedule import queue_due_followups

    session = room["session"]
    moves.move_session(session.id, day(6), time(18, 0), time(19, 0), None, room["admin"])
    db.session.refresh(session)
    after = session.ends_at + timedelta(minutes=session.offering.followup_delay_minutes + 5)
    assert queue_due_followups(after) == 2
    assert queue_due_followups(after + timedelta(hours=1)) == 0
    keys = db.session.scalars(sa.select(OutboxEmail.dedupe_key).filter_by(kind=EmailKind.FOLLOW_UP)).all()
    assert sorted(keys) == sorted(f"follow_up:r{r.id}:s{session.id}:v1" for r in room["people"])


# --- Anyone registered before the move may cancel for a full refund ---


def test_a_move_gives_a_full_refund_whatever_the_cut_off(app, client, db, room):
    north = room["north"]
    paid = make_offering(
        north,
        OfferingKind.CLASS,
        title="Paid Core",
        price_cents=2000,
        cancellation_cutoff_hours=24 * 30,  # long past the cut-off already
        late_cancel_refund_percent=0,
    )
    session = make_session(paid, day(5))
    db.session.commit()
    before = register(paid, session.id, Person("Pat", "pat@example.com")).registration
    payment_row(before, "pi_moved_before", PaymentStatus.SUCCEEDED)
    before.status, before.confirmed_at = RegistrationStatus.CONFIRMED, utcnow()
    db.session.commit()
    assert refund_quote(before).amount_cents == 0  # the policy alone gives nothing

    moves.move_session(session.id, day(6), time(18, 0), time(19, 0), None, room["admin"])

    quote = refund_quote(before)
    assert (quote.amount_cents, quote.full) == (2000, True) and "moved" in quote.explanation
    [told] = [m for m in _emails(app, db, EmailKind.SESSION_MOVED) if "pat@example.com" in m["To"]]
    assert "cancel for a full refund of what you paid" in told.get_body(("plain",)).get_content()
    page = client.get(f"/manage/{links.sign(before.token, links.MANAGE_SALT)}/cancel").get_data(as_text=True)
    assert "full refund of $20" in page and "Full refunds are given until" not in page
    # Someone who registers after the move chose the new time: the policy applies to them.
    after = register(paid, session.id, Person("Lou", "lou@example.com")).registration
    payment_row(after, "pi_moved_after", PaymentStatus.SUCCEEDED)
    after.status, after.confirmed_at = RegistrationStatus.CONFIRMED, utcnow()
    db.session.commit()
    assert refund_quote(after).amount_cents == 0
    _, refunded = cancel_registration(before.id, expected_refund_cents=2000)
    assert refunded == 2000


# --- Substitute instructor ---


def test_a_substitute_sees_the_roster_and_the_regular_instructor_no_longer_does(
    app, client, db, room, monkeypatch
):
    session = room["session"]
    # Check-in opens an hour before the start; this class is days away.
    monkeypatch.setitem(app.config, "CHECKIN_OPENS_MINUTES_BEFORE", 10 * 24 * 60)
    roster = f"/staff/sessions/{session.id}"
    sign_in(client, "ira@clinic.example")
    assert client.get(roster).status_code == 200

    plan, emailed = substitutes.substitute(session.id, room["sam"].id, True, room["admin"])

    assert emailed == 2 and plan.previous.name == "Ira Instructor"
    assert client.get(roster).status_code == 404
    assert "Core &amp; Hip Strength" not in client.get("/staff/").get_data(as_text=True)
    client.post(
        "/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/").get_data(as_text=True))}
    )
    sign_in(client, "sam@clinic.example")
    assert client.get(roster).status_code == 200
    assert "Core &amp; Hip Strength" in client.get("/staff/").get_data(as_text=True)
    ana = room["people"][0]
    check_in = client.post(
        f"{roster}/attendance/{ana.id}",
        data={"csrf_token": csrf_token(client.get(roster).get_data(as_text=True)), "status": "present"},
    )
    assert check_in.status_code in (200, 302)
    marked = db.session.scalar(sa.select(AuditEntry).filter_by(action="attendance.present"))
    assert marked.actor_id == room["sam"].id
    # The public API names the substitute; the registrants were told once each.
    response = client.get(f"/api/v1/sessions/{session.id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    api = response.get_json()["data"]
    assert api["instructor"] == "Sam Substitute"
    assert "with Sam Substitute" in client.get(f"/offerings/{room['core'].slug}").get_data(as_text=True)
    told = db.session.scalars(sa.select(OutboxEmail).filter_by(kind=EmailKind.INSTRUCTOR_CHANGED)).all()
    assert sorted(r.registration_id for r in told) == sorted(r.id for r in room["people"])
    [message] = [m for m in _emails(app, db, EmailKind.INSTRUCTOR_CHANGED) if ana.email in m["To"]]
    assert "Sam Substitute will teach Core & Hip Strength" in message.get_body(("plain",)).get_content()
    entry = db.session.scalar(sa.select(AuditEntry).filter_by(action="session.substituted"))
    assert (
        entry.details["old_instructor"] == "Ira Instructor"
        and entry.details["new_instructor"] == "Sam Substitute"
    )
    assert entry.details["people_emailed"] == 2

    # Back to the regular instructor, nobody emailed this time.
    _, emailed = substitutes.substitute(session.id, None, False, room["admin"])
    assert emailed == 0 and db.session.get(Session, session.id).instructor_id is None
    with pytest.raises(AdminError, match="already teaches"):
        substitutes.substitute(session.id, room["ira"].id, False, room["admin"])


def test_a_substitute_must_be_free_then(db, room):
    make_session(
        make_offering(room["north"], OfferingKind.CLASS, title="Sam's own"), day(5), instructor=room["sam"]
    )
    db.session.commit()
    with pytest.raises(AdminError, match="Sam Substitute teaches Sam's own then"):
        substitutes.substitute(room["session"].id, room["sam"].id, False, room["admin"])
    db.session.rollback()
    assert db.session.get(Session, room["session"].id).instructor_id is None


# --- Feeds and the API show the new time at once ---


def test_feeds_and_the_api_show_the_new_time(client, db, room):
    session = room["session"]
    client.get("/calendar.ics")
    client.get(f"/api/v1/sessions/{session.id}")  # both cached now
    moves.move_session(session.id, day(6), time(7, 15), time(8, 0), room["robbinsdale"], room["admin"])
    db.session.refresh(session)
    [event] = [e for u, e in events_by_uid(parse(client.get("/calendar.ics"))).items() if u == uid(session)]
    assert event.decoded("dtstart") == session.local_start and event["sequence"] == 1
    api = client.get(f"/api/v1/sessions/{session.id}").get_json()["data"]
    assert api["starts_at"] == session.local_start.isoformat() and api["location"]["name"] == "Robbinsdale"


# --- The admin's pages: the dates table, the confirmation, the honest result ---


def test_moving_through_the_confirmation_page(client, db, room):
    session = room["session"]
    sign_in(client, "admin@clinic.example")
    table = client.get(f"/staff/admin/offerings/{room['core'].id}").get_data(as_text=True)
    for action in ("move", "substitute", "cancel"):
        assert f"/staff/admin/sessions/{session.id}/{action}" in table
    page = client.get(f"/staff/admin/sessions/{session.id}/move").get_data(as_text=True)
    assert "America/Chicago" in page
    values = {
        "csrf_token": csrf_token(page),
        "day": day(6).isoformat(),
        "start": "18:00",
        "end": "19:00",
        "location_id": str(room["north"].id),
    }
    confirm = client.post(f"/staff/admin/sessions/{session.id}/move", data=values)
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Check the move" in text
    assert "Move Core &amp; Hip Strength from" in text and "3 people will be emailed" in text
    db.session.refresh(session)
    assert session.sequence == 0 and moved_emails(db) == []  # nothing happened yet

    done = client.post(f"/staff/admin/sessions/{session.id}/move", data={**values, "confirmed": "yes"})
    assert done.status_code == 302 and done.headers["Location"].endswith("#sessions")
    result = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Moved Core &amp; Hip Strength to" in result and "3 people are being emailed." in result
    db.session.refresh(session)
    assert session.sequence == 1 and len(moved_emails(db)) == 3

    # The same confirmed form again (a double click): refused, nothing sent twice.
    again = client.post(f"/staff/admin/sessions/{session.id}/move", data={**values, "confirmed": "yes"})
    assert again.status_code == 400 and "same time and place" in again.get_data(as_text=True)
    assert len(moved_emails(db)) == 3


def test_a_refused_move_shows_a_form_error(client, db, room):
    session = room["session"]
    sign_in(client, "admin@clinic.example")
    page = client.get(f"/staff/admin/sessions/{session.id}/move").get_data(as_text=True)
    response = client.post(
        f"/staff/admin/sessions/{session.id}/move",
        data={
            "csrf_token": csrf_token(page),
            "day": day(6).isoformat(),
            "start": "19:00",
            "end": "18:00",
            "location_id": str(room["north"].id),
        },
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "The end time must be after the start time." in text
    assert 'href="#end"' in text  # the error summary links to the field


def test_substituting_and_cancelling_through_their_confirmation_pages(client, db, room):
    session = room["session"]
    sign_in(client, "admin@clinic.example")
    page = client.get(f"/staff/admin/sessions/{session.id}/substitute").get_data(as_text=True)
    values = {"csrf_token": csrf_token(page), "instructor_id": str(room["sam"].id), "notify": "y"}
    confirm = client.post(f"/staff/admin/sessions/{session.id}/substitute", data=values).get_data(
        as_text=True
    )
    assert (
        "Sam Substitute will teach Core &amp; Hip Strength" in confirm
        and "2 people will be emailed" in confirm
    )
    assert db.session.get(Session, session.id).instructor_id is None
    done = client.post(f"/staff/admin/sessions/{session.id}/substitute", data={**values, "confirmed": "yes"})
    assert done.status_code == 302
    assert "Sam Substitute now teaches" in client.get(done.headers["Location"]).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Session, session.id).instructor_id == room["sam"].id

    page = client.get(f"/staff/admin/sessions/{session.id}/cancel").get_data(as_text=True)
    values = {"csrf_token": csrf_token(page), "reason": "Room flooded"}
    confirm = client.post(f"/staff/admin/sessions/{session.id}/cancel", data=values).get_data(as_text=True)
    assert "Check the cancellation" in confirm and "2 people will be told" in confirm
    db.session.expire_all()
    assert db.session.get(Session, session.id).status == SessionStatus.SCHEDULED
    done = client.post(f"/staff/admin/sessions/{session.id}/cancel", data={**values, "confirmed": "yes"})
    assert "2 people being emailed; no refunds were due." in client.get(done.headers["Location"]).get_data(
        as_text=True
    )
    db.session.expire_all()
    assert db.session.get(Session, session.id).status == SessionStatus.CANCELLED


def test_adding_a_date_is_audited_in_words(client, db, room):
    sign_in(client, "admin@clinic.example")
    page = client.get(f"/staff/admin/offerings/{room['core'].id}").get_data(as_text=True)
    response = client.post(
        f"/staff/admin/offerings/{room['core'].id}/sessions",
        data={
            "csrf_token": csrf_token(page),
            "first_day": day(12).isoformat(),
            "start": "18:00",
            "duration_minutes": "60",
            "weeks": "1",
            "location_id": "",
        },
    )
    assert response.status_code == 302
    entry = db.session.scalar(sa.select(AuditEntry).filter_by(action="session.created"))
    assert (
        entry.details["offering_title"] == "Core & Hip Strength" and entry.details["location"] == "North Loop"
    )
    assert entry.details["when"].startswith(f"{day(12):%a %b} {day(12).day}, 6 pm–7 pm")


@pytest.mark.parametrize("who", ["ira@clinic.example", "sam@clinic.example"])
def test_instructors_can_neither_move_substitute_nor_cancel(client, db, room, who):
    substitutes.substitute(room["session"].id, room["sam"].id, False, room["admin"])
    sign_in(client, who)
    for action in ("move", "substitute", "cancel"):
        url = f"/staff/admin/sessions/{room['session'].id}/{action}"
        assert client.get(url).status_code == 403
        assert client.post(url, data={"confirmed": "yes"}).status_code in (400, 403)
    assert moved_emails(db) == []


# --- A move and registrations at the same moment ---


def _move_during_a_rush(live_server, db, attempts: int, email_prefix: str) -> tuple[list, set, Session]:
    """`attempts` people register through the live server while the admin moves the session.
    Returns (confirmed registrations, ids of those emailed about the move, the session)."""
    from tests.factories import workshop
    from tests.load import race_for_seats

    offering = workshop(capacity=attempts + 10, title=f"Rush Hour {email_prefix}")
    admin = User(email=f"{email_prefix}-admin@clinic.example", name="Rush Admin", role=Role.ADMIN)
    db.session.add(admin)
    db.session.commit()
    session_id, pool_id = offering.sessions[0].id, offering.sessions[0].seat_pool_id

    def registered() -> int:
        return _db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Registration)
            .where(Registration.offering_id == offering.id)
        )

    results = {}
    racers = threading.Thread(
        target=lambda: results.update(
            race=race_for_seats(live_server.url, offering.slug, attempts, email_prefix)
        )
    )
    racers.start()
    try:
        wait_until(lambda: registered() >= 1, timeout=60, what="the first registration")
        moves.move_session(session_id, day(9), time(18, 0), time(19, 0), None, admin)
    finally:
        racers.join(timeout=180)
    race = results["race"]
    assert race.errors == 0 and race.registered == attempts

    _db.session.expire_all()
    session = _db.session.get(Session, session_id)
    pool = _db.session.get(SeatPool, pool_id)
    confirmed = _db.session.scalars(
        sa.select(Registration).where(
            Registration.offering_id == offering.id, Registration.status == RegistrationStatus.CONFIRMED
        )
    ).all()
    assert len(confirmed) == attempts and pool.seats_taken == attempts  # no seat lost or doubled
    told = {r.registration_id for r in moved_emails(_db, session_id=session_id)}
    return list(confirmed), told, session


@pytest.mark.slow
def test_a_move_during_a_rush_of_registrations_tells_exactly_those_registered_before_it(live_server, db):
    """No seat is lost or doubled, and everyone registered before the move (and nobody after)
    gets its email: the move and each registration take the pool lock in turn."""
    confirmed, told, session = _move_during_a_rush(live_server, db, 30, "rush")
    print(f"\nmove during a rush: {len(told)} of 30 registered before the move")
    for registration in confirmed:
        assert (registration.id in told) == (registration.created_at < session.moved_at), registration.id
    entry = _db.session.scalar(sa.select(AuditEntry).filter_by(action="session.moved", target_id=session.id))
    assert entry.details["people_emailed"] == len(told)


@pytest.mark.slow
def test_control_without_the_lock_a_move_misses_or_misdates_someone(live_server, db, monkeypatch):
    """If this control ever stops failing the rule, the test above proves nothing."""
    import time as clock
    from types import SimpleNamespace

    def read_without_locking(pool_id):
        return _db.session.execute(
            sa.select(SeatPool).where(SeatPool.id == pool_id).execution_options(populate_existing=True)
        ).scalar_one()

    real_registrations_to_tell = moves.registrations_to_tell

    def slow_registrations_to_tell(session):
        clock.sleep(0.3)  # widen the window between the move's moment and its list of people
        return real_registrations_to_tell(session)

    # Only the move goes without the lock; registrations keep theirs (and count seats right).
    monkeypatch.setattr(moves, "seats", SimpleNamespace(lock_pool=read_without_locking))
    monkeypatch.setattr(moves, "registrations_to_tell", slow_registrations_to_tell)
    confirmed, told, session = _move_during_a_rush(live_server, db, 60, "control")
    wrong = [r.id for r in confirmed if (r.id in told) != (r.created_at < session.moved_at)]
    print(f"\ncontrol (no lock): {len(wrong)} of 60 told wrongly")
    assert wrong


def _move_two_dates_of_ira_onto_one_time(app, db, room, monkeypatch) -> list[str]:
    """Two admins at once move Ira's two classes (different seat pools) onto the same evening.
    Each thread's clash check is held open a moment so the two surely overlap."""
    first, second, admin_id = room["session"].id, room["other_session"].id, room["admin"].id
    db.session.commit()
    db.session.remove()
    real_clash = moves.clash

    def slow_clash(*args, **kwargs):
        found = real_clash(*args, **kwargs)
        clock.sleep(0.3)  # the window between looking for a clash and writing the new time
        return found

    monkeypatch.setattr(moves, "clash", slow_clash)
    start, outcomes = threading.Barrier(2), []

    def move(session_id: int) -> None:
        with app.app_context():
            start.wait()
            try:
                moves.move_session(
                    session_id, day(12), time(18, 0), time(19, 0), None, _db.session.get(User, admin_id)
                )
                outcomes.append("moved")
            except AdminError as error:
                _db.session.rollback()
                outcomes.append(str(error))

    threads = [threading.Thread(target=move, args=(sid,)) for sid in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


@pytest.mark.real_commits  # two threads, each with its own app context and connection
def test_two_admins_moving_two_of_one_instructors_dates_onto_one_time_one_succeeds(
    app, db, room, monkeypatch
):
    outcomes = _move_two_dates_of_ira_onto_one_time(app, db, room, monkeypatch)
    assert sorted(outcomes)[-1] == "moved" and outcomes.count("moved") == 1, outcomes
    [refusal] = [o for o in outcomes if o != "moved"]
    assert "Ira Instructor teaches" in refusal


@pytest.mark.real_commits
def test_control_without_the_instructor_lock_both_moves_pass(app, db, room, monkeypatch):
    """If this control ever stops double-booking Ira, the test above proves nothing."""
    monkeypatch.setattr(moves, "lock_instructor", lambda user_id: None)
    outcomes = _move_two_dates_of_ira_onto_one_time(app, db, room, monkeypatch)
    assert outcomes == ["moved", "moved"]


# --- Hostile input on the confirmation step (the first step's form is walked by test_all_forms) ---


@pytest.mark.parametrize("field", ["day", "start", "end", "location_id", "confirmed"])
@pytest.mark.parametrize(
    "value", ["\x00", "\ud800", "9" * 400, "2^63", "9999-12-31", "\x1b[31m", "x" * 100_000]
)
def test_hostile_values_in_a_confirmed_move_change_nothing(client, db, room, field, value):
    session = room["session"]
    sign_in(client, "admin@clinic.example")
    page = client.get(f"/staff/admin/sessions/{session.id}/move").get_data(as_text=True)
    values = {
        "csrf_token": csrf_token(page),
        "day": day(6).isoformat(),
        "start": "18:00",
        "end": "19:00",
        "location_id": str(room["north"].id),
        "confirmed": "yes",
        field: value,
    }
    body = "&".join(f"{k}={quote(v, errors='surrogatepass')}" for k, v in values.items())
    response = client.post(
        f"/staff/admin/sessions/{session.id}/move",
        data=body,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code in (200, 400)
    db.session.expire_all()
    assert db.session.get(Session, session.id).sequence == 0 and moved_emails(db) == []


@pytest.mark.parametrize("field", ["instructor_id", "notify", "confirmed"])
@pytest.mark.parametrize("value", ["\x00", "\ud800", str(2**63), "-1", "x" * 100_000])
def test_hostile_values_in_a_confirmed_substitute_change_nothing(client, db, room, field, value):
    session = room["session"]
    sign_in(client, "admin@clinic.example")
    page = client.get(f"/staff/admin/sessions/{session.id}/substitute").get_data(as_text=True)
    values = {
        "csrf_token": csrf_token(page),
        "instructor_id": str(room["sam"].id),
        "confirmed": "yes",
        field: value,
    }
    body = "&".join(f"{k}={quote(v, errors='surrogatepass')}" for k, v in values.items())
    response = client.post(
        f"/staff/admin/sessions/{session.id}/substitute",
        data=body,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code < 500
    db.session.expire_all()
    if field != "notify":  # a checkbox takes any value as "on"; the rest must refuse
        assert db.session.get(Session, session.id).instructor_id is None
