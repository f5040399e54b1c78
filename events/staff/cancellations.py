"""The clinic calls off a session or a whole offering: everyone is told, refunded in full and
their seats freed, in one transaction that holds the seat pools first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from events import audit
from events.extensions import db
from events.models import (
    SEAT_TAKING_STATUSES,
    WAITLIST_ACTIVE_STATUSES,
    Offering,
    RefundKind,
    Registration,
    RegistrationStatus,
    Session,
    SessionStatus,
    User,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_email
from events.payments import refunds
from events.registration import seats
from events.registration.services import mark_cancelled, succeeded_payment
from events.staff.rosters import registrations_covering


def _cancel_registrations(
    registrations: Iterable[Registration], actor: User, reason: str, key: str, session_id: int | None
) -> int:
    """Cancel, refund in full whatever is left of what was paid, and tell each person the amount
    actually queued. The caller holds the seat pools (in id order). Returns refunds queued."""
    queued = 0
    now = utcnow()
    for registration in registrations:
        if registration.status not in (RegistrationStatus.CONFIRMED, RegistrationStatus.HELD):
            continue
        pool = seats.lock_pool(registration.seat_pool_id)
        payment = succeeded_payment(registration)
        refund_cents = 0
        if payment is not None:
            _, refund_cents = refunds.queue_refund(
                payment.id,
                payment.amount_cents,  # capped at what is left (refunds issued or pending count)
                kind=RefundKind.CLINIC_CANCELLATION,
                key=f"{key}-registration-{registration.id}",
                reason=reason,
                actor_id=actor.id,
            )
            queued += 1 if refund_cents else 0
        mark_cancelled(registration, reason, now)
        # The session is already cancelled, so the freed seat is offered to nobody.
        seats.free_seat(pool, now)
        queue_email(
            EmailKind.SESSION_CANCELLED,
            registration=registration,
            session_id=session_id,
            context={"refund_cents": refund_cents, "currency": registration.currency, "reason": reason[:300]},
        )
        audit.record(
            actor.id, "registration.cancelled", "registration", registration.id, refund_cents=refund_cents
        )
    return queued


def _clear_waitlist(pool_id: int, actor: User) -> None:
    entries = db.session.scalars(
        sa.select(WaitlistEntry).where(
            WaitlistEntry.seat_pool_id == pool_id, WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES)
        )
    ).all()
    pool = seats.lock_pool(pool_id)
    now = utcnow()
    for entry in entries:
        held_a_seat = entry.status == WaitlistStatus.OFFERED
        entry.status = WaitlistStatus.LEFT
        if held_a_seat:
            seats.free_seat(pool, now)
    if entries:
        audit.record(actor.id, "waitlist.cleared", "seat_pool", pool_id, entries=len(entries))


def cancel_session(session_id: int, actor: User, reason: str) -> int:
    """Cancel one session. A class's registrations are cancelled and refunded in full; for a
    workshop or course, everyone is told, and if no other session remains the whole offering is
    cancelled. Running it again does nothing more. Returns the number of refunds queued."""
    session = db.session.get_one(Session, session_id)
    seats.lock_pool(session.seat_pool_id)
    db.session.refresh(session)
    if session.status == SessionStatus.CANCELLED:
        db.session.commit()
        return 0
    session.status = SessionStatus.CANCELLED
    session.cancel_reason = reason[:400]
    audit.record(actor.id, "session.cancelled", "session", session.id, reason=reason[:200])
    offering = session.offering
    refunds = 0
    if offering.kind.per_session:
        registrations = db.session.scalars(registrations_covering(session)).all()
        refunds = _cancel_registrations(
            registrations, actor, reason, f"cancel-session-{session.id}", session.id
        )
        _clear_waitlist(session.seat_pool_id, actor)
    else:
        remaining = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Session)
            .where(
                Session.offering_id == offering.id,
                Session.status == SessionStatus.SCHEDULED,
                Session.id != session.id,
            )
        )
        if remaining == 0:
            refunds = _cancel_offering(offering, actor, reason)
        else:
            for registration in db.session.scalars(
                registrations_covering(session).where(Registration.status == RegistrationStatus.CONFIRMED)
            ):
                queue_email(
                    EmailKind.SESSION_CANCELLED,
                    registration=registration,
                    session_id=session.id,
                    context={"refund_cents": 0, "currency": registration.currency, "reason": reason[:300]},
                )
    db.session.commit()
    return refunds


def _cancel_offering(offering: Offering, actor: User, reason: str) -> int:
    offering.is_cancelled = True
    audit.record(actor.id, "offering.cancelled", "offering", offering.id, reason=reason[:200])
    for session in offering.sessions:
        session.status = SessionStatus.CANCELLED
    registrations = db.session.scalars(
        sa.select(Registration).where(Registration.offering_id == offering.id).order_by(Registration.id)
    ).all()
    refunds = _cancel_registrations(registrations, actor, reason, f"cancel-offering-{offering.id}", None)
    for pool_id in {s.seat_pool_id for s in offering.sessions}:
        _clear_waitlist(pool_id, actor)
    return refunds


def cancel_offering(offering_id: int, actor: User, reason: str) -> int:
    seats.lock_offering_pools(offering_id)
    offering = db.session.get_one(Offering, offering_id)
    db.session.refresh(offering)
    if offering.is_cancelled:
        db.session.commit()
        return 0
    refunds = _cancel_offering(offering, actor, reason)
    db.session.commit()
    return refunds


@dataclass(frozen=True)
class CancelPreview:
    """What cancelling one session would do, for its confirmation page (a quote: the cancel
    itself counts again under the locks)."""

    people: int  # registrations told
    refunds: int  # refunds queued
    refund_cents: int  # their total
    cancels_offering: bool  # its last scheduled date: the whole offering is called off


def _others_scheduled(session: Session) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Session)
            .where(
                Session.offering_id == session.offering_id,
                Session.status == SessionStatus.SCHEDULED,
                Session.id != session.id,
            )
        )
        or 0
    )


def preview_cancel_session(session: Session) -> CancelPreview:
    offering = session.offering
    cancels_offering = not offering.kind.per_session and _others_scheduled(session) == 0
    if offering.kind.per_session or cancels_offering:
        query = (
            registrations_covering(session)
            if offering.kind.per_session
            else sa.select(Registration).where(Registration.offering_id == offering.id)
        )
        registrations = db.session.scalars(query.where(Registration.status.in_(SEAT_TAKING_STATUSES))).all()
        amounts = [refunds.refundable_remaining(succeeded_payment(r)) for r in registrations]
        return CancelPreview(len(registrations), sum(1 for a in amounts if a), sum(amounts), cancels_offering)
    told = db.session.scalar(
        sa.select(sa.func.count()).select_from(
            registrations_covering(session)
            .where(Registration.status == RegistrationStatus.CONFIRMED)
            .subquery()
        )
    )
    return CancelPreview(told or 0, 0, 0, False)
