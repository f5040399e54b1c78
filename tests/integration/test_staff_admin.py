"""Admin pages: offerings and weekly series across DST, capacity, resources, refunds, emails,
registering on someone's behalf, CSRF and who may see them."""

from __future__ import annotations

import io
import re
from datetime import time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import stripe
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from events.models import (
    AuditEntry,
    EmailStatus,
    Location,
    Offering,
    OfferingKind,
    OutboxEmail,
    Payment,
    Refund,
    RefundStatus,
    Registration,
    RegistrationStatus,
    Resource,
    Role,
    SeatPool,
    Session,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from events.notifications.outbox import EmailKind
from events.registration import services as reg
from events.registration.services import Person
from events.resources.services import sniff_content_type
from events.staff import offerings
from events.staff.errors import AdminError
from events.staff.parsers import dollars_to_cents, format_reminder_offsets, parse_reminder_offsets
from tests.factories import (
    make_clinic,
    make_instructor,
    make_location,
    make_offering,
    make_session,
    upcoming_day,
)
from tests.helpers import csrf_token, outbox_kinds

PASSWORD = "correct horse battery"
REAL_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def login(client, db, role=Role.ADMIN) -> User:
    user = User(email=f"{role.value}-{id(client)}@clinic.example", name=f"Sam {role.value}", role=role)
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    page = client.get("/staff/login")
    response = client.post(
        "/staff/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "csrf_token": csrf_token(page.get_data(as_text=True)),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return user


def token_from(client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)
    return csrf_token(page.get_data(as_text=True))


def offering_form(location_id: int, **overrides) -> dict:
    data = {
        "kind": "course",
        "title": "Posture Reset",
        "slug": "",
        "topic": "Posture",
        "summary": "Four evenings on posture.",
        "description": "We work on how you sit and stand.",
        "what_to_bring": "Comfortable clothes.",
        "location_id": str(location_id),
        "instructor_id": "None",
        "price": "0",
        "capacity": "10",
        "cancellation_cutoff_hours": "24",
        "late_cancel_refund_percent": "0",
        "reminders": "24h, 2h",
        "followup_delay_minutes": "120",
        "is_published": "y",
    }
    data.update(overrides)
    return data


def form_of(offering: Offering, **overrides) -> dict:
    data = offering_form(
        offering.location_id,
        kind=offering.kind.value,
        title=offering.title,
        slug=offering.slug,
        topic=offering.topic,
        capacity=str(offering.capacity),
        price=f"{offering.price_cents / 100:.2f}",
    )
    data.update(overrides)
    return data


def fresh(db, model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


# --- Rules without a request ---


def test_reminder_offsets_and_money_parse_as_admins_write_them():
    assert parse_reminder_offsets("24h, 2h") == "1440,120"
    assert parse_reminder_offsets("2h,1d, 30m") == "1440,120,30"
    assert parse_reminder_offsets("") == ""
    assert format_reminder_offsets("2880,1440,120,30") == "2d, 24h, 2h, 30m"
    with pytest.raises(AdminError):
        parse_reminder_offsets("tomorrow")
    assert dollars_to_cents("12.345") == 1235
    assert dollars_to_cents("0") == 0


def test_content_sniffing_knows_pdf_and_images_only():
    assert sniff_content_type(b"%PDF-1.7 ...") == "application/pdf"
    assert sniff_content_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_content_type(b"\xff\xd8\xff\xe0..") == "image/jpeg"
    assert sniff_content_type(b"GIF89a....") == "image/gif"
    assert sniff_content_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_content_type(b"<html><script>") is None
    assert sniff_content_type(b"just text.pdf") is None


# --- Offerings and sessions ---


def test_weekly_series_across_dst_stays_at_6pm_local_and_shows_on_the_schedule(client, db):
    make_clinic()
    location = make_location(name="North Loop", timezone="America/Chicago")
    db.session.commit()
    admin = login(client, db)

    token = token_from(client, "/staff/admin/offerings/new")
    response = client.post(
        "/staff/admin/offerings/new",
        data=offering_form(location.id, title="Posture Reset Evenings", price="45.50", csrf_token=token),
    )
    assert response.status_code == 302
    offering = db.session.scalar(sa.select(Offering))
    assert offering.slug == "posture-reset-evenings"
    assert offering.price_cents == 4550
    assert offering.reminder_offsets == "1440,120"
    assert offering.kind is OfferingKind.COURSE
    assert response.headers["Location"].endswith(f"/staff/admin/offerings/{offering.id}")

    token = token_from(client, f"/staff/admin/offerings/{offering.id}")
    response = client.post(
        f"/staff/admin/offerings/{offering.id}/sessions",
        data={
            "first_day": "2027-10-26",
            "start": "18:00",
            "duration_minutes": "90",
            "weeks": "4",
            "location_id": "None",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)

    sessions = db.session.scalars(sa.select(Session).order_by(Session.starts_at)).all()
    assert [s.local_start.strftime("%Y-%m-%d %H:%M") for s in sessions] == [
        "2027-10-26 18:00",
        "2027-11-02 18:00",
        "2027-11-09 18:00",
        "2027-11-16 18:00",
    ]
    assert [s.starts_at.hour for s in sessions] == [23, 23, 0, 0]  # CDT, then CST after Nov 7
    assert all(s.ends_at - s.starts_at == timedelta(minutes=90) for s in sessions)
    assert len({s.seat_pool_id for s in sessions}) == 1  # a course shares one pool
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "session.created", AuditEntry.actor_id == admin.id)
        )
        == 4
    )
    assert db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "offering.created")) is not None

    detail = client.get(f"/staff/admin/offerings/{offering.id}").get_data(as_text=True)
    for s in sessions:
        assert f"/staff/sessions/{s.id}" in detail  # roster links

    schedule = client.get("/").get_data(as_text=True)
    assert "Posture Reset Evenings" in schedule
    assert client.get(f"/offerings/{offering.slug}").status_code == 200


def test_slug_from_title_is_made_unique(client, db):
    location = make_location()
    make_offering(location, slug="core-strength", title="Core Strength")
    db.session.commit()
    login(client, db)
    token = token_from(client, "/staff/admin/offerings/new")
    response = client.post(
        "/staff/admin/offerings/new",
        data=offering_form(location.id, title="Core Strength", kind="class", csrf_token=token),
    )
    assert response.status_code == 302
    assert (
        db.session.scalar(sa.select(Offering.slug).order_by(Offering.id.desc()).limit(1)) == "core-strength-2"
    )


def test_bad_input_is_shown_on_the_form_and_nothing_is_created(client, db):
    location = make_location()
    db.session.commit()
    login(client, db)
    token = token_from(client, "/staff/admin/offerings/new")
    response = client.post(
        "/staff/admin/offerings/new",
        data=offering_form(location.id, title="", reminders="soon", csrf_token=token),
    )
    assert response.status_code == 400
    assert "Give it a title." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Offering)) == 0


def test_capacity_cannot_go_below_seats_taken_and_raising_it_offers_the_waitlist(client, db):
    location = make_location()
    offering = make_offering(location, OfferingKind.WORKSHOP, capacity=2, title="Desk Check")
    make_session(offering, upcoming_day(10))
    db.session.commit()
    reg.register(offering, None, Person("Ann", "ann@example.com"))
    reg.register(offering, None, Person("Bo", "bo@example.com"))
    waiting = reg.join_waitlist(offering, None, Person("Cy", "cy@example.com")).entry
    admin = login(client, db)

    url = f"/staff/admin/offerings/{offering.id}/edit"
    token = token_from(client, url)
    response = client.post(url, data=form_of(offering, capacity="1", title="Renamed", csrf_token=token))
    assert response.status_code == 400
    assert "2 seats are already taken; capacity can&#39;t go below that." in response.get_data(as_text=True)
    offering = fresh(db, Offering, offering.id)
    pool = db.session.scalar(sa.select(SeatPool).where(SeatPool.offering_id == offering.id))
    assert (offering.capacity, offering.title, pool.capacity) == (2, "Desk Check", 2)

    response = client.post(url, data=form_of(offering, capacity="3", csrf_token=token))
    assert response.status_code == 302
    pool = fresh(db, SeatPool, pool.id)
    assert (pool.capacity, db.session.get(Offering, offering.id).capacity) == (3, 3)
    assert db.session.get(WaitlistEntry, waiting.id).status == WaitlistStatus.OFFERED
    assert EmailKind.WAITLIST_OFFER in outbox_kinds(waitlist_entry_id=waiting.id)
    actions = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.actor_id == admin.id)).all()
    assert "offering.updated" in actions and "seat_pool.capacity_changed" in actions


def test_capacity_of_a_class_changes_every_dates_pool(client, db):
    location = make_location()
    offering = make_offering(location, OfferingKind.CLASS, capacity=5)
    make_session(offering, upcoming_day(3))
    make_session(offering, upcoming_day(10))
    db.session.commit()
    login(client, db)
    url = f"/staff/admin/offerings/{offering.id}/edit"
    response = client.post(url, data=form_of(offering, capacity="8", csrf_token=token_from(client, url)))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.scalars(
        sa.select(SeatPool.capacity).where(SeatPool.offering_id == offering.id)
    ).all() == [8, 8]


def pools_locked_now(app, pool_ids) -> list[bool]:
    """Which of these seat pools another connection finds locked right now (what a
    registration arriving at this moment would meet)."""
    import psycopg

    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    locked = []
    with psycopg.connect(url, autocommit=True) as other:
        for pool_id in pool_ids:
            try:
                other.execute("SELECT 1 FROM seat_pools WHERE id = %s FOR UPDATE NOWAIT", (pool_id,))
                locked.append(False)
            except psycopg.errors.LockNotAvailable:
                locked.append(True)
    return locked


@pytest.mark.real_commits  # the locks are looked at from a connection of its own
def test_a_capacity_change_holds_every_pool_until_it_commits(client, db, app, monkeypatch):
    """Lowering a class's capacity checks and changes each date's pool; while it works on the
    first, the others are locked already, so no registration can slip in and make the change
    half-done (some dates at the new capacity, the rest refused)."""
    location = make_location()
    offering = make_offering(location, OfferingKind.CLASS, capacity=5)
    make_session(offering, upcoming_day(3))
    make_session(offering, upcoming_day(10))
    db.session.commit()
    pool_ids = sorted(s.seat_pool_id for s in offering.sessions)
    locked_meanwhile = []
    real_resize = offerings.resize_locked_pool

    def resize_and_look(pool, capacity, now):
        locked_meanwhile.extend(pools_locked_now(app, pool_ids))
        real_resize(pool, capacity, now)

    monkeypatch.setattr(offerings, "resize_locked_pool", resize_and_look)
    login(client, db)
    edit = f"/staff/admin/offerings/{offering.id}/edit"
    response = client.post(edit, data=form_of(offering, capacity="3", csrf_token=token_from(client, edit)))
    assert response.status_code == 302
    assert locked_meanwhile == [True, True, True, True]
    db.session.expire_all()
    assert db.session.scalars(sa.select(SeatPool.capacity).where(SeatPool.id.in_(pool_ids))).all() == [3, 3]


@pytest.mark.real_commits  # the locks are looked at from a connection of its own
def test_cancelling_a_class_locks_every_pool_before_writing_anything(db, app, monkeypatch):
    """Changes that span several pools take them all first, in id order (as a capacity change
    does): taken one by one while cancelling, they could deadlock with a capacity change."""
    from events.staff import cancellations as staff_services

    location = make_location()
    offering = make_offering(location, OfferingKind.CLASS, capacity=5)
    sessions = [make_session(offering, upcoming_day(3)), make_session(offering, upcoming_day(10))]
    db.session.commit()
    for n, session in enumerate(sessions):
        reg.register(offering, session.id, Person(f"P {n}", f"p{n}@example.com"))
    pool_ids = sorted(s.seat_pool_id for s in sessions)
    seen = {}
    real_cancel_registrations = staff_services._cancel_registrations

    def look_then_cancel(*args, **kwargs):
        seen.update(zip(pool_ids, pools_locked_now(app, pool_ids), strict=True))
        return real_cancel_registrations(*args, **kwargs)

    monkeypatch.setattr(staff_services, "_cancel_registrations", look_then_cancel)
    admin = User(email="admin@clinic.example", name="Ada Admin", role=Role.ADMIN)
    db.session.add(admin)
    db.session.commit()
    staff_services.cancel_offering(offering.id, admin, "Instructor ill")
    assert seen == {pool_id: True for pool_id in pool_ids}
    db.session.expire_all()
    assert db.session.get(Offering, offering.id).is_cancelled


def test_cancelling_an_offering_tells_everyone(client, db):
    location = make_location()
    offering = make_offering(location, OfferingKind.WORKSHOP)
    make_session(offering, upcoming_day(5))
    db.session.commit()
    registration = reg.register(offering, None, Person("Ann", "ann@example.com")).registration
    login(client, db)
    token = token_from(client, f"/staff/admin/offerings/{offering.id}")
    response = client.post(
        f"/staff/admin/offerings/{offering.id}/cancel",
        data={"reason": "The room flooded", "csrf_token": token, "confirmed": "yes"},
    )
    assert response.status_code == 302
    assert fresh(db, Offering, offering.id).is_cancelled
    assert db.session.get(Registration, registration.id).status == RegistrationStatus.CANCELLED
    assert EmailKind.SESSION_CANCELLED in outbox_kinds(registration_id=registration.id)


# --- Locations and instructors ---


def test_locations_and_instructors_can_be_created_edited_and_deactivated(client, db):
    admin = login(client, db)
    token = token_from(client, "/staff/admin/locations/new")
    response = client.post(
        "/staff/admin/locations/new",
        data={
            "name": "Robbinsdale",
            "address_line1": "4123 W Broadway",
            "city": "Robbinsdale",
            "region": "MN",
            "postal_code": "55422",
            "country": "US",
            "timezone": "Mars/Olympus",
            "is_active": "y",
            "csrf_token": token,
        },
    )
    assert response.status_code == 400 and "isn&#39;t a time zone" in response.get_data(as_text=True)
    response = client.post(
        "/staff/admin/locations/new",
        data={
            "name": "Robbinsdale",
            "address_line1": "4123 W Broadway",
            "city": "Robbinsdale",
            "region": "MN",
            "postal_code": "55422",
            "country": "US",
            "timezone": "America/Chicago",
            "is_active": "y",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert db.session.scalars(sa.select(Location.slug)).all() == ["robbinsdale"]

    token = token_from(client, "/staff/admin/instructors/new")
    response = client.post(
        "/staff/admin/instructors/new",
        data={
            "name": "Maya Lindqvist",
            "email": "Maya@Clinic.example",
            "bio": "PT",
            "is_active": "y",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    maya = db.session.scalar(sa.select(User).where(User.email == "maya@clinic.example"))
    assert maya.role is Role.INSTRUCTOR and maya.password_hash == "" and maya.is_active
    assert "Maya Lindqvist" in client.get("/staff/admin/instructors").get_data(as_text=True)

    response = client.post(
        f"/staff/admin/instructors/{maya.id}/edit",
        data={
            "name": "Maya Lindqvist",
            "email": "maya@clinic.example",
            "bio": "Physical therapist",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert fresh(db, User, maya.id).bio == "Physical therapist"
    # Deactivating is its own confirmed action (tests/integration/test_staff_sessions.py).
    response = client.post(f"/staff/admin/instructors/{maya.id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 302
    assert fresh(db, User, maya.id).is_active is False
    # Someone else's email is refused.
    response = client.post(
        "/staff/admin/instructors/new",
        data={
            "name": "Copy",
            "email": admin.email,
            "is_active": "y",
            "csrf_token": token,
        },
    )
    assert response.status_code == 400 and "Another staff account uses that email." in response.get_data(
        as_text=True
    )


# --- Resources ---


def test_resource_upload_checks_content_and_size_and_serves_the_file(client, db, app):
    location = make_location()
    offering = make_offering(location)
    db.session.commit()
    login(client, db)
    page_url = f"/staff/admin/offerings/{offering.id}"
    url = f"/staff/admin/offerings/{offering.id}/resources/file"

    def upload(content: bytes, name: str):
        # Encoded in memory: the test client would spool a big body to a temporary file it never closes.
        boundary, body = encode_multipart(
            MultiDict(
                {
                    "title": "Handout",
                    "csrf_token": token_from(client, page_url),
                    "file": FileStorage(io.BytesIO(content), filename=name),
                }
            )
        )
        return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")

    fake = upload(b"This is only text, whatever the name says.", "exercises.pdf")
    assert fake.status_code == 400
    assert "Only PDF files and images" in fake.get_data(as_text=True)
    too_big = upload(b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024), "huge.pdf")
    assert too_big.status_code == 400
    assert "larger than 10 MB" in too_big.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Resource)) == 0

    ok = upload(REAL_PDF, "Back exercises (v2).pdf")
    assert ok.status_code == 302
    resource = db.session.scalar(sa.select(Resource))
    assert resource.content_type == "application/pdf"
    assert resource.original_filename == "Back exercises (v2).pdf"
    assert re.fullmatch(r"[0-9a-f]{32}\.pdf", resource.stored_filename)
    stored = Path(app.instance_path) / "uploads" / resource.stored_filename
    assert stored.read_bytes() == REAL_PDF

    key = resource.stored_filename.removesuffix(".pdf")
    with client.get(f"/resources/{key}/Back_exercises_v2.pdf") as served:
        assert served.status_code == 200
        assert served.mimetype == "application/pdf"
        assert served.data == REAL_PDF
        assert served.headers["Content-Disposition"].startswith("inline")
        assert "Back_exercises_v2.pdf" in served.headers["Content-Disposition"]
        assert served.headers["X-Content-Type-Options"] == "nosniff"
    # Attendees need no account; the admin page links the same address.
    with client.application.test_client().get(f"/resources/{key}/Back_exercises_v2.pdf") as anonymous:
        assert anonymous.status_code == 200
    assert f"/resources/{key}/Back_exercises_v2.pdf" in client.get(page_url).get_data(as_text=True)
    # The address is the random stored name: counting ids, guessing or near misses find nothing.
    near_miss = key[:-1] + ("1" if key[-1] == "0" else "0")
    for guess in (str(resource.id), str(resource.id + 1), near_miss, key.upper(), "%", key + ".pdf"):
        assert client.get(f"/resources/{guess}/Back_exercises_v2.pdf").status_code == 404, guess
    # A wrong or old file name goes to the right one.
    renamed = client.get(f"/resources/{key}/old-name.pdf")
    assert renamed.status_code == 302 and renamed.location.endswith(f"/resources/{key}/Back_exercises_v2.pdf")


def test_link_resources_must_be_http(client, db):
    offering = make_offering(make_location())
    db.session.commit()
    login(client, db)
    url = f"/staff/admin/offerings/{offering.id}/resources/link"
    token = token_from(client, f"/staff/admin/offerings/{offering.id}")
    bad = client.post(url, data={"title": "Video", "url": "javascript:alert(1)", "csrf_token": token})
    assert bad.status_code == 400
    good = client.post(
        url, data={"title": "Video", "url": "https://videos.example/stretch", "csrf_token": token}
    )
    assert good.status_code == 302
    assert db.session.scalars(sa.select(Resource.url)).all() == ["https://videos.example/stretch"]


# --- Refunds (against the Stripe emulator) ---


@pytest.fixture
def stripe_client(localstripe):
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})


def test_manual_partial_refund_records_a_refund_and_an_audit_row(client, db, stripe_client):
    from events.payments.refunds import execute_due_refunds
    from tests.integration.test_payments import SUCCESS, card_token, held_registration, pay

    registration = held_registration(db, price_cents=3000)
    _, paid = pay(client, registration, card_token(stripe_client, SUCCESS))
    assert paid.json["status"] == "succeeded"
    admin = login(client, db)
    url = f"/staff/admin/registrations/{registration.id}"
    token = token_from(client, url)

    response = client.post(
        f"{url}/refund",
        data={"amount": "12.50", "reason": "Left early", "csrf_token": token, "confirmed": "yes"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "Refund of $12.50 to " in client.get(response.location).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(sa.select(Refund.status)) == RefundStatus.PENDING
    assert EmailKind.REFUND_ISSUED not in outbox_kinds(registration_id=registration.id)
    execute_due_refunds()  # what the worker does after the commit
    db.session.expire_all()
    refund = db.session.scalar(sa.select(Refund))
    assert (refund.amount_cents, refund.status, refund.idempotency_key, refund.created_by_id) == (
        1250,
        RefundStatus.SUCCEEDED,
        f"manual-refund-{registration.id}-1",
        admin.id,
    )
    assert refund.stripe_refund_id
    assert db.session.scalar(sa.select(Payment)).amount_refunded_cents == 1250
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "refund.requested"))
    assert (entry.actor_id, entry.target_id, entry.details["amount_cents"]) == (
        admin.id,
        registration.id,
        1250,
    )
    assert EmailKind.REFUND_ISSUED in outbox_kinds(registration_id=registration.id)

    too_much = client.post(
        f"{url}/refund", data={"amount": "20.00", "reason": "More", "csrf_token": token, "confirmed": "yes"}
    )
    assert too_much.status_code == 400
    assert "At most $17.50 is left to refund." in too_much.get_data(as_text=True)
    second = client.post(
        f"{url}/refund", data={"amount": "17.50", "reason": "Rest", "csrf_token": token, "confirmed": "yes"}
    )
    assert second.status_code == 302
    execute_due_refunds()
    db.session.expire_all()
    assert sorted(db.session.scalars(sa.select(Refund.idempotency_key))) == [
        f"manual-refund-{registration.id}-1",
        f"manual-refund-{registration.id}-2",
    ]
    assert db.session.scalar(sa.select(Payment)).amount_refunded_cents == 3000


# --- Emails ---


def test_resend_and_retry_a_failed_email_requeue_the_same_row(client, db):
    offering = make_offering(make_location(), OfferingKind.WORKSHOP)
    make_session(offering, upcoming_day(5))
    db.session.commit()
    registration = reg.register(offering, None, Person("Ann", "ann@example.com")).registration
    email = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.registration_id == registration.id))
    email.status, email.attempts = EmailStatus.SENT, 1
    db.session.commit()
    login(client, db)

    token = token_from(client, f"/staff/admin/registrations/{registration.id}")
    response = client.post(f"/staff/admin/emails/{email.id}/resend", data={"csrf_token": token})
    assert response.status_code == 302
    email = fresh(db, OutboxEmail, email.id)
    assert (email.status, email.attempts) == (EmailStatus.PENDING, 0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 1

    email.status, email.attempts, email.last_error = EmailStatus.FAILED, 5, "550 mailbox unavailable"
    db.session.commit()
    page = client.get("/staff/admin/emails/failed").get_data(as_text=True)
    assert "550 mailbox unavailable" in page and "ann@example.com" in page
    response = client.post(
        f"/staff/admin/emails/{email.id}/resend", data={"csrf_token": csrf_token(page), "back": "failed"}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/admin/emails/failed")
    email = fresh(db, OutboxEmail, email.id)
    assert (email.status, email.attempts, email.last_error) == (EmailStatus.PENDING, 0, "")
    assert "No failed emails." in client.get("/staff/admin/emails/failed").get_data(as_text=True)
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "email.resent")
        )
        == 2
    )


# --- Registrations ---


def test_register_on_behalf_confirms_and_queues_the_confirmation(client, db):
    offering = make_offering(make_location(), OfferingKind.CLASS, title="Core Strength")
    session = make_session(offering, upcoming_day(4), time(18, 0))
    db.session.commit()
    admin = login(client, db)
    url = f"/staff/admin/offerings/{offering.id}/register"
    response = client.post(
        url,
        data={
            "name": "Dee Phone",
            "email": "dee@example.com",
            "phone": "612 555 0100",
            "session_id": str(session.id),
            "csrf_token": token_from(client, url),
        },
    )
    assert response.status_code == 302
    registration = db.session.scalar(sa.select(Registration))
    assert (registration.status, registration.source, registration.session_id) == (
        RegistrationStatus.CONFIRMED,
        "staff",
        session.id,
    )
    assert outbox_kinds(registration_id=registration.id) == [EmailKind.REGISTRATION_CONFIRMED]
    assert (
        db.session.scalar(
            sa.select(AuditEntry).where(AuditEntry.action == "registration.created_by_staff")
        ).actor_id
        == admin.id
    )

    found = client.get("/staff/admin/registrations?q=DEE").get_data(as_text=True)
    assert "Dee Phone" in found and "confirmed" in found
    assert "Dee Phone" not in client.get("/staff/admin/registrations?q=nobody").get_data(as_text=True)


def test_staff_register_someone_in_their_language_and_every_email_follows_it(client, db):
    """A Somali speaker booked by phone: staff pages stay English, but the booking remembers
    Somali and its confirmation is written in it. A language the clinic doesn't offer is refused."""
    from events.models import OutboxEmail
    from events.notifications.outbox import email_language

    offering = make_offering(make_location(), OfferingKind.WORKSHOP, title="Back Basics")
    make_session(offering, upcoming_day(4), time(18, 0))
    db.session.commit()
    login(client, db)
    url = f"/staff/admin/offerings/{offering.id}/register"
    form = client.get(url).get_data(as_text=True)
    assert ">Soomaali</option>" in form and ">Español</option>" in form
    refused = client.post(
        url,
        data={
            "name": "Xa",
            "email": "xa@example.com",
            "language": "xx",
            "csrf_token": token_from(client, url),
        },
    )
    assert refused.status_code == 400 and db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0

    response = client.post(
        url,
        data={
            "name": "Hodan Ali",
            "email": "hodan@example.com",
            "language": "so",
            "csrf_token": token_from(client, url),
        },
    )

    assert response.status_code == 302
    registration = db.session.scalar(sa.select(Registration))
    assert registration.language == "so"
    email = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.registration_id == registration.id))
    assert (email.kind, email_language(email)) == (EmailKind.REGISTRATION_CONFIRMED, "so")


# --- Security ---


def test_a_post_without_csrf_token_changes_nothing(client, db):
    location = make_location()
    offering = make_offering(location, capacity=4, title="Original")
    db.session.commit()
    login(client, db)
    assert client.post("/staff/admin/offerings/new", data=offering_form(location.id)).status_code == 400
    assert (
        client.post(
            f"/staff/admin/offerings/{offering.id}/edit",
            data=form_of(offering, title="Hacked", capacity="40"),
        ).status_code
        == 400
    )
    assert (
        client.post(f"/staff/admin/offerings/{offering.id}/cancel", data={"reason": "x"}).status_code == 400
    )
    db.session.expire_all()
    assert db.session.scalars(sa.select(Offering.title)).all() == ["Original"]
    offering = db.session.get(Offering, offering.id)
    assert (offering.capacity, offering.is_cancelled) == (4, False)


def test_instructors_and_strangers_get_no_admin_page(client, db, app):
    location = make_location()
    offering = make_offering(location)
    make_session(offering, upcoming_day(3))
    db.session.commit()
    registration = reg.register(offering, None, Person("Ann", "ann@example.com")).registration
    email_id = db.session.scalar(sa.select(OutboxEmail.id))
    instructor = make_instructor()
    db.session.commit()
    gets = [
        "/staff/admin/",
        "/staff/admin/offerings",
        "/staff/admin/offerings/new",
        f"/staff/admin/offerings/{offering.id}",
        f"/staff/admin/offerings/{offering.id}/edit",
        f"/staff/admin/offerings/{offering.id}/register",
        f"/staff/admin/offerings/{offering.id}/message",
        "/staff/admin/locations",
        "/staff/admin/locations/new",
        f"/staff/admin/locations/{location.id}/edit",
        "/staff/admin/instructors",
        "/staff/admin/instructors/new",
        f"/staff/admin/instructors/{instructor.id}/deactivate",
        f"/staff/admin/instructors/{instructor.id}/reactivate",
        "/staff/admin/registrations",
        f"/staff/admin/registrations/{registration.id}",
        f"/staff/admin/registrations/{registration.id}/cancel",
        f"/staff/admin/registrations/{registration.id}/transfer",
        f"/staff/admin/registrations/{registration.id}/details",
        f"/staff/admin/registrations/{registration.id}/desk-payment",
        "/staff/admin/emails/failed",
        "/staff/admin/clinic",
        f"/staff/admin/sessions/{offering.sessions[0].id}/move",
        f"/staff/admin/sessions/{offering.sessions[0].id}/substitute",
        f"/staff/admin/sessions/{offering.sessions[0].id}/cancel",
        "/staff/admin/consent",
        "/staff/admin/consent/new",
        "/staff/admin/consent/1",
        "/staff/admin/privacy",
        f"/staff/admin/registrations/{registration.id}/privacy/erase",
        "/staff/admin/pass-products",
        "/staff/admin/pass-products/new",
        "/staff/admin/pass-products/1",
        "/staff/admin/passes",
        "/staff/admin/passes/sell",
        "/staff/admin/passes/1",
        "/staff/admin/promo-codes",
        "/staff/admin/promo-codes/new",
        "/staff/admin/promo-codes/1/edit",
        "/staff/admin/tiers/1/edit",
    ]
    posts = [
        "/staff/admin/pass-products/new",
        "/staff/admin/pass-products/1",
        "/staff/admin/passes/sell",
        "/staff/admin/passes/1/adjust",
        "/staff/admin/passes/1/freeze",
        "/staff/admin/passes/1/refund",
        "/staff/admin/passes/1/resend",
        "/staff/admin/offerings/new",
        f"/staff/admin/offerings/{offering.id}/edit",
        f"/staff/admin/offerings/{offering.id}/sessions",
        f"/staff/admin/offerings/{offering.id}/cancel",
        f"/staff/admin/offerings/{offering.id}/resources/link",
        f"/staff/admin/offerings/{offering.id}/resources/file",
        f"/staff/admin/offerings/{offering.id}/register",
        f"/staff/admin/offerings/{offering.id}/message",
        f"/staff/admin/registrations/{registration.id}/refund",
        f"/staff/admin/registrations/{registration.id}/cancel",
        f"/staff/admin/registrations/{registration.id}/transfer",
        f"/staff/admin/registrations/{registration.id}/details",
        f"/staff/admin/registrations/{registration.id}/desk-payment",
        f"/staff/admin/registrations/{registration.id}/balance-link",
        "/staff/admin/refunds/1/retry",
        f"/staff/admin/emails/{email_id}/resend",
        "/staff/admin/locations/new",
        "/staff/admin/instructors/new",
        f"/staff/admin/instructors/{instructor.id}/deactivate",
        f"/staff/admin/instructors/{instructor.id}/reactivate",
        "/staff/admin/clinic",
        f"/staff/admin/sessions/{offering.sessions[0].id}/move",
        f"/staff/admin/sessions/{offering.sessions[0].id}/substitute",
        f"/staff/admin/sessions/{offering.sessions[0].id}/cancel",
        "/staff/admin/consent/new",
        "/staff/admin/consent/1/versions",
        "/staff/admin/consent/1/translations/es",
        f"/staff/admin/offerings/{offering.id}/translations/es",
        f"/staff/admin/registrations/{registration.id}/privacy/export",
        f"/staff/admin/registrations/{registration.id}/privacy/erase",
        f"/staff/admin/offerings/{offering.id}/tiers",
        "/staff/admin/tiers/1/remove",
        "/staff/admin/promo-codes/new",
        "/staff/admin/promo-codes/1/edit",
        "/staff/admin/promo-codes/1/active",
    ]
    stranger = app.test_client()
    for url in gets:
        assert stranger.get(url).status_code == 302, url  # to the sign-in page

    login(client, db, role=Role.INSTRUCTOR)
    token = token_from(client, "/staff/")
    for url in gets:
        assert client.get(url).status_code == 403, url
    for url in posts:
        assert client.post(url, data={"csrf_token": token}).status_code == 403, url
    # Every admin route is covered above.
    admin_rules = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/staff/admin")}
    assert len(admin_rules) == 61


def test_an_admin_sees_every_admin_page(client, db):
    location = make_location()
    offering = make_offering(location, OfferingKind.CLASS)
    make_session(offering, upcoming_day(3))
    maya = make_instructor()
    db.session.commit()
    registration = reg.register(
        offering, offering.sessions[0].id, Person("Ann", "ann@example.com")
    ).registration
    login(client, db)
    for url in [
        "/staff/admin/",
        "/staff/admin/offerings",
        "/staff/admin/offerings/new",
        f"/staff/admin/offerings/{offering.id}",
        f"/staff/admin/offerings/{offering.id}/edit",
        f"/staff/admin/offerings/{offering.id}/register",
        f"/staff/admin/offerings/{offering.id}/message",
        "/staff/admin/locations",
        "/staff/admin/locations/new",
        f"/staff/admin/locations/{location.id}/edit",
        "/staff/admin/instructors",
        "/staff/admin/instructors/new",
        f"/staff/admin/instructors/{maya.id}/edit",
        f"/staff/admin/instructors/{maya.id}/deactivate",
        f"/staff/admin/instructors/{maya.id}/reactivate",
        f"/staff/admin/registrations?offering_id={offering.id}",
        f"/staff/admin/registrations/{registration.id}",
        f"/staff/admin/registrations/{registration.id}/cancel",
        f"/staff/admin/registrations/{registration.id}/transfer",
        f"/staff/admin/registrations/{registration.id}/details",
        f"/staff/admin/registrations/{registration.id}/desk-payment",
        "/staff/admin/emails/failed",
        f"/staff/admin/sessions/{offering.sessions[0].id}/move",
        f"/staff/admin/sessions/{offering.sessions[0].id}/substitute",
        f"/staff/admin/sessions/{offering.sessions[0].id}/cancel",
        "/staff/admin/consent",
        "/staff/admin/consent/new",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
    assert 'href="/staff/admin/"' in client.get("/staff/").get_data(as_text=True)


def test_the_offerings_list_runs_the_same_sql_for_3_or_30_offerings(client, db, count_queries):
    """One query for the list and every status (a grouped subquery for each offering's last
    date), not a load of each offering's sessions: the count does not grow with offerings."""
    location = make_location()
    login(client, db)

    def add_offerings(n: int) -> None:
        for _ in range(n):
            offering = make_offering(location, is_published=True)
            make_session(offering, upcoming_day(3))
            make_session(offering, upcoming_day(10))
        db.session.commit()

    def statements_and_page() -> tuple[int, str]:
        with count_queries() as statements:
            response = client.get("/staff/admin/offerings")
        assert response.status_code == 200
        return len(statements), response.get_data(as_text=True)

    add_offerings(3)
    with_3, _ = statements_and_page()
    add_offerings(27)
    with_30, page = statements_and_page()
    assert with_30 == with_3
    # The control: the page did list all thirty, each with the status its dates give.
    assert page.count('status-published">published<') == 30
