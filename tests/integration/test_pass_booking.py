"""Booking with a class pass on PostgreSQL: credits spent in the seat's transaction, the
earliest-expiring pass first, once per person and date, and given back or forfeited by every
path that ends a booking (member, staff, clinic, move, no-show, transfer)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from events.models import (
    AttendanceStatus,
    AuditEntry,
    LedgerKind,
    OutboxEmail,
    Payment,
    Refund,
    RegistrationStatus,
    Role,
    SeatPool,
    User,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.passes import booking, ledger
from events.registration.services import Person, RegistrationError, cancel_registration, register
from events.staff import bookings as staff_bookings
from events.staff import cancellations, rosters
from events.staff.errors import AdminError
from tests.factories import make_clinic
from tests.passbook_helpers import ledger_kinds, ledger_sum, make_class, make_pass, make_product

ME = "pat.holder@example.com"


def person(email: str = ME) -> Person:
    return Person("Pat Holder", email, "612 555 0100", "en")


def admin(db) -> User:
    user = User(email="admin@clinic.example", name="Ada Admin", role=Role.ADMIN)
    db.session.add(user)
    db.session.flush()
    return user


def pool_of(offering) -> SeatPool:
    return offering.sessions[0].seat_pool


def test_booking_spends_a_credit_in_the_seat_transaction(db):
    make_clinic()
    cls = make_class()
    pass_ = make_pass(ME)
    db.session.commit()
    session = cls.sessions[0]

    result = booking.book_with_pass(cls, session.id, person())

    assert result.outcome is booking.Outcome.BOOKED
    reg = result.registration
    assert reg.status is RegistrationStatus.CONFIRMED and reg.price_cents == 0
    assert (reg.pass_id, reg.credits_spent, reg.source) == (pass_.id, 1, "pass")
    assert ledger.balance(pass_.id) == 9 == ledger_sum(pass_.id)
    assert pool_of(cls).seats_taken == 1
    kinds = db.session.scalars(sa.select(OutboxEmail.kind).where(OutboxEmail.registration_id == reg.id)).all()
    assert kinds == [EmailKind.REGISTRATION_CONFIRMED]
    assert db.session.scalar(
        sa.select(AuditEntry.id).where(
            AuditEntry.action == "registration.booked_with_pass", AuditEntry.target_id == reg.id
        )
    )
    assert db.session.scalar(sa.select(sa.func.count(Payment.id))) == 0
    assert booking.staff_pass_label(reg).startswith("Class pass: 1 credit (9 of 10 left, expires ")


def test_a_second_try_is_already_booked_and_spends_nothing(db):
    make_clinic()
    cls = make_class()
    pass_ = make_pass(ME)
    db.session.commit()
    first = booking.book_with_pass(cls, cls.sessions[0].id, person())
    again = booking.book_with_pass(cls, cls.sessions[0].id, person("PAT.holder@example.com "))
    assert again.outcome is booking.Outcome.ALREADY_BOOKED
    assert again.registration.id == first.registration.id
    assert ledger.balance(pass_.id) == 9
    assert pool_of(cls).seats_taken == 1


def test_the_earliest_expiring_usable_pass_pays(db):
    make_clinic()
    cls = make_class(credits=2)
    now = utcnow()
    later = make_pass(ME, expires_at=now + timedelta(days=80))
    sooner = make_pass(ME, expires_at=now + timedelta(days=20))
    nearly_empty = make_pass(ME, make_product(credits=1), expires_at=now + timedelta(days=5))  # 1 < 2
    wrong_kind = make_pass(ME, make_product(kinds="workshop"), expires_at=now + timedelta(days=2))
    frozen = make_pass(ME, expires_at=now + timedelta(days=3))
    frozen.frozen_since = now
    db.session.commit()

    result = booking.book_with_pass(cls, cls.sessions[0].id, person())

    assert result.class_pass.id == sooner.id
    assert ledger.balance(sooner.id) == 8  # the class costs two credits
    assert [ledger.balance(p.id) for p in (later, nearly_empty, wrong_kind, frozen)] == [10, 1, 10, 10]


def test_no_usable_pass_takes_no_seat(db):
    make_clinic()
    cls = make_class()
    expired = make_pass(ME, expires_at=utcnow() - timedelta(days=1))
    db.session.commit()
    result = booking.book_with_pass(cls, cls.sessions[0].id, person())
    assert result.outcome is booking.Outcome.NO_PASS
    assert pool_of(cls).seats_taken == 0
    assert ledger.balance(expired.id) == 10
    # Someone else's pass is not this address's.
    make_pass("someone.else@example.com")
    db.session.commit()
    assert booking.book_with_pass(cls, cls.sessions[0].id, person()).outcome is booking.Outcome.NO_PASS


def test_a_full_class_spends_nothing(db):
    make_clinic()
    cls = make_class(capacity=1)
    pass_ = make_pass(ME)
    db.session.commit()
    register(cls, cls.sessions[0].id, Person("Other", "other@example.com"))
    result = booking.book_with_pass(cls, cls.sessions[0].id, person())
    assert result.outcome is booking.Outcome.FULL
    assert ledger.balance(pass_.id) == 10


def _book(cls, email=ME, index=0):
    result = booking.book_with_pass(cls, cls.sessions[index].id, person(email))
    assert result.outcome is booking.Outcome.BOOKED, result
    return result.registration


def test_member_cancels_in_time_and_gets_the_credit_back(db):
    make_clinic()
    cls = make_class(days=5)
    pass_ = make_pass(ME)
    db.session.commit()
    reg = _book(cls)
    cancel_registration(reg.id, expected_refund_cents=0)
    assert ledger.balance(pass_.id) == 10
    assert ledger_kinds(pass_.id) == [LedgerKind.PURCHASE, LedgerKind.SPEND, LedgerKind.RETURN]
    assert db.session.scalar(sa.select(sa.func.count(Refund.id))) == 0
    cancelled = db.session.scalar(
        sa.select(OutboxEmail).where(
            OutboxEmail.registration_id == reg.id, OutboxEmail.kind == EmailKind.REGISTRATION_CANCELLED
        )
    )
    assert cancelled.context["credits_back"] == 1


def test_member_cancels_late_and_the_credit_stays_spent(db):
    make_clinic()
    cls = make_class(days=5)
    pass_ = make_pass(ME)
    db.session.commit()
    reg = _book(cls)
    late = cls.sessions[0].starts_at - timedelta(hours=2)  # cut-off: 24 hours before
    cancel_registration(reg.id, now=late)
    assert ledger.balance(pass_.id) == 9
    assert ledger_kinds(pass_.id)[-1] is LedgerKind.FORFEIT
    assert pool_of(cls).seats_taken == 0


def test_a_moved_class_gives_the_credit_back_even_late(db):
    make_clinic()
    cls = make_class(days=5)
    pass_ = make_pass(ME)
    db.session.commit()
    reg = _book(cls)
    cls.sessions[0].moved_at = utcnow() + timedelta(seconds=1)  # the clinic moved it after booking
    db.session.commit()
    cancel_registration(reg.id, now=cls.sessions[0].starts_at - timedelta(hours=1))
    assert ledger.balance(pass_.id) == 10


def test_the_clinic_cancelling_gives_every_credit_back(db):
    make_clinic()
    cls = make_class(days=1, capacity=5)
    actor = admin(db)
    passes = [make_pass(f"holder{i}@example.com") for i in range(3)]
    db.session.commit()
    for p in passes:
        _book(cls, p.email)
    card = register(cls, cls.sessions[0].id, Person("Card Payer", "card@example.com")).registration
    assert card.status is RegistrationStatus.HELD
    cancellations.cancel_session(cls.sessions[0].id, actor, "Instructor ill")
    assert [ledger.balance(p.id) for p in passes] == [10, 10, 10]
    assert pool_of(cls).seats_taken == 0
    # Running it again gives nothing more back.
    cancellations.cancel_session(cls.sessions[0].id, actor, "Instructor ill")
    assert [ledger_sum(p.id) for p in passes] == [10, 10, 10]


@pytest.mark.parametrize(
    ("choice", "late", "balance"),
    [
        (staff_bookings.RefundChoice.FULL, True, 10),
        (staff_bookings.RefundChoice.POLICY, False, 10),
        (staff_bookings.RefundChoice.POLICY, True, 9),
        (staff_bookings.RefundChoice.NONE, False, 9),
    ],
)
def test_staff_cancel_gives_back_or_forfeits_by_the_choice(db, choice, late, balance, monkeypatch):
    make_clinic()
    cls = make_class(days=1 if late else 5)
    actor = admin(db)
    pass_ = make_pass(ME)
    db.session.commit()
    reg = _book(cls)
    if late:
        cls.cancellation_cutoff_hours = 72  # the class is within its cut-off now
        db.session.commit()
    staff_bookings.cancel_booking(reg.id, choice, "Asked at the desk", actor, 0)
    assert ledger.balance(pass_.id) == balance == ledger_sum(pass_.id)
    assert ledger_kinds(pass_.id)[-1] is (LedgerKind.RETURN if balance == 10 else LedgerKind.FORFEIT)


def test_a_no_show_forfeits_once(db):
    make_clinic()
    cls = make_class(days=1)
    actor = admin(db)
    pass_ = make_pass(ME)
    db.session.commit()
    reg = _book(cls)
    session = cls.sessions[0]
    now = session.starts_at + timedelta(minutes=10)
    rosters.mark_attendance(session, reg.id, AttendanceStatus.ABSENT, actor, now=now)
    rosters.mark_attendance(session, reg.id, AttendanceStatus.ABSENT, actor, now=now)
    assert ledger_kinds(pass_.id) == [LedgerKind.PURCHASE, LedgerKind.SPEND, LedgerKind.FORFEIT]
    assert ledger.balance(pass_.id) == 9


def test_a_transfer_keeps_the_spend_when_the_credits_match_and_refuses_otherwise(db):
    make_clinic()
    cls = make_class(days=5, dates=2)
    dearer = make_class(days=6, credits=2)
    actor = admin(db)
    pass_ = make_pass(ME)
    db.session.commit()
    reg = _book(cls)
    with pytest.raises(AdminError, match="costs 2"):
        staff_bookings.transfer_quote(reg, dearer.id, dearer.sessions[0].id)
    with pytest.raises(AdminError, match="costs 2"):
        staff_bookings.transfer_booking(reg.id, dearer.id, dearer.sessions[0].id, "asked", actor, 0)
    quote = staff_bookings.transfer_quote(reg, cls.id, cls.sessions[1].id)
    assert quote.difference_cents == 0
    moved = staff_bookings.transfer_booking(reg.id, cls.id, cls.sessions[1].id, "asked", actor, 0).new
    assert (moved.pass_id, moved.credits_spent, moved.price_cents) == (pass_.id, 1, 0)
    assert ledger.balance(pass_.id) == 9
    cancel_registration(moved.id)  # in time: the credit comes back once
    assert ledger.balance(pass_.id) == 10
    assert ledger_kinds(pass_.id) == [LedgerKind.PURCHASE, LedgerKind.SPEND, LedgerKind.RETURN]


def _counts(db) -> dict[str, int]:
    def count(model) -> int:
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))

    return {
        "outbox": count(OutboxEmail),
        "payments": count(Payment),
        "refunds": count(Refund),
        "audit": count(AuditEntry),
    }


def test_booking_and_cancelling_in_time_leaves_everything_as_before_plus_audit(db):
    """Seats, the pass's balance and the emails are as a free booking cancelled in time leaves
    them (a confirmation, a cancellation); the only other rows are the audit's and the ledger's."""
    make_clinic()
    cls = make_class(days=5)
    free = make_class(days=5, price_cents=0)
    pass_ = make_pass(ME)
    db.session.commit()
    before = _counts(db)
    balance_before = ledger.balance(pass_.id)

    reg = _book(cls)
    cancel_registration(reg.id)
    with_pass = _counts(db)

    free_reg = register(free, free.sessions[0].id, Person("Pat Holder", ME)).registration
    cancel_registration(free_reg.id)
    with_free = _counts(db)

    assert pool_of(cls).seats_taken == 0 == pool_of(free).seats_taken
    assert ledger.balance(pass_.id) == balance_before == ledger_sum(pass_.id)
    assert with_pass["outbox"] - before["outbox"] == with_free["outbox"] - with_pass["outbox"] == 2
    assert with_pass["payments"] == before["payments"] and with_pass["refunds"] == before["refunds"]
    assert with_pass["audit"] - before["audit"] == 1  # booked_with_pass
    kinds = db.session.scalars(
        sa.select(OutboxEmail.kind).where(OutboxEmail.registration_id == reg.id).order_by(OutboxEmail.id)
    ).all()
    assert kinds == [EmailKind.REGISTRATION_CONFIRMED, EmailKind.REGISTRATION_CANCELLED]


def test_deleting_my_data_gives_an_on_time_pass_booking_its_credit_back(db):
    from events.models import PrivacyAction
    from events.privacy import erase
    from events.privacy import requests as privacy_requests

    make_clinic()
    cls = make_class(days=5)
    pass_ = make_pass(ME)
    db.session.commit()
    reg = _book(cls)
    now = utcnow()
    request = privacy_requests.staff_request(PrivacyAction.ERASE, now)
    result = erase.erase(ME, request, now, registration_id=reg.id)
    assert result.cancelled == 1
    # The credit comes back first; then the pass itself is closed with everything unused
    # refunded (privacy covers passes: events/privacy/erase.py), so nothing is left on it.
    assert ledger_kinds(pass_.id)[-2:] == [LedgerKind.RETURN, LedgerKind.REFUND]
    assert result.passes_closed == 1
    assert ledger.balance(pass_.id) == 0 == ledger_sum(pass_.id)
    assert pool_of(cls).seats_taken == 0


def test_a_free_class_is_not_paid_with_credits(db):
    make_clinic()
    free = make_class(price_cents=0)
    pass_ = make_pass(ME)
    db.session.commit()
    with pytest.raises(RegistrationError, match="free"):
        booking.book_with_pass(free, free.sessions[0].id, person())
    assert ledger.balance(pass_.id) == 10
    assert booking.bookable_sessions(pass_) == []
