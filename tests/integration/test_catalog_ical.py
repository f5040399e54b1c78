"""The iCal feeds: every upcoming public session, with its local time and address; cancelled
ones stay in, marked cancelled. Emailed invites and their cancellation use the same UIDs."""

from __future__ import annotations

from datetime import time
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import current_app
from icalendar import Calendar

from events.models import OfferingKind, OutboxEmail, Role
from events.notifications.content import build
from events.notifications.outbox import EmailKind
from events.notifications.sender import render_message
from events.registration.links import manage_url
from events.registration.services import Person, register
from events.staff.cancellations import cancel_offering, cancel_session
from tests.factories import make_clinic, make_instructor, make_location, make_offering, make_session
from tests.integration.conftest import day, html_titles


def parse(response) -> Calendar:
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    return Calendar.from_ical(response.data)


def events_by_uid(cal: Calendar) -> dict[str, object]:
    return {str(e["uid"]): e for e in cal.walk("VEVENT")}


def uid(session, registration=None) -> str:
    """The UID names the public site (PUBLIC_BASE_URL), never the host the test client uses;
    a person's invite names their own place at the session."""
    host = urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname
    if registration is not None:
        return f"registration-{registration.id}-session-{session.id}@{host}"
    return f"session-{session.id}@{host}"


def test_clinic_feed_has_the_visible_sessions_and_the_cancelled_ones(client, catalog):
    cal = parse(client.get("/calendar.ics"))
    events = events_by_uid(cal)
    # Past sessions and unpublished offerings stay out; cancelled upcoming sessions stay in.
    assert set(events) == {uid(s) for s in catalog.visible + catalog.cancelled}
    for session in catalog.visible:
        event = events[uid(session)]
        assert (str(event["status"]), event["sequence"]) == ("CONFIRMED", 0)
        assert str(event["summary"]) == session.offering.title
    for session in catalog.cancelled:
        event = events[uid(session)]
        assert (str(event["status"]), event["sequence"]) == ("CANCELLED", 1)
        assert str(event["summary"]) == f"Cancelled: {session.offering.title}"
    assert "method" not in cal  # a feed is a snapshot, not a scheduling message
    assert str(cal["x-wr-calname"]) == "Test Clinic"


def test_uid_is_the_same_whichever_host_serves_the_feed(client, catalog, monkeypatch):
    monkeypatch.setitem(current_app.config, "PUBLIC_BASE_URL", "https://classes.clinic.example")
    first = events_by_uid(parse(client.get("/calendar.ics", base_url="http://localhost")))
    second = events_by_uid(parse(client.get("/calendar.ics", base_url="http://other.example")))
    assert set(first) == set(second) == {uid(s) for s in catalog.visible + catalog.cancelled}
    assert all(u.endswith("@classes.clinic.example") for u in first)


def test_events_carry_local_time_zone_and_address(client, catalog):
    events = events_by_uid(parse(client.get("/calendar.ics")))
    for session in catalog.visible:
        event = events[uid(session)]
        assert event["dtstart"].params["TZID"] == "America/Chicago"
        start = event.decoded("dtstart")
        assert start == session.local_start
        assert (start.hour, start.minute) == (session.local_start.hour, session.local_start.minute)
        assert event.decoded("dtend") == session.local_end
        assert session.location.full_address in str(event["location"])
        assert str(event["location"]).startswith(session.location.name)
        assert str(event["url"]) == f"http://localhost/offerings/{session.offering.slug}"
    # A 6:30 pm course session is 18:30 in the feed, not a UTC time.
    posture = events[uid(catalog.visible[1])]
    assert "800 N Washington Ave" not in str(posture["location"])
    assert "4123 W Broadway" in str(posture["location"])
    assert posture.decoded("dtstart").time() == time(18, 30)


def test_feed_defines_the_time_zone_it_uses(client, catalog):
    cal = parse(client.get("/calendar.ics"))
    zones = [str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")]
    assert zones == ["America/Chicago"]


@pytest.mark.parametrize(
    ("slug", "location_name"), [("robbinsdale", "Robbinsdale"), ("north-loop", "North Loop")]
)
def test_location_feed_has_only_that_location(client, catalog, slug, location_name):
    response = client.get(f"/locations/{slug}/calendar.ics")
    cal = parse(response)
    sessions = catalog.visible + catalog.cancelled
    expected = {uid(s) for s in sessions if s.location.slug == slug}
    assert expected  # the fixture has sessions at both places
    events = events_by_uid(cal)
    assert set(events) == expected
    assert all(str(e["location"]).startswith(location_name) for e in events.values())
    assert str(cal["x-wr-calname"]) == f"Test Clinic - {location_name}"
    assert f'filename="{slug}.ics"' in response.headers["Content-Disposition"]


def test_unknown_location_feed_is_404(client, catalog):
    response = client.get("/locations/nowhere/calendar.ics")
    assert response.status_code == 404
    assert "couldn" in response.get_data(as_text=True)


def test_empty_feed_is_still_a_valid_calendar(client, db):
    make_clinic(name="Quiet Clinic")
    loc = make_location(slug="quiet")
    make_session(make_offering(loc), day(-1))  # only a past session
    db.session.commit()
    cal = parse(client.get("/locations/quiet/calendar.ics"))
    assert list(cal.walk("VEVENT")) == []
    assert str(cal["version"]) == "2.0"


# --- Invites, and taking them back when the clinic cancels ---


def _emails(app, db, kind: EmailKind) -> list:
    """The queued emails of this kind, each built and rendered as the sender would."""
    rows = db.session.scalars(sa.select(OutboxEmail).where(OutboxEmail.kind == kind).order_by(OutboxEmail.id))
    with app.test_request_context(base_url=app.config["PUBLIC_BASE_URL"]):
        return [render_message(row, build(row)) for row in rows]


def _ics(message, filename: str) -> tuple[str, Calendar]:
    """(the Content-Type's method parameter, the parsed calendar) of one attachment."""
    [part] = [p for p in message.iter_attachments() if p.get_filename() == filename]
    assert part.get_content_type() == "text/calendar"
    return part.get_param("method"), Calendar.from_ical(part.get_payload(decode=True))


@pytest.fixture
def drop_in(db, app, monkeypatch):
    """A drop-in class session with one confirmed (free) registration, and an admin."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://classes.clinic.example")
    make_clinic(name="Test Clinic")
    offering = make_offering(make_location(slug="north"), OfferingKind.CLASS, title="Core Strength")
    session = make_session(offering, day(5))
    admin = make_instructor(role=Role.ADMIN)
    db.session.commit()
    registration = register(offering, session.id, Person("Ana", "ana@example.com")).registration
    assert registration.status.value == "confirmed"
    return session, registration, admin


def test_cancelling_a_session_updates_the_feed_at_once_and_the_schedule_hides_it(client, db, drop_in):
    session, _, admin = drop_in
    before = events_by_uid(parse(client.get("/locations/north/calendar.ics")))[uid(session)]
    assert (str(before["status"]), before["sequence"], str(before["summary"])) == (
        "CONFIRMED",
        0,
        "Core Strength",
    )

    cancel_session(session.id, admin, "Instructor ill")

    # The cached feed is invalidated by the change: the same event, now an update to it.
    for path in ("/calendar.ics", "/locations/north/calendar.ics"):
        after = events_by_uid(parse(client.get(path)))[uid(session)]
        assert str(after["status"]) == "CANCELLED"
        assert after["sequence"] > before["sequence"]
        assert str(after["summary"]) == "Cancelled: Core Strength"
    # The schedule and the API keep hiding cancelled sessions.
    assert "Core Strength" not in html_titles(client.get("/").get_data(as_text=True))
    assert client.get("/api/v1/sessions").get_json()["data"] == []


def test_invite_and_download_share_a_uid_of_their_own(client, db, app, drop_in):
    session, registration, _ = drop_in
    method, invite = _ics(_emails(app, db, EmailKind.REGISTRATION_CONFIRMED)[0], "invite.ics")
    # An emailed invite is an iTIP PUBLISH: the MIME parameter and METHOD agree (RFC 6047).
    assert method == str(invite["method"]) == "PUBLISH"
    [event] = invite.walk("VEVENT")
    assert (
        str(event["uid"])
        == uid(session, registration)
        == f"registration-{registration.id}-session-{session.id}@classes.clinic.example"
    )
    assert (str(event["status"]), event["sequence"]) == ("CONFIRMED", 0)
    assert str(event["organizer"]).startswith("mailto:")

    # The public feed names the session itself (whoever subscribes, whatever host serves it).
    feed = events_by_uid(parse(client.get("/calendar.ics", base_url="http://other.example")))
    assert uid(session) in feed
    with app.test_request_context():
        download_url = manage_url(registration, external=False) + "/calendar.ics"
    [downloaded] = parse(client.get(download_url)).walk("VEVENT")
    assert str(downloaded["uid"]) == uid(session, registration)


def test_session_cancelled_email_cancels_the_invite(db, app, drop_in):
    session, registration, admin = drop_in
    [invite] = _ics(_emails(app, db, EmailKind.REGISTRATION_CONFIRMED)[0], "invite.ics")[1].walk("VEVENT")

    cancel_session(session.id, admin, "Instructor ill")

    [message] = _emails(app, db, EmailKind.SESSION_CANCELLED)
    method, cal = _ics(message, "cancel.ics")
    assert method == str(cal["method"]) == "CANCEL"
    [event] = cal.walk("VEVENT")
    assert str(event["uid"]) == str(invite["uid"]) == uid(session, registration)
    assert event["sequence"] > invite["sequence"]
    assert str(event["status"]) == "CANCELLED"
    assert str(event["summary"]) == "Cancelled: Core Strength"


def test_cancelled_offering_cancels_each_upcoming_session_of_the_invite(client, db, app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://classes.clinic.example")
    make_clinic(name="Test Clinic")
    offering = make_offering(make_location(), OfferingKind.COURSE, title="Posture Reset")
    sessions = [make_session(offering, day(n)) for n in (3, 10)]
    admin = make_instructor(role=Role.ADMIN)
    db.session.commit()
    registration = register(offering, None, Person("Ana", "ana@example.com")).registration

    cancel_offering(offering.id, admin, "Room flooded")

    [message] = _emails(app, db, EmailKind.SESSION_CANCELLED)
    # One CANCEL per session: an iTIP CANCEL names a single UID.
    events = {}
    for filename in ("cancel-1.ics", "cancel-2.ics"):
        method, cal = _ics(message, filename)
        assert method == "CANCEL" and str(cal["method"]) == "CANCEL"
        [(event_uid, event)] = events_by_uid(cal).items()
        events[event_uid] = event
    assert set(events) == {uid(s, registration) for s in sessions}
    assert all(str(e["status"]) == "CANCELLED" and e["sequence"] == 1 for e in events.values())
    # The feed keeps the cancelled offering's upcoming sessions, marked cancelled.
    feed = events_by_uid(parse(client.get("/calendar.ics")))
    assert {str(feed[uid(s)]["status"]) for s in sessions} == {"CANCELLED"}


def test_no_cancel_for_someone_who_never_got_an_invite(db, app, monkeypatch):
    """A seat held while paying had no confirmation (and no invite) yet: the cancellation
    email says so without a CANCEL for an event they never added."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://classes.clinic.example")
    make_clinic(name="Test Clinic")
    offering = make_offering(make_location(), OfferingKind.CLASS, title="Paid Core", price_cents=2000)
    session = make_session(offering, day(5))
    admin = make_instructor(role=Role.ADMIN)
    db.session.commit()
    held = register(offering, session.id, Person("Hal", "hal@example.com")).registration
    assert held.status.value == "held"

    cancel_session(session.id, admin, "Instructor ill")

    messages = _emails(app, db, EmailKind.SESSION_CANCELLED)
    assert len(messages) == 1  # they are told
    assert all(
        not [p for p in m.iter_attachments() if p.get_content_type() == "text/calendar"] for m in messages
    )


def test_cancelling_your_own_place_takes_back_the_invite_and_a_new_one_is_new(client, db, app, drop_in):
    """Someone cancels through their manage link: the event they added is cancelled in their
    calendar. If they register again later, the new invite is a different event (a calendar
    would not bring back one it has seen cancelled)."""
    from events.registration.services import cancel_registration

    session, registration, _ = drop_in
    [invite] = _ics(_emails(app, db, EmailKind.REGISTRATION_CONFIRMED)[0], "invite.ics")[1].walk("VEVENT")

    cancel_registration(registration.id)

    [message] = _emails(app, db, EmailKind.REGISTRATION_CANCELLED)
    method, cal = _ics(message, "cancel.ics")
    assert method == str(cal["method"]) == "CANCEL"
    [event] = cal.walk("VEVENT")
    assert str(event["uid"]) == str(invite["uid"])
    assert (str(event["status"]), event["sequence"]) == ("CANCELLED", 1)
    # The session itself goes on: the public feed still lists it as confirmed.
    assert str(events_by_uid(parse(client.get("/calendar.ics")))[uid(session)]["status"]) == "CONFIRMED"

    again = register(session.offering, session.id, Person("Ana", "ana@example.com")).registration
    invites = [_ics(m, "invite.ics")[1] for m in _emails(app, db, EmailKind.REGISTRATION_CONFIRMED)]
    [new_invite] = invites[-1].walk("VEVENT")
    assert str(new_invite["uid"]) == uid(session, again) != str(invite["uid"])
