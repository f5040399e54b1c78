"""The clinic's details, as admins edit them: the contact address that every email's Reply-To
and every invite's organizer carry, shown to staff, refused with a clear message when a mail
server could not carry it, recorded in the audit trail."""

from __future__ import annotations

import html

import sqlalchemy as sa

from events.models import AuditEntry, Clinic, Role
from tests.factories import make_clinic
from tests.helpers import csrf_token
from tests.integration.test_staff_admin import login

PAGE = "/staff/admin/clinic"


def _save(client, **fields):
    data = {"name": "Revival PT", "tagline": "", "email": "", "phone": "", "website_url": ""} | fields
    data["csrf_token"] = csrf_token(client.get(PAGE).get_data(as_text=True))
    return client.post(PAGE, data=data)


def test_an_admin_sets_the_contact_address_and_staff_see_where_replies_go(client, db):
    make_clinic(name="Revival PT", email="old@revival.example")
    db.session.commit()
    admin = login(client, db)
    page = html.unescape(client.get(PAGE).get_data(as_text=True))
    assert 'value="old@revival.example"' in page and "Reply-To" in page

    response = _save(client, email="hello@revival.example", phone="612-555-0100", tagline="Move well")
    assert response.status_code == 302
    db.session.expire_all()
    clinic = db.session.scalar(sa.select(Clinic))
    assert (clinic.email, clinic.phone, clinic.tagline) == (
        "hello@revival.example",
        "612-555-0100",
        "Move well",
    )
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "clinic.updated"))
    assert entry.actor_id == admin.id and entry.details["changed"] == ["email", "phone", "tagline"]

    home = html.unescape(client.get("/staff/admin/").get_data(as_text=True))
    assert "Members' replies to our emails go to hello@revival.example." in home.replace(
        "<strong>", ""
    ).replace("</strong>", "")
    assert "Members' replies to our emails go to hello@revival.example." in html.unescape(
        client.get("/staff/").get_data(as_text=True)
    )
    # The public footer shows it at once (the clinic is part of the cached catalog).
    assert "mailto:hello@revival.example" in client.get("/").get_data(as_text=True)


def test_an_address_no_mail_server_could_carry_is_refused_with_a_clear_message(client, db):
    make_clinic(name="Revival PT", email="old@revival.example")
    db.session.commit()
    login(client, db)
    for bad in ("zoë@exämple.com", "not an address"):
        response = _save(client, email=bad)
        body = html.unescape(response.get_data(as_text=True))
        assert response.status_code == 400
        assert "Enter an email address with no accents before the @" in body
    assert _save(client, email="hola@clínica.example").status_code == 302  # a Unicode domain is fine
    db.session.expire_all()
    assert db.session.scalar(sa.select(Clinic.email)) == "hola@clínica.example"


def test_only_admins_may_see_or_change_it(client, db):
    make_clinic(name="Revival PT", email="old@revival.example")
    db.session.commit()
    assert client.get(PAGE).status_code == 302  # to sign-in
    login(client, db, role=Role.INSTRUCTOR)
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data={"name": "Mine"}).status_code in (400, 403)
    db.session.expire_all()
    assert db.session.scalar(sa.select(Clinic.name)) == "Revival PT"
