"""Consent on a 390x844 phone (issue 15, item 10): the booking form shows the document's text
in a region of its own and a big checkbox; booking without the tick says so beside it; with it,
booked and the version recorded. At check-in the roster flags someone booked by staff, and they
read and accept on the instructor's phone. axe clean (WCAG 2.2 AA) at every step. Screenshots
go to $SCREENSHOT_DIR when it is set (docs/screenshots/consent-*.png are the committed ones)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.consent import services as consent
from events.demo import DEMO_CONSENT_TEXT, DEMO_CONSENT_TITLE
from events.models import ConsentAcceptance, ConsentMethod, OfferingKind, Registration, Role, User, utcnow
from events.registration.services import Person, register
from tests.factories import make_clinic, make_location, make_offering, make_session

pytestmark = pytest.mark.browser

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]}}
PHONE_WIDTH = 390


def assert_accessible(page: Page) -> None:
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, results.generate_report()


def fits_the_phone(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH


def shot(page: Page, name: str, full_page: bool = False) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=full_page)


def test_booking_with_consent_and_accepting_at_check_in_on_a_phone(phone_page, live_server, db):
    make_clinic(name="Revival Physical Therapy")
    teacher = User(email="maya@clinic.example", name="Maya Lindqvist", role=Role.INSTRUCTOR)
    teacher.set_password("phone consent pass")
    admin = User(email="admin@clinic.example", name="Clinic Admin", role=Role.ADMIN)
    db.session.add_all([teacher, admin])
    location = make_location(name="North Loop")
    offering = make_offering(
        location, OfferingKind.CLASS, title="Core & Hip Strength", instructor=teacher, capacity=8
    )
    db.session.flush()
    document = consent.create_document(DEMO_CONSENT_TITLE, DEMO_CONSENT_TEXT, admin)
    offering.consent_document_id = document.id
    # Starting in half an hour: check-in is open.
    session = make_session(offering, utcnow().date())
    session.starts_at = utcnow() + timedelta(minutes=30)
    session.ends_at = session.starts_at + timedelta(minutes=45)
    db.session.commit()
    version = consent.current_version(document.id)
    # Booked by staff on the phone: no consent yet.
    phoned = register(offering, session.id, Person("Phil Okafor", "phil@example.com"), source="staff")
    page = phone_page

    # --- The member books on a phone ---
    page.goto(f"{live_server.url}/offerings/{offering.slug}?session={session.id}")
    region = page.get_by_role("region", name=DEMO_CONSENT_TITLE)
    expect(region).to_be_visible()
    expect(region).to_contain_text("You don't have to tell us the details.")
    # Readable, not a tiny box: at least a third of the screen tall, nearly its full width,
    # and the text at body size.
    box = region.bounding_box()
    assert box is not None and box["height"] >= 844 / 3 and box["width"] >= PHONE_WIDTH - 80
    assert region.evaluate("e => parseFloat(getComputedStyle(e.querySelector('p')).fontSize)") >= 16
    page.get_by_label("Your name").fill("Rosa Jimenez")
    page.get_by_label("Email").fill("rosa@example.com")
    fits_the_phone(page)
    region.scroll_into_view_if_needed()
    shot(page, "consent-register-form.png")
    assert_accessible(page)

    page.get_by_role("button", name="Register - free").click()
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("tick the box to agree")
    expect(page.locator("#consent-error")).to_be_visible()
    shot(page, "consent-register-error.png")
    assert_accessible(page)
    summary.get_by_role("link").first.click()
    checkbox = page.get_by_label(f"I have read the {DEMO_CONSENT_TITLE} and I agree to it.")
    expect(checkbox).to_be_focused()
    box = checkbox.bounding_box()
    assert box is not None and box["width"] >= 24 and box["height"] >= 24  # a target a thumb can hit
    checkbox.check()
    page.get_by_role("button", name="Register - free").scroll_into_view_if_needed()
    shot(page, "consent-register-ticked.png")
    page.get_by_role("button", name="Register - free").click()
    expect(page.get_by_text("You're registered!")).to_be_visible()
    assert_accessible(page)

    db.session.expire_all()
    rosa = db.session.scalar(sa.select(Registration).where(Registration.name == "Rosa Jimenez"))
    accepted = db.session.scalar(
        sa.select(ConsentAcceptance).where(ConsentAcceptance.registration_id == rosa.id)
    )
    assert accepted.consent_version_id == version.id and accepted.method == ConsentMethod.ONLINE

    # --- Check-in: Phil accepts on the instructor's phone ---
    page.goto(f"{live_server.url}/staff/login")
    page.get_by_label("Email").fill("maya@clinic.example")
    page.get_by_label("Password").fill("phone consent pass")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/staff/sessions/{session.id}")
    expect(page.locator("#consent-missing")).to_contain_text("1 person has not accepted")
    phil_row = page.locator(f"#r{phoned.registration.id}")
    expect(phil_row.get_by_text("Consent needed")).to_be_visible()
    expect(page.locator(f"#r{rosa.id}").get_by_text("Consent needed")).to_have_count(0)
    fits_the_phone(page)
    phil_row.scroll_into_view_if_needed()
    shot(page, "consent-roster-flag.png")
    assert_accessible(page)

    phil_row.get_by_role("link", name="Consent").click()
    expect(page.get_by_role("heading", name="Before class, Phil Okafor")).to_be_visible()
    expect(page.get_by_role("region", name=DEMO_CONSENT_TITLE)).to_contain_text(
        "take part by your own choice"
    )
    fits_the_phone(page)
    shot(page, "consent-checkin-accept.png")
    assert_accessible(page)
    page.get_by_role("button", name="I agree").click()
    expect(page.locator("#consent-error")).to_be_visible()  # the tick is the person's own
    assert_accessible(page)
    page.get_by_label(f"I, Phil Okafor, have read the {DEMO_CONSENT_TITLE} and I agree to it.").check()
    page.get_by_role("button", name="I agree").scroll_into_view_if_needed()
    shot(page, "consent-checkin-ticked.png")
    page.get_by_role("button", name="I agree").click()
    expect(page.get_by_text("Phil Okafor's consent is recorded.")).to_be_visible()
    expect(page.locator("#consent-missing")).to_have_count(0)
    expect(phil_row.get_by_text("Consent needed")).to_have_count(0)
    phil_row.scroll_into_view_if_needed()
    shot(page, "consent-roster-after.png")
    assert_accessible(page)

    db.session.expire_all()
    in_person = db.session.scalar(
        sa.select(ConsentAcceptance).where(ConsentAcceptance.registration_id == phoned.registration.id)
    )
    assert in_person.method == ConsentMethod.IN_PERSON and in_person.handed_by_id == teacher.id


def test_the_admins_consent_pages(page, live_server, db):
    """The admin's document page (history, publish form) on a desktop, axe clean."""
    make_clinic(name="Revival Physical Therapy")
    admin = User(email="admin@clinic.example", name="Clinic Admin", role=Role.ADMIN)
    admin.set_password("admin consent pass")
    db.session.add(admin)
    db.session.flush()
    document = consent.create_document(DEMO_CONSENT_TITLE, DEMO_CONSENT_TEXT, admin)
    consent.publish_version(document, DEMO_CONSENT_TEXT + "\n\nPlease bring water.", admin)
    page.goto(f"{live_server.url}/staff/login")
    page.get_by_label("Email").fill("admin@clinic.example")
    page.get_by_label("Password").fill("admin consent pass")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/staff/admin/consent")
    expect(page.get_by_role("link", name=DEMO_CONSENT_TITLE)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name=DEMO_CONSENT_TITLE).click()
    expect(page.get_by_text("Version 2", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Publish version 3")).to_be_visible()
    shot(page, "consent-admin-document.png", full_page=True)
    assert_accessible(page)


def test_the_check_in_screen_in_the_language_the_person_booked_in(phone_page, live_server, db):
    """Booked in Somali: on the instructor's (English) phone, what the person reads and ticks is
    in Somali, marked lang="so" for screen readers; the staff line stays English. axe clean."""
    make_clinic(name="Revival Physical Therapy")
    teacher = User(email="maya@clinic.example", name="Maya Lindqvist", role=Role.INSTRUCTOR)
    teacher.set_password("phone consent pass")
    admin = User(email="admin@clinic.example", name="Clinic Admin", role=Role.ADMIN)
    db.session.add_all([teacher, admin])
    offering = make_offering(
        make_location(name="North Loop"), OfferingKind.CLASS, title="Core & Hip Strength", instructor=teacher
    )
    db.session.flush()
    document = consent.create_document(DEMO_CONSENT_TITLE, DEMO_CONSENT_TEXT, admin)
    offering.consent_document_id = document.id
    session = make_session(offering, utcnow().date())
    session.starts_at = utcnow() + timedelta(minutes=30)
    session.ends_at = session.starts_at + timedelta(minutes=45)
    db.session.commit()
    booked = register(offering, session.id, Person("Hodan Warsame", "hodan@example.com"), source="staff")
    booked.registration.language = "so"
    db.session.commit()
    page = phone_page
    page.goto(f"{live_server.url}/staff/login")
    page.get_by_label("Email").fill("maya@clinic.example")
    page.get_by_label("Password").fill("phone consent pass")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/staff/sessions/{session.id}/consent/{booked.registration.id}")

    expect(page.get_by_role("heading", name="Fasalka ka hor, Hodan Warsame")).to_be_visible()
    expect(page.locator('div[lang="so"]')).to_contain_text("Waqti qaado")
    expect(page.get_by_text("Staff: recorded as accepted in person")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "en"  # the staff page around it
    expect(page.get_by_role("link", name="Find my registrations")).to_be_visible()
    fits_the_phone(page)
    assert_accessible(page)
    page.get_by_role("button", name="Waan oggolahay").click()
    expect(page.locator("#consent-error")).to_contain_text("Fadlan akhri warqadda oggolaanshaha")
    label = (
        f"Aniga, Hodan Warsame, waan akhriyay warqadda oggolaanshaha “{DEMO_CONSENT_TITLE}”, waana oggolahay."
    )
    page.get_by_label(label).check()
    page.get_by_role("button", name="Waan oggolahay").scroll_into_view_if_needed()
    shot(page, "consent-checkin-somali.png")
    assert_accessible(page)
    page.get_by_role("button", name="Waan oggolahay").click()
    expect(page.get_by_text("Hodan Warsame's consent is recorded.")).to_be_visible()  # staff: English
    db.session.expire_all()
    accepted = db.session.scalar(
        sa.select(ConsentAcceptance).where(ConsentAcceptance.registration_id == booked.registration.id)
    )
    assert accepted is not None and accepted.method == ConsentMethod.IN_PERSON
