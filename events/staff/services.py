"""Rosters, check-in, CSV export and cancellations, for instructors and admins."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from events.extensions import db
from events.models import (
    SEAT_TAKING_STATUSES,
    WAITLIST_ACTIVE_STATUSES,
    Attendance,
    AttendanceStatus,
    Offering,
    Payment,
    PaymentStatus,
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
from events.registration import seats
from events.staff import audit


def instructor_of(session: Session) -> int | None:
    return session.instructor_id or session.offering.instructor_id


def visible_session(user: User, session_id: int) -> Session | None:
    """The session if this user may see its roster: admins all, instructors their own."""
    session = db.session.get(Session, session_id)
    if session is None:
        return None
    if user.is_admin or instructor_of(session) == user.id:
        return session
    return None


def upcoming_sessions_for(user: User, now: datetime | None = None, days_back: int = 1) -> list[Session]:
    """Today's and upcoming sessions: an instructor's own, or all of them for an admin."""
    now = now or utcnow()
    query = (
        sa.select(Session)
        .join(Session.offering)
        .where(Session.ends_at >= now - timedelta(days=days_back))
        .options(joinedload(Session.offering), joinedload(Session.location), joinedload(Session.seat_pool))
        .order_by(Session.starts_at)
        .limit(200)
    )
    if not user.is_admin:
        query = query.where(
            sa.or_(
                Session.instructor_id == user.id,
                sa.and_(Session.instructor_id.is_(None), Offering.instructor_id == user.id),
            )
        )
    return list(db.session.scalars(query).unique())


@dataclass
class RosterLine:
    registration: Registration
    attendance: AttendanceStatus | None
    paid_cents: int
    refunded_cents: int

    @property
    def payment_label(self) -> str:
        if self.paid_cents == 0:
            return "free"
        if self.refunded_cents >= self.paid_cents:
            return "refunded"
        if self.refunded_cents:
            return "partly refunded"
        return "paid"


def _registrations_query(session: Session) -> sa.Select[tuple[Registration]]:
    """Registrations that cover this session: its class's own, or the whole offering's."""
    query = sa.select(Registration).where(Registration.seat_pool_id == session.seat_pool_id)
    if session.offering.kind.per_session:
        query = query.where(Registration.session_id == session.id)
    return query


def paid_and_refunded(registration_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Cents paid and refunded per registration (succeeded payments), in one query."""
    return {
        rid: (paid, refunded)
        for rid, paid, refunded in db.session.execute(
            sa.select(
                Payment.registration_id,
                sa.func.sum(Payment.amount_cents),
                sa.func.sum(Payment.amount_refunded_cents),
            )
            .where(Payment.registration_id.in_(registration_ids), Payment.status == PaymentStatus.SUCCEEDED)
            .group_by(Payment.registration_id)
        ).all()
    }


def roster(session: Session) -> tuple[list[RosterLine], list[WaitlistEntry]]:
    registrations = db.session.scalars(
        _registrations_query(session)
        .where(Registration.status.in_((*SEAT_TAKING_STATUSES, RegistrationStatus.CANCELLED.value)))
        .order_by(Registration.status, sa.func.lower(Registration.name))
    ).all()
    ids = [r.id for r in registrations]
    attendance = dict(
        db.session.execute(
            sa.select(Attendance.registration_id, Attendance.status).where(
                Attendance.session_id == session.id, Attendance.registration_id.in_(ids)
            )
        )
        .tuples()
        .all()
    )
    money = paid_and_refunded(ids)
    lines = [RosterLine(r, attendance.get(r.id), *money.get(r.id, (0, 0))) for r in registrations]
    waitlist = db.session.scalars(
        sa.select(WaitlistEntry)
        .where(
            WaitlistEntry.seat_pool_id == session.seat_pool_id,
            WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES),
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    ).all()
    return lines, list(waitlist)


class RosterError(Exception):
    pass


def mark_attendance(
    session: Session, registration_id: int, status: AttendanceStatus, actor: User
) -> Attendance:
    registration = db.session.scalar(
        _registrations_query(session).where(
            Registration.id == registration_id, Registration.status == RegistrationStatus.CONFIRMED
        )
    )
    if registration is None:
        raise RosterError("That person isn't on this roster.")
    row = db.session.scalar(
        sa.select(Attendance).where(
            Attendance.registration_id == registration_id, Attendance.session_id == session.id
        )
    )
    if row is None:
        row = Attendance(registration_id=registration_id, session_id=session.id, status=status)
        db.session.add(row)
    row.status = status
    row.marked_at = utcnow()
    row.marked_by_id = actor.id
    audit.record(
        actor.id, f"attendance.{status.value}", "registration", registration_id, session_id=session.id
    )
    db.session.commit()
    return row


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: quote them as text."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def roster_csv(session: Session) -> str:
    lines, waitlist = roster(session)
    zone = session.location.zone
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Name", "Email", "Phone", "Status", "Payment", "Attendance", "Registered at"])
    for line in lines:
        r = line.registration
        writer.writerow(
            [
                csv_safe(r.name),
                csv_safe(r.email),
                csv_safe(r.phone),
                r.status.value,
                line.payment_label,
                line.attendance.value if line.attendance else "",
                r.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            ]
        )
    for position, entry in enumerate(waitlist, start=1):
        writer.writerow(
            [
                csv_safe(entry.name),
                csv_safe(entry.email),
                csv_safe(entry.phone),
                f"waitlist #{position}",
                "",
                "",
                "",
            ]
        )
    # A byte-order mark so Excel opens UTF-8 names correctly.
    return "\ufeff" + out.getvalue()


# --- Cancelling by the clinic ---


def _cancel_registrations(
    registrations: Iterable[Registration], actor: User, reason: str, key: str, session_id: int | None
) -> int:
    """Cancel, refund in full whatever is left of what was paid, and tell each person the amount
    actually queued. The caller holds the seat pools (in id order). Returns refunds queued."""
    from events.payments.refunds import queue_refund
    from events.registration.services import succeeded_payment

    refunds = 0
    now = utcnow()
    for registration in registrations:
        if registration.status not in (RegistrationStatus.CONFIRMED, RegistrationStatus.HELD):
            continue
        pool = seats.lock_pool(registration.seat_pool_id)
        payment = succeeded_payment(registration)
        refund_cents = 0
        if payment is not None:
            _, refund_cents = queue_refund(
                payment.id,
                payment.amount_cents,  # capped at what is left (refunds issued or pending count)
                key=f"{key}-registration-{registration.id}",
                reason=reason,
                actor_id=actor.id,
            )
            refunds += 1 if refund_cents else 0
        registration.status = RegistrationStatus.CANCELLED
        registration.cancelled_at = now
        registration.cancel_reason = reason[:400]
        registration.hold_expires_at = None
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
    return refunds


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
        registrations = db.session.scalars(_registrations_query(session)).all()
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
                _registrations_query(session).where(Registration.status == RegistrationStatus.CONFIRMED)
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


# --- Accounts ---


def set_password(user: User, password: str) -> None:
    user.set_password(password)
    audit.record(user.id, "user.password_changed", "user", user.id)
    db.session.commit()


def request_password_reset(email: str) -> bool:
    """Queue a reset email if the address belongs to an active staff account."""
    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active:
        return False
    # The link itself is signed when the email is rendered, so no live token sits in the database.
    queue_email(EmailKind.PASSWORD_RESET, user=user, key_parts=(utcnow().strftime("%Y%m%d%H%M%S"),))
    db.session.commit()
    return True
