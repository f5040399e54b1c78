"""A Spanish-speaking member books a class whose consent document has a Spanish translation, on
a 390x844 phone: the document is shown in Spanish (not marked English, no "in English" note),
the checkbox names the Spanish title, and the acceptance records the version and 'es'. axe
clean (WCAG 2.2 AA). The screenshot goes to $SCREENSHOT_DIR when it is set
(docs/screenshots/consent-register-form-es.png is the committed one)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from events.consent import services as consent
from events.demo import DEMO_CONSENT_TEXT, DEMO_CONSENT_TITLE
from events.models import ConsentAcceptance, ConsentMethod, OfferingKind, Registration, Role, User
from tests.browser.test_consent_on_a_phone import PHONE_WIDTH, assert_accessible, fits_the_phone, shot
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

pytestmark = pytest.mark.browser

ES_TITLE = "Participación en clases de ejercicio y exoneración"
ES_BODY = (
    "El ejercicio conlleva algún riesgo. Usted participa por decisión propia.\n\n"
    "Dígale al instructor si algo le duele o si tiene una lesión. No tiene que contarnos los detalles.\n\n"
    "Puede descansar o parar en cualquier momento."
)


def test_a_spanish_member_books_with_the_spanish_consent_on_a_phone(phone_page, live_server, db):
    make_clinic(name="Revival Physical Therapy")
    admin = User(email="admin@clinic.example", name="Clinic Admin", role=Role.ADMIN)
    db.session.add(admin)
    location = make_location(name="North Loop")
    offering = make_offering(location, OfferingKind.CLASS, title="Core & Hip Strength", capacity=8)
    db.session.flush()
    document = consent.create_document(DEMO_CONSENT_TITLE, DEMO_CONSENT_TEXT, admin)
    offering.consent_document_id = document.id
    session = make_session(offering, upcoming_day(3))
    db.session.commit()
    version = consent.current_version(document.id)
    consent.publish_translation(document, version.id, "es", ES_TITLE, ES_BODY, admin)

    page = phone_page
    page.context.add_cookies([{"name": "lang", "value": "es", "url": live_server.url}])
    page.goto(f"{live_server.url}/offerings/{offering.slug}?session={session.id}")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    region = page.get_by_role("region", name=ES_TITLE)
    expect(region).to_be_visible()
    expect(region).to_contain_text("No tiene que contarnos los detalles.")
    expect(region).not_to_have_attribute("lang", "en")
    expect(page.locator("#consent-in-english")).to_have_count(0)
    box = region.bounding_box()
    assert box is not None and box["width"] >= PHONE_WIDTH - 80
    page.get_by_label("Su nombre").fill("Rosa Jiménez")
    page.get_by_label("Correo electrónico").fill("rosa@example.com")
    checkbox = page.get_by_label(f"He leído el documento de consentimiento «{ES_TITLE}» y lo acepto.")
    checkbox.check()
    fits_the_phone(page)
    region.scroll_into_view_if_needed()
    shot(page, "consent-register-form-es.png")
    assert_accessible(page)

    page.get_by_role("button", name="Inscribirse (gratis)").click()
    expect(page.get_by_text("¡Su inscripción está confirmada!")).to_be_visible()
    db.session.expire_all()
    rosa = db.session.scalar(sa.select(Registration).where(Registration.email == "rosa@example.com"))
    accepted = db.session.scalar(
        sa.select(ConsentAcceptance).where(ConsentAcceptance.registration_id == rosa.id)
    )
    assert (accepted.consent_version_id, accepted.language, accepted.method) == (
        version.id,
        "es",
        ConsentMethod.ONLINE,
    )
