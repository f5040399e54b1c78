"""The waitlist without dead ends (issue 12): a claimed seat's waitlist link and a second
"Claim" lead to where the registration stands (its payment while held, else its manage page),
and joining a waitlist you're already on answers neutrally and emails the link."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from events.filters import format_time, zone_name
from events.models import OfferingKind, OutboxEmail, RegistrationStatus, Role, WaitlistStatus, utcnow
from events.notifications.outbox import EmailKind
from events.registration import links, seats, services
from events.registration.services import Person
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token


@pytest.fixture(autouse=True)
def signing_clock_held_still(monkeypatch):
    """Signed links carry the second they were signed in: the links a test builds to compare
    with a page's must be signed in the same second as the page's, whenever the test runs."""
    from itsdangerous.timed import TimestampSigner

    now = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now)


def waitlist_path(entry) -> str:
    return "/waitlist/" + links.sign(entry.token, links.WAITLIST_SALT)


def paid_class_with_an_offer(db):
    """A full paid class whose seat was freed and offered to Wes, on the waitlist."""
    location = make_location(name="North Loop", address_line1="800 N Washington Ave")
    offering = make_offering(location, OfferingKind.CLASS, title="Core", price_cents=1800, capacity=1)
    session = make_session(offering, upcoming_day(4))
    db.session.commit()
    taken = services.register(offering, session.id, Person("Ana", "ana@example.com")).registration
    entry = services.join_waitlist(offering, session.id, Person("Wes", "wes@example.com")).entry
    services.cancel_registration(taken.id)
    db.session.refresh(entry)
    assert entry.status == WaitlistStatus.OFFERED
    return offering, entry


def link(client, make, *args, **kwargs) -> str:
    with client.application.test_request_context():
        return make(*args, **kwargs)


def claim(client, entry, token: str | None = None):
    """Press "Claim" (again, with the token of the page it was on: the claimed page has no form)."""
    url = waitlist_path(entry)
    token = token or csrf_token(client.get(url).get_data(as_text=True))
    return client.post(url + "/claim", data={"csrf_token": token}), token


def test_a_claimed_paid_seat_leads_to_its_payment_from_the_link_and_from_claim_again(client, db):
    _, entry = paid_class_with_an_offer(db)
    first, token = claim(client, entry)
    db.session.refresh(entry)
    registration = entry.registration
    assert registration is not None and registration.status == RegistrationStatus.HELD
    assert first.status_code == 302 and first.headers["Location"] == link(client, links.pay_url, registration)

    html = client.get(waitlist_path(entry)).get_data(as_text=True)
    until = registration.hold_expires_at.astimezone(registration.offering.location.zone)
    assert f"held until <strong>{format_time(until)} {zone_name(until)}</strong>" in html
    assert "Check your email" not in html
    pay = link(client, links.pay_url, registration, resumed=True).replace("&", "&amp;")
    assert f'href="{pay}">Continue to payment</a>' in html

    again, _ = claim(client, entry, token)
    assert again.status_code == 302 and again.headers["Location"] == link(
        client, links.pay_url, registration, resumed=True
    )
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "Welcome back. Continue to payment" in page


def test_a_claimed_hold_that_lapsed_leads_to_its_manage_page_which_offers_register_again(client, db):
    _, entry = paid_class_with_an_offer(db)
    _, token = claim(client, entry)
    db.session.refresh(entry)
    registration = entry.registration
    registration.hold_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    html = client.get(waitlist_path(entry)).get_data(as_text=True)
    manage = link(client, links.manage_url, registration, external=False)
    assert f'href="{manage}">See your registration</a>' in html
    assert "You weren&#39;t charged" in html and "/pay" not in html

    again, _ = claim(client, entry, token)
    assert again.status_code == 302 and again.headers["Location"] == manage
    assert "Register again" in client.get(manage).get_data(as_text=True)


def test_a_claimed_seat_that_is_booked_leads_to_its_registration(client, db):
    _, entry = paid_class_with_an_offer(db)
    _, token = claim(client, entry)
    db.session.refresh(entry)
    registration = entry.registration
    registration.status = RegistrationStatus.CONFIRMED
    registration.confirmed_at = utcnow()
    registration.hold_expires_at = None
    db.session.commit()

    html = client.get(waitlist_path(entry)).get_data(as_text=True)
    manage = link(client, links.manage_url, registration, external=False)
    assert "you&#39;re booked" in html and f'href="{manage}">See your registration</a>' in html
    again, _ = claim(client, entry, token)
    assert again.status_code == 302 and again.headers["Location"] == manage


def test_joining_a_waitlist_again_answers_neutrally_and_emails_the_link(client, db):
    location = make_location()
    offering = make_offering(location, OfferingKind.CLASS, title="Balance", capacity=1)
    session = make_session(offering, upcoming_day(4))
    db.session.commit()
    services.register(offering, session.id, Person("Ana", "ana@example.com"))
    entry = services.join_waitlist(offering, session.id, Person("Wes", "wes@example.com")).entry
    page = client.get(f"/offerings/{offering.slug}?session={session.id}").get_data(as_text=True)
    data = {
        "csrf_token": csrf_token(page),
        "name": "Eve",
        "email": "wes@example.com",
        "session_id": str(session.id),
    }

    response = client.post(f"/offerings/{offering.slug}/waitlist", data=data)

    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "You&#39;re already on the waitlist for this date. We&#39;ve emailed you the link" in html
    assert "/waitlist/" not in html  # never the link to a stranger
    assert links.sign(entry.token, links.WAITLIST_SALT) not in html
    rows = db.session.scalars(
        sa.select(OutboxEmail).where(
            OutboxEmail.waitlist_entry_id == entry.id, OutboxEmail.kind == EmailKind.WAITLIST_JOINED
        )
    ).all()
    assert len(rows) == 2 and [r.to_email for r in rows] == ["wes@example.com"] * 2
    assert [r.context for r in rows if r.context.get("again")] == [{"again": True}]
    assert re.search(r"w\d+:t\d+$", next(r.dedupe_key for r in rows if r.context.get("again")))


# --- Registering while on the waitlist: the place ends only with a seat ---


def full_class_with_two_waiting(db):
    """A full free class (Ana has its one seat) with Wes, then Cy, on its waitlist."""
    location = make_location()
    offering = make_offering(location, OfferingKind.CLASS, title="Gentle Yoga", capacity=1)
    session = make_session(offering, upcoming_day(4))
    db.session.commit()
    taken = services.register(offering, session.id, Person("Ana", "ana@example.com")).registration
    wes = services.join_waitlist(offering, session.id, Person("Wes", "wes@example.com")).entry
    cy = services.join_waitlist(offering, session.id, Person("Cy", "cy@example.com")).entry
    return offering, session, taken, wes, cy


def post_register_as(client, offering, session, email: str):
    page = client.get(f"/offerings/{offering.slug}?session={session.id}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "name": "Cy", "email": email, "session_id": str(session.id)}
    return client.post(f"/offerings/{offering.slug}/register", data=data)


def waitlist_emails(db, entry) -> list[OutboxEmail]:
    return list(
        db.session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.waitlist_entry_id == entry.id, OutboxEmail.kind == EmailKind.WAITLIST_JOINED)
            .order_by(OutboxEmail.id)
        )
    )


def test_registering_while_waiting_for_a_full_class_keeps_the_place_and_says_so(client, db):
    offering, session, taken, wes, cy = full_class_with_two_waiting(db)

    response = post_register_as(client, offering, session, "cy@example.com")

    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert (
        "This class is still full. You&#39;re still on the waitlist, and we&#39;ll email you if a "
        "seat opens. We&#39;ve also emailed you the link to your place, which shows where you are in line."
    ) in html
    # Neither the link nor the number in line: anyone may type anyone's email into the form.
    assert "number 2" not in html
    assert "/waitlist/" not in html and links.sign(cy.token, links.WAITLIST_SALT) not in html
    db.session.expire_all()
    assert (wes.status, cy.status) == (WaitlistStatus.WAITING, WaitlistStatus.WAITING)
    assert seats.waitlist_position(cy) == 2
    assert session.seat_pool.seats_taken == 1
    # The link to their place went to their address (the "joined" email again, flagged so).
    rows = waitlist_emails(db, cy)
    assert [r.to_email for r in rows] == ["cy@example.com"] * 2 and rows[1].context == {"again": True}

    # Still theirs when a seat frees: Ana cancels, Wes (first) is offered it; Cy is now first.
    services.cancel_registration(taken.id)
    again = services.register(offering, session.id, Person("Cy", "cy@example.com"))
    assert again.outcome is services.Outcome.FULL and again.waiting is not None
    db.session.expire_all()
    assert (wes.status, cy.status) == (WaitlistStatus.OFFERED, WaitlistStatus.WAITING)
    assert seats.waitlist_position(cy) == 1


def test_the_place_ends_only_with_a_seat_a_free_one_or_the_one_offered(db):
    offering, session, taken, wes, cy = full_class_with_two_waiting(db)
    services.change_capacity(session.seat_pool_id, 3)  # two seats: both offered, Wes's and Cy's
    db.session.expire_all()
    assert (wes.status, cy.status) == (WaitlistStatus.OFFERED, WaitlistStatus.OFFERED)

    booked = services.register(offering, session.id, Person("Cy", "cy@example.com"))

    assert booked.outcome is services.Outcome.CONFIRMED
    db.session.expire_all()
    assert (cy.status, cy.registration_id) == (WaitlistStatus.CLAIMED, booked.registration.id)
    assert session.seat_pool.seats_taken == 3  # the offered seat became the registration's

    # Wes's offer stands: his place ends only when he takes a seat.
    assert wes.status == WaitlistStatus.OFFERED


def test_a_general_registration_refused_for_the_kept_community_seats_keeps_the_place(db):
    from events.registration.services import OnlyCommunitySeatsLeft
    from tests.integration.test_community_seats_kept_everywhere import (
        community_class,
        person,
        take_the_general_seats,
    )

    cls, _pass = community_class()  # 3 seats, 2 kept for the community price
    session = cls.sessions[0]
    take_the_general_seats(cls, session)
    entry = services.join_waitlist(cls, session.id, person()).entry  # waiting for a general seat

    with pytest.raises(OnlyCommunitySeatsLeft):
        services.register(cls, session.id, person())

    db.session.expire_all()
    assert entry.status == WaitlistStatus.WAITING and seats.waitlist_position(entry) == 1


def test_a_staff_registration_for_someone_waiting_on_a_full_class_keeps_their_place(db):
    from events.staff import registrations
    from tests.integration.test_staff import make_user

    offering, session, _taken, _wes, cy = full_class_with_two_waiting(db)
    admin = make_user(db, "desk@clinic.example", Role.ADMIN)

    result = registrations.register_on_behalf(offering, session.id, Person("Cy", "cy@example.com"), admin)

    assert result.outcome is services.Outcome.FULL and result.waiting is not None
    assert result.waiting.id == cy.id
    db.session.expire_all()
    assert cy.status == WaitlistStatus.WAITING and seats.waitlist_position(cy) == 2
    assert len(waitlist_emails(db, cy)) == 1  # staff see the position: no link emailed
