"""The roster on a phone (issue 13, items 6-8): the check-in window, undo, the live count, the
search, cancelled and waitlist rows apart, true payment labels, walk-ins, messages, print."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from events.models import (
    Attendance,
    AttendanceStatus,
    AuditEntry,
    OfferingKind,
    OutboxEmail,
    Registration,
    RegistrationStatus,
    Role,
    SeatPool,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_email
from events.registration import services as registration
from events.registration.services import Person
from events.staff import rosters
from events.staff.errors import CheckinClosed
from tests.factories import make_location, make_offering, make_session
from tests.helpers import csrf_token
from tests.integration.test_staff import make_user, sign_in

CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture
def room(db):
    """Instructor A's class starting in 30 minutes (check-in open) with Ana and Ben booked,
    instructor B, an admin."""
    location = make_location(name="North Loop")
    a = make_user(db, "a@clinic.example")
    make_user(db, "b@clinic.example")
    admin = make_user(db, "admin@clinic.example", Role.ADMIN)
    offering = make_offering(location, OfferingKind.CLASS, title="Core A", instructor=a, capacity=4)
    session = make_session(offering, date.today())
    session.starts_at = utcnow() + timedelta(minutes=30)
    session.ends_at = session.starts_at + timedelta(hours=1)
    db.session.commit()
    people = [
        registration.register(offering, session.id, Person(n, f"{n.lower()}@example.com")).registration
        for n in ("Ana", "Ben")
    ]
    return {"a": a, "admin": admin, "offering": offering, "session": session, "people": people}


def at_local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=CHICAGO).astimezone(UTC)


def test_check_in_opens_an_hour_before_and_closes_at_the_end_of_the_local_day(db, room, app, monkeypatch):
    session, ana, a = room["session"], room["people"][0], room["a"]
    day = date(2026, 12, 3)
    session.starts_at, session.ends_at = at_local(day, 18), at_local(day, 19)
    db.session.commit()

    with pytest.raises(
        CheckinClosed, match=r"Check-in opens Thu Dec 3 at 5 pm CST, an hour before the start"
    ):
        rosters.mark_attendance(session, ana.id, AttendanceStatus.PRESENT, a, now=at_local(day, 16, 59))
    with pytest.raises(CheckinClosed, match="opens"):  # twelve days early: the bug in the issue
        rosters.mark_attendance(
            session, ana.id, AttendanceStatus.PRESENT, a, now=at_local(day, 18) - timedelta(days=12)
        )
    rosters.mark_attendance(session, ana.id, AttendanceStatus.PRESENT, a, now=at_local(day, 17))
    rosters.mark_attendance(session, ana.id, AttendanceStatus.ABSENT, a, now=at_local(day, 23, 59))
    with pytest.raises(CheckinClosed, match="closed at the end of Thu Dec 3"):
        rosters.mark_attendance(
            session, ana.id, AttendanceStatus.PRESENT, a, now=at_local(day + timedelta(days=1), 0)
        )
    with pytest.raises(CheckinClosed):  # undo is a change too
        rosters.clear_attendance(session, ana.id, a, now=at_local(day + timedelta(days=1), 0))
    assert db.session.scalar(sa.select(Attendance.status)) == AttendanceStatus.ABSENT

    # Both ends are settings.
    monkeypatch.setitem(app.config, "CHECKIN_OPENS_MINUTES_BEFORE", 120)
    monkeypatch.setitem(app.config, "CHECKIN_CLOSES_DAYS_AFTER", 1)
    rosters.mark_attendance(session, ana.id, AttendanceStatus.PRESENT, a, now=at_local(day, 16))
    rosters.mark_attendance(
        session, ana.id, AttendanceStatus.PRESENT, a, now=at_local(day + timedelta(days=1), 23)
    )
    with pytest.raises(CheckinClosed, match="2 hours before"):
        rosters.mark_attendance(session, ana.id, AttendanceStatus.PRESENT, a, now=at_local(day, 15, 59))


def test_check_in_refused_outside_the_window_says_why_with_and_without_javascript(client, db, room):
    session, ana = room["session"], room["people"][0]
    session.starts_at = utcnow() + timedelta(days=12)
    session.ends_at = session.starts_at + timedelta(hours=1)
    db.session.commit()
    sign_in(client, "a@clinic.example")
    page = client.get(f"/staff/sessions/{session.id}").get_data(as_text=True)
    assert "Check-in opens" in page and "Here<span" not in page and "Add a walk-in" not in page
    token = csrf_token(page)
    url = f"/staff/sessions/{session.id}/attendance/{ana.id}"
    refused = client.post(
        url, data={"csrf_token": token, "status": "present"}, headers={"Accept": "application/json"}
    )
    assert refused.status_code == 409 and refused.json["error"].startswith("Check-in opens")
    no_js = client.post(url, data={"csrf_token": token, "status": "present"}, follow_redirects=True)
    assert "Check-in opens" in no_js.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attendance)) == 0


def test_undo_a_check_in_and_the_count_follows(client, db, room):
    session, (ana, ben) = room["session"], room["people"]
    sign_in(client, "a@clinic.example")
    page = client.get(f"/staff/sessions/{session.id}").get_data(as_text=True)
    assert "0 of 2 here" in page
    token = csrf_token(page)
    as_json = {"Accept": "application/json"}
    marked = client.post(
        f"/staff/sessions/{session.id}/attendance/{ana.id}",
        data={"csrf_token": token, "status": "present"},
        headers=as_json,
    )
    assert marked.json["count_text"] == "1 of 2 here"
    undone = client.post(
        f"/staff/sessions/{session.id}/attendance/{ana.id}/undo", data={"csrf_token": token}, headers=as_json
    )
    assert undone.status_code == 200
    assert undone.json == {
        "registration_id": ana.id,
        "status": None,
        "present": 0,
        "expected": 2,
        "count_text": "0 of 2 here",
    }
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attendance)) == 0
    # Without JavaScript: a normal post and back to the roster.
    client.post(
        f"/staff/sessions/{session.id}/attendance/{ben.id}", data={"csrf_token": token, "status": "present"}
    )
    back = client.post(f"/staff/sessions/{session.id}/attendance/{ben.id}/undo", data={"csrf_token": token})
    assert back.status_code == 302 and back.headers["Location"].endswith(f"#r{ben.id}")
    cleared = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "attendance.cleared")).all()
    assert [(e.target_id, e.details["previous"], e.details["name"]) for e in cleared] == [
        (ana.id, "present", "Ana"),
        (ben.id, "present", "Ben"),
    ]
    assert cleared[0].details["offering_title"] == "Core A" and cleared[0].details["session_start"]


def test_search_by_name_without_javascript_and_cancelled_and_waitlist_apart(client, db, room):
    offering, session = room["offering"], room["session"]
    registration.register(offering, session.id, Person("Cy Gone", "cy@example.com"))
    cy = db.session.scalar(sa.select(Registration).where(Registration.email == "cy@example.com"))
    registration.cancel_registration(cy.id, reason="can't come")
    sign_in(client, "a@clinic.example")
    page = client.get(f"/staff/sessions/{session.id}").get_data(as_text=True)
    coming, rest = page.split("<details", 1)
    assert "Ana" in coming and "Ben" in coming and "Cy Gone" not in coming
    assert "Cancelled (1)" in rest and "Cy Gone" in rest and "Waitlist (0)" in rest
    found = client.get(f"/staff/sessions/{session.id}?q=AN").get_data(as_text=True)
    coming = found.split("<details", 1)[0]
    assert "Ana" in coming and "Ben" not in coming and "1 matching" in coming
    # The count is the whole session's, not the search's.
    assert "0 of 2 here" in found
    hostile = client.get(f"/staff/sessions/{session.id}?q=%3Cscript%3E" + "x" * 5000)
    assert hostile.status_code == 200 and "<script>x" not in hostile.get_data(as_text=True)


def test_payment_labels_on_the_roster_paid_unpaid_held_free(client, db, room):
    location = room["offering"].location
    paid = make_offering(location, OfferingKind.CLASS, title="Paid A", instructor=room["a"], price_cents=1500)
    session = make_session(paid, date.today())
    session.starts_at = utcnow() + timedelta(minutes=20)
    session.ends_at = session.starts_at + timedelta(hours=1)
    db.session.commit()
    registration.register(paid, session.id, Person("Hana Held", "hana@example.com"))
    sign_in(client, "a@clinic.example")
    token = csrf_token(client.get(f"/staff/sessions/{session.id}").get_data(as_text=True))
    client.post(f"/staff/sessions/{session.id}/walk-in", data={"csrf_token": token, "name": "Walt Walkin"})
    page = client.get(f"/staff/sessions/{session.id}").get_data(as_text=True)

    def label(name):
        return page.split(name, 1)[1].split("</li>", 1)[0]

    assert "held until" in label("Hana Held") and "unpaid" in label("Hana Held")
    assert "unpaid · walk-in" in label("Walt Walkin")
    assert "free" not in label("Hana Held") + label("Walt Walkin")
    free_page = client.get(f"/staff/sessions/{room['session'].id}").get_data(as_text=True)
    assert "free" in free_page.split("Ana", 1)[1].split("</li>", 1)[0]


def walk_in(client, session_id, **fields):
    page = client.get(f"/staff/sessions/{session_id}/walk-in")
    assert page.status_code == 200
    return client.post(
        f"/staff/sessions/{session_id}/walk-in",
        data={"csrf_token": csrf_token(page.get_data(as_text=True)), **fields},
    )


def test_walk_ins_are_confirmed_checked_in_counted_and_need_no_email(client, db, room):
    session = room["session"]
    sign_in(client, "a@clinic.example")
    first = walk_in(client, session.id, name="Dee Walkin")
    second = walk_in(client, session.id, name="Eli Walkin", phone="612-555-0199")
    assert first.status_code == 302 and second.status_code == 302
    walk_ins = db.session.scalars(
        sa.select(Registration).where(Registration.source == "walk_in").order_by(Registration.id)
    ).all()
    assert [(r.name, r.email, r.status) for r in walk_ins] == [
        ("Dee Walkin", "", RegistrationStatus.CONFIRMED),
        ("Eli Walkin", "", RegistrationStatus.CONFIRMED),
    ]
    assert all(r.session_id == session.id and r.confirmed_at for r in walk_ins)
    marks = dict(db.session.execute(sa.select(Attendance.registration_id, Attendance.status)).all())
    assert marks == {r.id: AttendanceStatus.PRESENT for r in walk_ins}
    pool = db.session.get(SeatPool, session.seat_pool_id)
    db.session.refresh(pool)
    assert pool.seats_taken == 4 == pool.capacity
    page = client.get(f"/staff/sessions/{session.id}").get_data(as_text=True)
    assert "2 of 4 here" in page and "Dee Walkin" in page and 'mailto:"' not in page
    # Nothing is ever queued to an empty address.
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(OutboxEmail).where(OutboxEmail.to_email == "")
        )
        == 0
    )
    audit = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "registration.walk_in")).all()
    assert [e.details["name"] for e in audit] == ["Dee Walkin", "Eli Walkin"]
    assert audit[0].details["email_given"] is False and audit[0].actor_id == room["a"].id

    # Full: refused with a clear message, nothing changes (seats never oversell, walk-ins included).
    full = walk_in(client, session.id, name="Fay Toomany")
    assert full.status_code == 400 and "The session is full (4 of 4 seats taken)" in full.get_data(
        as_text=True
    )
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Registration).where(Registration.name == "Fay Toomany")
        )
        == 0
    )


def test_a_walk_in_with_an_email_already_on_the_roster_is_refused(client, db, room):
    sign_in(client, "a@clinic.example")
    response = walk_in(client, room["session"].id, name="Ana Again", email="ANA@example.com")
    assert response.status_code == 400 and "already on this roster" in response.get_data(as_text=True)
    bad = walk_in(client, room["session"].id, name="", email="not-an-email")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "Enter their name." in text and "isn&#39;t an email address" in text


def test_walk_ins_only_while_check_in_is_open_and_only_on_ones_own_session(client, db, room):
    session = room["session"]
    sign_in(client, "b@clinic.example")
    assert client.get(f"/staff/sessions/{session.id}/walk-in").status_code == 404
    client.post(
        "/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/").get_data(as_text=True))}
    )
    session.starts_at = utcnow() + timedelta(days=3)
    session.ends_at = session.starts_at + timedelta(hours=1)
    db.session.commit()
    sign_in(client, "a@clinic.example")
    early = walk_in(client, session.id, name="Too Early")
    assert early.status_code == 400 and "Walk-ins are added while check-in is open" in early.get_data(
        as_text=True
    )


def test_queue_email_never_queues_to_an_empty_address(db, room):
    walk_in = Registration(
        seat_pool_id=room["session"].seat_pool_id,
        offering_id=room["offering"].id,
        session_id=room["session"].id,
        name="No Mail",
        email="",
        email_normalized="",
        status=RegistrationStatus.CONFIRMED,
        token="t-no-mail",
        source="walk_in",
    )
    db.session.add(walk_in)
    db.session.flush()
    assert queue_email(EmailKind.REGISTRATION_CONFIRMED, registration=walk_in) is None
    assert queue_email(EmailKind.FIND_REGISTRATIONS, to_email="  ", owner="x") is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 2  # Ana's and Ben's


def test_two_walk_ins_without_email_share_a_pool_but_two_with_one_email_cannot(db, room):
    pool_id, offering = room["session"].seat_pool_id, room["offering"]

    def row(name, email, token):
        return Registration(
            seat_pool_id=pool_id,
            offering_id=offering.id,
            session_id=room["session"].id,
            name=name,
            email=email,
            email_normalized=email,
            status=RegistrationStatus.CONFIRMED,
            token=token,
            source="walk_in",
        )

    db.session.add_all([row("One", "", "t1"), row("Two", "", "t2")])
    db.session.flush()  # the unique index leaves empty addresses out
    db.session.add(row("Three", "ana@example.com", "t3"))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()


HOSTILE = ["nul\x00here", "bell\x07", "x" * 1_000_000]  # (lone surrogates: test_all_forms.py)


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["name", "email", "phone"])
def test_a_hostile_walk_in_is_a_form_error_and_stores_nothing(client, db, room, field, value):
    sign_in(client, "a@clinic.example")
    fields = {"name": "Val Walkin", "email": "val@example.com", "phone": "612", field: value}
    response = walk_in(client, room["session"].id, **fields)
    assert response.status_code in (400, 413)
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Registration).where(Registration.source == "walk_in")
        )
        == 0
    )


@pytest.mark.parametrize("value", [*HOSTILE, "x" * 5001])
@pytest.mark.parametrize("field", ["subject", "body"])
def test_a_hostile_message_is_a_form_error_and_sends_nothing(client, db, room, field, value):
    sign_in(client, "a@clinic.example")
    url = f"/staff/sessions/{room['session'].id}/message"
    token = csrf_token(client.get(url).get_data(as_text=True))
    fields = {"subject": "Hello", "body": "Hi all", field: value}
    for step in ("preview", "send"):
        response = client.post(
            url, data={"csrf_token": token, "step": step, "request_key": "k" * 24, **fields}
        )
        assert response.status_code in (400, 413), (step, response.status_code)
    kinds = db.session.scalars(sa.select(OutboxEmail.kind)).all()
    assert EmailKind.STAFF_MESSAGE not in kinds
