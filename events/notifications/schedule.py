"""Which reminders and follow-ups are due now. Plain functions of `now`, run by the sweep.

Times are stored in UTC, so "24 hours before" is 24 real hours before, whatever the clocks
do that day. Each email is queued with a dedupe key naming the registration, the session
and the window, so running the sweep any number of times queues it exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from events.extensions import db
from events.models import (
    Attendance,
    AttendanceStatus,
    Offering,
    Registration,
    RegistrationStatus,
    Session,
    SessionStatus,
)
from events.notifications.outbox import EmailKind, queue_email

# Reminder windows further ahead than this are not looked at (offsets are minutes).
LOOKAHEAD = timedelta(days=14)
# A follow-up that could not go out within this long after the session is not sent late.
FOLLOWUP_MAX_AGE = timedelta(days=3)


def reminder_window(starts_at: datetime, offsets: list[int], offset: int) -> tuple[datetime, datetime]:
    """[opens, closes) of one reminder. A window closes when the next, nearer one opens (or at
    the start): after an outage the person gets the nearest reminder only, not a burst."""
    nearer = [o for o in offsets if o < offset]
    opens = starts_at - timedelta(minutes=offset)
    closes = starts_at - timedelta(minutes=max(nearer)) if nearer else starts_at
    return opens, closes


def _covering_registrations(session: Session):
    """Confirmed registrations that include this session: its class, or the whole offering."""
    return db.session.scalars(
        sa.select(Registration)
        .where(
            Registration.offering_id == session.offering_id,
            Registration.status == RegistrationStatus.CONFIRMED,
            sa.or_(Registration.session_id.is_(None), Registration.session_id == session.id),
        )
        .order_by(Registration.id)
    ).all()


def _live_sessions(*conditions):
    return db.session.scalars(
        sa.select(Session)
        .join(Offering, Session.offering_id == Offering.id)
        .where(Session.status == SessionStatus.SCHEDULED, Offering.is_cancelled.is_(False), *conditions)
        .order_by(Session.starts_at, Session.id)
    ).all()


def queue_due_reminders(now: datetime) -> int:
    queued = 0
    for session in _live_sessions(Session.starts_at > now, Session.starts_at <= now + LOOKAHEAD):
        offsets = session.offering.reminder_offset_minutes
        for offset in offsets:
            opens, closes = reminder_window(session.starts_at, offsets, offset)
            if not (opens <= now < closes):
                continue
            for registration in _covering_registrations(session):
                if registration.created_at > opens:
                    continue  # registered inside this window: they have just been told everything
                if queue_email(
                    EmailKind.REMINDER,
                    registration=registration,
                    session_id=session.id,
                    key_parts=(f"{offset}m",),
                ):
                    queued += 1
    db.session.commit()
    return queued


def queue_due_followups(now: datetime) -> int:
    """After a registration's last session: thanks to those present (or to everyone when no
    attendance was taken), and "sorry we missed you" with the next dates to those marked absent."""
    queued = 0
    candidates = _live_sessions(Session.ends_at <= now, Session.ends_at >= now - FOLLOWUP_MAX_AGE)
    for session in candidates:
        if now < session.ends_at + timedelta(minutes=session.offering.followup_delay_minutes):
            continue
        marks = dict(
            db.session.execute(
                sa.select(Attendance.registration_id, Attendance.status).where(
                    Attendance.session_id == session.id
                )
            ).all()
        )
        later = None
        for registration in _covering_registrations(session):
            if registration.session_id is None:
                # A workshop or course: one follow-up, after its last scheduled session.
                if later is None:
                    later = db.session.scalar(
                        sa.select(sa.func.count(Session.id)).where(
                            Session.offering_id == session.offering_id,
                            Session.status == SessionStatus.SCHEDULED,
                            Session.ends_at > session.ends_at,
                        )
                    )
                if later:
                    continue
            if not marks:
                variant = "attended"  # no attendance taken: thank everyone
            elif marks.get(registration.id) == AttendanceStatus.PRESENT:
                variant = "attended"
            else:
                variant = "missed"
            if queue_email(
                EmailKind.FOLLOW_UP,
                registration=registration,
                session_id=session.id,
                context={"variant": variant},
            ):
                queued += 1
    db.session.commit()
    return queued


def queue_due(now: datetime) -> tuple[int, int]:
    return queue_due_reminders(now), queue_due_followups(now)
