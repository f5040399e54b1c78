"""Move a session to a new time, a new place, or both.

A move happens under the session's seat pool lock (the lock registering takes), so a
registration at the same moment is either before the move (and its person is told) or after
it (and sees the new time): nobody is missed or told twice, and no seat is lost or doubled.
Everyone registered and everyone waiting gets one "your class has moved" email per move, with
the updated invite (same UID, SEQUENCE = the session's move count); reminders follow the new
time (events/notifications/schedule.py keys them by the move count), and anyone registered
before the move may cancel for a full refund (registration.services.refund_quote)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import sqlalchemy as sa

from events import audit
from events.catalog.scheduling import local_to_utc
from events.extensions import db
from events.filters import format_short_day, format_time, zone_name
from events.models import (
    SEAT_TAKING_STATUSES,
    WAITLIST_ACTIVE_STATUSES,
    EmailStatus,
    Location,
    Offering,
    OutboxEmail,
    Registration,
    Session,
    SessionStatus,
    User,
    WaitlistEntry,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_email
from events.registration import seats
from events.staff.access import instructor_of
from events.staff.errors import AdminError
from events.staff.rosters import registrations_covering


def local_when(starts_at: datetime, ends_at: datetime, location: Location) -> str:
    """'Tue Dec 1, 6 pm–7 pm CST': in the location's zone, the zone named."""
    start, end = starts_at.astimezone(location.zone), ends_at.astimezone(location.zone)
    return f"{format_short_day(start)}, {format_time(start)}–{format_time(end)} {zone_name(start)}"


def session_when(session: Session) -> str:
    return local_when(session.starts_at, session.ends_at, session.location)


def people(count: int) -> str:
    return f"{count} {'person' if count == 1 else 'people'}"


def being_emailed(count: int) -> str:
    """The honest end of a result message: how many emails were queued."""
    if not count:
        return "Nobody was emailed."
    return f"{people(count)} {'is' if count == 1 else 'are'} being emailed."


def clash(
    instructor_id: int | None, starts_at: datetime, ends_at: datetime, except_session_id: int
) -> Session | None:
    """Another scheduled session this instructor teaches (as its regular instructor or its
    substitute) that overlaps these times, if any."""
    if instructor_id is None:
        return None
    teacher = sa.func.coalesce(Session.instructor_id, Offering.instructor_id)
    return db.session.scalar(
        sa.select(Session)
        .join(Offering, Offering.id == Session.offering_id)
        .where(
            teacher == instructor_id,
            Session.id != except_session_id,
            Session.status == SessionStatus.SCHEDULED,
            Offering.is_cancelled.is_(False),
            Session.starts_at < ends_at,
            Session.ends_at > starts_at,
        )
        .order_by(Session.starts_at)
        .limit(1)
    )


def lock_instructor(user_id: int) -> None:
    """Two dates of one instructor moved (or substituted) at once lock different seat pools; the
    instructor's row is the lock they share, taken after the pool (SQLite: the write lock already
    serialises them), so each looks for a clash with the other's change committed."""
    db.session.execute(sa.select(User.id).where(User.id == user_id).with_for_update())


def refuse_clash(instructor: User | None, session: Session, starts_at: datetime, ends_at: datetime) -> None:
    if instructor is not None:
        lock_instructor(instructor.id)
    other = clash(instructor.id if instructor else None, starts_at, ends_at, session.id)
    if other is not None and instructor is not None:
        raise AdminError(
            f"{instructor.name} teaches {other.offering.title} then ({session_when(other)}). "
            "Choose another time, or give one of the dates a substitute first."
        )


def registrations_to_tell(session: Session) -> list[Registration]:
    # Confirmed, and held while paying (their confirmation would otherwise be their only word).
    return list(
        db.session.scalars(
            registrations_covering(session)
            .where(Registration.status.in_(SEAT_TAKING_STATUSES), Registration.email != "")
            .order_by(Registration.id)
        )
    )


def _waitlist_to_tell(session: Session) -> list[WaitlistEntry]:
    return list(
        db.session.scalars(
            sa.select(WaitlistEntry)
            .where(
                WaitlistEntry.seat_pool_id == session.seat_pool_id,
                WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES),
                WaitlistEntry.email != "",
            )
            .order_by(WaitlistEntry.id)
        )
    )


def people_to_tell(session: Session) -> int:
    return len(registrations_to_tell(session)) + len(_waitlist_to_tell(session))


def refuse_unless_changeable(session: Session, now: datetime) -> None:
    if session.status != SessionStatus.SCHEDULED or session.offering.is_cancelled:
        raise AdminError("This date is cancelled, so it can't be changed.")
    if session.starts_at <= now:
        raise AdminError("This date has already started, so it can't be changed.")


@dataclass(frozen=True)
class MovePlan:
    """What a move will do, as the confirmation page says it."""

    session: Session
    starts_at: datetime
    ends_at: datetime
    location: Location
    old_when: str
    new_when: str
    old_place: str  # location names
    new_place: str
    people: int  # emails that go out

    @property
    def sentence(self) -> str:
        """'Move Core from Tue Dec 1, 6 pm–7 pm CST at North Loop to Wed Dec 2, ... at ...'."""
        old = f"{self.old_when} at {self.old_place}"
        new = f"{self.new_when} at {self.new_place}"
        told = f"{people(self.people)} will be emailed" if self.people else "nobody is registered or waiting"
        return f"Move {self.session.offering.title} from {old} to {new}; {told}."


def plan_move(
    session: Session,
    day: date,
    start: time,
    end: time,
    location: Location | None,
    now: datetime | None = None,
) -> MovePlan:
    """Check a move and say what it would do; AdminError (with the form field) if it can't be.
    The new times are wall-clock times at the new location, in its zone."""
    now = now or utcnow()
    refuse_unless_changeable(session, now)
    location = location or session.location
    if not location.is_active and location.id != session.location_id:
        raise AdminError("That location is no longer in use.", "location_id")
    if end <= start:
        raise AdminError("The end time must be after the start time.", "end")
    starts_at = local_to_utc(day, start, location.zone)
    ends_at = local_to_utc(day, end, location.zone)
    if ends_at <= starts_at:  # the clocks change between the two wall-clock times
        raise AdminError("The end time must be after the start time.", "end")
    if starts_at <= now:
        raise AdminError("The new time is in the past.", "day")
    if (starts_at, ends_at, location.id) == (session.starts_at, session.ends_at, session.location_id):
        raise AdminError("That is the same time and place: change the date, a time or the location.")
    refuse_clash(
        db.session.get(User, instructor_of(session)) if instructor_of(session) else None,
        session,
        starts_at,
        ends_at,
    )
    return MovePlan(
        session,
        starts_at,
        ends_at,
        location,
        old_when=session_when(session),
        new_when=local_when(starts_at, ends_at, location),
        old_place=session.location.name,
        new_place=location.name,
        people=people_to_tell(session),
    )


@dataclass(frozen=True)
class MoveResult:
    plan: MovePlan
    emailed: int  # emails queued by this move (0 when it had already been made)


def move_session(
    session_id: int,
    day: date,
    start: time,
    end: time,
    location: Location | None,
    actor: User,
    now: datetime | None = None,
) -> MoveResult:
    """Move one session, tell everyone registered or waiting, and audit it, in one transaction
    under its seat pool lock. AdminError (nothing changed) if the move is refused."""
    session = db.session.get_one(Session, session_id)
    seats.lock_pool(session.seat_pool_id)
    db.session.refresh(session)
    # Read after the lock: a registration made before it is older than moved_at, one after newer.
    now = now or utcnow()
    plan = plan_move(session, day, start, end, location, now)
    old_place = session.location
    old_starts_at, old_ends_at = session.starts_at, session.ends_at
    session.starts_at, session.ends_at, session.location = plan.starts_at, plan.ends_at, plan.location
    session.sequence += 1  # under the pool lock: moves of one session are one at a time
    session.moved_at = now
    # Reminders queued for the old time and not sent yet: that time is gone.
    db.session.execute(
        sa.delete(OutboxEmail).where(
            OutboxEmail.session_id == session.id,
            OutboxEmail.kind == EmailKind.REMINDER,
            OutboxEmail.status == EmailStatus.PENDING,
        )
    )
    context = {
        "old_when": plan.old_when,
        "new_when": plan.new_when,
        # The old time itself, so each email writes it in its reader's language.
        "old_starts_at": old_starts_at.isoformat(),
        "old_ends_at": old_ends_at.isoformat(),
        "old_timezone": old_place.timezone,
        "old_place": f"{old_place.name}, {old_place.full_address}",
        "new_place": f"{plan.location.name}, {plan.location.full_address}",
    }
    move_key = (f"m{session.sequence}",)  # a second move is a second email; a retry is not
    emailed = 0
    for registration in registrations_to_tell(session):
        emailed += bool(
            queue_email(
                EmailKind.SESSION_MOVED,
                registration=registration,
                session_id=session.id,
                key_parts=move_key,
                context=context,
            )
        )
    for entry in _waitlist_to_tell(session):
        emailed += bool(
            queue_email(
                EmailKind.SESSION_MOVED,
                waitlist_entry=entry,
                session_id=session.id,
                key_parts=move_key,
                context=context,
            )
        )
    instructor = session.instructor or session.offering.instructor
    audit.record(
        actor.id,
        "session.moved",
        "session",
        session.id,
        offering_id=session.offering_id,
        offering_title=session.offering.title,
        old_when=plan.old_when,
        new_when=plan.new_when,
        old_location=old_place.name,
        new_location=plan.location.name,
        instructor_name=instructor.name if instructor else "",
        people_emailed=emailed,
    )
    db.session.commit()
    return MoveResult(plan, emailed)
