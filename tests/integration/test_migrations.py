"""The migrations build a working schema on a fresh SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import json
import os
import secrets
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy.exc import IntegrityError

from events.app import create_app
from events.extensions import db
from events.models import (
    Payment,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
    SeatPool,
    include_object_on,
)
from tests.factories import make_location, make_offering

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _app(url: str):
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "test",
            "RATELIMIT_ENABLED": False,
        }
    )


@pytest.fixture
def sqlite_app(tmp_path):
    app = _app(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def postgresql_app():
    name = f"events_migrations_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    app = _app(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request):
    """An app whose fresh, empty database has just been upgraded to the latest migration."""
    app = request.getfixturevalue(f"{request.param}_app")
    with app.app_context():
        upgrade()
        yield app
        db.session.rollback()


def test_every_table_exists_at_the_head_revision(migrated):
    tables = set(sa.inspect(db.engine).get_table_names())
    assert tables == set(db.metadata.tables) | {"alembic_version"}
    heads = ScriptDirectory.from_config(migrated.extensions["migrate"].migrate.get_config()).get_heads()
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)


def test_the_migrations_match_the_models(migrated):
    """No model change is missing a migration (autogenerate would find nothing to do)."""
    with db.engine.connect() as conn:
        opts = {"compare_type": True, "include_object": include_object_on(conn.dialect.name)}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_the_refund_kind_migration_names_existing_refunds_by_their_keys(migrated):
    """0006 replaced a key-prefix convention with a column: rows made before it get the kind
    their key was built with (and the CHECK refuses any other value)."""
    pool = _pool()
    registration = _registration(pool, "paid@example.com", RegistrationStatus.CONFIRMED)
    payment = Payment(
        registration_id=registration.id,
        stripe_payment_intent_id="pi_migrated",
        amount_cents=6000,
        currency="usd",
        status=PaymentStatus.SUCCEEDED,
    )
    db.session.add(payment)
    db.session.flush()
    keys = {
        f"cancel-registration-{registration.id}": RefundKind.CANCELLATION,
        f"cancel-session-7-registration-{registration.id}": RefundKind.CLINIC_CANCELLATION,
        f"cancel-offering-3-registration-{registration.id}": RefundKind.CLINIC_CANCELLATION,
        f"manual-refund-{registration.id}-1": RefundKind.MANUAL,
        "unplaced-payment-pi_migrated": RefundKind.UNPLACED_PAYMENT,
        "stripe-re_from_the_dashboard": RefundKind.MIRRORED,
    }
    for key in keys:
        # Written as the code did before 0006 (no kind); the kind is what the migration must find.
        db.session.add(
            Refund(
                payment_id=payment.id,
                idempotency_key=key,
                kind=RefundKind.CANCELLATION,
                amount_cents=1000,
                status=RefundStatus.SUCCEEDED,
            )
        )
    db.session.commit()
    downgrade(revision="0005_bigint_ids")
    assert "kind" not in {c["name"] for c in sa.inspect(db.engine).get_columns("refunds")}
    upgrade()
    db.session.expire_all()
    found = dict(db.session.execute(sa.select(Refund.idempotency_key, Refund.kind)).tuples().all())
    assert found == keys
    with pytest.raises(IntegrityError):
        db.session.execute(sa.text("UPDATE refunds SET kind = 'goodwill'"))
    db.session.rollback()


def test_the_audit_subjects_migration_fills_the_new_columns_from_older_entries(migrated):
    """0012 copied each entry's offering and registration out of its details (or found the
    offering through what it is about), so the offering filter and a registration's history
    find entries recorded before it."""
    pool = _pool()
    registration = _registration(pool, "audited@example.com", RegistrationStatus.CONFIRMED)
    db.session.commit()
    offering, registration_id = pool.offering_id, registration.id
    db.session.remove()
    downgrade(revision="0011_search_indexes")
    older = [
        # (target_type, target_id, details) as recorded before 0012
        ("registration", registration_id, {}),  # its offering found through the registration
        ("offering", offering, {"title": "Yoga"}),
        ("outbox_email", 77, {"registration_id": registration_id, "offering_id": offering}),
        ("registration", 5, {"new_registration_id": registration_id, "offering_id": offering}),
        ("location", 3, {"name": "North"}),
    ]
    with db.engine.begin() as conn:
        for target_type, target_id, details in older:
            conn.execute(
                sa.text(
                    "INSERT INTO audit_entries (action, target_type, target_id, details, created_at) "
                    "VALUES ('x.y', :t, :i, :d, CURRENT_TIMESTAMP)"
                ),
                {"t": target_type, "i": target_id, "d": json.dumps(details)},
            )
    upgrade()
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT target_type, offering_id, registration_id FROM audit_entries ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("registration", offering, registration_id),
        ("offering", offering, None),
        ("outbox_email", offering, registration_id),
        ("registration", offering, registration_id),
        ("location", None, None),
    ]


def test_the_consent_translations_migration_keeps_acceptances_and_says_they_were_in_english(migrated):
    """0026 adds the translations table and each acceptance's language; acceptances made before
    it were given on the English text, so they read 'en'. Down and up again on both databases."""
    pool = _pool()
    registration = _registration(pool, "consent@example.com", RegistrationStatus.CONFIRMED)
    db.session.commit()
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO consent_documents (id, title, created_at) "
                "VALUES (1, 'Release', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO consent_versions (id, document_id, number, body, published_at) "
                "VALUES (1, 1, 1, 'Text', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO consent_translations (version_id, language, title, body, published_at) "
                "VALUES (1, 'es', 'Exoneración', 'Texto', CURRENT_TIMESTAMP)"
            )
        )
    registration_id = registration.id
    db.session.remove()
    downgrade(revision="0024_tier_translations")
    inspector = sa.inspect(db.engine)
    assert "consent_translations" not in inspector.get_table_names()
    assert "language" not in {c["name"] for c in inspector.get_columns("consent_acceptances")}
    with db.engine.begin() as conn:  # an acceptance made before 0026, as the code then wrote it
        conn.execute(
            sa.text(
                "INSERT INTO consent_acceptances (registration_id, consent_version_id, accepted_at, method) "
                "VALUES (:r, 1, CURRENT_TIMESTAMP, 'online')"
            ),
            {"r": registration_id},
        )
    upgrade()
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT language FROM consent_acceptances")).scalars().all() == ["en"]
        assert conn.execute(sa.text("SELECT COUNT(*) FROM consent_translations")).scalar() == 0
    with pytest.raises(IntegrityError), db.engine.begin() as conn:  # one translation per version and language
        for _ in range(2):
            conn.execute(
                sa.text(
                    "INSERT INTO consent_translations (version_id, language, title, body, published_at) "
                    "VALUES (1, 'so', 'T', 'B', CURRENT_TIMESTAMP)"
                )
            )


def _pool(capacity=2, seats_taken=0) -> SeatPool:
    offering = make_offering(make_location())
    pool = SeatPool(offering=offering, capacity=capacity, seats_taken=seats_taken)
    db.session.add(pool)
    db.session.flush()
    return pool


def _registration(pool: SeatPool, email: str, status: RegistrationStatus) -> Registration:
    registration = Registration(
        seat_pool=pool,
        offering=pool.offering,
        name="A Person",
        email=email,
        email_normalized=email.lower(),
        status=status,
        token=secrets.token_urlsafe(16),
    )
    db.session.add(registration)
    db.session.flush()
    return registration


def test_a_seat_pool_cannot_be_overbooked(migrated):
    pool = _pool(capacity=2, seats_taken=2)  # full is fine
    db.session.commit()
    pool.seats_taken = 3
    with pytest.raises(IntegrityError, match="never_overbooked"):
        db.session.flush()
    db.session.rollback()

    with pytest.raises(IntegrityError, match="never_overbooked"):
        _pool(capacity=5, seats_taken=6)
    db.session.rollback()

    with pytest.raises(IntegrityError, match="seats_taken_not_negative"):
        _pool(capacity=5, seats_taken=-1)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SeatPool)) == 1


def test_one_live_registration_per_email_and_pool(migrated):
    pool = _pool(capacity=10)
    other_pool = _pool(capacity=10)
    _registration(pool, "sam@example.com", RegistrationStatus.CONFIRMED)
    db.session.commit()

    for status in (RegistrationStatus.CONFIRMED, RegistrationStatus.HELD):
        # PostgreSQL names the index; SQLite names its columns.
        with pytest.raises(IntegrityError, match="uq_registrations_active_email|seat_pool_id, registrations"):
            _registration(pool, "sam@example.com", status)
        db.session.rollback()

    # The same person in another pool, and someone else in this one, are fine.
    _registration(other_pool, "sam@example.com", RegistrationStatus.CONFIRMED)
    _registration(pool, "alex@example.com", RegistrationStatus.HELD)
    db.session.commit()


def test_a_cancelled_registration_frees_the_email(migrated):
    pool = _pool(capacity=10)
    first = _registration(pool, "sam@example.com", RegistrationStatus.CONFIRMED)
    db.session.commit()
    first.status = RegistrationStatus.CANCELLED
    db.session.commit()

    _registration(pool, "sam@example.com", RegistrationStatus.EXPIRED)
    _registration(pool, "sam@example.com", RegistrationStatus.CONFIRMED)
    db.session.commit()
    statuses = db.session.scalars(
        sa.select(Registration.status).where(Registration.email_normalized == "sam@example.com")
    ).all()
    assert sorted(s.value for s in statuses) == ["cancelled", "confirmed", "expired"]


def test_enum_and_check_constraints_hold_in_plain_sql(migrated):
    _pool()
    db.session.commit()
    offering_id = db.session.scalar(sa.text("SELECT id FROM offerings"))
    db.session.rollback()  # SQLite: release the write lock before writing on another connection
    with pytest.raises(IntegrityError):
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE offerings SET kind = 'yoga' WHERE id = :id"), {"id": offering_id})
    with pytest.raises(IntegrityError):
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE offerings SET price_cents = -1 WHERE id = :id"), {"id": offering_id})
    with pytest.raises(IntegrityError):
        with db.engine.begin() as conn:
            # A session must end after it starts.
            conn.execute(
                sa.text(
                    "INSERT INTO sessions (offering_id, location_id, seat_pool_id, starts_at, ends_at, "
                    "status, cancel_reason) SELECT o.id, o.location_id, p.id, '2030-01-01 10:00', "
                    "'2030-01-01 09:00', 'scheduled', '' FROM offerings o "
                    "JOIN seat_pools p ON p.offering_id = o.id"
                )
            )
    assert db.session.scalar(sa.text("SELECT kind FROM offerings")) == "workshop"


def test_foreign_keys_are_enforced(migrated):
    with pytest.raises(IntegrityError):
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO seat_pools (offering_id, capacity, seats_taken, version) "
                    "VALUES (424242, 1, 0, 0)"
                )
            )
