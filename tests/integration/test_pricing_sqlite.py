"""The demo's sliding scale and partner code on the embedded SQLite default: the same price
function and the same locked path (SQLite serialises writers with BEGIN IMMEDIATE)."""

from __future__ import annotations

import sqlalchemy as sa

from events.extensions import db
from events.models import Offering, PromoRedemption, Registration, RegistrationStatus
from events.pricing import PriceChoice
from events.registration import services
from events.registration.services import Outcome, Person
from tests.integration.test_sqlite import seeded, sqlite_app  # noqa: F401 (the fixtures)


def test_the_demo_tiers_code_and_community_seats_price_a_registration_on_sqlite(sqlite_app, seeded):  # noqa: F811
    with sqlite_app.test_request_context():
        offering = db.session.scalar(sa.select(Offering).where(Offering.slug == "lift-smart-body-mechanics"))
        tiers = {t.name: t for t in offering.price_tiers}
        assert [(t.name, t.price_cents) for t in offering.price_tiers] == [
            ("Supported", 3500),
            ("Standard", 2500),
            ("Community", 1000),
        ]
        assert (offering.community_seats, offering.community_price_cents) == (2, 0)

        held = services.register(
            offering,
            None,
            Person("Lee Demo", "lee@example.com"),
            price_choice=PriceChoice(tier_id=tiers["Community"].id, code="northloop-well"),
        )
        assert held.outcome == Outcome.HELD
        assert (held.registration.price_cents, held.registration.discount_cents) == (800, 200)  # $10 - 20%
        community = services.register(
            offering, None, Person("Kim Demo", "kim@example.com"), price_choice=PriceChoice(community=True)
        )
        assert community.outcome == Outcome.CONFIRMED and community.registration.price_cents == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PromoRedemption)) == 1

        page = sqlite_app.test_client().get(f"/offerings/{offering.slug}").get_data(as_text=True)
        assert "Supported" in page and "Community seat" in page and "Have a code?" in page

        # Leave the module's database as the other tests expect it.
        for registration in (held.registration, community.registration):
            services.cancel_registration(registration.id)
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).where(Registration.status == RegistrationStatus.CANCELLED)
            )
            >= 2
        )
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(PromoRedemption)
                .where(PromoRedemption.released_at.is_(None))
            )
            == 0
        )
        db.session.remove()


def test_community_seats_on_sqlite_the_page_row_goes_when_taken_and_the_sweep_reads_release(
    sqlite_app,  # noqa: F811
    seeded,  # noqa: F811
):
    from events.models import utcnow
    from events.registration import seats

    with sqlite_app.test_request_context():
        offering = db.session.scalar(sa.select(Offering).where(Offering.slug == "lift-smart-body-mechanics"))
        taken = [
            services.register(
                offering, None, Person(f"C{n}", f"c{n}@example.com"), price_choice=PriceChoice(community=True)
            ).registration
            for n in range(offering.community_seats)
        ]
        page = sqlite_app.test_client().get(f"/offerings/{offering.slug}").get_data(as_text=True)
        assert 'id="price-community"' not in page and "Supported" in page
        # The sweep's query for released community seats runs on SQLite (nothing waits here).
        assert seats.pools_with_released_community_seats(utcnow()) == []

        for registration in taken:  # (leave the module's database as the other tests expect it)
            services.cancel_registration(registration.id)
        page = sqlite_app.test_client().get(f"/offerings/{offering.slug}").get_data(as_text=True)
        assert 'id="price-community"' in page
        db.session.remove()
