"""Sliding-scale tier names in the member's language: staff write them beside the offering's own
translation (Admin, the offering, Translations), and members reading Spanish or Somali see them
on the registration page, in the confirmation email and on the manage page; a tier without a
translation shows its English name, marked lang="en", with a short note."""

from __future__ import annotations

from html import unescape

import sqlalchemy as sa

from events.models import (
    AuditEntry,
    OfferingKind,
    OutboxEmail,
    PriceTier,
    PriceTierTranslation,
    RegistrationStatus,
)
from events.notifications.outbox import EmailKind
from events.pricing import PriceChoice
from events.registration import links
from events.registration.services import Person, register
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.integration.test_bookings import plain
from tests.integration.test_staff_admin import login, token_from

UNTRANSLATED_NOTE = "Some price names are not translated yet, so they are in English."
# The same note as a Spanish reader gets it (the catalogue's words).
UNTRANSLATED_NOTE_ES = "Algunos nombres de precios todavía no están traducidos, así que aparecen en inglés."


def tiered_class(db):
    offering = make_offering(make_location(), OfferingKind.WORKSHOP, title="Back Basics", price_cents=1500)
    make_session(offering, upcoming_day(5))
    offering.price_tiers = [
        PriceTier(name="Supported", description="helps fund community seats", price_cents=2500, position=0),
        PriceTier(name="Standard", price_cents=1500, position=1),
        PriceTier(name="Community", description="no questions asked", price_cents=0, position=2),
    ]
    db.session.commit()
    return offering, {t.name: t for t in offering.price_tiers}


def test_staff_translate_tier_names_and_members_see_them_on_the_page_email_and_manage_page(client, db, app):
    login(client, db)
    offering, tiers = tiered_class(db)
    page = f"/staff/admin/offerings/{offering.id}"
    admin_page = unescape(client.get(page).get_data(as_text=True))
    assert "Spanish (Español): not translated yet · tiers: 0 of 3 translated" in admin_page
    assert "Tier “Community”: name" in admin_page

    supported, community = tiers["Supported"].id, tiers["Community"].id
    saved = client.post(
        f"/staff/admin/offerings/{offering.id}/translations/es",
        data={
            "csrf_token": token_from(client, page),
            "t-es-title": "Espalda: lo básico",
            f"t-es-tier_{supported}_name": "Solidario",
            f"t-es-tier_{supported}_description": "ayuda a pagar los lugares comunitarios",
            f"t-es-tier_{community}_name": "Comunitario",
            # Standard left empty: it stays in English
        },
    )
    assert saved.status_code == 302
    rows = db.session.scalars(sa.select(PriceTierTranslation).order_by(PriceTierTranslation.id)).all()
    assert [(r.price_tier_id, r.language, r.name) for r in rows] == [
        (supported, "es", "Solidario"),
        (community, "es", "Comunitario"),
    ]
    audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "offering.translation_saved"))
    assert "tier Supported" in audit.details["changed"] and "tier Standard" not in audit.details["changed"]
    assert "tiers: 2 of 3 translated" in unescape(client.get(page).get_data(as_text=True))

    member = app.test_client()
    member.set_cookie("lang", "es")
    public = unescape(member.get(f"/offerings/{offering.slug}").get_data(as_text=True))
    assert "Solidario" in public and "ayuda a pagar los lugares comunitarios" in public
    assert "Comunitario" in public and "no questions asked" in public  # no Spanish description: English
    assert '<span class="choice-text" lang="en"><span class="choice-day">Standard' in public
    assert UNTRANSLATED_NOTE_ES in public
    english = unescape(app.test_client().get(f"/offerings/{offering.slug}").get_data(as_text=True))
    assert "Supported" in english and "Solidario" not in english and UNTRANSLATED_NOTE not in english

    # A free tier confirms at once: its confirmation email and manage page name it in Spanish.
    result = register(
        offering, None, Person("Ana Reyes", "ana@example.com", "", "es"), price_choice=PriceChoice(community)
    )
    assert result.registration.status is RegistrationStatus.CONFIRMED
    email = db.session.scalar(
        sa.select(OutboxEmail).where(
            OutboxEmail.registration_id == result.registration.id,
            OutboxEmail.kind == EmailKind.REGISTRATION_CONFIRMED,
        )
    )
    text = plain(email)
    assert "Comunitario" in text and "Community" not in text
    manage = member.get(f"/manage/{links.sign(result.registration.token, links.MANAGE_SALT)}")
    assert "Comunitario" in manage.get_data(as_text=True)

    # An empty name removes that tier's translation: English again.
    client.post(
        f"/staff/admin/offerings/{offering.id}/translations/es",
        data={"csrf_token": token_from(client, page), "t-es-title": "Espalda: lo básico"},
    )
    remaining = db.session.scalars(sa.select(PriceTierTranslation.name)).all()
    assert remaining == []
    public = unescape(member.get(f"/offerings/{offering.slug}").get_data(as_text=True))
    assert "Solidario" not in public and "Supported" in public


def test_a_tier_name_too_long_is_a_form_error_and_saves_nothing(client, db):
    login(client, db)
    offering, tiers = tiered_class(db)
    page = f"/staff/admin/offerings/{offering.id}"
    refused = client.post(
        f"/staff/admin/offerings/{offering.id}/translations/so",
        data={
            "csrf_token": token_from(client, page),
            "t-so-title": "Dhabarka",
            f"t-so-tier_{tiers['Standard'].id}_name": "x" * 81,
        },
    )
    assert refused.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PriceTierTranslation)) == 0


def test_the_api_gives_tier_names_in_the_language_asked_for_and_says_which(client, db):
    from tests.integration.test_api_openapi import assert_valid

    offering, tiers = tiered_class(db)
    db.session.add_all(
        [
            PriceTierTranslation(
                price_tier_id=tiers["Supported"].id,
                language="es",
                name="Solidario",
                description="ayuda a pagar los lugares comunitarios",
            ),
            PriceTierTranslation(price_tier_id=tiers["Community"].id, language="es", name="Comunitario"),
        ]
    )
    db.session.commit()
    spec = client.get("/api/v1/openapi.json").get_json()

    def tier_names(path: str = "/api/v1/sessions", **asked):
        payload = client.get(path, **asked).get_json()
        item = payload["data"][0] if path == "/api/v1/sessions" else payload["data"]
        shown = [
            (t["name"], t["description"], t.get("name_language")) for t in item["offering"]["price_tiers"]
        ]
        assert_valid(
            spec, "/sessions" if path == "/api/v1/sessions" else "/sessions/{session_id}", "200", payload
        )
        return shown

    english = [
        ("Supported", "helps fund community seats", "en"),
        ("Standard", "", "en"),
        ("Community", "no questions asked", "en"),
    ]
    spanish = [
        ("Solidario", "ayuda a pagar los lugares comunitarios", "es"),
        ("Standard", "", "en"),  # not translated: the English, and the API says so
        ("Comunitario", "no questions asked", "es"),  # no description written: the English one
    ]
    assert tier_names(query_string={"lang": "es"}) == spanish
    assert tier_names() == english
    assert tier_names(headers={"Accept-Language": "es"}) == spanish
    detail = f"/api/v1/sessions/{offering.sessions[0].id}"
    assert tier_names(detail, query_string={"lang": "es"}) == spanish
    assert tier_names(detail) == english
