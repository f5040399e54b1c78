"""Retention: exactly the people whose last session ended before the cut-off are anonymised
(the day before and the day after, a person with an old and a recent booking, walk-ins
without an address, waitlist places), the rows stay for the counts and the money, and an
anonymised row blocks no one (the one-per-email rule, unique indexes)."""

from __future__ import annotations

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
    Registration,
    RegistrationStatus,
    WaitlistEntry,
    utcnow,
)
from events.privacy import anonymise, retention
from events.registration.services import Person, join_waitlist, register
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day


def _offering_ending(db, ends_at, title="Back Spasms: What to Do First", capacity=10, **kw):
    """A workshop with one session that ended (or ends) at `ends_at`."""
    offering = make_offering(make_location(), title=title, capacity=capacity, **kw)
    session = make_session(offering, upcoming_day(3))
    session.starts_at = ends_at - timedelta(hours=1)
    session.ends_at = ends_at
    db.session.commit()
    return offering


def _book(offering, name, email, phone="612-555-0100"):
    start = offering.sessions[0].starts_at
    result = register(offering, None, Person(name, email, phone), now=start - timedelta(days=2))
    assert result.registration is not None and result.registration.status == RegistrationStatus.CONFIRMED
    return result.registration


@pytest.fixture
def now():
    return utcnow()


def test_months_are_calendar_months():
    moment = utcnow().replace(year=2026, month=3, day=31)
    assert retention.months_before(moment, 1).day == 28
    assert retention.months_before(moment, 24).year == 2024 and retention.months_before(moment, 24).month == 3


def test_retention_anonymises_exactly_the_people_past_the_cut_off(app, db, now):
    make_clinic()
    cutoff = retention.retention_cutoff(now)
    assert cutoff.year == now.year - 2  # the default: 24 months
    old = _offering_ending(db, cutoff - timedelta(days=1))
    recent = _offering_ending(db, cutoff + timedelta(days=1))
    older = _offering_ending(db, cutoff - timedelta(days=30))
    future = make_offering(make_location(), title="Knee Strength")
    make_session(future, upcoming_day(5))
    full_old = _offering_ending(db, cutoff - timedelta(days=3), capacity=1)
    db.session.commit()

    day_before = _book(old, "Ana Old", "ana.old@example.com")  # ended the day before the cut-off
    day_after = _book(recent, "Bo Recent", "bo.recent@example.com")  # ended the day after
    kept_old = _book(older, "Cy Both", "cy.both@example.com")  # old, but...
    kept_new = register(
        future, None, Person("Cy Both", "CY.both@example.com")
    ).registration  # ...a recent one
    walk_in = _book(old, "Dee Walk-in", "dee@example.com")
    walk_in.email = walk_in.email_normalized = ""  # a walk-in who gave no address: a person of their own
    _book(full_old, "Eve Seat", "eve@example.com")
    start = full_old.sessions[0].starts_at
    entry = join_waitlist(
        full_old, None, Person("Fay Waiting", "fay@example.com"), now=start - timedelta(days=1)
    ).entry
    assert entry is not None
    # What staff typed about Ana: a desk payment's note and an audited refund's reason.
    payment = Payment(
        registration_id=day_before.id,
        method=PaymentMethod.CASH,
        amount_cents=2500,
        currency="usd",
        status=PaymentStatus.SUCCEEDED,
        note="Ana Old paid cash, her back is worse",
        paid_at=now,
    )
    db.session.add(payment)
    audit.record_about(
        None, "registration.details_corrected", day_before, fields=["phone"], reason="Ana called"
    )
    db.session.commit()

    run = retention.anonymise_expired(now)
    assert run is not None
    db.session.expire_all()
    anonymised = set(
        db.session.scalars(sa.select(Registration.id).where(Registration.anonymised_at.is_not(None)))
    )
    eve = db.session.scalar(
        sa.select(Registration).where(
            Registration.name == "Anonymised", Registration.offering_id == full_old.id
        )
    )
    assert eve is not None
    assert anonymised == {day_before.id, walk_in.id, eve.id}
    assert run.registrations == 3 and run.waitlist_entries == 1 and run.people == 4

    ana = db.session.get(Registration, day_before.id)
    assert (ana.name, ana.email, ana.phone) == ("Anonymised", "", "")
    assert ana.email_normalized == f"anonymised:r{ana.id}"
    assert ana.status == RegistrationStatus.CONFIRMED and ana.price_cents == old.price_cents  # counts stay
    paid = db.session.get(Payment, payment.id)
    assert (paid.amount_cents, paid.status, paid.method) == (
        2500,
        PaymentStatus.SUCCEEDED,
        PaymentMethod.CASH,
    )
    assert paid.note == anonymise.PLACEHOLDER_TEXT
    for row in db.session.scalars(sa.select(OutboxEmail).where(OutboxEmail.registration_id == ana.id)):
        assert row.to_email == ""
    details = db.session.scalar(
        sa.select(AuditEntry.details).where(
            AuditEntry.registration_id == ana.id, AuditEntry.actor_id.is_(None)
        )
    )
    assert (
        details["name"] == "Anonymised"
        and details["reason"] == "[removed]"
        and details["fields"] == ["phone"]
    )
    fay = db.session.get(WaitlistEntry, entry.id)
    assert (fay.name, fay.email, fay.email_normalized) == ("Anonymised", "", f"anonymised:w{fay.id}")

    for kept in (day_after, kept_old, kept_new):
        row = db.session.get(Registration, kept.id)
        assert row.anonymised_at is None and row.name in ("Bo Recent", "Cy Both"), row.name
    # The trail says what happened, in words; a second run finds nothing more.
    entry_row = db.session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "privacy.retention_anonymised")
    )
    assert entry_row.details["people"] == 4
    again = retention.anonymise_expired(now)
    assert again is not None and (again.registrations, again.waitlist_entries) == (0, 0)


def test_the_day_boundary_moves_with_the_setting(app, db, now, monkeypatch):
    make_clinic()
    twelve_months_ago = retention.months_before(now, 12)
    offering = _offering_ending(db, twelve_months_ago - timedelta(hours=1))
    person = _book(offering, "Gil", "gil@example.com")
    retention.anonymise_expired(now)
    assert db.session.get(Registration, person.id).anonymised_at is None  # 24 months: kept
    monkeypatch.setitem(app.config, "RETENTION_MONTHS", 12)
    retention.anonymise_expired(now)
    db.session.expire_all()
    assert db.session.get(Registration, person.id).anonymised_at is not None


def test_anonymised_rows_block_no_one_and_break_no_unique_index(app, db, now):
    make_clinic()
    offering = make_offering(make_location(), title="Neck Care", capacity=5)
    make_session(offering, upcoming_day(4))
    db.session.commit()
    first = register(offering, None, Person("Hal", "hal@example.com")).registration
    second = register(offering, None, Person("Ida", "ida@example.com")).registration
    # Two live rows of the same pool anonymised (say, both erased): distinct placeholders.
    anonymise.anonymise_registrations([first.id, second.id], now)
    db.session.commit()
    db.session.expire_all()
    assert (
        db.session.get(Registration, first.id).email_normalized
        != db.session.get(Registration, second.id).email_normalized
    )
    # The real person registering again with that address is a new registration, not "already registered".
    again = register(offering, None, Person("Hal", "hal@example.com"))
    assert again.outcome.value == "confirmed" and again.registration.id not in (first.id, second.id)


def test_the_preview_says_who_goes_next_and_when(app, db, now):
    make_clinic()
    cutoff = retention.retention_cutoff(now)
    _book(_offering_ending(db, cutoff - timedelta(days=2)), "Jo", "jo@example.com")
    later = _offering_ending(db, cutoff + timedelta(days=10))
    _book(later, "Kim", "kim@example.com")
    _book(later, "Lee", "lee@example.com")
    preview = retention.preview(now)
    assert (preview.due_now, preview.due_now_rows) == (1, 1)
    [day] = [d for d in preview.days if d.people == 2]
    assert day.last_session_day == (cutoff + timedelta(days=10)).date()
    assert day.anonymised_on == retention.months_after(day.last_session_day, 24)
    assert preview.next_run > now


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory):
    """The embedded default: the same statements must run on SQLite."""
    from flask_migrate import upgrade

    from events.app import create_app
    from events.extensions import db as _db

    path = tmp_path_factory.mktemp("sqlite-privacy") / "events.sqlite3"
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SECRET_KEY": "t",
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def test_retention_export_and_erase_run_on_sqlite(sqlite_app):
    from events.extensions import db as _db
    from events.models import PrivacyAction
    from events.privacy import erase, export, requests
    from tests.privacy_dump import rows_holding

    with sqlite_app.test_request_context():
        now = utcnow()
        make_clinic()
        cutoff = retention.retention_cutoff(now)
        old = _offering_ending(_db, cutoff - timedelta(days=1))
        _book(old, "Sol Old", "sol@example.com")
        upcoming = make_offering(make_location(), title="Knee Strength", price_cents=0)
        make_session(upcoming, upcoming_day(5))
        _db.session.commit()
        register(upcoming, None, Person("Tia Now", "tia@example.com", "612-555-0123"))
        run = retention.anonymise_expired(now)
        assert run is not None and run.registrations == 1
        assert retention.preview(now).due_now == 0
        assert [r["name"] for r in export.data_for("tia@example.com")["registrations"]] == ["Tia Now"]
        request = requests.staff_request(PrivacyAction.ERASE, now)
        result = erase.erase("tia@example.com", request, now)
        assert result.cancelled == 1
        found = rows_holding(["Tia Now", "612-555-0123", "Sol Old", "sol@example.com"])
        assert found == {}, found
        held = rows_holding(["tia@example.com"])
        assert list(held) == ["outbox_emails"]  # the confirmation, until it is sent
        _db.session.remove()


@pytest.mark.real_commits  # the sender marks rows sent on a connection of its own
def test_stored_email_files_go_with_the_person(app, db, now, monkeypatch, tmp_path):
    """The embedded mail default keeps a .eml per email: anonymising deletes hers, not others'."""
    from events.notifications.delivery import deliver_due

    monkeypatch.setitem(app.config, "MAIL_SERVER", None)
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    make_clinic()
    offering = make_offering(make_location(), title="Neck Care")
    make_session(offering, upcoming_day(4))
    db.session.commit()
    hers = register(offering, None, Person("Uma Stored", "uma@example.com", "612-555-0177")).registration
    register(offering, None, Person("Val Other", "val@example.com"))
    assert deliver_due().sent == 2
    files = sorted(tmp_path.glob("outbox-*.eml"))
    assert len(files) == 2 and any("Uma Stored" in f.read_text(errors="replace") for f in files)
    anonymise.anonymise_registrations([hers.id], now)
    db.session.commit()
    left = sorted(tmp_path.glob("outbox-*.eml"))
    assert len(left) == 1 and "Val Other" in left[0].read_text(errors="replace")
