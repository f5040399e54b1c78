"""Seats kept for the community price, on the paths that used to ignore them (PostgreSQL):
a class pass takes a general seat and is told what a general registration is told when only
kept community seats are free (the emailed link's page and the pass page's Book); a staff
transfer moves a community-seat booking onto a kept community seat, or (staff told, and
agreeing) onto a general seat at the general price, and a general booking onto a general
seat only; the JSON API says how many are still kept. Amounts worked out by hand."""

from __future__ import annotations

from datetime import time

from events.extensions import db as _db
from events.models import (
    OfferingKind,
    Payment,
    PaymentStatus,
    Registration,
    RegistrationStatus,
    SeatPool,
    utcnow,
)
from events.pricing import PriceChoice
from events.registration.services import (
    Person,
    register,
)
from tests.factories import make_clinic, make_location, make_offering, make_session
from tests.integration.conftest import day
from tests.integration.test_api_openapi import assert_valid
from tests.integration.test_page_cache import listening
from tests.passbook_helpers import make_class, make_pass

ME = "pat.holder@example.com"
ONLY_COMMUNITY = 'The seats left are community seats. Choose "Community seat" to take one.'


def person(email: str = ME, name: str = "Pat Holder") -> Person:
    return Person(name, email, "612 555 0100", "en")


def paid(registration: Registration) -> Registration:
    """A hold paid by card (our mirror of a succeeded PaymentIntent)."""
    _db.session.add(
        Payment(
            registration_id=registration.id,
            stripe_payment_intent_id=f"pi_community_{registration.id}",
            amount_cents=registration.price_cents,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
            paid_at=utcnow(),
        )
    )
    registration.status = RegistrationStatus.CONFIRMED
    registration.confirmed_at, registration.hold_expires_at = utcnow(), None
    _db.session.commit()
    return registration


def pool_of(session) -> SeatPool:
    _db.session.expire_all()
    return _db.session.get(SeatPool, session.seat_pool_id)


def community_class(capacity: int = 3, community_seats: int = 2, dates: int = 2):
    """A $15 drop-in class whose dates each keep `community_seats` seats at $5 (released 24
    hours before the start: not yet, it starts in 5 days), and Pat's 10-class pass."""
    make_clinic()
    cls = make_class(
        capacity=capacity,
        days=5,
        dates=dates,
        community_seats=community_seats,
        community_price_cents=500,
        title="Strength Basics",
    )
    pass_ = make_pass(ME)
    _db.session.commit()
    return cls, pass_


def take_the_general_seats(cls, session, count: int = 1) -> list[Registration]:
    return [
        paid(register(cls, session.id, person(f"general{i}@example.com", f"General {i}")).registration)
        for i in range(count)
    ]


# --- 3. The JSON API says how many are still kept ---


def test_the_api_says_how_many_community_seats_are_left_per_date(client, db):
    make_clinic()
    location = make_location()
    cls = make_offering(
        location,
        OfferingKind.CLASS,
        title="Kept class",
        price_cents=1500,
        capacity=4,
        community_seats=2,
        community_price_cents=500,
    )
    first, second = make_session(cls, day(5), time(9)), make_session(cls, day(6), time(9))
    free = make_offering(location, OfferingKind.WORKSHOP, title="Free talk", community_seats=2)
    make_session(free, day(7), time(9))
    db.session.commit()

    def left() -> dict[str, int]:
        data = client.get("/api/v1/sessions").get_json()["data"]
        return {
            f"{i['offering']['title']} {i['id']}": (i["community_seats_left"], i["seats_left"]) for i in data
        }

    spec = client.get("/api/v1/openapi.json").get_json()
    assert_valid(spec, "/sessions", "200", client.get("/api/v1/sessions").get_json())
    assert left() == {
        f"Kept class {first.id}": (2, 4),
        f"Kept class {second.id}": (2, 4),
        f"Free talk {free.sessions[0].id}": (0, 10),  # a free offering keeps none
    }
    register(cls, first.id, Person("Ana", "ana@example.com"), price_choice=PriceChoice(community=True))
    assert left()[f"Kept class {first.id}"] == (1, 3)  # per date, like seats_left
    assert left()[f"Kept class {second.id}"] == (2, 4)
    detail = client.get(f"/api/v1/sessions/{first.id}").get_json()
    assert_valid(spec, "/sessions/{session_id}", "200", detail)
    assert (detail["data"]["community_seats_left"], detail["data"]["offering"]["community_seats"]) == (1, 2)

    cls.community_release_hours = 24 * 30  # released to general sale: none kept any more
    db.session.commit()
    assert left()[f"Kept class {first.id}"] == (0, 3)
    assert left()[f"Kept class {second.id}"] == (0, 4)


def test_the_apis_statement_count_stays_the_same_with_community_seats(client, db, app, count_queries):
    listening(app)
    make_clinic()
    location = make_location()

    def add(count: int) -> None:
        for n in range(count):
            offering = make_offering(
                location,
                OfferingKind.CLASS,
                price_cents=1500,
                community_seats=1 + n % 2,
                community_price_cents=500,
                instructor=None,
            )
            make_session(offering, day(2 + n % 40), time(8 + n % 10))
        db.session.commit()

    def statements() -> int:
        with count_queries() as seen:
            response = client.get("/api/v1/sessions?per_page=100")
        assert response.status_code == 200
        assert all(item["community_seats_left"] in (1, 2) for item in response.get_json()["data"])
        return len(seen)

    add(5)
    with_5 = statements()
    add(55)
    assert statements() == with_5 <= 5  # the usual four, and one for every page's kept seats
