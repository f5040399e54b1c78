"""Addresses with accents before the @ (zoë@exämple.com), decided once in
events.forms.deliverable_email: without MAIL_SMTPUTF8 (the default) every form that takes a
member's email refuses them with a clear message, so no email to that person can fail later;
an accented domain (zoe@exämple.com) is accepted either way (it goes in IDNA form). With
MAIL_SMTPUTF8 set, the same forms accept them (delivery: tests/worker/test_worker_idn_addresses.py)."""

from __future__ import annotations

import html

import pytest
import sqlalchemy as sa
from flask import g

from events.forms import NO_SMTPUTF8_MESSAGE
from events.models import OfferingKind, OutboxEmail, Registration, WaitlistEntry
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day, workshop
from tests.helpers import csrf_token
from tests.integration.test_staff_admin import login, token_from

ACCENTED = "zoë@exämple.com"
DOMAIN_ONLY = "zoe@exämple.com"


def _post(client, page: str, action: str, **fields):
    g.pop("csrf_token", None)
    data = {"csrf_token": csrf_token(client.get(page).get_data(as_text=True)), **fields}
    response = client.post(action, data=data)
    return response, html.unescape(response.get_data(as_text=True))


def _count(db, model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def offerings(db):
    make_clinic()
    open_one = workshop(title="Posture")
    full = workshop(title="Full", capacity=1)
    db.session.commit()
    return open_one, full


def test_the_default_is_safe(app):
    from events.config import Config

    assert Config.MAIL_SMTPUTF8 is False


def test_without_smtputf8_every_public_form_refuses_an_accented_local_part(
    app, client, db, offerings, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIL_SMTPUTF8", False)
    open_one, full = offerings
    page = f"/offerings/{open_one.slug}"
    response, body = _post(client, page, f"{page}/register", name="Zoë", email=ACCENTED)
    assert response.status_code == 400 and NO_SMTPUTF8_MESSAGE in body
    assert 'aria-invalid="true"' in body and "There is a problem" in body
    assert _count(db, Registration) == 0 and _count(db, OutboxEmail) == 0

    # The waitlist form (the class is full) says the same.
    _post(
        client,
        f"/offerings/{full.slug}",
        f"/offerings/{full.slug}/register",
        name="Ana",
        email="a@example.com",
    )
    response, body = _post(
        client, f"/offerings/{full.slug}", f"/offerings/{full.slug}/waitlist", name="Zoë", email=ACCENTED
    )
    assert response.status_code == 400 and NO_SMTPUTF8_MESSAGE in body
    assert _count(db, WaitlistEntry) == 0

    response, body = _post(client, "/find-my-registrations", "/find-my-registrations", email=ACCENTED)
    assert response.status_code == 400 and NO_SMTPUTF8_MESSAGE in body

    # An accented domain is fine: it goes in IDNA form to any server.
    response, _ = _post(client, page, f"{page}/register", name="Zoe", email=DOMAIN_ONLY)
    assert response.status_code == 302
    response, _ = _post(client, "/find-my-registrations", "/find-my-registrations", email=DOMAIN_ONLY)
    assert response.status_code == 200


def test_without_smtputf8_staff_registering_someone_is_refused_too(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SMTPUTF8", False)
    offering = make_offering(make_location(), OfferingKind.CLASS, title="Core Strength")
    session = make_session(offering, upcoming_day(4))
    db.session.commit()
    login(client, db)
    url = f"/staff/admin/offerings/{offering.id}/register"
    data = {"name": "Zoë", "session_id": str(session.id)}
    response = client.post(url, data={**data, "email": ACCENTED, "csrf_token": token_from(client, url)})
    assert response.status_code == 400
    assert NO_SMTPUTF8_MESSAGE in html.unescape(response.get_data(as_text=True))
    assert _count(db, Registration) == 0
    response = client.post(url, data={**data, "email": DOMAIN_ONLY, "csrf_token": token_from(client, url)})
    assert response.status_code == 302


def test_with_smtputf8_the_same_forms_accept_it(app, client, db, offerings, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SMTPUTF8", True)
    open_one, full = offerings
    page = f"/offerings/{open_one.slug}"
    response, _ = _post(client, page, f"{page}/register", name="Zoë", email=ACCENTED)
    assert response.status_code == 302 and "/manage/" in response.headers["Location"]
    _post(
        client,
        f"/offerings/{full.slug}",
        f"/offerings/{full.slug}/register",
        name="Ana",
        email="a@example.com",
    )
    response, _ = _post(
        client, f"/offerings/{full.slug}", f"/offerings/{full.slug}/waitlist", name="Zoë", email=ACCENTED
    )
    assert response.status_code == 302
    response, _ = _post(client, "/find-my-registrations", "/find-my-registrations", email=ACCENTED)
    assert response.status_code == 200
    assert db.session.scalar(sa.select(Registration.email).where(Registration.name == "Zoë")) == ACCENTED
