"""Nothing health-related leaves us: Stripe is told ids and a neutral label (checked in what the
emulator received), member pages load no third-party script, style or font, and email subjects
name the date, not the class, unless the clinic chooses titled subjects on its settings page."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import requests as http
import sqlalchemy as sa
import stripe

from events.filters import format_short_day
from events.models import Clinic, OutboxEmail, Payment, PrivacyAction, Registration, Role
from events.notifications.content import NEUTRAL_SUBJECTS, SUBJECTS, build
from events.notifications.outbox import EmailKind, queue_email
from events.payments.refunds import execute_due_refunds
from events.privacy import for_staff, requests
from events.registration import links
from events.registration.services import Person, join_waitlist, register
from events.security import stripe_js_url
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day, workshop
from tests.helpers import csrf_token
from tests.integration.test_payments import SUCCESS, card_token, pay
from tests.integration.test_staff import make_user
from tests.integration.test_staff_admin import login

TITLE = "Pelvic Floor Recovery After Birth"


def test_stripe_sees_ids_and_a_neutral_label_only(client, db, localstripe):
    stripe_client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})
    offering = workshop(price_cents=4000, title=TITLE)
    db.session.commit()
    registration = register(
        offering, None, Person("Ana Quintero", "ana.q@example.com", "612-555-0142")
    ).registration
    _, response = pay(client, registration, card_token(stripe_client, SUCCESS))
    assert response.json["status"] == "succeeded"
    payment = db.session.scalar(sa.select(Payment).where(Payment.registration_id == registration.id))
    # A refund too (the member deletes their data): the worker's path, run here.
    with client.application.test_request_context():
        for_staff.erase_for(
            db.session.get(Registration, registration.id), make_user(db, "a@clinic.example", Role.ADMIN)
        )
    assert execute_due_refunds() == 1

    # What the emulator holds, read raw from its API: the intent, its customer, charges, refunds.
    def get(path: str) -> dict:
        response = http.get(
            f"{localstripe}/v1/{path}", headers={"Authorization": "Bearer sk_test_emulator"}, timeout=10
        )
        assert response.status_code == 200, (path, response.text)
        return response.json()

    intent = get(f"payment_intents/{payment.stripe_payment_intent_id}")
    customer = get(f"customers/{intent['customer']}")
    charges = (intent.get("charges") or {}).get("data", [])
    received = json.dumps([intent, customer, charges])
    for secret in (TITLE, "Pelvic", "Ana", "ana.q@example.com", "612-555-0142"):
        assert secret not in received, secret
    assert intent["metadata"] == {
        "registration_id": str(registration.id),
        "item": f"Registration {registration.id}",
    }
    assert customer["metadata"] == {"registration_id": str(registration.id)}
    refunds = [r for charge in charges for r in (charge.get("refunds") or {}).get("data", [])]
    assert refunds, "the refund reached the emulator"
    for refund in refunds:
        assert set(refund["metadata"]) <= {"refund_id"} and refund["metadata"]["refund_id"].isdigit()


def _external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.netloc) and parts.netloc not in ("localhost", "127.0.0.1") or url.startswith("//")


ASSET = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?\b(?:src|href|data)=\"([^\"]+)\"",
    re.I,
)


def test_no_third_party_script_style_or_font_on_any_member_page(app, client, db):
    make_clinic()
    offering = make_offering(make_location(), title=TITLE, capacity=1, price_cents=2000)
    session = make_session(offering, upcoming_day(4))
    free = workshop(title="Free Talk")
    db.session.commit()
    held = register(offering, None, Person("Ana", "ana@example.com")).registration
    booked = register(free, None, Person("Ana", "ana@example.com")).registration
    entry = join_waitlist(offering, None, Person("Bo", "bo@example.com")).entry
    with app.test_request_context():
        requests.request_link("ana@example.com", PrivacyAction.ERASE)
        row = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.kind == EmailKind.PRIVACY_LINK))
        privacy_link = urlsplit(build(row).context["link"]).path
        pages = [
            "/",
            f"/offerings/{offering.slug}",
            f"/offerings/{offering.slug}?session={session.id}",
            f"/locations/{offering.location.slug}",
            "/find-my-registrations",
            "/my-data",
            privacy_link,
            links.manage_url(booked, external=False),
            links.manage_url(held, external=False) + "/pay",
            links.waitlist_url(entry, external=False),
            "/this-page-does-not-exist",
        ]
        stripe_js = stripe_js_url()
    css_seen = set()
    for path in pages:
        response = client.get(path)
        assert response.status_code in (200, 404), path
        page = response.get_data(as_text=True)
        for url in ASSET.findall(page):
            if path.endswith("/pay") and url == stripe_js:
                continue  # the card form: Stripe.js, told nothing but the amount's intent (see above)
            assert not _external(url), (path, url)
            if url.endswith(".css") or ".css?" in url:
                css_seen.add(urlsplit(url).path)
        assert "@import" not in page and "fonts.googleapis" not in page and "@font-face" not in page, path
        policy = response.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if " " in d.strip())
        assert (
            directives["style-src"] == "'self'" and "font-src" not in directives
        )  # fonts: 'self' (default-src)
        assert directives["default-src"] == "'self'"
    assert css_seen
    for css in css_seen:
        with client.get(css) as response:
            text = response.get_data(as_text=True)
        assert "@import" not in text and "@font-face" not in text, css
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", text):
            assert not _external(url) and not url.startswith("http"), (css, url)


def test_email_subjects_name_the_date_not_the_class_by_default(app, db):
    offering = make_offering(make_location(), title=TITLE, capacity=1)
    session = make_session(offering, upcoming_day(6))
    db.session.commit()
    registration = register(offering, None, Person("Ana", "ana@example.com")).registration
    entry = join_waitlist(offering, None, Person("Bo", "bo@example.com")).entry
    for kind in SUBJECTS:
        queue_email(kind, registration=registration, session_id=session.id, key_parts=("t",))
    queue_email(EmailKind.WAITLIST_OFFER, waitlist_entry=entry)
    db.session.commit()
    day = format_short_day(session.local_start)
    with app.test_request_context():
        subjects = {row.kind: build(row).subject for row in db.session.scalars(sa.select(OutboxEmail))}
    assert subjects[EmailKind.REGISTRATION_CONFIRMED] == f"You're registered for {day}"
    assert subjects[EmailKind.WAITLIST_OFFER] == f"A seat is open for you on {day}"
    assert subjects[EmailKind.REMINDER].startswith("Reminder: your session ")
    for kind, subject in subjects.items():
        assert "Pelvic" not in subject and "Birth" not in subject, (kind, subject)
    assert all("%(" in template for template in NEUTRAL_SUBJECTS.values())  # each a translatable sentence


def test_the_clinic_chooses_titled_subjects_on_its_settings_page(app, client, db):
    make_clinic(name="Revival PT")
    offering = workshop(title=TITLE)
    db.session.commit()
    login(client, db)
    page = client.get("/staff/admin/clinic").get_data(as_text=True)
    assert 'name="email_subjects"' in page and "Neutral: the date only" in page
    data = {"name": "Revival PT", "tagline": "", "email": "", "phone": "", "website_url": ""}
    response = client.post(
        "/staff/admin/clinic", data={**data, "email_subjects": "titled", "csrf_token": csrf_token(page)}
    )
    assert response.status_code == 302
    assert db.session.scalar(sa.select(Clinic.email_subjects)) == "titled"
    registration = register(offering, None, Person("Ana", "ana@example.com")).registration
    row = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.registration_id == registration.id))
    with app.test_request_context():
        assert build(row).subject == f"You're registered: {TITLE}"
    # A value that isn't one of the choices is a form error, and changes nothing.
    bad = client.post(
        "/staff/admin/clinic", data={**data, "email_subjects": "loud\x00", "csrf_token": csrf_token(page)}
    )
    assert bad.status_code == 400
    assert db.session.scalar(sa.select(Clinic.email_subjects)) == "titled"


def test_a_clinic_saved_before_the_choice_existed_gets_neutral_subjects(app, db):
    clinic = make_clinic()
    db.session.commit()
    assert clinic.email_subjects == "neutral"  # the column's default
