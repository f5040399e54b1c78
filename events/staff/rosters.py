"""Rosters, check-in and the CSV export, for instructors (their own sessions) and admins."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from events import audit
from events.consent import services as consent
from events.extensions import db
from events.filters import format_short_day, format_time, zone_name
from events.models import (
    SEAT_TAKING_STATUSES,
    WAITLIST_ACTIVE_STATUSES,
    Attendance,
    AttendanceStatus,
    ConsentVersion,
    Offering,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundKind,
    Registration,
    RegistrationSource,
    RegistrationStatus,
    Session,
    SessionStatus,
    User,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.passes import ledger
from events.pricing import pricing_label
from events.registration import seats
from events.registration.services import Person, end_waitlist_place, find_live_registration, waitlist_place
from events.staff.errors import CheckinClosed, RosterError, RosterRefusal


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
    # Booked without the current version of the offering's consent document (staff booked
    # them, a walk-in, booked before the document existed or changed): ask at check-in.
    needs_consent: bool = False
    # The language of the consent text they accepted (None: not accepted, or none asked).
    consent_language: str | None = None

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
    if registration.pass_id is not None and registration.credits_spent:
        credits = registration.credits_spent
        return f"class pass ({credits} credit{'s' if credits != 1 else ''})"
    if paid_cents == 0:
        if not registration.price_cents:
            return "free"
        # Owing only while it holds its seat; a cancelled or lapsed one simply paid nothing.
        return "unpaid" if registration.status in SEAT_TAKING_STATUSES else "no payment"
    if refunded_cents >= paid_cents:
        return "refunded"
    if refunded_cents:
        return "partly refunded"
    if paid_cents < registration.price_cents and registration.status in SEAT_TAKING_STATUSES:
        return "part paid"  # a transfer onto a dearer date: the rest is due at the desk
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
            .where(
                Payment.registration_id.in_(registration_ids),
                Payment.status == PaymentStatus.SUCCEEDED,
                # A balance paid twice (or after the desk took it): the extra one, sent back
                # whole, paid for nothing and is no part of how the booking stands.
                sa.not_(
                    sa.and_(
                        Payment.purpose == PaymentPurpose.BALANCE,
                        Payment.id.in_(
                            sa.select(Refund.payment_id).where(Refund.kind == RefundKind.UNPLACED_PAYMENT)
                        ),
                    )
                ),
            )
            .group_by(Payment.registration_id)
        ).all()
    }


def desk_methods(registration_ids: list[int]) -> dict[int, PaymentMethod]:
    """How each registration paid at the desk (cash, check, comp), for those that did."""
    return dict(
        db.session.execute(
            sa.select(sa.cast(Payment.registration_id, sa.BigInteger), Payment.method).where(
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
    version = consent.required_version(session.offering)
    accepted = consent.accepted_languages(ids, version) if version else {}
    lines = [
        RosterLine(
            r,
            attendance.get(r.id),
            *money.get(r.id, (0, 0)),
            methods.get(r.id),
            needs_consent=version is not None and r.id not in accepted,
            consent_language=accepted.get(r.id),
        )
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


def local_when(session: Session) -> str:
    """'Tue Dec 1, 6 pm CST': a session's start as audit details and messages name it."""
    start = session.local_start
    return f"{format_short_day(start)}, {format_time(start)} {zone_name(start)}"


@dataclass(frozen=True)
class CheckinWindow:
    """When a session's check-in is open: from CHECKIN_OPENS_MINUTES_BEFORE its start to the end
    of its day in its location's zone (plus CHECKIN_CLOSES_DAYS_AFTER days). UTC, aware."""

    opens: datetime
    closes: datetime
    session: Session

    def refusal(self, now: datetime) -> str | None:
        """Why check-in is closed now, for the person at the door; None while it is open."""
        zone = self.session.location.zone
        if now < self.opens:
            opens = self.opens.astimezone(zone)
            return (
                f"Check-in opens {format_short_day(opens)} at {format_time(opens)} {zone_name(opens)}, "
                f"{minutes_text(current_app.config['CHECKIN_OPENS_MINUTES_BEFORE'])} before the start."
            )
        if now >= self.closes:
            closed = (self.closes - timedelta(seconds=1)).astimezone(zone)
            return f"Check-in for this session closed at the end of {format_short_day(closed)}."
        return None


def minutes_text(minutes: int) -> str:
    if minutes == 60:
        return "an hour"
    if minutes % 60 == 0:
        return f"{minutes // 60} hours"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def checkin_window(session: Session) -> CheckinWindow:
    config = current_app.config
    zone = session.location.zone
    last_day = session.local_start.date() + timedelta(days=config["CHECKIN_CLOSES_DAYS_AFTER"] + 1)
    # Midnight in the zone (a DST day is 23 or 25 hours long: from the date, not +24 h).
    closes = datetime.combine(last_day, time(0), tzinfo=zone)
    opens = session.starts_at - timedelta(minutes=config["CHECKIN_OPENS_MINUTES_BEFORE"])
    return CheckinWindow(opens, closes.astimezone(opens.tzinfo), session)


def checkin_refusal(session: Session, now: datetime) -> str | None:
    """Why this session's check-in (and adding walk-ins) is closed now; None while it is open."""
    if session.status != SessionStatus.SCHEDULED:
        return "This session was cancelled: there is no check-in."
    return checkin_window(session).refusal(now)


def _require_checkin_open(session: Session, now: datetime) -> None:
    refusal = checkin_refusal(session, now)
    if refusal:
        raise CheckinClosed(refusal)


@dataclass(frozen=True)
class HereCount:
    """'7 of 12 here': checked in, of the people confirmed for the session."""

    present: int
    expected: int

    @property
    def text(self) -> str:
        return f"{self.present} of {self.expected} here"


def here_count(session: Session) -> HereCount:
    confirmed = registrations_covering(session).where(Registration.status == RegistrationStatus.CONFIRMED)
    expected = db.session.scalar(sa.select(sa.func.count()).select_from(confirmed.subquery())) or 0
    present = (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Attendance)
            .where(
                Attendance.session_id == session.id,
                Attendance.status == AttendanceStatus.PRESENT,
                Attendance.registration_id.in_(confirmed.with_only_columns(Registration.id)),
            )
        )
        or 0
    )
    return HereCount(present, expected)


@dataclass
class RosterPage:
    """The roster as the phone shows it: who is coming, then (collapsed) who cancelled and who waits."""

    lines: list[RosterLine]  # confirmed and held, matching the search
    cancelled: list[RosterLine]
    waitlist: list[WaitlistEntry]
    count: HereCount
    checkin_refusal: str | None  # why check-in is closed now (None: open)
    query: str
    consent_version: ConsentVersion | None = None  # what booking asks for now (None: nothing)

    @property
    def consent_missing(self) -> int:
        """How many confirmed people have not accepted the current consent version."""
        return sum(
            1
            for line in self.lines
            if line.needs_consent and line.registration.status == RegistrationStatus.CONFIRMED
        )

    @property
    def searching(self) -> bool:
        return bool(self.query)


def matches(name: str, query: str) -> bool:
    return query.casefold() in name.casefold()


def roster_page(session: Session, query: str = "", now: datetime | None = None) -> RosterPage:
    """The roster, its count and check-in window; `query` keeps the names containing it (the
    page filters as one types too; this is the same search without JavaScript)."""
    query = query.strip()[:120]
    lines, waitlist = roster(session)
    live = [line for line in lines if line.registration.status.value in SEAT_TAKING_STATUSES]
    cancelled = [line for line in lines if line.registration.status == RegistrationStatus.CANCELLED]
    if query:
        live = [line for line in live if matches(line.registration.name, query)]
    # Counted from the lines already read: confirmed people and their present marks.
    confirmed = [line for line in lines if line.registration.status == RegistrationStatus.CONFIRMED]
    present = sum(1 for line in confirmed if line.attendance == AttendanceStatus.PRESENT)
    refusal = checkin_refusal(session, now or utcnow())
    return RosterPage(
        live,
        cancelled,
        waitlist,
        HereCount(present, len(confirmed)),
        refusal,
        query,
        consent.required_version(session.offering),
    )


def roster_registration(session: Session, registration_id: int) -> Registration:
    """A confirmed person on this session's roster; RosterError if not."""
    return _roster_registration(session, registration_id)


def _roster_registration(session: Session, registration_id: int) -> Registration:
    registration = db.session.scalar(
        registrations_covering(session).where(
            Registration.id == registration_id, Registration.status == RegistrationStatus.CONFIRMED
        )
    )
    if registration is None:
        raise RosterError("That person isn't on this roster.")
    return registration


def mark_attendance(
    session: Session,
    registration_id: int,
    status: AttendanceStatus,
    actor: User,
    now: datetime | None = None,
) -> Attendance:
    """Mark someone here or absent, while the session's check-in is open."""
    now = now or utcnow()
    registration = _roster_registration(session, registration_id)
    _require_checkin_open(session, now)
    row = db.session.scalar(
        sa.select(Attendance).where(
            Attendance.registration_id == registration_id, Attendance.session_id == session.id
        )
    )
    if row is None:
        row = Attendance(registration_id=registration_id, session_id=session.id, status=status)
        db.session.add(row)
    row.status = status
    row.marked_at = now
    row.marked_by_id = actor.id
    if status is AttendanceStatus.ABSENT and registration.pass_id is not None:
        # A no-show keeps a class pass booking's credits spent (a row of zero, recorded once).
        ledger.forfeit(registration, now, reason="No-show")
    audit.record(
        actor.id,
        f"attendance.{status.value}",
        "registration",
        registration_id,
        session_id=session.id,
        offering_id=session.offering_id,
        name=registration.name,
        offering_title=session.offering.title,
        session_start=local_when(session),
    )
    db.session.commit()
    return row


def clear_attendance(
    session: Session, registration_id: int, actor: User, now: datetime | None = None
) -> AttendanceStatus | None:
    """Undo a mark (tapped on the wrong name): neither here nor absent. Returns the mark removed."""
    now = now or utcnow()
    registration = _roster_registration(session, registration_id)
    _require_checkin_open(session, now)
    row = db.session.scalar(
        sa.select(Attendance).where(
            Attendance.registration_id == registration_id, Attendance.session_id == session.id
        )
    )
    if row is None:
        db.session.commit()
        return None
    previous = row.status
    db.session.delete(row)
    audit.record(
        actor.id,
        "attendance.cleared",
        "registration",
        registration_id,
        session_id=session.id,
        offering_id=session.offering_id,
        name=registration.name,
        offering_title=session.offering.title,
        session_start=local_when(session),
        previous=previous.value,
    )
    db.session.commit()
    return previous


def add_walk_in(session: Session, person: Person, actor: User, now: datetime | None = None) -> Registration:
    """Someone who turns up without booking: a confirmed registration (source walk_in), checked
    in at once, taking a seat under the pool's lock. We never oversell, walk-ins included: a
    full session refuses (staff can raise the capacity first). At a paid class they owe the
    price (the roster says "unpaid"); email and phone are optional."""
    now = now or utcnow()
    try:
        _require_checkin_open(session, now)
    except CheckinClosed as closed:
        raise RosterRefusal(f"Walk-ins are added while check-in is open. {closed}") from None
    offering = session.offering
    if offering.is_cancelled:
        raise RosterRefusal("This offering was cancelled.")
    pool = seats.lock_pool(session.seat_pool_id)
    seats.release_lapsed(pool, now)
    email_normalized = person.email_normalized
    if email_normalized and find_live_registration(pool.id, email_normalized) is not None:
        raise RosterRefusal("Someone with that email is already on this roster.", "email")
    # On the waitlist: a seat offered to them becomes this one. Their place ends only once the
    # seat is certain (a full session refuses them, and they keep it).
    place = waitlist_place(pool, email_normalized) if email_normalized else None
    if (place is None or place.status != WaitlistStatus.OFFERED) and pool.seats_taken >= pool.capacity:
        raise RosterRefusal(
            f"The session is full ({pool.seats_taken} of {pool.capacity} seats taken), so nobody "
            "can be added. An admin can raise the capacity first."
        )
    registration = Registration(
        seat_pool_id=pool.id,
        offering_id=offering.id,
        session_id=session.id if offering.kind.per_session else None,
        name=person.name,
        email=person.email.strip(),
        email_normalized=email_normalized,
        phone=person.phone,
        status=RegistrationStatus.CONFIRMED,
        price_cents=offering.price_cents,
        currency=offering.currency,
        confirmed_at=now,
        token=secrets.token_urlsafe(24),
        source=RegistrationSource.WALK_IN,
    )
    offered = end_waitlist_place(place)
    if offered is None:
        seats.take_seat(pool)
    db.session.add(registration)
    try:
        db.session.flush()
    except IntegrityError:  # the same address added at the same moment by someone else
        raise RosterRefusal("Someone with that email is already on this roster.", "email") from None
    if offered is not None:
        offered.registration_id = registration.id
    db.session.add(
        Attendance(
            registration_id=registration.id,
            session_id=session.id,
            status=AttendanceStatus.PRESENT,
            marked_at=now,
            marked_by_id=actor.id,
        )
    )
    audit.record(
        actor.id,
        "registration.walk_in",
        "registration",
        registration.id,
        session_id=session.id,
        offering_id=offering.id,
        name=registration.name,
        offering_title=offering.title,
        session_start=local_when(session),
        price_cents=registration.price_cents,
        email_given=bool(email_normalized),
    )
    db.session.commit()
    return registration


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
    writer.writerow(["Name", "Email", "Phone", "Status", "Payment", "Price", "Attendance", "Registered at"])
    for line in lines:
        r = line.registration
        writer.writerow(
            [
                csv_safe(r.name),
                csv_safe(r.email),
                csv_safe(r.phone),
                r.status.value,
                line.payment_label,
                # How it was priced: the tier or community seat, the code (empty: the list price).
                csv_safe(pricing_label(r)) if r.price_tier_id or r.promo_code_id or r.community_seat else "",
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
                "",
            ]
        )
    # A byte-order mark so Excel opens UTF-8 names correctly.
    return "\ufeff" + out.getvalue()
