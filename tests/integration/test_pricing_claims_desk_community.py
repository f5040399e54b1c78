"""Prices where members and the desk meet them, on PostgreSQL: a waitlist claim and staff's
"Register someone" priced by the one price function (tiers, codes, community seats) under the
same locks as registering; a waitlist offer never takes a seat kept for the community; and the
offering page stops offering a community seat once none is kept. Amounts worked out by hand."""

from __future__ import annotations

import re
from datetime import time, timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from events.catalog.cache import page_cache
from events.extensions import db
from events.models import (
    AuditEntry,
    OfferingKind,
    Payment,
    PaymentMethod,
    PromoRedemption,
    Registration,
    RegistrationStatus,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.pricing import PriceChoice
from events.registration import links, seats, services
from events.registration.services import Outcome, Person, RegistrationError, WaitlistOutcome
from tests.factories import make_location, make_offering, make_session, upcoming_day, workshop
from tests.helpers import csrf_token, outbox_kinds
from tests.integration.test_page_cache import listening
from tests.integration.test_pricing import code, tier, tiered
from tests.integration.test_staff_admin import login, token_from


def person(email: str, name: str = "Wes Ng") -> Person:
    return Person(name, email)


def confirm(registration: Registration, now) -> None:
    """A hold paid (as the webhook would): its seat stays taken whatever the clock says later."""
    registration.status = RegistrationStatus.CONFIRMED
    registration.confirmed_at = now
    registration.hold_expires_at = None


def offered_seat(db, offering, now=None) -> WaitlistEntry:
    """Fill `offering` (capacity 1) with Ana, put Wes on its waitlist, and free Ana's seat:
    it is offered to Wes."""
    now = now or utcnow()
    taken = services.register(offering, None, person("ana@example.com", "Ana"), now=now).registration
    entry = services.join_waitlist(offering, None, person("wes@example.com"), now=now).entry
    services.cancel_registration(taken.id, now=now)
    db.session.refresh(entry)
    assert entry.status == WaitlistStatus.OFFERED
    return entry


def waitlist_path(entry) -> str:
    return "/waitlist/" + links.sign(entry.token, links.WAITLIST_SALT)


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# --- 1. A waitlist claim is priced like registering ---


def test_the_claim_page_offers_the_tiers_and_a_code_and_prices_the_claim_with_them(client, db):
    offering = tiered(db, capacity=1)
    promo = code(db, "PARTNER", value=20, max_uses=5)
    db.session.commit()
    entry = offered_seat(db, offering)
    community = tier(offering, "Community")

    page = client.get(waitlist_path(entry)).get_data(as_text=True)
    assert "Choose your price" in page and "Have a code?" in page
    assert f'value="tier-{community.id}"' in page
    assert f'value="tier-{tier(offering, "Standard").id}" checked' in page  # the form's default

    response = client.post(
        waitlist_path(entry) + "/claim",
        data={"csrf_token": csrf_token(page), "price_choice": f"tier-{community.id}", "code": " partner"},
    )

    db.session.refresh(entry)
    registration = entry.registration
    assert response.status_code == 302 and "/pay" in response.headers["Location"]
    # Community $5, then 20% off: $4.
    assert (registration.status, registration.price_cents, registration.discount_cents) == (
        RegistrationStatus.HELD,
        400,
        100,
    )
    assert (registration.price_tier_id, registration.promo_code_id) == (community.id, promo.id)
    used = db.session.scalars(sa.select(PromoRedemption)).all()
    assert [(u.registration_id, u.discount_cents, u.released_at) for u in used] == [
        (registration.id, 100, None)
    ]
    pool = registration.seat_pool
    db.session.refresh(pool)
    assert pool.seats_taken == pool.capacity == 1  # the offer's seat became the registration's


def test_a_hundred_percent_code_claims_a_paid_seat_free_with_no_card(client, db):
    offering = workshop(price_cents=2000, capacity=1)
    code(db, "FREEDAY", value=100)
    db.session.commit()
    entry = offered_seat(db, offering)
    page = client.get(waitlist_path(entry)).get_data(as_text=True)

    response = client.post(
        waitlist_path(entry) + "/claim", data={"csrf_token": csrf_token(page), "code": "freeday"}
    )

    db.session.refresh(entry)
    registration = entry.registration
    assert response.status_code == 302 and "/manage/" in response.headers["Location"]
    assert (registration.status, registration.price_cents, registration.discount_cents) == (
        RegistrationStatus.CONFIRMED,
        0,
        2000,
    )
    assert registration.hold_expires_at is None
    assert count(Payment) == 0
    assert outbox_kinds(registration_id=registration.id) == [EmailKind.REGISTRATION_CONFIRMED]


@pytest.mark.parametrize(
    ("typed", "told"),
    [("NOPE", "We don't know that code"), ("USEDUP", "This code has been used up"), ("X" * 41, "too long")],
)
def test_a_code_that_cant_be_used_is_told_beside_its_field_and_the_offer_stays_open(client, db, typed, told):
    offering = workshop(price_cents=2000, capacity=1)
    code(db, "USEDUP", max_uses=0)
    db.session.commit()
    entry = offered_seat(db, offering)
    page = client.get(waitlist_path(entry)).get_data(as_text=True)

    response = client.post(
        waitlist_path(entry) + "/claim", data={"csrf_token": csrf_token(page), "code": typed}
    )

    html = response.get_data(as_text=True)
    assert response.status_code in (400, 409)
    assert told in unescape(html) and 'id="code-error"' in html and 'href="#code"' in html  # summary -> field
    assert f'value="{typed}"' in html  # what they typed, to correct
    db.session.refresh(entry)
    assert entry.status == WaitlistStatus.OFFERED
    assert count(Registration) == 1  # Ana's, cancelled: nothing new
    assert count(PromoRedemption) == 0


def test_a_price_choice_from_another_offering_is_refused_on_the_claim(db):
    offering = tiered(db, capacity=1)
    other = tiered(db)
    db.session.commit()
    entry = offered_seat(db, offering)

    with pytest.raises(RegistrationError) as refused:
        services.claim_offer(entry.id, price_choice=PriceChoice(tier_id=other.price_tiers[0].id))

    assert refused.value.field == "price_choice"
    db.session.refresh(entry)
    assert entry.status == WaitlistStatus.OFFERED


# --- 2. Staff "Register someone" with a tier and a code ---


def test_staff_register_someone_at_a_tier_with_a_code_and_take_the_quoted_price_in_cash(client, db):
    offering = tiered(db)
    promo = code(db, "PARTNER", value=20)
    db.session.commit()
    admin = login(client, db)
    url = f"/staff/admin/offerings/{offering.id}/register"
    form = client.get(url).get_data(as_text=True)
    community = tier(offering, "Community")
    assert f'<option value="tier-{community.id}">Community tier, $5.00</option>' in form
    assert f'<option selected value="tier-{tier(offering, "Standard").id}">' in form
    assert 'name="code"' in form

    # A wrong code first: beside its field, nothing booked.
    refused = client.post(
        url,
        data={
            "name": "Dee Phone",
            "email": "dee@example.com",
            "price_choice": f"tier-{community.id}",
            "code": "PARTNR",
            "payment": "cash",
            "csrf_token": csrf_token(form),
        },
    )
    assert refused.status_code == 400
    assert 'id="code-error"' in refused.get_data(as_text=True)
    assert count(Registration) == 0

    response = client.post(
        url,
        data={
            "name": "Dee Phone",
            "email": "dee@example.com",
            "price_choice": f"tier-{community.id}",
            "code": "partner",
            "payment": "cash",
            "csrf_token": csrf_token(form),
        },
    )

    assert response.status_code == 302
    registration = db.session.scalar(sa.select(Registration))
    assert (registration.status, registration.price_cents, registration.discount_cents) == (
        RegistrationStatus.CONFIRMED,
        400,
        100,
    )
    assert (registration.price_tier_id, registration.promo_code_id) == (community.id, promo.id)
    payment = db.session.scalar(sa.select(Payment))
    assert (payment.method, payment.amount_cents) == (PaymentMethod.CASH, 400)  # the quote, not $15
    assert count(PromoRedemption) == 1
    entry = db.session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "registration.created_by_staff")
    )
    assert entry.actor_id == admin.id
    assert {k: entry.details.get(k) for k in ("tier", "code", "discount_cents", "price_cents")} == {
        "tier": "Community",
        "code": "PARTNER",
        "discount_cents": 100,
        "price_cents": 400,
    }
    trail = client.get(f"/staff/admin/registrations/{registration.id}").get_data(as_text=True)
    assert "at the Community tier with code PARTNER (-$1.00), $4.00" in trail


def test_staff_register_someone_with_a_full_code_books_them_free_with_no_desk_payment(client, db):
    offering = workshop(price_cents=2000)
    code(db, "STAFFCOMP", value=100)
    db.session.commit()
    login(client, db)
    url = f"/staff/admin/offerings/{offering.id}/register"
    response = client.post(
        url,
        data={
            "name": "Dee Phone",
            "email": "dee@example.com",
            "price_choice": "list",
            "code": "STAFFCOMP",
            "payment": "cash",
            "csrf_token": token_from(client, url),
        },
    )
    assert response.status_code == 302
    registration = db.session.scalar(sa.select(Registration))
    assert (registration.status, registration.price_cents) == (RegistrationStatus.CONFIRMED, 0)
    assert count(Payment) == 0


# --- 3. A waitlist offer is for a general seat ---


def community_workshop(db, capacity: int, community_seats: int = 1):
    """$15, with community seats at $5 kept until 24 h before its start (7 days away)."""
    offering = workshop(
        price_cents=1500,
        capacity=capacity,
        days=7,
        community_seats=community_seats,
        community_price_cents=500,
    )
    offering.community_release_hours = 24
    db.session.commit()
    return offering, offering.sessions[0].seat_pool


def entries(pool) -> list[tuple[str, WaitlistStatus]]:
    query = sa.select(WaitlistEntry).where(WaitlistEntry.seat_pool_id == pool.id).order_by(WaitlistEntry.id)
    return [(e.email, e.status) for e in db.session.scalars(query)]


def test_a_freed_community_seat_is_not_offered_to_the_waitlist_a_general_one_is(db):
    offering, pool = community_workshop(db, capacity=3)
    now = utcnow()
    general = [services.register(offering, None, person(f"g{n}@example.com"), now=now) for n in (1, 2)]
    for result in general:
        confirm(result.registration, now)
    db.session.commit()

    # Only the community seat is left: someone who wants a general seat may wait for one.
    assert services.join_waitlist(offering, None, person("w1@example.com"), now=now).outcome == (
        WaitlistOutcome.JOINED
    )
    kept = services.register(
        offering, None, person("c1@example.com"), now=now, price_choice=PriceChoice(community=True)
    )
    assert kept.outcome == Outcome.HELD and kept.registration.community_seat

    # The community seat comes back: still kept for the community, not offered to w1.
    services.cancel_registration(kept.registration.id, now=now)
    db.session.refresh(pool)
    assert pool.seats_taken == 2
    assert entries(pool) == [("w1@example.com", WaitlistStatus.WAITING)]

    # A general seat comes back: offered to w1.
    services.cancel_registration(general[0].registration.id, now=now)
    db.session.refresh(pool)
    assert entries(pool) == [("w1@example.com", WaitlistStatus.OFFERED)]
    assert pool.seats_taken == 2  # g2 and the offer; the community seat still kept
    w1 = db.session.scalar(sa.select(WaitlistEntry))
    assert outbox_kinds(waitlist_entry_id=w1.id) == [EmailKind.WAITLIST_JOINED, EmailKind.WAITLIST_OFFER]


def test_claiming_at_the_community_price_passes_the_offered_general_seat_to_the_next(db):
    offering, pool = community_workshop(db, capacity=3)
    now = utcnow()
    general = [services.register(offering, None, person(f"g{n}@example.com"), now=now) for n in (1, 2)]
    for result in general:
        confirm(result.registration, now)
    db.session.commit()
    w1 = services.join_waitlist(offering, None, person("w1@example.com"), now=now).entry
    w2 = services.join_waitlist(offering, None, person("w2@example.com"), now=now).entry
    services.cancel_registration(general[0].registration.id, now=now)
    db.session.refresh(w1)
    assert w1.status == WaitlistStatus.OFFERED

    registration = services.claim_offer(w1.id, now=now, price_choice=PriceChoice(community=True))

    assert registration.community_seat and registration.price_cents == 500
    db.session.refresh(w2)
    db.session.refresh(pool)
    assert w2.status == WaitlistStatus.OFFERED  # the general seat w1's offer held
    assert pool.seats_taken == pool.capacity == 3  # g2, w1 (community), w2's offer: never more
    # No community seat is left: w2 can't claim one.
    with pytest.raises(RegistrationError, match="community seats are all taken") as refused:
        services.claim_offer(w2.id, now=now, price_choice=PriceChoice(community=True))
    assert refused.value.field == "price_choice"
    db.session.refresh(w2)
    assert w2.status == WaitlistStatus.OFFERED
    assert services.claim_offer(w2.id, now=now).price_cents == 1500


def test_a_community_seat_unclaimed_at_its_release_time_is_offered_by_the_sweep(db):
    offering, pool = community_workshop(db, capacity=2)
    now = utcnow()
    first = services.register(offering, None, person("g1@example.com"), now=now).registration
    confirm(first, now)
    db.session.commit()
    entry = services.join_waitlist(offering, None, person("w1@example.com"), now=now).entry
    release = offering.sessions[0].starts_at - timedelta(hours=24)

    seats.sweep_lapsed(release - timedelta(minutes=1))
    db.session.refresh(entry)
    assert entry.status == WaitlistStatus.WAITING  # still kept for the community

    seats.sweep_lapsed(release + timedelta(minutes=1))
    db.session.refresh(entry)
    db.session.refresh(pool)
    assert entry.status == WaitlistStatus.OFFERED
    assert pool.seats_taken == pool.capacity == 2
    # Nothing left to do: the next sweep touches no pool.
    assert seats.sweep_lapsed(release + timedelta(minutes=2)) == 0


def test_raising_capacity_offers_general_seats_only(db):
    offering, pool = community_workshop(db, capacity=2)
    now = utcnow()
    for n in (1,):
        confirm(services.register(offering, None, person(f"g{n}@example.com"), now=now).registration, now)
    db.session.commit()
    waiting = [
        services.join_waitlist(offering, None, person(f"w{n}@example.com"), now=now).entry for n in (1, 2)
    ]

    services.change_capacity(pool.id, 3, now=now)

    for entry in waiting:
        db.session.refresh(entry)
    assert [e.status for e in waiting] == [WaitlistStatus.OFFERED, WaitlistStatus.WAITING]
    db.session.refresh(pool)
    assert pool.seats_taken == 2  # g1 and w1's offer; one seat still kept for the community


# --- 4. The offering page is true about community seats ---


def test_taking_the_last_community_seat_removes_its_row_from_the_cached_page(client, db, app):
    listening(app)
    offering, _pool = community_workshop(db, capacity=5)
    url = f"/offerings/{offering.slug}"

    first = client.get(url).get_data(as_text=True)
    assert 'id="price-community"' in first and "1 seat kept for anyone who needs it" in first
    with app.app_context():
        hits_before = page_cache().hits
        for _ in range(5):
            if client.get(url).get_data(as_text=True) == first and page_cache().hits > hits_before:
                break
        assert page_cache().hits > hits_before  # it was served from the cache

    services.register(offering, None, person("c1@example.com"), price_choice=PriceChoice(community=True))

    after = client.get(url).get_data(as_text=True)
    assert 'id="price-community"' not in after and "Community seat" not in after
    assert "$15, paid by card on the next page" in after  # no choice left: the list price


def test_a_class_page_shows_the_community_row_for_the_dates_that_keep_one(client, db):
    location = make_location()
    offering = make_offering(
        location,
        OfferingKind.CLASS,
        price_cents=1500,
        capacity=4,
        community_seats=1,
        community_price_cents=500,
    )
    taken_date = make_session(offering, upcoming_day(5), time(18, 0))
    open_date = make_session(offering, upcoming_day(12), time(18, 0))
    db.session.commit()
    services.register(
        offering, taken_date.id, person("c1@example.com"), price_choice=PriceChoice(community=True)
    )

    page = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    assert 'id="price-community"' in page  # no date chosen: some date keeps one
    # public.js hides the row for a date without one.
    assert re.search(rf'value="{taken_date.id}"\s+data-community-left="0"', page)
    assert re.search(rf'value="{open_date.id}"\s+data-community-left="1"', page)
    chosen_taken = client.get(f"/offerings/{offering.slug}?session={taken_date.id}").get_data(as_text=True)
    assert 'id="price-community"' not in chosen_taken
    chosen_open = client.get(f"/offerings/{offering.slug}?session={open_date.id}").get_data(as_text=True)
    assert 'id="price-community"' in chosen_open

    # Chosen anyway (an old page): a clear answer beside the price, nothing taken.
    form = client.get(f"/offerings/{offering.slug}?session={taken_date.id}").get_data(as_text=True)
    response = client.post(
        f"/offerings/{offering.slug}/register",
        data={
            "csrf_token": csrf_token(form),
            "session_id": str(taken_date.id),
            "price_choice": "community",
            "name": "Ana",
            "email": "ana@example.com",
        },
    )
    assert response.status_code == 409
    assert "The community seats are all taken. Please choose another price." in response.get_data(
        as_text=True
    )


def test_the_claim_page_offers_a_community_seat_only_while_one_is_kept(client, db):
    offering, pool = community_workshop(db, capacity=2)
    now = utcnow()
    confirm(services.register(offering, None, person("g1@example.com"), now=now).registration, now)
    db.session.commit()
    w1 = services.join_waitlist(offering, None, person("w1@example.com"), now=now).entry
    services.change_capacity(pool.id, 3, now=now)
    db.session.refresh(w1)
    assert w1.status == WaitlistStatus.OFFERED

    assert 'id="price-community"' in client.get(waitlist_path(w1)).get_data(as_text=True)
    services.register(
        offering, None, person("c1@example.com"), now=now, price_choice=PriceChoice(community=True)
    )
    assert 'id="price-community"' not in client.get(waitlist_path(w1)).get_data(as_text=True)


def test_with_only_community_seats_left_the_form_offers_the_waitlist_for_a_general_seat(client, db):
    offering, pool = community_workshop(db, capacity=2)
    confirm(services.register(offering, None, person("g1@example.com")).registration, utcnow())
    db.session.commit()
    url = f"/offerings/{offering.slug}"
    answers = {"name": "Ana", "email": "ana@example.com", "price_choice": "list"}

    refused = client.post(
        url + "/register", data={"csrf_token": csrf_token(client.get(url).get_data(as_text=True)), **answers}
    )

    html = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert 'Choose "Community seat" to take one.' in unescape(html)
    assert f'formaction="{url}/waitlist"' in html  # or wait for a general seat
    joined = client.post(url + "/waitlist", data={"csrf_token": csrf_token(html), **answers})
    assert joined.status_code == 302 and "/waitlist/" in joined.headers["Location"]
    assert entries(pool) == [("ana@example.com", WaitlistStatus.WAITING)]
    db.session.refresh(pool)
    assert pool.seats_taken == 1  # the community seat is still kept, not taken by the waitlist


def test_a_code_sent_with_a_claim_of_a_free_seat_is_ignored_not_used_up(db):
    """A free offering's claim page shows no code field, and the claim form 'ignores' price and
    code for a free offering; a code posted anyway (an old tab, a crafted form) must not spend
    one of the code's limited uses on a seat that costs nothing."""
    offering = workshop(price_cents=0, capacity=1)
    code(db, "PARTNER", value=20, max_uses=1)
    db.session.commit()
    entry = offered_seat(db, offering)

    registration = services.claim_offer(entry.id, price_choice=PriceChoice(code="PARTNER"))

    assert (registration.status, registration.price_cents) == (RegistrationStatus.CONFIRMED, 0)
    assert registration.promo_code_id is None
    assert count(PromoRedemption) == 0  # the partner's one use is still there for a paid seat
