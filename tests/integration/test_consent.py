"""Consent (issue 15, item 10): versioned documents, required per offering; the booking form,
the paid path and the waitlist claim record the version accepted; a stale version at submit is
shown again, never accepted; a new version asks again; the roster flags whoever lacks the
current version and the instructor's phone records it in person (own sessions only)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import g

from events.consent import services as consent
from events.models import (
    AuditEntry,
    ConsentAcceptance,
    ConsentMethod,
    ConsentVersion,
    OfferingKind,
    Registration,
    RegistrationStatus,
    Role,
    WaitlistEntry,
    WaitlistStatus,
)
from events.registration import links
from events.registration import services as registration
from events.registration.services import Person
from events.staff import rosters
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token
from tests.integration.test_staff import make_user, sign_in

V1 = "Exercise carries some risk.\n\nTell the instructor if anything hurts."
V2 = "Exercise carries some risk.\n\nStop and rest whenever you need to. (Version two.)"


@pytest.fixture
def clinic(db):
    """Instructors A and B, an admin, and A's free class requiring the release (version 1)."""
    location = make_location(name="North Loop")
    a = make_user(db, "a@clinic.example", name="Alex Instructor")
    b = make_user(db, "b@clinic.example", name="Bea Instructor")
    admin = make_user(db, "admin@clinic.example", Role.ADMIN)
    db.session.commit()
    document = consent.create_document("Exercise class participation and release", V1, admin)
    free_class = make_offering(location, OfferingKind.CLASS, title="Core", instructor=a, capacity=5)
    free_class.consent_document_id = document.id
    first = make_session(free_class, upcoming_day(2))
    second = make_session(free_class, upcoming_day(9))
    other_class = make_offering(location, OfferingKind.CLASS, title="Balance", instructor=b)
    other_class.consent_document_id = document.id
    other = make_session(other_class, upcoming_day(2))
    db.session.commit()
    return {
        "a": a,
        "b": b,
        "admin": admin,
        "document": document,
        "offering": free_class,
        "first": first,
        "second": second,
        "other": other,
    }


def offering_page(client, offering, session=None) -> str:
    g.pop("csrf_token", None)  # each page its own token (the test's app context is shared)
    url = f"/offerings/{offering.slug}" + (f"?session={session.id}" if session else "")
    return client.get(url).get_data(as_text=True)


def shown_version(html: str) -> int:
    return int(re.search(r'name="consent_version_id" value="(\d+)"', html).group(1))


def post_form(client, url, data):
    """A form post as a browser encodes it: a lone surrogate goes as its UTF-8 bytes, as sent."""
    body = urlencode(data, encoding="utf-8", errors="surrogatepass")
    return client.post(url, data=body, content_type="application/x-www-form-urlencoded")


def post_register(client, offering, session, html, **fields):
    data = {
        "csrf_token": csrf_token(html),
        "session_id": str(session.id),
        "name": "Ana Reyes",
        "email": "ana@example.com",
        **fields,
    }
    return post_form(client, f"/offerings/{offering.slug}/register", data)


def acceptances(db) -> list[tuple[int, int, ConsentMethod]]:
    return list(
        db.session.execute(
            sa.select(
                ConsentAcceptance.registration_id,
                ConsentAcceptance.consent_version_id,
                ConsentAcceptance.method,
            ).order_by(ConsentAcceptance.id)
        ).tuples()
    )


def registrations(db) -> list[Registration]:
    return list(db.session.scalars(sa.select(Registration).order_by(Registration.id)))


def current(document) -> ConsentVersion:
    version = consent.current_version(document.id)
    assert version is not None
    return version


# --- The booking form ---


def test_the_form_shows_the_current_text_and_a_free_booking_records_the_version_accepted(client, db, clinic):
    offering, first = clinic["offering"], clinic["first"]
    html = offering_page(client, offering, first)
    v1 = current(clinic["document"])
    assert "Exercise class participation and release" in html
    assert "Tell the instructor if anything hurts." in html  # the text itself, not a link to it
    assert 'class="consent-text" tabindex="0" role="region"' in html
    assert shown_version(html) == v1.id
    assert re.search(r'<input type="checkbox" id="consent" name="consent" value="y"\s*>', html)

    # Not ticked: told beside the box, nothing booked.
    refused = post_register(client, offering, first, html, consent_version_id=str(v1.id))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "Please read the Exercise class participation and release and tick the box to agree." in page
    assert 'href="#consent"' in page  # the error summary leads to the box
    assert registrations(db) == [] and acceptances(db) == []

    done = post_register(client, offering, first, html, consent_version_id=str(v1.id), consent="y")
    assert done.status_code == 302
    (booked,) = registrations(db)
    assert booked.status == RegistrationStatus.CONFIRMED
    assert acceptances(db) == [(booked.id, v1.id, ConsentMethod.ONLINE)]
    accepted = db.session.scalar(sa.select(ConsentAcceptance))
    assert accepted.accepted_at == booked.confirmed_at  # in the booking's own transaction
    assert accepted.handed_by_id is None


def test_a_paid_booking_records_the_version_with_its_held_seat(client, db, clinic):
    location = make_location()
    paid = make_offering(location, OfferingKind.WORKSHOP, title="Back basics", price_cents=2500)
    paid.consent_document_id = clinic["document"].id
    session = make_session(paid, upcoming_day(5))
    db.session.commit()
    html = offering_page(client, paid)
    v1 = current(clinic["document"])
    data = {"csrf_token": csrf_token(html), "name": "Pat", "email": "pat@example.com"}
    refused = client.post(f"/offerings/{paid.slug}/register", data={**data, "consent_version_id": str(v1.id)})
    assert refused.status_code == 409 and registrations(db) == []

    held = client.post(
        f"/offerings/{paid.slug}/register", data={**data, "consent_version_id": str(v1.id), "consent": "y"}
    )
    assert held.status_code == 302 and "/pay" in held.headers["Location"]
    (booked,) = registrations(db)
    assert booked.status == RegistrationStatus.HELD and booked.session_id is None
    assert acceptances(db) == [(booked.id, v1.id, ConsentMethod.ONLINE)]
    assert session.seat_pool.seats_taken == 1


def test_a_version_published_while_the_form_was_open_is_shown_again_not_accepted(client, db, clinic):
    offering, first = clinic["offering"], clinic["first"]
    html = offering_page(client, offering, first)
    v1 = current(clinic["document"])
    v2 = consent.publish_version(clinic["document"], V2, clinic["admin"])

    stale = post_register(client, offering, first, html, consent_version_id=str(v1.id), consent="y")
    page = stale.get_data(as_text=True)
    assert stale.status_code == 409
    assert "changed since you opened this page" in page
    assert "(Version two.)" in page and "Tell the instructor if anything hurts." not in page
    assert shown_version(page) == v2.id
    # Unticked again: they have not read these words yet.
    assert re.search(r'<input type="checkbox" id="consent" name="consent" value="y"\s*aria-invalid', page)
    assert registrations(db) == [] and acceptances(db) == []

    g.pop("csrf_token", None)
    done = post_register(client, offering, first, page, consent_version_id=str(v2.id), consent="y")
    assert done.status_code == 302
    (booked,) = registrations(db)
    assert acceptances(db) == [(booked.id, v2.id, ConsentMethod.ONLINE)]


def test_a_new_version_asks_again_at_the_next_booking_and_flags_the_earlier_one(client, db, clinic):
    offering, first, second = clinic["offering"], clinic["first"], clinic["second"]
    html = offering_page(client, offering, first)  # cached now: publishing must refresh it
    v1 = current(clinic["document"])
    assert (
        post_register(client, offering, first, html, consent_version_id=str(v1.id), consent="y").status_code
        == 302
    )
    first_booking = registrations(db)[0]
    assert not rosters.roster_page(first).lines[0].needs_consent

    v2 = consent.publish_version(clinic["document"], V2, clinic["admin"])
    html = offering_page(client, offering, second)
    assert shown_version(html) == v2.id and "(Version two.)" in html
    assert (
        post_register(client, offering, second, html, consent_version_id=str(v2.id), consent="y").status_code
        == 302
    )
    second_booking = registrations(db)[1]
    assert acceptances(db) == [
        (first_booking.id, v1.id, ConsentMethod.ONLINE),
        (second_booking.id, v2.id, ConsentMethod.ONLINE),
    ]
    # The first date's booking accepted v1 only: its roster flags it now; the second's doesn't.
    assert rosters.roster_page(first).lines[0].needs_consent
    assert not rosters.roster_page(second).lines[0].needs_consent


def test_an_offering_without_a_document_asks_nothing(client, db, clinic):
    offering = clinic["offering"]
    offering.consent_document_id = None
    db.session.commit()
    html = offering_page(client, offering, clinic["first"])
    assert 'name="consent"' not in html
    assert post_register(client, offering, clinic["first"], html).status_code == 302
    assert len(registrations(db)) == 1 and acceptances(db) == []


def test_joining_the_waitlist_asks_nothing_and_claiming_the_seat_asks_for_the_current_version(
    client, db, clinic
):
    offering, first = clinic["offering"], clinic["first"]
    first.seat_pool.capacity = 1
    db.session.commit()
    v1 = current(clinic["document"])
    answer = consent.ConsentAnswer(v1.id, True)
    taken = registration.register(offering, first.id, Person("Ana", "ana@example.com"), consent_answer=answer)
    html = offering_page(client, offering, first)
    joined = client.post(
        f"/offerings/{offering.slug}/waitlist",
        data={
            "csrf_token": csrf_token(html),
            "session_id": str(first.id),
            "name": "Wes",
            "email": "wes@example.com",
        },
    )
    assert joined.status_code == 302
    registration.cancel_registration(taken.registration.id)
    entry = db.session.scalar(sa.select(WaitlistEntry))
    assert entry.status == WaitlistStatus.OFFERED
    url = "/waitlist/" + links.sign(entry.token, links.WAITLIST_SALT)
    g.pop("csrf_token", None)
    page = client.get(url).get_data(as_text=True)
    assert "Tell the instructor if anything hurts." in page and shown_version(page) == v1.id

    v2 = consent.publish_version(clinic["document"], V2, clinic["admin"])
    stale = client.post(
        url + "/claim",
        data={"csrf_token": csrf_token(page), "consent_version_id": str(v1.id), "consent": "y"},
    )
    assert stale.status_code == 409
    stale_page = stale.get_data(as_text=True)
    assert "changed since you opened this page" in stale_page and shown_version(stale_page) == v2.id
    unticked = client.post(
        url + "/claim", data={"csrf_token": csrf_token(page), "consent_version_id": str(v2.id)}
    )
    assert unticked.status_code == 409 and "tick the box" in unticked.get_data(as_text=True)
    db.session.refresh(entry)
    assert entry.status == WaitlistStatus.OFFERED and entry.registration_id is None

    claimed = client.post(
        url + "/claim",
        data={"csrf_token": csrf_token(page), "consent_version_id": str(v2.id), "consent": "y"},
    )
    assert claimed.status_code == 302
    db.session.refresh(entry)
    assert entry.status == WaitlistStatus.CLAIMED
    assert (entry.registration_id, v2.id, ConsentMethod.ONLINE) in acceptances(db)


# --- The roster and the instructor's phone ---


def accept_url(session, booking) -> str:
    return f"/staff/sessions/{session.id}/consent/{booking.id}"


def test_the_roster_flags_people_without_the_current_version_and_they_accept_on_the_instructors_phone(
    client, db, clinic
):
    offering, first, a = clinic["offering"], clinic["first"], clinic["a"]
    v1 = current(clinic["document"])
    online = registration.register(
        offering,
        first.id,
        Person("Olga Online", "olga@example.com"),
        consent_answer=consent.ConsentAnswer(v1.id, True),
    ).registration
    by_phone = registration.register(
        offering, first.id, Person("Phil Phone", "phil@example.com"), source="staff"
    )
    by_phone = by_phone.registration
    lines = {line.registration.name: line.needs_consent for line in rosters.roster_page(first).lines}
    assert lines == {"Olga Online": False, "Phil Phone": True}

    assert sign_in(client, "a@clinic.example").status_code == 302
    roster = client.get(f"/staff/sessions/{first.id}").get_data(as_text=True)
    assert "1 person has not accepted" in roster
    assert roster.count("Consent needed") == 1 and accept_url(first, by_phone) in roster
    assert accept_url(first, online) not in roster

    page = client.get(accept_url(first, by_phone)).get_data(as_text=True)
    assert "Phil Phone" in page and "Tell the instructor if anything hurts." in page
    assert "I, Phil Phone, have read the Exercise class participation and release" in page
    not_ticked = client.post(
        accept_url(first, by_phone), data={"csrf_token": csrf_token(page), "consent_version_id": str(v1.id)}
    )
    assert not_ticked.status_code == 409 and acceptances(db) == [(online.id, v1.id, ConsentMethod.ONLINE)]

    done = client.post(
        accept_url(first, by_phone),
        data={"csrf_token": csrf_token(page), "consent_version_id": str(v1.id), "consent": "y"},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith(
        f"/staff/sessions/{first.id}#r{by_phone.id}"
    )
    in_person = db.session.scalar(
        sa.select(ConsentAcceptance).where(ConsentAcceptance.registration_id == by_phone.id)
    )
    assert (in_person.consent_version_id, in_person.method, in_person.handed_by_id) == (
        v1.id,
        ConsentMethod.IN_PERSON,
        a.id,
    )
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "consent.accepted_in_person"))
    assert (
        entry.actor_id == a.id and entry.registration_id == by_phone.id and entry.offering_id == offering.id
    )
    assert entry.details["version"] == 1 and "phil" not in str(entry.details).replace("Phil Phone", "")
    roster = client.get(f"/staff/sessions/{first.id}").get_data(as_text=True)
    assert "Consent needed" not in roster and "has not accepted" not in roster

    # Sent twice (a double tap): one acceptance, one audit entry.
    again = client.post(
        accept_url(first, by_phone),
        data={"csrf_token": csrf_token(page), "consent_version_id": str(v1.id), "consent": "y"},
    )
    assert again.status_code == 302
    assert len(acceptances(db)) == 2
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "consent.accepted_in_person")
        )
        == 1
    )


def test_a_walk_in_is_flagged_and_a_stale_version_on_the_phone_shows_the_new_one(client, db, clinic):
    first = clinic["first"]
    walk_in = registration.register(clinic["offering"], first.id, Person("Wanda", ""), source="staff")
    walk_in = walk_in.registration
    # (register() with an empty email is what staff's walk-in does not use; a plain staff booking
    # stands in for it: any booking without the current version is flagged.)
    assert rosters.roster_page(first).lines[0].needs_consent
    v1 = current(clinic["document"])
    assert sign_in(client, "admin@clinic.example").status_code == 302
    page = client.get(accept_url(first, walk_in)).get_data(as_text=True)
    v2 = consent.publish_version(clinic["document"], V2, clinic["admin"])
    stale = client.post(
        accept_url(first, walk_in),
        data={"csrf_token": csrf_token(page), "consent_version_id": str(v1.id), "consent": "y"},
    )
    body = stale.get_data(as_text=True)
    assert stale.status_code == 409 and "(Version two.)" in body and shown_version(body) == v2.id
    assert acceptances(db) == []


def test_an_instructor_may_take_consent_only_on_their_own_sessions(client, db, clinic):
    first, other = clinic["first"], clinic["other"]
    booked = registration.register(
        clinic["offering"], first.id, Person("Phil", "phil@example.com"), source="staff"
    )
    booked = booked.registration
    elsewhere = registration.register(
        other.offering, other.id, Person("Olive", "olive@example.com"), source="staff"
    ).registration
    v1 = current(clinic["document"])

    assert sign_in(client, "b@clinic.example").status_code == 302  # B teaches Balance, not Core
    g.pop("csrf_token", None)
    token = csrf_token(client.get(f"/staff/sessions/{other.id}").get_data(as_text=True))
    assert client.get(accept_url(first, booked)).status_code == 404
    refused = client.post(
        accept_url(first, booked),
        data={"csrf_token": token, "consent_version_id": str(v1.id), "consent": "y"},
    )
    assert refused.status_code == 404
    # Their own session's id with someone of another session: not on that roster either.
    assert client.get(accept_url(other, booked)).status_code == 404
    assert (
        client.post(
            accept_url(other, booked),
            data={"csrf_token": token, "consent_version_id": str(v1.id), "consent": "y"},
        ).status_code
        == 404
    )
    assert acceptances(db) == []
    # Their own: fine.
    assert (
        client.post(
            accept_url(other, elsewhere),
            data={"csrf_token": token, "consent_version_id": str(v1.id), "consent": "y"},
        ).status_code
        == 302
    )
    assert acceptances(db) == [(elsewhere.id, v1.id, ConsentMethod.IN_PERSON)]


# --- Hostile input ---

HOSTILE_VERSIONS = ["1e400", "-1", "0", "9" * 400, "abc", "1\x00", "\ud800", "1" * 20, " "]


@pytest.mark.parametrize("value", HOSTILE_VERSIONS)
def test_hostile_consent_answers_get_a_form_error_and_book_nothing(client, db, clinic, value):
    offering, first = clinic["offering"], clinic["first"]
    html = offering_page(client, offering, first)
    response = post_register(client, offering, first, html, consent_version_id=value, consent="y")
    assert response.status_code in (400, 409), response.status_code
    assert registrations(db) == [] and acceptances(db) == []
    odd_tick = post_register(
        client, offering, first, html, consent_version_id=str(shown_version(html)), consent="\x00"
    )
    assert odd_tick.status_code == 400 and registrations(db) == []


def test_a_version_of_another_document_is_not_accepted(client, db, clinic):
    other_document = consent.create_document("Photo release", "We may take photos.", clinic["admin"])
    offering, first = clinic["offering"], clinic["first"]
    html = offering_page(client, offering, first)
    foreign = current(other_document)
    response = post_register(client, offering, first, html, consent_version_id=str(foreign.id), consent="y")
    assert response.status_code == 409 and registrations(db) == []


@pytest.mark.parametrize("value", HOSTILE_VERSIONS)
def test_hostile_input_on_the_check_in_screen(client, db, clinic, value):
    first = clinic["first"]
    booked = registration.register(
        clinic["offering"], first.id, Person("Phil", "phil@example.com"), source="staff"
    )
    assert sign_in(client, "a@clinic.example").status_code == 302
    url = accept_url(first, booked.registration)
    page = client.get(url).get_data(as_text=True)
    response = post_form(
        client, url, {"csrf_token": csrf_token(page), "consent_version_id": value, "consent": "y"}
    )
    assert response.status_code in (400, 409)
    assert acceptances(db) == []
    assert client.post(url + "x", data={}).status_code == 404
    assert client.get(f"/staff/sessions/{first.id}/consent/{'9' * 30}").status_code == 404


# --- Admin: documents and versions ---


def test_admin_creates_a_document_publishes_versions_and_requires_it_on_an_offering(client, db, clinic):
    assert sign_in(client, "admin@clinic.example").status_code == 302
    g.pop("csrf_token", None)
    form = client.get("/staff/admin/consent/new").get_data(as_text=True)
    empty = client.post(
        "/staff/admin/consent/new", data={"csrf_token": csrf_token(form), "title": " ", "body": ""}
    )
    assert empty.status_code == 400
    nul = client.post(
        "/staff/admin/consent/new", data={"csrf_token": csrf_token(form), "title": "Bad\x00", "body": "x"}
    )
    assert nul.status_code == 400
    made = client.post(
        "/staff/admin/consent/new",
        data={
            "csrf_token": csrf_token(form),
            "title": "Pool safety",
            "body": "Shower first.\r\n\r\nNo running.",
        },
    )
    assert made.status_code == 302
    document = next(d for d in consent.documents() if d.title == "Pool safety")
    assert current(document).body == "Shower first.\n\nNo running." and current(document).number == 1

    page = client.get(made.headers["Location"]).get_data(as_text=True)
    assert "Version 1" in page and "Publish version 2" in page
    same = client.post(
        f"/staff/admin/consent/{document.id}/versions",
        data={"csrf_token": csrf_token(page), "body": "Shower first.\n\nNo running."},
    )
    assert same.status_code == 400 and "same text as version 1" in same.get_data(as_text=True)
    published = client.post(
        f"/staff/admin/consent/{document.id}/versions",
        data={"csrf_token": csrf_token(page), "body": "Shower first.\n\nNo running. No diving."},
    )
    assert published.status_code == 302
    history = client.get(f"/staff/admin/consent/{document.id}").get_data(as_text=True)
    assert history.index("Version 2") < history.index("Version 1")  # newest first, both kept
    assert "No diving." in history and "Shower first." in history
    assert [v.number for v in consent.document_history(document)] == [2, 1]

    # A published text never changes.
    v1 = consent.document_history(document)[1]
    v1.body = "rewritten"
    with pytest.raises(ValueError, match="never changes"):
        db.session.flush()
    db.session.rollback()
    assert consent.document_history(document)[1].body == "Shower first.\n\nNo running."

    # The offering form: require it, then none.
    offering = clinic["offering"]
    edit = client.get(f"/staff/admin/offerings/{offering.id}/edit").get_data(as_text=True)
    assert "Consent document people must accept" in edit and "Pool safety" in edit
    fields = {
        "csrf_token": csrf_token(edit),
        "kind": "class",
        "title": offering.title,
        "topic": offering.topic,
        "location_id": str(offering.location_id),
        "instructor_id": str(offering.instructor_id),
        "price": "0",
        "capacity": str(offering.capacity),
        "reminders": "24h",
        "is_published": "y",
    }
    saved = client.post(
        f"/staff/admin/offerings/{offering.id}/edit", data={**fields, "consent_document_id": str(document.id)}
    )
    assert saved.status_code == 302
    db.session.refresh(offering)
    assert offering.consent_document_id == document.id
    bogus = client.post(
        f"/staff/admin/offerings/{offering.id}/edit", data={**fields, "consent_document_id": "99999"}
    )
    assert bogus.status_code == 400
    cleared = client.post(
        f"/staff/admin/offerings/{offering.id}/edit", data={**fields, "consent_document_id": "None"}
    )
    assert cleared.status_code == 302
    db.session.expire_all()
    assert db.session.get(type(offering), offering.id).consent_document_id is None

    actions = db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("consent_document.created") == 2  # the fixture's and this one
    assert actions.count("consent_version.published") == 1
    updates = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "offering.updated").order_by(AuditEntry.id)
    ).all()
    assert [u.details["changes"]["consent_document_id"] for u in updates] == [
        [str(clinic["document"].id), str(document.id)],
        [str(document.id), "None"],
    ]
    listing = client.get("/staff/admin/consent").get_data(as_text=True)
    assert "Pool safety" in listing and "Version 2" in listing


def test_instructors_cannot_reach_the_consent_admin(client, db, clinic):
    assert sign_in(client, "a@clinic.example").status_code == 302
    for url in (
        "/staff/admin/consent",
        "/staff/admin/consent/new",
        f"/staff/admin/consent/{clinic['document'].id}",
    ):
        assert client.get(url).status_code == 403
    assert client.post(
        f"/staff/admin/consent/{clinic['document'].id}/versions", data={"body": "x"}
    ).status_code in (
        400,
        403,
    )
    assert [v.number for v in consent.document_history(clinic["document"])] == [1]


def test_a_walk_in_is_taken_straight_to_the_consent_screen(client, db, clinic):
    from datetime import timedelta

    from events.models import utcnow

    first = clinic["first"]
    first.starts_at = utcnow() + timedelta(minutes=20)  # check-in is open
    first.ends_at = first.starts_at + timedelta(hours=1)
    db.session.commit()
    assert sign_in(client, "a@clinic.example").status_code == 302
    form = client.get(f"/staff/sessions/{first.id}/walk-in").get_data(as_text=True)
    added = client.post(
        f"/staff/sessions/{first.id}/walk-in", data={"csrf_token": csrf_token(form), "name": "Walt Walkin"}
    )
    walk_in = db.session.scalar(sa.select(Registration).where(Registration.name == "Walt Walkin"))
    assert added.status_code == 302 and added.headers["Location"].endswith(accept_url(first, walk_in))
    assert rosters.roster_page(first).lines[0].needs_consent
    page = client.get(added.headers["Location"]).get_data(as_text=True)
    assert "I, Walt Walkin, have read" in page


def test_the_demo_group_classes_require_the_release_and_a_member_can_book_one(tmp_path):
    """The demo (on SQLite, as `make run` seeds it): every group class asks for the release."""
    from flask_migrate import upgrade

    from events.demo import DEMO_CONSENT_TITLE
    from events.extensions import db as _db
    from events.models import Offering, utcnow
    from tests.conftest import make_test_app

    app = make_test_app(f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    app.instance_path = str(tmp_path)
    with app.app_context():
        upgrade()
    assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
    with app.app_context():
        offerings = _db.session.scalars(sa.select(Offering)).all()
        required = {o.kind: set() for o in offerings}
        for o in offerings:
            required[o.kind].add(o.consent_requirement.document.title if o.consent_requirement else None)
        assert required[OfferingKind.CLASS] == {DEMO_CONSENT_TITLE}
        assert required[OfferingKind.WORKSHOP] == {None}
        # (The demo also has a past year of classes, for the reports: book one still to come.)
        now = utcnow()
        a_class, session = next(
            (o, s)
            for o in offerings
            if o.kind is OfferingKind.CLASS
            for s in o.sessions
            if s.starts_at > now and s.seat_pool.seats_left
        )
        version = consent.required_version(a_class)
        booked = registration.register(
            a_class,
            session.id,
            Person("Dee Demo", "dee@example.com"),
            consent_answer=consent.ConsentAnswer(version.id, True),
        ).registration
        assert [a.consent_version_id for a in consent.acceptances_of(booked.id)] == [version.id]
        # The release has its Spanish translation (Somali readers see the English, noted), made
        # once: seeding again adds none.
        from events.demo import _demo_consent_document

        assert [(t.language, t.title) for t in version.translations] == [
            ("es", "Participación en clases de ejercicio y exoneración")
        ]
        _demo_consent_document()
        _db.session.commit()
        _db.session.refresh(version)
        assert [t.language for t in version.translations] == ["es"]
        _db.session.remove()
        _db.engine.dispose()


def test_the_check_in_screen_speaks_the_language_the_person_booked_in(client, db, clinic):
    """The staff page is English, but the part the person reads on the instructor's phone (and
    the error if they forget the tick) is in the language they booked in; the staff line stays
    English."""
    offering, first = clinic["offering"], clinic["first"]
    v1 = current(clinic["document"])
    booked = registration.register(
        offering, first.id, Person("Sofía Ruiz", "sofia@example.com"), source="staff"
    ).registration
    booked.language = "es"
    db.session.commit()

    assert sign_in(client, "a@clinic.example").status_code == 302
    page = client.get(accept_url(first, booked)).get_data(as_text=True)
    assert "Antes de la clase, Sofía Ruiz" in page and 'lang="es"' in page
    assert "Yo, Sofía Ruiz, he leído el documento de consentimiento «Exercise class participation" in page
    assert "Before class" not in page and "Staff: recorded as accepted in person" in page
    assert '<html lang="en">' in page and "Find my registrations" in page  # the staff page around it
    not_ticked = client.post(
        accept_url(first, booked), data={"csrf_token": csrf_token(page), "consent_version_id": str(v1.id)}
    )
    body = not_ticked.get_data(as_text=True)
    assert not_ticked.status_code == 409
    assert "Por favor, lea el documento de consentimiento «Exercise class participation" in body
    assert "tick the box" not in body
