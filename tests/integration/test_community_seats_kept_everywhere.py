"""Seats kept for the community price, on the paths that used to ignore them (PostgreSQL):
a class pass takes a general seat and is told what a general registration is told when only
kept community seats are free (the emailed link's page and the pass page's Book); a staff
transfer moves a community-seat booking onto a kept community seat, or (staff told, and
agreeing) onto a general seat at the general price, and a general booking onto a general
seat only; the JSON API says how many are still kept. Amounts worked out by hand."""

from __future__ import annotations

import re
from datetime import time
from html import unescape
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from events import pricing
from events.extensions import db as _db
from events.models import (
    OfferingKind,
    Payment,
    PaymentStatus,
    Registration,
    RegistrationStatus,
    Role,
    SeatPool,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.passes import booking, ledger
from events.pricing import PriceChoice
from events.registration import links
from events.registration.services import (
    Person,
    WaitlistOutcome,
    cancel_registration,
    join_waitlist,
    register,
)
from events.staff import bookings
from events.staff.errors import AdminError
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token
from tests.integration.conftest import day
from tests.integration.test_api_openapi import assert_valid
from tests.integration.test_page_cache import listening
from tests.integration.test_staff import make_user, sign_in
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


# --- 1. A class pass takes a general seat ---


def test_a_pass_booking_never_takes_a_kept_community_seat_and_keeps_its_waitlist_place(db):
    cls, pass_ = community_class()
    session = cls.sessions[0]
    take_the_general_seats(cls, session)  # 1 general seat taken, 2 kept for the community
    assert join_waitlist(cls, session.id, person()).outcome is WaitlistOutcome.JOINED

    result = booking.book_with_pass(cls, session.id, person())

    assert result.outcome is booking.Outcome.ONLY_COMMUNITY_SEATS
    assert ledger.balance(pass_.id) == 10  # nothing spent
    assert pool_of(session).seats_taken == 1
    assert db.session.scalar(sa.select(Registration.id).where(Registration.email_normalized == ME)) is None
    # Told "full for a general seat", they stay where they were on its waitlist.
    entry = db.session.scalar(sa.select(WaitlistEntry).where(WaitlistEntry.email_normalized == ME))
    assert entry.status is WaitlistStatus.WAITING

    # The control: once the community seats join general sale, the same booking takes one.
    cls.community_release_hours = 24 * 30
    db.session.commit()
    assert booking.book_with_pass(cls, session.id, person()).outcome is booking.Outcome.BOOKED
    assert pool_of(session).seats_taken == 2
    assert ledger.balance(pass_.id) == 9


def test_a_pass_booking_takes_a_general_seat_while_community_seats_are_kept(db):
    cls, pass_ = community_class()
    session = cls.sessions[0]

    booked = booking.book_with_pass(cls, session.id, person())

    assert booked.outcome is booking.Outcome.BOOKED and booked.registration.community_seat is False
    kept = pricing.community_seats(cls, pool_of(session), utcnow())
    assert (kept.kept, kept.left_for_general) == (2, 0)  # the two community seats are still kept
    # A general registration now finds only community seats: refused, as the pass was above.
    with pytest.raises(Exception, match="community seats"):
        register(cls, session.id, person("late@example.com"))
    assert pool_of(session).seats_taken == 1


def test_a_pass_holder_offered_a_general_seat_from_the_waitlist_books_it_with_the_pass(db):
    cls, pass_ = community_class(capacity=2, community_seats=1)
    session = cls.sessions[0]
    (general,) = take_the_general_seats(cls, session)
    assert join_waitlist(cls, session.id, person()).outcome is WaitlistOutcome.JOINED
    cancel_registration(general.id)  # the general seat is offered to Pat
    entry = db.session.scalar(sa.select(WaitlistEntry).where(WaitlistEntry.email_normalized == ME))
    assert entry.status is WaitlistStatus.OFFERED

    result = booking.book_with_pass(cls, session.id, person())

    assert result.outcome is booking.Outcome.BOOKED
    db.session.refresh(entry)
    assert (entry.status, entry.registration_id) == (WaitlistStatus.CLAIMED, result.registration.id)
    assert pool_of(session).seats_taken == 1  # the offer's seat became the booking's
    assert pricing.community_seats(cls, pool_of(session), utcnow()).kept == 1


def link_path(app, cls, session) -> str:
    with app.test_request_context():
        request = booking.BookingRequest(cls.id, session.id, "Pat Holder", ME, "612 555 0100", "en")
        return "/pass-booking/" + booking.sign_request(request)


def hidden_fields(html: str, action: str) -> dict[str, str]:
    form = re.search(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', html, re.S)
    assert form, f"no form posting to {action}"
    return {
        name: unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(1))
    }


def test_the_emailed_links_page_answers_as_the_registration_form_and_its_waitlist_button_works(
    app, client, db
):
    cls, pass_ = community_class()
    session = cls.sessions[0]
    take_the_general_seats(cls, session)
    path = link_path(app, cls, session)

    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert unescape(html).count(ONLY_COMMUNITY) == 1
    assert "Book it" not in html
    waitlist = hidden_fields(html, f"/offerings/{cls.slug}/waitlist")
    assert {k: waitlist[k] for k in ("session_id", "name", "email", "phone")} == {
        "session_id": str(session.id),
        "name": "Pat Holder",
        "email": ME,
        "phone": "612 555 0100",
    }
    assert f'href="/offerings/{cls.slug}?session={session.id}#register"' in html

    # Pressing "Book it" on a page opened before: the same words, once, and nothing spent.
    refused = client.post(path, data={"csrf_token": csrf_token(html)})
    assert refused.status_code == 409
    assert unescape(refused.get_data(as_text=True)).count(ONLY_COMMUNITY) == 1
    assert ledger.balance(pass_.id) == 10 and pool_of(session).seats_taken == 1

    joined = client.post(f"/offerings/{cls.slug}/waitlist", data=waitlist)
    assert joined.status_code == 302 and "/waitlist/" in joined.location
    entry = db.session.scalar(sa.select(WaitlistEntry).where(WaitlistEntry.email_normalized == ME))
    assert (entry.status, entry.name, entry.phone) == (WaitlistStatus.WAITING, "Pat Holder", "612 555 0100")


def test_the_pass_page_lists_it_full_and_its_book_button_answers_as_the_registration_form(app, client, db):
    cls, pass_ = community_class()
    first, second = cls.sessions
    take_the_general_seats(cls, first)
    with app.test_request_context():
        signed = links.sign(pass_.token, links.PASS_SALT)

    page = client.get(f"/pass/{signed}").get_data(as_text=True)
    booking_forms = re.findall(r'name="session_id" value="(\d+)"', page)
    assert booking_forms == [str(second.id)]  # the first date offers no Book button: full for a pass
    items = {b.session.id: b.seats_left for b in booking.bookable_sessions(pass_)}
    assert items == {first.id: 0, second.id: 1}  # general seats: 3 - 2 kept (- 1 taken)

    response = client.post(
        f"/pass/{signed}/book", data={"csrf_token": csrf_token(page), "session_id": str(first.id)}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert unescape(html).count(ONLY_COMMUNITY) == 1
    assert hidden_fields(html, f"/offerings/{cls.slug}/waitlist")["email"] == ME
    assert ledger.balance(pass_.id) == 10 and pool_of(first).seats_taken == 1


# --- 2. A staff transfer respects the kept seats ---


@pytest.fixture
def desk(db, client):
    """A signed-in admin and a $15 class with two dates of three seats, one kept at $5 on each."""
    admin = make_user(db, "sam@clinic.example", Role.ADMIN, name="Sam Admin")
    core = make_offering(
        make_location(name="North Loop"),
        OfferingKind.CLASS,
        title="Core Flow",
        price_cents=1500,
        capacity=3,
        community_seats=1,
        community_price_cents=500,
    )
    first = make_session(core, upcoming_day(3))
    second = make_session(core, upcoming_day(10))
    db.session.commit()
    assert sign_in(client, admin.email).status_code == 302
    return SimpleNamespace(admin=admin, core=core, first=first, second=second)


def community_booked(desk, session, name="Ana Lopez", email="ana@example.com") -> Registration:
    held = register(desk.core, session.id, Person(name, email), price_choice=PriceChoice(community=True))
    return paid(held.registration)


def general_booked(desk, session, name, email) -> Registration:
    return paid(register(desk.core, session.id, Person(name, email)).registration)


def community_taken(session) -> int:
    return pricing.community_taken(session.seat_pool_id)


def test_a_community_booking_moves_onto_a_kept_community_seat(db, desk):
    ana = community_booked(desk, desk.first)
    assert (ana.community_seat, ana.price_cents) == (True, 500)

    quote = bookings.transfer_quote(ana, desk.core.id, desk.second.id)
    assert (quote.community_seat, quote.community_gone, quote.new_price_cents, quote.difference_cents) == (
        True,
        "",
        500,
        0,
    )
    moved = bookings.transfer_booking(ana.id, desk.core.id, desk.second.id, "Asked", desk.admin, 0).new

    assert (moved.community_seat, moved.price_cents, moved.status) == (
        True,
        500,
        RegistrationStatus.CONFIRMED,
    )
    assert (community_taken(desk.first), community_taken(desk.second)) == (0, 1)
    assert (pool_of(desk.first).seats_taken, pool_of(desk.second).seats_taken) == (0, 1)


def test_with_no_community_seat_left_staff_are_told_and_may_move_it_onto_a_general_seat(db, desk):
    ana = community_booked(desk, desk.first)
    community_booked(desk, desk.second, "Ben Bell", "ben@example.com")  # the second's one is taken

    quote = bookings.transfer_quote(ana, desk.core.id, desk.second.id)
    assert quote.community_seat is False
    assert quote.community_gone == "its 1 community seat is taken"
    assert (quote.new_price_cents, quote.difference_cents) == (1500, 1000)  # $15 - the $5 paid

    # Without staff agreeing to the general seat, nothing moves.
    with pytest.raises(bookings.CommunitySeatGone, match="Ana Lopez has a community seat"):
        bookings.transfer_booking(ana.id, desk.core.id, desk.second.id, "Asked", desk.admin, 1000)
    db.session.rollback()
    assert db.session.get(Registration, ana.id).status is RegistrationStatus.CONFIRMED
    assert pool_of(desk.second).seats_taken == 1

    result = bookings.transfer_booking(
        ana.id, desk.core.id, desk.second.id, "Asked", desk.admin, 1000, accept_general_seat=True
    )

    assert (result.new.community_seat, result.new.price_cents, result.due_cents) == (False, 1500, 1000)
    assert (community_taken(desk.first), community_taken(desk.second)) == (0, 1)
    assert pool_of(desk.second).seats_taken == 2


def test_a_general_booking_never_moves_onto_a_kept_community_seat(db, desk):
    cy = general_booked(desk, desk.first, "Cy Cole", "cy@example.com")
    general_booked(desk, desk.second, "Dee Dunn", "dee@example.com")
    general_booked(desk, desk.second, "Eve Ek", "eve@example.com")  # the second: only its kept seat

    with pytest.raises(AdminError, match="only community seats left"):
        bookings.transfer_booking(cy.id, desk.core.id, desk.second.id, "Asked", desk.admin, 0)
    db.session.rollback()

    assert db.session.get(Registration, cy.id).status is RegistrationStatus.CONFIRMED
    assert pool_of(desk.second).seats_taken == 2 and community_taken(desk.second) == 0
    # The control: once it joins general sale, the same transfer takes it.
    desk.core.community_release_hours = 24 * 30
    db.session.commit()
    moved = bookings.transfer_booking(cy.id, desk.core.id, desk.second.id, "Asked", desk.admin, 0).new
    assert (moved.community_seat, moved.price_cents) == (False, 1500)
    assert pool_of(desk.second).seats_taken == 3


def transfer_review(client, registration, target):
    url = f"/staff/admin/registrations/{registration.id}/transfer"
    form = client.get(url).get_data(as_text=True)
    review = client.post(url, data={"csrf_token": csrf_token(form), "target": target, "reason": "Asked"})
    return url, form, review


def test_the_transfer_pages_say_so_plainly_and_a_seat_taken_meanwhile_asks_again(client, db, desk):
    ana = community_booked(desk, desk.first)
    target = f"{desk.core.id}-{desk.second.id}"
    url, form, review = transfer_review(client, ana, target)
    assert "3 seats left, 1 of them community" in form  # the list of dates says which are kept
    page = unescape(review.get_data(as_text=True))
    assert review.status_code == 200
    assert "They keep a community seat ($5.00)" in page and "accept_general_seat" not in page

    # Ben takes the second date's community seat while the page is open; confirming it asks again.
    community_booked(desk, desk.second, "Ben Bell", "ben@example.com")
    data = {"csrf_token": csrf_token(page), "target": target, "reason": "Asked", "expected_difference": "0"}
    again = client.post(url, data=data)
    page = unescape(again.get_data(as_text=True))
    assert again.status_code == 200
    assert "Ana Lopez has a community seat, and there is none for them on that one now" in page
    assert (
        "Transferring moves them onto a general seat at the general price ($15.00)" in page
        and "collect the difference, $10.00" in page
    )
    assert '<input type="hidden" name="accept_general_seat" value="y">' in page
    assert db.session.get(Registration, ana.id).status is RegistrationStatus.CONFIRMED

    done = client.post(url, data={**data, "expected_difference": "1000", "accept_general_seat": "y"})
    assert done.status_code == 302
    moved = db.session.scalar(
        sa.select(Registration).where(
            Registration.session_id == desk.second.id, Registration.email_normalized == "ana@example.com"
        )
    )
    assert (moved.community_seat, moved.price_cents, moved.status) == (
        False,
        1500,
        RegistrationStatus.CONFIRMED,
    )


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


# --- A card payment that arrives after its hold lapsed ---


@pytest.mark.usefixtures("localstripe")
@pytest.mark.parametrize("community", [False, True], ids=["general-price", "community-price"])
def test_a_late_card_payment_keeps_a_seat_only_at_its_own_price(db, localstripe, community):
    """Pat's hold lapses while paying; meanwhile the last general seat is taken, and two
    community seats are still kept. Pat's card payment arrives after all: at the general price
    it must not take a kept community seat (refunded, once), at the community price it takes one."""
    from datetime import timedelta

    import stripe

    from events.models import Refund
    from events.payments import services as payments
    from events.registration import seats
    from tests.helpers import charge_card
    from tests.integration.test_payments import SUCCESS, card_token

    cls, _pass = community_class(capacity=3, community_seats=2)
    session = cls.sessions[0]
    choice = PriceChoice(community=True) if community else None
    held = register(cls, session.id, person(), price_choice=choice).registration
    assert held.status is RegistrationStatus.HELD
    later = utcnow() + timedelta(minutes=20)
    seats.sweep_lapsed(later)
    take_the_general_seats(cls, session, 1)
    assert pricing.community_seats(cls, pool_of(session), utcnow()).kept == 2

    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})
    state = charge_card(
        registration_id=held.id,
        card_token=card_token(client, SUCCESS),
        amount=held.price_cents,
        currency="usd",
        description="late",
    )
    payments.apply_intent(state)
    payments.apply_intent(state)  # the webhook, again

    _db.session.expire_all()
    late = _db.session.get_one(Registration, held.id)
    refunds = _db.session.scalars(sa.select(Refund)).all()
    kept = pricing.community_seats(cls, pool_of(session), utcnow()).kept
    if community:
        assert late.status is RegistrationStatus.CONFIRMED and refunds == []
        assert kept == 1 and pool_of(session).seats_taken == 2
    else:
        assert late.status is RegistrationStatus.EXPIRED
        assert [r.amount_cents for r in refunds] == [held.price_cents]
        assert kept == 2 and pool_of(session).seats_taken == 1
