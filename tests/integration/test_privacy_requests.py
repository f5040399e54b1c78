""" "Download my data" and "Delete my data" from the web side: asking looks the same for every
address, the emailed link is signed, expires and works once (its use recorded in the database),
the export holds everything the database holds for the address and nothing of anyone else's,
deleting cancels by the policy, refunds and leaves nothing of the person in any table, and
hostile input gets a clear answer, never a 500."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from events import audit
from events.models import (
    AuditEntry,
    OutboxEmail,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PrivacyAction,
    PrivacyRequest,
    Refund,
    Registration,
    RegistrationStatus,
    Role,
    User,
    WaitlistStatus,
    utcnow,
)
from events.notifications.content import build
from events.notifications.outbox import EmailKind
from events.privacy import export, requests
from events.registration import links
from events.registration.services import Person, join_waitlist, register
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token
from tests.privacy_dump import rows_holding

ANA = ("Ana Quintero", "ana.quintero@example.com", "612-555-0142")
BO = ("Bo Lindqvist", "bo.lindqvist@example.com", "763-555-0199")


@pytest.fixture
def journeys(db):
    """Ana: a paid (cash) booking coming up, a past free one, a waitlist place, the emails they
    caused and a staff note in the trail. Bo: a booking on the same offering."""
    make_clinic(name="Revival PT", email="hello@revival.example")
    north = make_location(name="North Loop")
    paid = make_offering(north, title="Back Spasms: What to Do First", price_cents=3000, capacity=5)
    make_session(paid, upcoming_day(6))
    full = make_offering(north, title="Knee Class", capacity=1)
    make_session(full, upcoming_day(8))
    past = make_offering(north, title="Posture Basics")
    past_session = make_session(past, upcoming_day(2))
    db.session.commit()
    ana_paid = register(paid, None, Person(*ANA)).registration  # held while paying
    ana_paid.status = RegistrationStatus.CONFIRMED
    ana_paid.confirmed_at = ana_paid.created_at
    ana_paid.hold_expires_at = None
    db.session.add(
        Payment(
            registration_id=ana_paid.id,
            method=PaymentMethod.CASH,
            amount_cents=3000,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
            note="Cash from Ana Quintero",
            paid_at=utcnow(),
        )
    )
    bo = register(paid, None, Person(*BO)).registration
    register(full, None, Person("Cat Other", "cat@example.com"))
    entry = join_waitlist(full, None, Person(*ANA)).entry
    ana_past = register(past, None, Person(*ANA), now=past_session.starts_at - timedelta(days=1)).registration
    past_session.starts_at -= timedelta(days=10)
    past_session.ends_at -= timedelta(days=10)
    admin = User(email="admin@clinic.example", name="Sam Admin", role=Role.ADMIN)
    admin.set_password("correct horse battery")
    db.session.add(admin)
    db.session.flush()
    audit.record_about(
        admin.id, "registration.details_corrected", ana_paid, fields=["phone"], reason="Ana Quintero phoned"
    )
    db.session.commit()
    return {
        "paid": paid,
        "ana_paid": ana_paid,
        "ana_past": ana_past,
        "entry": entry,
        "bo": bo,
        "admin": admin,
    }


def _ask(client, email, action, **environ):
    token = csrf_token(client.get("/my-data").get_data(as_text=True))
    return client.post(
        "/my-data", data={"csrf_token": token, "email": email, "action": action}, environ_base=environ
    )


def _link_path(app, db, email) -> str:
    row = db.session.scalar(
        sa.select(OutboxEmail)
        .where(
            OutboxEmail.kind == EmailKind.PRIVACY_LINK, sa.func.lower(OutboxEmail.to_email) == email.lower()
        )
        .order_by(OutboxEmail.id.desc())
    )
    assert row is not None, "no link email queued"
    with app.test_request_context():
        link = build(row).context["link"]
    return re.sub(r"^https?://[^/]+", "", link)


def _normalized(body: str, email: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", body).replace(email, "<address>")


def test_asking_looks_the_same_for_every_address_and_logs_no_address(app, client, journeys, caplog):
    caplog.set_level(logging.DEBUG)
    known = _ask(client, ANA[1], "export")
    unknown = _ask(client, "nobody.here@example.com", "export")
    assert known.status_code == unknown.status_code == 200
    assert _normalized(known.get_data(as_text=True), ANA[1]) == _normalized(
        unknown.get_data(as_text=True), "nobody.here@example.com"
    )
    assert "Check your email" in known.get_data(as_text=True)
    rows = OutboxEmail.query.filter_by(kind=EmailKind.PRIVACY_LINK).all()
    assert len(rows) == 2 and all(
        set(r.context) == {"request_id"} for r in rows
    )  # no token stored in the row
    # Asked again at once: one email per address and action per window, the same answer.
    assert _ask(client, ANA[1], "export").status_code == 200
    assert OutboxEmail.query.filter_by(kind=EmailKind.PRIVACY_LINK).count() == 2
    assert ANA[1] not in caplog.text and "nobody.here" not in caplog.text


def test_the_export_holds_everything_about_the_address_and_nothing_else(app, client, db, journeys):
    _ask(client, ANA[1].upper(), "export")  # any spelling of the address
    path = _link_path(app, db, ANA[1])
    page = client.get(path)
    assert page.status_code == 200 and "Download my data" in page.get_data(as_text=True)
    response = client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="my-data.json"'
    assert response.headers["Cache-Control"] == "no-store"
    document = json.loads(response.get_data(as_text=True))
    text = json.dumps(document)

    # Everything the database holds with her name, address or phone is in it, by table and id.
    db.session.expire_all()
    held = rows_holding(list(ANA))
    sections = {
        "registrations": "registrations",
        "waitlist_entries": "waitlist_places",
        "outbox_emails": "emails",
        "audit_entries": "history",
        "payments": "payments",
    }
    for table, hits in held.items():
        if table == "privacy_requests":
            continue  # the link's own request: its address was emptied when it was used
        assert table in sections, f"{table} holds her data but the export has no section for it"
        exported = {row["id"] for row in document[sections[table]]}
        assert {row_id for row_id, _ in hits} <= exported, table
    # ...and what hangs off her rows by id.
    reg_ids = {r["id"] for r in document["registrations"]}
    assert reg_ids == {journeys["ana_paid"].id, journeys["ana_past"].id}
    assert {p["registration_id"] for p in document["payments"]} == {journeys["ana_paid"].id}
    assert document["waitlist_places"][0]["status"] == WaitlistStatus.WAITING.value
    assert {e["kind"] for e in document["emails"]} >= {
        "registration_confirmed",
        "waitlist_joined",
        "privacy_link",
    }
    assert document["history"][0]["what"].startswith("Staff corrected")
    assert "Sam Admin" not in text  # staff are "staff"
    # Nothing of anyone else's.
    for other in (*BO, "Cat Other", "cat@example.com"):
        assert other not in text
    # The link is used up (recorded in the database), and the address on its request forgotten.
    request = db.session.scalar(sa.select(PrivacyRequest).order_by(PrivacyRequest.id.desc()))
    assert request.used_at is not None and request.email == ""
    again = client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)
    assert client.get(path).status_code == 410
    assert AuditEntry.query.filter_by(action="privacy.exported").count() == 1


def test_links_expire_and_tampered_ones_are_refused(app, client, db, journeys):
    long_ago = utcnow() - timedelta(minutes=app.config["PRIVACY_LINK_MINUTES"] + 1)
    with app.test_request_context():
        assert requests.request_link(ANA[1], PrivacyAction.EXPORT, now=long_ago)
    path = _link_path(app, db, ANA[1])
    expired = client.get(path)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    assert (
        client.post(
            path, data={"csrf_token": csrf_token(client.get("/my-data").get_data(as_text=True))}
        ).status_code
        == 410
    )
    for bad in (
        path + "x",
        path.replace("/my-data/", "/my-data/A"),
        "/my-data/" + "A" * 3000,
        "/my-data/%00%ff",
    ):
        response = client.get(bad)
        assert response.status_code in (404, 410), bad
    # A manage link is not a privacy link (another salt), nor the other way round.
    with app.test_request_context():
        manage_signed = links.sign(journeys["ana_paid"].token, links.MANAGE_SALT)
    assert client.get(f"/my-data/{manage_signed}").status_code == 404


def test_delete_my_data_cancels_refunds_and_leaves_nothing_of_her(app, client, db, journeys):
    _ask(client, ANA[1], "erase")
    path = _link_path(app, db, ANA[1])
    page = client.get(path).get_data(as_text=True)
    assert "Delete your data?" in page and "Back Spasms: What to Do First" in page
    assert "$30 refunded" in page and "You leave the waitlist you are on." in page
    done = client.post(path, data={"csrf_token": csrf_token(page)})
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and "Your data has been deleted" in body and "A refund of $30" in body

    db.session.expire_all()
    paid = db.session.get(Registration, journeys["ana_paid"].id)
    assert paid.status == RegistrationStatus.CANCELLED and paid.anonymised_at is not None
    past = db.session.get(Registration, journeys["ana_past"].id)
    assert (
        past.status == RegistrationStatus.CONFIRMED and past.name == "Anonymised"
    )  # counted, as it happened
    [refund] = Refund.query.all()
    assert refund.amount_cents == 3000 and refund.status.value == "succeeded"  # cash: returned at the desk
    assert db.session.get(Registration, journeys["bo"].id).name == BO[0]
    # Only the confirmation, not yet sent, still holds her address; nothing holds her name or phone.
    held = rows_holding(list(ANA))
    assert list(held) == ["outbox_emails"], held
    [(row_id, _)] = held["outbox_emails"]
    confirmation = db.session.get(OutboxEmail, row_id)
    assert confirmation.kind == EmailKind.DATA_ERASED and confirmation.status.value == "pending"
    # No per-booking emails go to her; once the confirmation is sent the address goes too.
    assert (
        OutboxEmail.query.filter(
            OutboxEmail.status == "pending", OutboxEmail.id != row_id, OutboxEmail.to_email.ilike("%ana%")
        ).count()
        == 0
    )
    confirmation.status = "sent"
    db.session.commit()
    requests.tidy()
    assert rows_holding(list(ANA)) == {}
    # The real person can book again: the anonymised rows block nothing.
    again = register(journeys["paid"], None, Person(*ANA))
    assert again.registration is not None and again.registration.id != paid.id
    entry = AuditEntry.query.filter_by(action="privacy.erased").one()
    assert entry.details["cancelled"] == 1 and entry.details["refund_cents"] == 3000
    assert audit.SENTENCES["privacy.erased"]  # told in words on the audit page


def test_the_manage_page_emails_the_links_to_its_own_address(app, client, db, journeys):
    with app.test_request_context():
        manage = links.manage_url(journeys["ana_paid"], external=False)
    page = client.get(manage).get_data(as_text=True)
    assert "Download my data" in page and "Delete my data" in page
    response = client.post(manage + "/my-data", data={"csrf_token": csrf_token(page), "action": "erase"})
    assert response.status_code == 302 and response.headers["Location"].endswith("#my-data")
    row = OutboxEmail.query.filter_by(kind=EmailKind.PRIVACY_LINK).one()
    assert row.to_email == ANA[1]
    assert db.session.get(PrivacyRequest, row.context["request_id"]).action == PrivacyAction.ERASE
    # Without the form's token, or with an unknown action: nothing is sent.
    assert client.post(manage + "/my-data", data={"action": "erase"}).status_code == 400  # CSRF
    assert (
        client.post(manage + "/my-data", data={"csrf_token": csrf_token(page), "action": "drop"}).status_code
        == 302
    )
    assert OutboxEmail.query.filter_by(kind=EmailKind.PRIVACY_LINK).count() == 1
    assert client.post("/manage/nonsense/my-data", data={"action": "erase"}).status_code in (400, 404)


# Sent as the raw form body (percent-encoded bytes), as a browser or a script would: a lone
# surrogate (%ED%A0%80), a NUL, a megabyte, a header injection.
HOSTILE_EMAILS = [
    "",
    "a%00b%40example.com",
    # (Werkzeug reads a lone surrogate's bytes as U+FFFD: a deliverable address, not an error.)
    "x" * 1_000_000,
    "no-at-sign",
    "a%40b%E2%80%AE.com",
    "%0D%0ABcc%3A+x%40y.z",
]


@pytest.mark.parametrize("email", HOSTILE_EMAILS)
@pytest.mark.parametrize("action", ["erase", "delete%00"])
def test_hostile_input_gets_a_form_error_never_a_500(client, db, journeys, email, action):
    token = csrf_token(client.get("/my-data").get_data(as_text=True))
    body = f"csrf_token={token}&email={email}&action={action}"
    response = client.post("/my-data", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (400, 413), response.status_code
    assert OutboxEmail.query.filter_by(kind=EmailKind.PRIVACY_LINK).count() == 0


def test_odd_query_strings_and_paths_never_500(client, journeys):
    for path in (
        "/my-data?action=%00",
        "/my-data?action=" + "x" * 5000,
        "/my-data/..%2f..%2fetc",
        "/my-data/\u00e9",
    ):
        assert client.get(path).status_code < 500, path


def test_staff_download_and_delete_a_callers_data(app, client, db, journeys):
    from tests.integration.test_staff import sign_in

    assert sign_in(client, "admin@clinic.example").status_code == 302
    reg = journeys["ana_paid"]
    page = client.get(f"/staff/admin/registrations/{reg.id}").get_data(as_text=True)
    assert "Download their data" in page and "Delete their data" in page
    download = client.post(
        f"/staff/admin/registrations/{reg.id}/privacy/export", data={"csrf_token": csrf_token(page)}
    )
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert {r["id"] for r in json.loads(download.get_data(as_text=True))["registrations"]} == {
        reg.id,
        journeys["ana_past"].id,
    }
    confirm = client.get(f"/staff/admin/registrations/{reg.id}/privacy/erase")
    text = confirm.get_data(as_text=True)
    assert (
        confirm.status_code == 200 and "Delete Ana Quintero&#39;s data?" in text and "refunding $30" in text
    )
    # Posting without confirmed=yes only shows the confirmation again: nothing changes.
    assert (
        client.post(
            f"/staff/admin/registrations/{reg.id}/privacy/erase", data={"csrf_token": csrf_token(text)}
        ).status_code
        == 200
    )
    assert db.session.get(Registration, reg.id).anonymised_at is None
    done = client.post(
        f"/staff/admin/registrations/{reg.id}/privacy/erase",
        data={"csrf_token": csrf_token(text), "confirmed": "yes"},
    )
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Registration, reg.id).anonymised_at is not None
    entries = {e.action: e for e in AuditEntry.query.filter(AuditEntry.action.like("privacy.%"))}
    assert entries["privacy.exported"].actor_id == journeys["admin"].id
    assert entries["privacy.erased"].registration_id == reg.id  # in that registration's history
    history = client.get(f"/staff/admin/registrations/{reg.id}").get_data(as_text=True)
    assert "Sam Admin deleted a caller&#39;s data at their request" in history
    assert "Ana Quintero" not in history and ANA[1] not in history
    assert client.get("/staff/admin/privacy?after=%00garbage").status_code == 200
    assert client.get("/staff/admin/privacy?after=2026-13-45").status_code == 200


def test_export_counts_reach_the_trail_not_the_data(app, db, journeys):
    with app.test_request_context():
        document = export.data_for(ANA[1])
    assert export.counts(document)["registrations"] == 2


def test_rate_limited_per_client_and_per_address_like_find_my_registrations(
    app, db, journeys, monkeypatch, rate_limits_enforced
):
    monkeypatch.setitem(app.config, "FIND_REGISTRATIONS_RATE_LIMIT", "3 per minute")
    monkeypatch.setitem(app.config, "FIND_REGISTRATIONS_ADDRESS_RATE_LIMIT", "2 per hour")
    client = app.test_client()
    codes = [
        _ask(client, f"p{i}@example.com", "export", REMOTE_ADDR="10.0.0.1").status_code for i in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]
    # The same address from many clients: the per-address limit (a keyed digest, not the address).
    codes = [
        _ask(client, "target@example.com", "erase", REMOTE_ADDR=f"10.0.1.{n}").status_code for n in range(4)
    ]
    assert codes == [200, 200, 429, 429]
    refused = _ask(client, "target@example.com", "erase", REMOTE_ADDR="10.0.2.1").get_data(as_text=True)
    assert "several times recently" in refused
