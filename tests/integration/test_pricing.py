"""The one price function (events/pricing.py) and registering with a tier, a code or a
community seat, on PostgreSQL. Every expected amount is worked out by hand in the test."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from events import pricing
from events.models import (
    OfferingKind,
    OutboxEmail,
    PassProduct,
    Payment,
    PriceTier,
    PromoCode,
    PromoKind,
    PromoRedemption,
    Registration,
    RegistrationStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.pricing import PriceChoice, PricingError
from events.registration import services
from events.registration.services import Outcome, Person, RegistrationError
from tests.factories import make_location, make_offering, make_session, upcoming_day, workshop
from tests.helpers import csrf_token, outbox_kinds


def tiered(db, price_cents=1500, **kw):
    """A workshop with Supported $25, Standard $15, Community $5."""
    offering = workshop(price_cents=price_cents, **kw)
    offering.price_tiers = [
        PriceTier(name="Supported", description="helps fund community seats", price_cents=2500, position=0),
        PriceTier(name="Standard", price_cents=1500, position=1),
        PriceTier(name="Community", description="no questions asked", price_cents=500, position=2),
    ]
    db.session.flush()
    return offering


def tier(offering, name) -> PriceTier:
    return next(t for t in offering.price_tiers if t.name == name)


def code(db, text="PARTNER", kind=PromoKind.PERCENT_OFF, value=20, **kw) -> PromoCode:
    promo = PromoCode(code=text, code_normalized=pricing.normalize_code(text), kind=kind, value=value, **kw)
    db.session.add(promo)
    db.session.flush()
    return promo


# --- quote(): hand-built cases ---


def test_tier_then_percent_code_community_five_dollars_less_twenty_percent_is_four(db):
    offering = tiered(db)
    code(db, "PARTNER", value=20)
    now = utcnow()

    q = pricing.quote(offering, tier_id=tier(offering, "Community").id, code="partner", now=now)

    # $5.00 - 20% = $5.00 - $1.00 = $4.00
    assert (q.list_price_cents, q.base_cents, q.discount_cents, q.total_cents) == (1500, 500, 100, 400)
    assert q.tier.name == "Community" and q.code.code == "PARTNER"
    assert [(line.label, line.amount_cents) for line in q.lines] == [
        ("Community", 500),
        ("Code PARTNER", -100),
        ("Total", 400),
    ]


def test_no_choice_is_the_list_price(db):
    offering = tiered(db)
    q = pricing.quote(offering, now=utcnow())
    assert (q.base_cents, q.discount_cents, q.total_cents, q.tier) == (1500, 0, 1500, None)


@pytest.mark.parametrize(
    ("base", "percent", "expected_off"),
    [
        (499, 20, 100),  # 99.8 -> 100
        (10, 15, 2),  # 1.5 -> 2 (half up, not to even)
        (30, 15, 5),  # 4.5 -> 5 (banker's rounding would give 4)
        (9, 15, 1),  # 1.35 -> 1
        (2500, 100, 2500),  # all of it
        (1, 50, 1),  # 0.5 -> 1
    ],
)
def test_percent_rounds_half_up_to_the_cent(db, base, percent, expected_off):
    offering = workshop(price_cents=base)
    code(db, "ROUND", value=percent)
    q = pricing.quote(offering, code="ROUND", now=utcnow())
    assert q.discount_cents == expected_off
    assert q.total_cents == base - expected_off


def test_amount_off_more_than_the_price_is_zero_never_below(db):
    offering = tiered(db)
    code(db, "TENOFF", kind=PromoKind.AMOUNT_OFF, value=1000)
    q = pricing.quote(offering, tier_id=tier(offering, "Community").id, code="TENOFF", now=utcnow())
    assert (q.base_cents, q.discount_cents, q.total_cents) == (500, 500, 0)
    q = pricing.quote(offering, tier_id=tier(offering, "Supported").id, code="TENOFF", now=utcnow())
    assert (q.discount_cents, q.total_cents) == (1000, 1500)


def test_fixed_price_sets_the_price_but_never_raises_one(db):
    offering = tiered(db)
    code(db, "EIGHT", kind=PromoKind.FIXED_PRICE, value=800)
    supported = pricing.quote(offering, tier_id=tier(offering, "Supported").id, code="EIGHT", now=utcnow())
    assert (supported.discount_cents, supported.total_cents) == (1700, 800)  # 2500 -> 800
    community = pricing.quote(offering, tier_id=tier(offering, "Community").id, code="EIGHT", now=utcnow())
    assert (community.discount_cents, community.total_cents) == (0, 500)  # already under $8


def test_scope_by_kind_and_by_offering(db):
    location = make_location()
    a_class = make_offering(location, OfferingKind.CLASS, price_cents=1200)
    make_session(a_class, upcoming_day(3))
    a_workshop = workshop(price_cents=3000)
    classes_only = code(db, "CLASSES", value=50, offering_kinds="class")
    one_workshop = code(db, "THISONE", kind=PromoKind.AMOUNT_OFF, value=500)
    one_workshop.offerings = [a_workshop]
    db.session.flush()

    assert pricing.quote(a_class, code="CLASSES", now=utcnow()).total_cents == 600
    with pytest.raises(PricingError, match="can't be used for this") as refused:
        pricing.quote(a_workshop, code="CLASSES", now=utcnow())
    assert refused.value.field == "code"
    assert pricing.quote(a_workshop, code="THISONE", now=utcnow()).total_cents == 2500
    with pytest.raises(PricingError):
        pricing.quote(a_class, code="THISONE", now=utcnow())
    assert classes_only.id and one_workshop.id


def test_dates_inactive_and_unknown_codes(db):
    offering = workshop(price_cents=2000)
    now = utcnow()
    code(db, "LATER", valid_from=now + timedelta(days=1))
    code(db, "GONE", valid_until=now - timedelta(seconds=1))
    code(db, "OFF", is_active=False)
    code(db, "NOW", valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=1))

    with pytest.raises(PricingError, match="can't be used yet"):
        pricing.quote(offering, code="LATER", now=now)
    with pytest.raises(PricingError, match="expired"):
        pricing.quote(offering, code="GONE", now=now)
    for unknown in ("OFF", "NOPE", "N\u00d6W", "x" * 41, "DROP TABLE"):
        with pytest.raises(PricingError, match="don't know that code"):
            pricing.quote(offering, code=unknown, now=now)
    assert pricing.quote(offering, code=" n o w ", now=now).total_cents == 1600


def test_uses_in_all_and_per_email_count_unreleased_redemptions(db):
    offering = workshop(price_cents=2000)
    promo = code(db, "TWICE", max_uses=2, max_uses_per_email=1)
    now = utcnow()
    pricing.redeem(promo.id, "ana@example.com", 400, now, registration_id=_registration(db, offering).id)

    with pytest.raises(PricingError, match="already been used with this email"):
        pricing.quote(offering, code="TWICE", email_normalized="ana@example.com", now=now)
    assert (
        pricing.quote(offering, code="TWICE", email_normalized="bo@example.com", now=now).total_cents == 1600
    )
    second = _registration(db, offering, "bo@example.com")
    pricing.redeem(promo.id, "bo@example.com", 400, now, registration_id=second.id)
    with pytest.raises(PricingError, match="used up"):
        pricing.quote(offering, code="TWICE", email_normalized="cy@example.com", now=now)

    assert pricing.release_for_registrations([second.id], now) == 1
    assert (
        pricing.quote(offering, code="TWICE", email_normalized="cy@example.com", now=now).total_cents == 1600
    )


def _registration(db, offering, email="ana@example.com") -> Registration:
    registration = Registration(
        seat_pool_id=offering.sessions[0].seat_pool_id,
        offering_id=offering.id,
        name="X",
        email=email,
        email_normalized=email,
        status=RegistrationStatus.CONFIRMED,
        price_cents=0,
        token=services.new_token(),
    )
    db.session.add(registration)
    db.session.flush()
    return registration


def test_quote_pass_needs_a_code_for_passes(db):
    product = PassProduct(name="10 classes", credits=10, price_cents=12000, validity_days=90)
    other = PassProduct(name="5 classes", credits=5, price_cents=6500, validity_days=60)
    db.session.add_all([product, other])
    db.session.flush()
    code(db, "CLASSONLY", value=10)
    passes = code(db, "PASS25", value=25, applies_to_passes=True)
    passes.pass_products = [product]
    db.session.flush()

    q = pricing.quote_pass(product, "pass25", "ana@example.com", utcnow())
    assert (q.base_cents, q.discount_cents, q.total_cents) == (12000, 3000, 9000)
    with pytest.raises(PricingError):
        pricing.quote_pass(other, "PASS25", "ana@example.com", utcnow())
    with pytest.raises(PricingError):
        pricing.quote_pass(product, "CLASSONLY", "ana@example.com", utcnow())
    assert pricing.quote_pass(other, None, "", utcnow()).total_cents == 6500


def test_a_pass_purchase_redeems_a_pass_code_once_per_email_and_can_give_it_back(db):
    from events.models import Pass, PassStatus

    product = PassProduct(name="10 classes", credits=10, price_cents=12000, validity_days=90)
    db.session.add(product)
    db.session.flush()
    promo = code(db, "PASSONCE", value=10, applies_to_passes=True, max_uses_per_email=1)
    now = utcnow()
    q = pricing.quote_pass(product, "passonce", "ana@example.com", now)
    assert (q.discount_cents, q.total_cents) == (1200, 10800)
    bought = Pass(
        product_id=product.id,
        name="Ana",
        email="ana@example.com",
        email_normalized="ana@example.com",
        status=PassStatus.HELD,
        credits=10,
        price_cents=q.total_cents,
        validity_days=90,
        token=services.new_token(),
    )
    db.session.add(bought)
    db.session.flush()

    pricing.redeem(promo.id, "ana@example.com", q.discount_cents, now, pass_id=bought.id)

    with pytest.raises(PricingError, match="already been used with this email"):
        pricing.quote_pass(product, "PASSONCE", "ana@example.com", now)
    assert pricing.release_for_passes([bought.id], now) == 1
    assert pricing.quote_pass(product, "PASSONCE", "ana@example.com", now).total_cents == 10800


# --- registering with them ---


def person(email="ana@example.com") -> Person:
    return Person("Ana Reyes", email)


def test_register_with_a_tier_and_code_stores_how_it_was_priced(db):
    offering = tiered(db)
    promo = code(db, "PARTNER", value=20, max_uses=5)
    db.session.commit()

    result = services.register(
        offering,
        None,
        person(),
        price_choice=PriceChoice(tier_id=tier(offering, "Community").id, code="Partner"),
    )

    registration = result.registration
    assert result.outcome == Outcome.HELD
    assert (registration.price_cents, registration.discount_cents) == (400, 100)
    assert registration.price_tier_id == tier(offering, "Community").id
    assert registration.promo_code_id == promo.id
    used = db.session.scalars(sa.select(PromoRedemption)).all()
    assert [(u.registration_id, u.discount_cents, u.released_at) for u in used] == [
        (registration.id, 100, None)
    ]
    assert [(line.label, line.amount_cents) for line in pricing.registration_lines(registration)] == [
        ("Community", 500),
        ("Code PARTNER", -100),
        ("Total", 400),
    ]


def test_a_hundred_percent_code_confirms_a_paid_class_with_no_card(db):
    offering = workshop(price_cents=2000)
    code(db, "FREEDAY", value=100)
    db.session.commit()

    result = services.register(offering, None, person(), price_choice=PriceChoice(code="FREEDAY"))

    assert result.outcome == Outcome.CONFIRMED
    assert result.registration.price_cents == 0 and result.registration.discount_cents == 2000
    assert result.registration.hold_expires_at is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0
    assert outbox_kinds(registration_id=result.registration.id) == [EmailKind.REGISTRATION_CONFIRMED]


def test_a_wrong_code_changes_nothing(db):
    offering = workshop(price_cents=2000)
    code(db, "USEDUP", max_uses=0)
    db.session.commit()

    for wrong in ("NOPE", "USEDUP"):
        with pytest.raises(RegistrationError) as refused:
            services.register(offering, None, person(), price_choice=PriceChoice(code=wrong))
        assert refused.value.field == "code"
        db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PromoRedemption)) == 0
    assert offering.sessions[0].seat_pool.seats_taken == 0


def test_a_lapsed_hold_and_an_on_time_cancellation_give_the_use_back_a_late_one_keeps_it(db):
    offering = workshop(price_cents=2000, capacity=5, days=5)
    promo = code(db, "ONCE", max_uses=1)
    db.session.commit()
    now = utcnow()

    held = services.register(
        offering, None, person("a@example.com"), now=now, price_choice=PriceChoice(code="ONCE")
    )
    assert pricing.uses(promo.id) == 1
    # The hold lapses: the next registration releases it, and the use with it.
    later = now + timedelta(hours=1)
    again = services.register(
        offering, None, person("b@example.com"), now=later, price_choice=PriceChoice(code="ONCE")
    )
    db.session.refresh(held.registration)
    assert held.registration.status == RegistrationStatus.EXPIRED
    assert again.outcome == Outcome.HELD and pricing.uses(promo.id) == 1

    # Cancelled on time (days before the start): the use is given back.
    services.cancel_registration(again.registration.id, now=later)
    assert pricing.uses(promo.id) == 0

    # Confirmed, then cancelled late (after the 24 h cut-off): the use stays counted.
    third = services.register(
        offering, None, person("c@example.com"), now=later, price_choice=PriceChoice(code="ONCE")
    ).registration
    third.status = RegistrationStatus.CONFIRMED
    third.confirmed_at = later
    third.hold_expires_at = None
    db.session.commit()
    start = offering.sessions[0].starts_at
    services.cancel_registration(third.id, now=start - timedelta(hours=2))
    assert pricing.uses(promo.id) == 1


def test_a_lapsed_hold_in_another_class_no_longer_counts_before_any_sweep(db):
    first = workshop(price_cents=2000, capacity=5, days=5)
    second = workshop(price_cents=2000, capacity=5, days=5)
    promo = code(db, "ONCE", max_uses=1)
    db.session.commit()
    now = utcnow()
    services.register(first, None, person("a@example.com"), now=now, price_choice=PriceChoice(code="ONCE"))
    with pytest.raises(RegistrationError, match="used up"):
        services.register(
            second, None, person("b@example.com"), now=now, price_choice=PriceChoice(code="ONCE")
        )
    db.session.rollback()

    # The first hold runs out; nothing has swept the first class's pool yet.
    later = now + timedelta(hours=1)
    again = services.register(
        second, None, person("b@example.com"), now=later, price_choice=PriceChoice(code="ONCE")
    )
    assert again.outcome == Outcome.HELD and again.registration.promo_code_id == promo.id


def test_community_seats_kept_until_release_then_join_general_sale(db):
    offering = workshop(price_cents=1500, capacity=3, days=3, community_seats=2, community_price_cents=0)
    offering.community_release_hours = 24
    db.session.commit()
    start = offering.sessions[0].starts_at
    before = start - timedelta(hours=24, minutes=5)  # (the holds made now still live after)
    pool = offering.sessions[0].seat_pool

    # General sale may use 3 - 2 = 1 seat before the release.
    first = services.register(offering, None, person("g1@example.com"), now=before)
    assert first.outcome == Outcome.HELD and first.registration.price_cents == 1500
    with pytest.raises(RegistrationError, match="community seats") as refused:
        services.register(offering, None, person("g2@example.com"), now=before)
    assert refused.value.field == "price_choice"
    db.session.rollback()
    # A community seat at $0: confirmed without a card.
    free = services.register(
        offering, None, person("c1@example.com"), now=before, price_choice=PriceChoice(community=True)
    )
    assert free.outcome == Outcome.CONFIRMED and free.registration.community_seat
    assert free.registration.price_cents == 0
    db.session.refresh(pool)
    assert pool.seats_taken == 2

    # From the release time on, the unclaimed community seat is for anyone.
    after = start - timedelta(hours=24) + timedelta(minutes=1)
    with pytest.raises(RegistrationError, match="community seats are all taken"):
        services.register(
            offering, None, person("c2@example.com"), now=after, price_choice=PriceChoice(community=True)
        )
    db.session.rollback()
    general = services.register(offering, None, person("g2@example.com"), now=after)
    assert general.outcome == Outcome.HELD
    full = services.register(offering, None, person("g3@example.com"), now=after)
    assert full.outcome == Outcome.FULL
    db.session.refresh(pool)
    assert pool.seats_taken == pool.capacity == 3


def test_registration_form_shows_tiers_and_takes_a_code(client, db):
    offering = tiered(db)
    code(db, "PARTNER", value=20)
    db.session.commit()

    page = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    assert "Supported" in page and "helps fund community seats" in page and "Have a code?" in page
    standard = tier(offering, "Standard")
    assert f'value="tier-{standard.id}" checked' in page

    community = tier(offering, "Community")
    response = client.post(
        f"/offerings/{offering.slug}/register",
        data={
            "csrf_token": csrf_token(page),
            "name": "Ana Reyes",
            "email": "ana@example.com",
            "price_choice": f"tier-{community.id}",
            "code": " partner ",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/pay")
    registration = db.session.scalar(sa.select(Registration))
    assert registration.price_cents == 400
    pay = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "$4" in pay


@pytest.mark.parametrize(
    "hostile",
    [
        "BAD\x00CODE",
        "X" * (1024 * 1024),
        "\u202eNIAGA",
        "%ED%A0%80",
        "%FF%FE",
        "PARTNER\u200b",
        "💸💸💸",
        "' OR 1=1 --",
    ],
)
def test_hostile_codes_are_a_form_error_not_a_500(client, db, hostile):
    offering = workshop(price_cents=2000)
    code(db, "PARTNER", value=20)
    db.session.commit()

    page = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    if hostile.startswith("%"):  # bytes that are not UTF-8 (a lone surrogate, 0xFF): sent raw
        response = client.post(
            f"/offerings/{offering.slug}/register",
            data=f"csrf_token={csrf_token(page)}&name=Ana&email=ana%40example.com&code={hostile}",
            content_type="application/x-www-form-urlencoded",
        )
    else:
        response = client.post(
            f"/offerings/{offering.slug}/register",
            data={"csrf_token": csrf_token(page), "name": "Ana", "email": "ana@example.com", "code": hostile},
        )

    assert 400 <= response.status_code < 500
    body = response.get_data(as_text=True)
    assert "There is a problem" in body or response.status_code == 413
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0


def test_a_bad_price_choice_is_a_form_error(client, db):
    offering = tiered(db)
    other = tiered(db)
    db.session.commit()
    page = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    for choice in (f"tier-{other.price_tiers[0].id}", "tier-99999999999", "free", "community"):
        response = client.post(
            f"/offerings/{offering.slug}/register",
            data={
                "csrf_token": csrf_token(page),
                "name": "Ana",
                "email": "ana@example.com",
                "price_choice": choice,
            },
        )
        assert response.status_code in (400, 409), choice
        assert "Please choose one of the prices" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0


def _email_text(registration_id: int, kind: str) -> str:
    from flask import current_app

    from events.notifications.sender import render_message

    row = db_scalar_email(registration_id, kind)
    with current_app.test_request_context(base_url=current_app.config["PUBLIC_BASE_URL"]):
        message = render_message(row)
    return "\n".join(
        part.get_content()
        for part in message.walk()
        if part.get_content_type() in ("text/plain", "text/html")
    )


def db_scalar_email(registration_id: int, kind: str) -> OutboxEmail:
    from events.extensions import db as _db

    return _db.session.scalar(
        sa.select(OutboxEmail).where(OutboxEmail.registration_id == registration_id, OutboxEmail.kind == kind)
    )


def test_the_confirmation_email_manage_page_and_roster_show_how_it_was_priced(client, db):
    from events.registration import links
    from tests.integration.test_staff_admin import login

    offering = tiered(db)
    code(db, "PARTNER", kind=PromoKind.AMOUNT_OFF, value=500)
    db.session.commit()
    community = tier(offering, "Community")

    result = services.register(
        offering, None, person(), price_choice=PriceChoice(tier_id=community.id, code="PARTNER")
    )
    registration = result.registration
    assert result.outcome == Outcome.CONFIRMED  # $5 - $5 = $0: no card

    text = _email_text(registration.id, EmailKind.REGISTRATION_CONFIRMED)
    assert "Community $5, code PARTNER -$5, nothing to pay" in text

    with client.application.test_request_context():
        url = links.manage_url(registration, external=False)
    manage = client.get(url).get_data(as_text=True)
    assert "Community $5, code PARTNER -$5, nothing to pay" in manage

    login(client, db)
    staff = client.get(f"/staff/admin/registrations/{registration.id}").get_data(as_text=True)
    assert "Community tier · code PARTNER (-$5)" in staff
    roster = client.get(f"/staff/sessions/{offering.sessions[0].id}").get_data(as_text=True)
    assert "Community tier · code PARTNER (-$5)" in roster
    csv_text = client.get(f"/staff/sessions/{offering.sessions[0].id}/roster.csv").get_data(as_text=True)
    header, row = csv_text.lstrip("\ufeff").splitlines()[:2]
    assert header.split(",")[5] == "Price" and "Community tier · code PARTNER (-$5)" in row
