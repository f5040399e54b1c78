"""Admin of prices: an offering's tiers and community seats, promo codes (list, create, edit,
deactivate), audited, admin only, with bad input refused as a form error."""

from __future__ import annotations

import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from events.models import AuditEntry, PriceTier, PromoCode, PromoKind, Role
from tests.factories import make_clinic, workshop
from tests.integration.test_staff_admin import login, token_from


def test_tiers_added_edited_and_removed_on_the_offering_page(client, db):
    make_clinic()
    offering = workshop(price_cents=1500)
    db.session.commit()
    login(client, db)
    page = f"/staff/admin/offerings/{offering.id}"

    token = token_from(client, page)
    for name, description, price, position in (
        ("Supported", "helps fund community seats", "25", "0"),
        ("Standard", "", "15", "1"),
        ("Community", "no questions asked", "5", "2"),
    ):
        response = client.post(
            f"{page}/tiers",
            data={
                "csrf_token": token,
                "tier-new-name": name,
                "tier-new-description": description,
                "tier-new-price": price,
                "tier-new-position": position,
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)
    tiers = db.session.scalars(sa.select(PriceTier).order_by(PriceTier.position)).all()
    assert [(t.name, t.price_cents) for t in tiers] == [
        ("Supported", 2500),
        ("Standard", 1500),
        ("Community", 500),
    ]
    assert "helps fund community seats" in client.get(page).get_data(as_text=True)

    # Bad input: a form error, nothing added.
    response = client.post(
        f"{page}/tiers",
        data={"csrf_token": token, "tier-new-name": "X\x00", "tier-new-price": "1e400"},
    )
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PriceTier)) == 3

    edit = f"/staff/admin/tiers/{tiers[2].id}/edit"
    response = client.post(
        edit,
        data={"csrf_token": token_from(client, edit), "name": "Community", "price": "4", "position": "2"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(PriceTier, tiers[2].id).price_cents == 400

    response = client.post(f"/staff/admin/tiers/{tiers[0].id}/remove", data={"csrf_token": token})
    assert response.status_code == 302
    assert db.session.get(PriceTier, tiers[0].id) is None
    actions = db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("price_tier.added") == 3
    assert "price_tier.updated" in actions and "price_tier.removed" in actions


def test_community_seats_set_on_the_offering_form(client, db):
    make_clinic()
    offering = workshop(price_cents=1500, capacity=10)
    db.session.commit()
    login(client, db)
    edit = f"/staff/admin/offerings/{offering.id}/edit"
    html = client.get(edit).get_data(as_text=True)
    assert "Community seats" in html
    base = {
        "csrf_token": token_from(client, edit),
        "kind": "workshop",
        "title": offering.title,
        "topic": "Posture",
        "location_id": str(offering.location_id),
        "instructor_id": "",
        "consent_document_id": "",
        "price": "15",
        "capacity": "10",
        "is_published": "y",
    }
    too_many = client.post(edit, data={**base, "community_seats": "11"})
    assert too_many.status_code == 400 and "more than the capacity" in too_many.get_data(as_text=True)
    saved = client.post(
        edit, data={**base, "community_seats": "3", "community_price": "0", "community_release_hours": "48"}
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    db.session.expire_all()
    assert (offering.community_seats, offering.community_price_cents, offering.community_release_hours) == (
        3,
        0,
        48,
    )


def test_promo_codes_created_edited_deactivated_and_audited(client, db):
    make_clinic()
    offering = workshop(price_cents=1500)
    db.session.commit()
    login(client, db)

    new = "/staff/admin/promo-codes/new"
    form = MultiDict(
        [
            ("csrf_token", token_from(client, new)),
            ("code", "northloop-well"),
            ("kind", "percent_off"),
            ("percent", "20"),
            ("offering_kinds", "workshop"),
            ("offering_kinds", "class"),
            ("offering_ids", str(offering.id)),
            ("valid_from", "2026-01-01"),
            ("valid_until", "2030-12-31"),
            ("max_uses", "50"),
            ("max_uses_per_email", "2"),
            ("partner_tag", "north-loop-employers"),
            ("is_active", "y"),
        ]
    )
    response = client.post(new, data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    code = db.session.scalar(sa.select(PromoCode))
    assert (code.code, code.code_normalized, code.kind, code.value) == (
        "NORTHLOOP-WELL",
        "NORTHLOOP-WELL",
        PromoKind.PERCENT_OFF,
        20,
    )
    assert code.offering_kinds == "class,workshop" and [o.id for o in code.offerings] == [offering.id]
    assert (code.max_uses, code.max_uses_per_email, code.partner_tag) == (50, 2, "north-loop-employers")
    listing = client.get("/staff/admin/promo-codes").get_data(as_text=True)
    assert "NORTHLOOP-WELL" in listing and "20% off" in listing and "0 of 50" in listing

    # The same code again (any case), a percent over 100, hostile text: form errors.
    for bad in (
        {"code": "NorthLoop-Well", "kind": "percent_off", "percent": "10"},
        {"code": "OTHER", "kind": "percent_off", "percent": "101"},
        {"code": "BAD\x00", "kind": "percent_off", "percent": "10"},
        {"code": "X" * 100_000, "kind": "percent_off", "percent": "10"},
        {"code": "AMT", "kind": "amount_off", "amount": "99999999999999999999"},
        {"code": "AMT", "kind": "amount_off"},
    ):
        response = client.post(new, data={"csrf_token": token_from(client, new), **bad})
        assert response.status_code == 400, bad
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PromoCode)) == 1

    edit = f"/staff/admin/promo-codes/{code.id}/edit"
    html = client.get(edit).get_data(as_text=True)
    assert 'value="20"' in html and "2030-12-31" in html
    response = client.post(
        edit,
        data={
            "csrf_token": token_from(client, edit),
            "code": "NORTHLOOP-WELL",
            "kind": "amount_off",
            "amount": "3",
            "is_active": "y",
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert (code.kind, code.value, code.offering_kinds, code.offerings) == (PromoKind.AMOUNT_OFF, 300, "", [])

    response = client.post(
        f"/staff/admin/promo-codes/{code.id}/active", data={"csrf_token": token_from(client, edit)}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert code.is_active is False
    actions = db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions[-3:] == ["promo_code.created", "promo_code.updated", "promo_code.deactivated"]


def test_instructors_may_not_see_the_price_pages(client, db):
    make_clinic()
    offering = workshop(price_cents=1500)
    db.session.commit()
    login(client, db, role=Role.INSTRUCTOR)
    assert client.get("/staff/admin/promo-codes").status_code == 403
    assert client.get("/staff/admin/promo-codes/new").status_code == 403
    assert client.post(f"/staff/admin/offerings/{offering.id}/tiers", data={}).status_code in (400, 403)


def test_the_api_lists_an_offerings_tiers_as_its_openapi_document_says(client, db):
    from tests.integration.test_api_openapi import assert_valid

    make_clinic()
    tiered = workshop(price_cents=1500, community_seats=2, community_price_cents=0)
    tiered.price_tiers = [
        PriceTier(name="Supported", description="helps fund community seats", price_cents=2500, position=0),
        PriceTier(name="Standard", price_cents=1500, position=1),
        PriceTier(name="Community", description="no questions asked", price_cents=500, position=2),
    ]
    plain = workshop(price_cents=900)
    db.session.commit()
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "PriceTier" in spec["components"]["schemas"]

    payload = client.get("/api/v1/sessions").get_json()

    assert_valid(spec, "/sessions", "200", payload)
    by_slug = {item["offering"]["slug"]: item["offering"] for item in payload["data"]}
    assert by_slug[tiered.slug]["price_tiers"] == [
        {
            "name": "Supported",
            "description": "helps fund community seats",
            "name_language": "en",
            "price_cents": 2500,
        },
        {"name": "Standard", "description": "", "name_language": "en", "price_cents": 1500},
        {"name": "Community", "description": "no questions asked", "name_language": "en", "price_cents": 500},
    ]
    assert (by_slug[tiered.slug]["community_seats"], by_slug[tiered.slug]["community_price_cents"]) == (2, 0)
    assert by_slug[plain.slug]["price_tiers"] == []
    detail = client.get(f"/api/v1/sessions/{tiered.sessions[0].id}").get_json()
    assert [t["name"] for t in detail["data"]["offering"]["price_tiers"]] == [
        "Supported",
        "Standard",
        "Community",
    ]


def test_a_tier_added_or_removed_shows_at_once_on_the_cached_public_page(client, db):
    from events.staff import pricing as price_admin

    make_clinic()
    offering = workshop(price_cents=1500)
    admin = login(client, db)
    url = f"/offerings/{offering.slug}"
    assert "Pays it forward" not in client.get(url).get_data(as_text=True)
    assert "Pays it forward" not in client.get(url).get_data(as_text=True)  # (now from the cache)

    tier = price_admin.add_tier(
        offering, price_admin.TierData("Supported", "Pays it forward", 2500, None), admin
    )
    assert "Pays it forward" in client.get(url).get_data(as_text=True)

    price_admin.remove_tier(tier, admin)
    assert "Pays it forward" not in client.get(url).get_data(as_text=True)
