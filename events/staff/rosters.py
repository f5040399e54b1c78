"""Rosters, check-in and the CSV export, for instructors (their own sessions) and admins."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from events import audit
from events.extensions import db
from events.models import (
    SEAT_TAKING_STATUSES,
    WAITLIST_ACTIVE_STATUSES,
    Attendance,
    AttendanceStatus,
    Offering,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Registration,
    RegistrationStatus,
    Session,
    User,
    WaitlistEntry,
    utcnow,
)
from events.staff.errors import RosterError


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
    method: PaymentMethod | None = None

    @property
    def payment_label(self) -> str:
        return payment_label(self.registration, self.paid_cents, self.refunded_cents, self.method)


def payment_label(
    registration: Registration, paid_cents: int, refunded_cents: int, method: PaymentMethod | None = None
) -> str:
    """How a registration stands for money, in a word or two (rosters, CSV, the admin's list).
    `method`: how its payment was taken, when at the desk ("paid (cash)", "comp")."""
    if method is PaymentMethod.COMP:
        return "comp"
    if method is not None and method.at_desk and paid_cents:
        how = f" ({method.value})"
        if refunded_cents >= paid_cents:
            return f"refunded{how}"
        return f"partly refunded{how}" if refunded_cents else f"paid{how}"
    if paid_cents == 0:
        if not registration.price_cents:
            return "free"
        # Owing only while it holds its seat; a cancelled or lapsed one simply paid nothing.
        return "unpaid" if registration.status in SEAT_TAKING_STATUSES else "no payment"
    if refunded_cents >= paid_cents:
        return "refunded"
    if refunded_cents:
        return "partly refunded"
    return "paid"


def registrations_covering(session: Session) -> sa.Select[tuple[Registration]]:
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


def desk_methods(registration_ids: list[int]) -> dict[int, PaymentMethod]:
    """How each registration paid at the desk (cash, check, comp), for those that did."""
    return dict(
        db.session.execute(
            sa.select(Payment.registration_id, Payment.method).where(
                Payment.registration_id.in_(registration_ids),
                Payment.status == PaymentStatus.SUCCEEDED,
                Payment.method != PaymentMethod.CARD,
            )
        )
        .tuples()
        .all()
    )


def roster(session: Session) -> tuple[list[RosterLine], list[WaitlistEntry]]:
    registrations = db.session.scalars(
        registrations_covering(session)
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
    methods = desk_methods(ids)
    lines = [
        RosterLine(r, attendance.get(r.id), *money.get(r.id, (0, 0)), methods.get(r.id))
        for r in registrations
    ]
    waitlist = db.session.scalars(
        sa.select(WaitlistEntry)
        .where(
            WaitlistEntry.seat_pool_id == session.seat_pool_id,
            WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES),
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    ).all()
    return lines, list(waitlist)


def mark_attendance(
    session: Session, registration_id: int, status: AttendanceStatus, actor: User
) -> Attendance:
    registration = db.session.scalar(
        registrations_covering(session).where(
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
