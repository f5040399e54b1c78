"""Consent documents in the member's language: staff publish a translation of a version (once:
it never changes after, a correction is a new version); a member reads the version in their
page's language when it has one, else the English marked lang="en" with a note; every
acceptance records the language of the text shown, and staff and the privacy export show it."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import g

from events.consent import services as consent
from events.extensions import db as _db
from events.models import (
    AuditEntry,
    ConsentAcceptance,
    ConsentMethod,
    ConsentTranslation,
    WaitlistEntry,
    WaitlistStatus,
)
from events.privacy import export
from events.registration import links
from events.registration import services as registration
from events.registration.services import Person
from tests.helpers import csrf_token
from tests.integration.test_consent import (
    V2,
    accept_url,
    clinic,  # noqa: F401 (the fixture)
    current,
    offering_page,
    post_register,
    registrations,
    shown_version,
)
from tests.integration.test_staff import sign_in

ES_TITLE = "Participación en clases de ejercicio y exoneración"
ES_BODY = "El ejercicio conlleva algún riesgo.\n\nDígale al instructor si algo le duele."


def spanish(clinic):  # noqa: F811
    """The Spanish translation of the document's current version, published by the admin."""
    return consent.publish_translation(
        clinic["document"], current(clinic["document"]).id, "es", ES_TITLE, ES_BODY, clinic["admin"]
    )


def shown_language(html: str) -> str:
    return re.search(r'name="consent_language" value="([^"]*)"', html).group(1)


def recorded(db) -> list[tuple[int, int, ConsentMethod, str]]:
    return list(
        db.session.execute(
            sa.select(
                ConsentAcceptance.registration_id,
                ConsentAcceptance.consent_version_id,
                ConsentAcceptance.method,
                ConsentAcceptance.language,
            ).order_by(ConsentAcceptance.id)
        ).tuples()
    )


def test_a_spanish_member_reads_the_spanish_text_and_the_acceptance_records_es(client, db, clinic):  # noqa: F811
    offering, first = clinic["offering"], clinic["first"]
    v1 = current(clinic["document"])
    spanish(clinic)
    client.set_cookie("lang", "es")
    html = offering_page(client, offering, first)
    assert ES_TITLE in html and "Dígale al instructor si algo le duele." in html
    assert "Tell the instructor if anything hurts." not in html
    assert shown_version(html) == v1.id and shown_language(html) == "es"
    block = html[html.index('id="consent-block"') : html.index('id="consent-text"') + 200]
    assert 'lang="en"' not in block  # the text is in the page's language: nothing marked English
    assert f"He leído el documento de consentimiento «{ES_TITLE}»" in html or ES_TITLE in html

    done = post_register(
        client, offering, first, html, consent_version_id=str(v1.id), consent_language="es", consent="y"
    )
    assert done.status_code == 302
    (booked,) = registrations(db)
    assert booked.language == "es"
    assert recorded(db) == [(booked.id, v1.id, ConsentMethod.ONLINE, "es")]

    # Staff see the language where the acceptance is shown.
    assert sign_in(client, "admin@clinic.example").status_code == 302
    detail = client.get(f"/staff/admin/registrations/{booked.id}").get_data(as_text=True)
    assert "Accepted version 1 of" in detail and "read in Español (es)" in detail

    # And the member's own data says which text they accepted.
    (line,) = export.data_for("ana@example.com")["consent_acceptances"]
    assert line == {
        "registration_id": booked.id,
        "document": "Exercise class participation and release",
        "version": 1,
        "language": "es",
        "method": "online",
        "accepted_at": line["accepted_at"],
    }


def test_a_somali_member_without_a_translation_reads_the_english_marked_and_it_records_en(
    client,
    db,
    clinic,  # noqa: F811
):
    offering, first = clinic["offering"], clinic["first"]
    v1 = current(clinic["document"])
    spanish(clinic)  # a Spanish one exists; no Somali one
    client.set_cookie("lang", "so")
    html = offering_page(client, offering, first)
    assert "Tell the instructor if anything hurts." in html and ES_BODY.split("\n")[0] not in html
    assert shown_language(html) == "en"
    assert re.search(r'<h3 class="consent-title" id="consent-title" lang="en">Exercise class', html)
    assert re.search(r'id="consent-text" lang="en">', html)
    assert 'id="consent-in-english"' in html
    assert "Dukumeentigan weli lama turjumin" in html  # the note, in Somali

    # A form claiming a Somali text that does not exist is told to read again, nothing booked.
    forged = post_register(
        client, offering, first, html, consent_version_id=str(v1.id), consent_language="so", consent="y"
    )
    assert forged.status_code == 409 and registrations(db) == [] and recorded(db) == []
    g.pop("csrf_token", None)
    done = post_register(
        client, offering, first, html, consent_version_id=str(v1.id), consent_language="en", consent="y"
    )
    assert done.status_code == 302
    (booked,) = registrations(db)
    assert booked.language == "so"
    assert recorded(db) == [(booked.id, v1.id, ConsentMethod.ONLINE, "en")]


def test_a_translation_published_after_the_english_was_shown_records_the_english_read(
    client,
    db,
    clinic,  # noqa: F811
):
    offering, first = clinic["offering"], clinic["first"]
    v1 = current(clinic["document"])
    client.set_cookie("lang", "es")
    html = offering_page(client, offering, first)
    assert shown_language(html) == "en"
    spanish(clinic)
    done = post_register(
        client, offering, first, html, consent_version_id=str(v1.id), consent_language="en", consent="y"
    )
    assert done.status_code == 302
    (booked,) = registrations(db)
    assert recorded(db) == [(booked.id, v1.id, ConsentMethod.ONLINE, "en")]
    # The page (cached before the translation) shows the Spanish to the next person.
    assert shown_language(offering_page(client, offering, clinic["second"])) == "es"


def test_a_translation_never_changes_once_an_acceptance_used_it(client, db, clinic):  # noqa: F811
    offering, first = clinic["offering"], clinic["first"]
    v1 = current(clinic["document"])
    translation = spanish(clinic)
    booked = registration.register(
        offering,
        first.id,
        Person("Ana", "ana@example.com"),
        consent_answer=consent.ConsentAnswer(v1.id, True, "es"),
    ).registration
    assert recorded(db) == [(booked.id, v1.id, ConsentMethod.ONLINE, "es")]

    translation.body = "Otro texto."
    with pytest.raises(ValueError, match="never changes"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(translation)
    with pytest.raises(ValueError, match="never removed"):
        db.session.commit()
    db.session.rollback()
    with pytest.raises(consent.ConsentAdminError, match="already has its Español translation"):
        consent.publish_translation(clinic["document"], v1.id, "es", ES_TITLE, "Otro texto.", clinic["admin"])
    db.session.rollback()
    stored = db.session.scalar(sa.select(ConsentTranslation))
    assert (stored.id, stored.body) == (translation.id, ES_BODY)

    # The correction is a new version, translated in its turn; the old words stay as accepted.
    v2 = consent.publish_version(clinic["document"], V2, clinic["admin"])
    corrected = consent.publish_translation(
        clinic["document"], v2.id, "es", ES_TITLE, "Texto corregido.", clinic["admin"]
    )
    assert corrected.version_id == v2.id and corrected.id != translation.id
    assert db.session.get(ConsentTranslation, translation.id).body == ES_BODY


def test_the_waitlist_claim_shows_the_translation_and_records_its_language(client, db, clinic):  # noqa: F811
    offering, first = clinic["offering"], clinic["first"]
    first.seat_pool.capacity = 1
    db.session.commit()
    v1 = current(clinic["document"])
    spanish(clinic)
    taken = registration.register(
        offering,
        first.id,
        Person("Ana", "ana@example.com"),
        consent_answer=consent.ConsentAnswer(v1.id, True),
    )
    client.set_cookie("lang", "es")
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
    assert entry.status == WaitlistStatus.OFFERED and entry.language == "es"
    url = "/waitlist/" + links.sign(entry.token, links.WAITLIST_SALT)
    g.pop("csrf_token", None)
    page = client.get(url).get_data(as_text=True)
    assert "Dígale al instructor si algo le duele." in page and shown_language(page) == "es"
    claimed = client.post(
        url + "/claim",
        data={
            "csrf_token": csrf_token(page),
            "consent_version_id": str(v1.id),
            "consent_language": "es",
            "consent": "y",
        },
    )
    assert claimed.status_code == 302
    db.session.refresh(entry)
    assert entry.status == WaitlistStatus.CLAIMED
    assert (entry.registration_id, v1.id, ConsentMethod.ONLINE, "es") in recorded(db)


def test_the_check_in_phone_shows_the_booking_language_and_staff_see_which(client, db, clinic):  # noqa: F811
    offering, first = clinic["offering"], clinic["first"]
    v1 = current(clinic["document"])
    spanish(clinic)
    sofia = registration.register(
        offering, first.id, Person("Sofía Ruiz", "sofia@example.com"), source="staff"
    )
    sofia = sofia.registration
    sofia.language = "es"
    farah = registration.register(
        offering, first.id, Person("Farah Ali", "farah@example.com"), source="staff"
    )
    farah = farah.registration
    farah.language = "so"
    db.session.commit()

    assert sign_in(client, "a@clinic.example").status_code == 302
    page = client.get(accept_url(first, sofia)).get_data(as_text=True)
    assert "Dígale al instructor si algo le duele." in page and shown_language(page) == "es"
    assert f"Yo, Sofía Ruiz, he leído el documento de consentimiento «{ES_TITLE}»" in page
    assert "Staff: shown in Español (es)." in page
    done = client.post(
        accept_url(first, sofia),
        data={
            "csrf_token": csrf_token(page),
            "consent_version_id": str(v1.id),
            "consent_language": "es",
            "consent": "y",
        },
    )
    assert done.status_code == 302
    assert (sofia.id, v1.id, ConsentMethod.IN_PERSON, "es") in recorded(db)
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "consent.accepted_in_person"))
    assert entry.details["language"] == "es"
    again = client.get(accept_url(first, sofia)).get_data(as_text=True)
    assert "Staff: accepted in person on the text in Español (es)." in again
    roster = client.get(f"/staff/sessions/{first.id}").get_data(as_text=True)
    assert roster.count("Consent read in Español (es)") == 1 and roster.count("Consent needed") == 1

    g.pop("csrf_token", None)
    page = client.get(accept_url(first, farah)).get_data(as_text=True)
    assert "Tell the instructor if anything hurts." in page and shown_language(page) == "en"
    assert re.search(r'id="consent-text" lang="en">', page)
    assert "Staff: shown in English (en): this version has no Soomaali (so) translation." in page


def test_admin_publishes_a_translation_of_the_current_version_once(client, db, clinic):  # noqa: F811
    document = clinic["document"]
    v1 = current(document)
    assert sign_in(client, "admin@clinic.example").status_code == 302
    page = client.get(f"/staff/admin/consent/{document.id}").get_data(as_text=True)
    assert f'action="/staff/admin/consent/{document.id}/translations/es"' in page
    assert f'action="/staff/admin/consent/{document.id}/translations/so"' in page
    url = f"/staff/admin/consent/{document.id}/translations/es"
    token = csrf_token(page)
    empty = client.post(
        url, data={"csrf_token": token, "t-es-version_id": str(v1.id), "t-es-title": " ", "t-es-body": ""}
    )
    assert empty.status_code == 400 and db.session.scalar(sa.select(ConsentTranslation)) is None
    for language in ("en", "xx", "es\x00"):
        refused = client.post(
            f"/staff/admin/consent/{document.id}/translations/{language}",
            data={"csrf_token": token, "t-es-version_id": str(v1.id), "t-es-title": "T", "t-es-body": "B"},
        )
        assert refused.status_code == 404

    # A form opened before a newer version was published is refused: it translated other words.
    v2 = consent.publish_version(document, V2, clinic["admin"])
    stale = client.post(
        url,
        data={
            "csrf_token": token,
            "t-es-version_id": str(v1.id),
            "t-es-title": ES_TITLE,
            "t-es-body": ES_BODY,
        },
    )
    assert stale.status_code == 400 and "A newer version" in stale.get_data(as_text=True)
    assert db.session.scalar(sa.select(ConsentTranslation)) is None

    done = client.post(
        url,
        data={
            "csrf_token": token,
            "t-es-version_id": str(v2.id),
            "t-es-title": ES_TITLE,
            "t-es-body": ES_BODY,
        },
    )
    assert done.status_code == 302
    stored = db.session.scalar(sa.select(ConsentTranslation))
    assert (stored.version_id, stored.language, stored.title, stored.body) == (v2.id, "es", ES_TITLE, ES_BODY)
    entry = db.session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "consent_translation.published")
    )
    assert entry.details["language"] == "es" and entry.details["version"] == 2
    shown = client.get(f"/staff/admin/consent/{document.id}").get_data(as_text=True)
    assert "Español: translated" in shown and "Soomaali: not translated yet" in shown
    assert "Español (es) translation of version 2" in shown

    twice = client.post(
        url,
        data={
            "csrf_token": token,
            "t-es-version_id": str(v2.id),
            "t-es-title": ES_TITLE,
            "t-es-body": "Otro.",
        },
    )
    assert twice.status_code == 400 and "already has its Español translation" in twice.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsentTranslation)) == 1


def test_instructors_cannot_publish_a_translation(client, db, clinic):  # noqa: F811
    document, first = clinic["document"], clinic["first"]
    walk_in = registration.register(
        clinic["offering"], first.id, Person("Wal", "wal@example.com"), source="staff"
    ).registration
    assert sign_in(client, "a@clinic.example").status_code == 302
    token = csrf_token(client.get(accept_url(first, walk_in)).get_data(as_text=True))
    refused = client.post(
        f"/staff/admin/consent/{document.id}/translations/es",
        data={
            "csrf_token": token,
            "t-es-version_id": str(current(document).id),
            "t-es-title": "T",
            "t-es-body": "B",
        },
    )
    assert refused.status_code == 403
    assert _db.session.scalar(sa.select(ConsentTranslation)) is None
