"""Which reminders and follow-ups are due now. Plain functions of `now`, run by the sweep.

Times are stored in UTC, so "24 hours before" is 24 real hours before, whatever the clocks
do that day. Each email is queued with a dedupe key naming the registration, the session
and the window, so running the sweep any number of times queues it exactly once. A sweep
with nothing new to queue is two reads per kind, however many people sit in open windows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute, contains_eager

from events.extensions import db
from events.locks import only_one
from events.models import (
    Attendance,
    AttendanceStatus,
    Offering,
    OutboxEmail,
    Registration,
    RegistrationStatus,
    Session,
    SessionStatus,
    UTCDateTime,
)
from events.notifications.outbox import EmailKind, queue_email

log = logging.getLogger(__name__)

# Reminder windows further ahead than this are not looked at (offsets are minutes).
LOOKAHEAD = timedelta(days=14)
# A follow-up that could not go out within this long after the session is not sent late.
FOLLOWUP_MAX_AGE = timedelta(days=3)
# Which follow-up a person gets, by their attendance mark for the session (none: "neutral").
FOLLOW_UP_VARIANTS = {AttendanceStatus.PRESENT: "attended", AttendanceStatus.ABSENT: "missed"}


def reminder_window(starts_at: datetime, offsets: list[int], offset: int) -> tuple[datetime, datetime]:
    """[opens, closes) of one reminder. A window closes when the next, nearer one opens (or at
    the start): after an outage the person gets the nearest reminder only, not a burst."""
    nearer = [o for o in offsets if o < offset]
    opens = starts_at - timedelta(minutes=offset)
    closes = starts_at - timedelta(minutes=max(nearer)) if nearer else starts_at
    return opens, closes


def _live_sessions(*conditions: sa.ColumnElement[bool]) -> Sequence[Session]:
    return db.session.scalars(
        sa.select(Session)
        .join(Offering, Session.offering_id == Offering.id)
        .options(contains_eager(Session.offering))
        .where(Session.status == SessionStatus.SCHEDULED, Offering.is_cancelled.is_(False), *conditions)
        .order_by(Session.starts_at, Session.id)
    ).all()


def _windows(rows: list[tuple], **columns: Any) -> sa.Subquery:
    """The open windows as a small table (one SELECT of literals per window, UNION ALL)."""

    def select_row(row: tuple) -> sa.Select[Any]:
        return sa.select(
            *(
                sa.literal(value, type_).label(name)
                for (name, type_), value in zip(columns.items(), row, strict=True)
            )
        )

    return sa.union_all(*(select_row(row) for row in rows)).subquery("windows")


def _covers(window: sa.Subquery) -> sa.ColumnElement[bool]:
    """A confirmed registration with an address includes the window's session: its class, or the
    whole offering. (A walk-in who gave no email is never found: nothing can be sent to them.)"""
    return sa.and_(
        Registration.offering_id == window.c.offering_id,
        Registration.status == RegistrationStatus.CONFIRMED,
        Registration.email_normalized != "",
        sa.or_(Registration.session_id.is_(None), Registration.session_id == window.c.session_id),
    )


def moved_key_parts(session: Session) -> tuple[str, ...]:
    """The dedupe key's part naming which of the session's times an email is for: none until it
    first moves (keys made before moves existed stay valid), then "v1", "v2"... So a reminder
    sent for the old time does not stop the new one, and each time gets each reminder once."""
    return (f"v{session.sequence}",) if session.sequence else ()


def _key_suffix(session: Session) -> str:
    # The same part as written by dedupe_key (":"-joined), for the keys spelled out in SQL.
    return "".join(f":{part}" for part in moved_key_parts(session))


def _not_queued(*key_parts: str | sa.ColumnElement[Any] | QueryableAttribute[Any]) -> sa.ColumnElement[bool]:
    """No outbox row has this dedupe key yet (the key is written out in SQL, as dedupe_key does)."""
    key: sa.ColumnElement[str] = sa.literal(key_parts[0], sa.String)
    for part in key_parts[1:]:
        key = key + (part if isinstance(part, str) else sa.cast(part, sa.String))
    return ~sa.exists().where(OutboxEmail.dedupe_key == key)


# Many windows at once are split so that no statement has more than this many SELECTs
# (SQLite allows 500 in one compound statement).
WINDOWS_PER_STATEMENT = 200


def _chunks(rows: list) -> list[list]:
    return [rows[i : i + WINDOWS_PER_STATEMENT] for i in range(0, len(rows), WINDOWS_PER_STATEMENT)]


# Each sweep asks the database only for the emails not queued yet and inserts just those: an
# INSERT that finds its row already there still takes an id from the sequence, and sweeping
# every minute over everyone in an open window would use ids up by the million.


def queue_due_reminders(now: datetime) -> int:
    open_windows = []
    for session in _live_sessions(Session.starts_at > now, Session.starts_at <= now + LOOKAHEAD):
        offsets = session.offering.reminder_offset_minutes
        for offset in offsets:
            opens, closes = reminder_window(session.starts_at, offsets, offset)
            if opens <= now < closes:
                open_windows.append((session.id, session.offering_id, offset, opens, _key_suffix(session)))
    queued = 0
    for rows in _chunks(open_windows):
        window = _windows(
            rows,
            session_id=sa.Integer,
            offering_id=sa.Integer,
            offset_minutes=sa.Integer,
            opens=UTCDateTime,
            key_suffix=sa.String,
        )
        missing = db.session.execute(
            sa.select(Registration, window.c.session_id, window.c.offset_minutes, window.c.key_suffix)
            .join(window, _covers(window))
            .where(
                # Registered inside this window: they have just been told everything.
                Registration.created_at <= window.c.opens,
                _not_queued(
                    f"{EmailKind.REMINDER}:r",
                    Registration.id,
                    ":s",
                    window.c.session_id,
                    ":",
                    window.c.offset_minutes,
                    "m",
                    window.c.key_suffix,
                ),
            )
            .order_by(Registration.id, window.c.session_id)
        ).all()
        for registration, session_id, offset, key_suffix in missing:
            if queue_email(
                EmailKind.REMINDER,
                registration=registration,
                session_id=session_id,
                key_parts=(f"{offset}m", *key_suffix.split(":")[1:]),
            ):
                queued += 1
    db.session.commit()
    return queued


def queue_due_followups(now: datetime) -> int:
    """After a registration's last session: thanks to those checked in, "sorry we missed you"
    with the next dates to those marked absent, and a neutral follow-up (the resources and the
    next dates, no claim either way) to everyone else: when the instructor took no attendance
    for that session, nobody is thanked for coming or told they were missed."""
    due = [
        (session.id, session.offering_id, session.ends_at, _key_suffix(session))
        for session in _live_sessions(Session.ends_at <= now, Session.ends_at >= now - FOLLOWUP_MAX_AGE)
        if now >= session.ends_at + timedelta(minutes=session.offering.followup_delay_minutes)
    ]
    queued = 0
    for rows in _chunks(due):
        window = _windows(
            rows, session_id=sa.Integer, offering_id=sa.Integer, ends_at=UTCDateTime, key_suffix=sa.String
        )
        later = sa.orm.aliased(Session)
        mark = (
            sa.select(Attendance.status)
            .where(
                Attendance.session_id == window.c.session_id, Attendance.registration_id == Registration.id
            )
            .limit(1)
            .scalar_subquery()
        )
        missing = db.session.execute(
            sa.select(Registration, window.c.session_id, mark, window.c.key_suffix)
            .join(window, _covers(window))
            .where(
                # A workshop or course: one follow-up, after its last scheduled session.
                sa.or_(
                    Registration.session_id.is_not(None),
                    ~sa.exists().where(
                        later.offering_id == window.c.offering_id,
                        later.status == SessionStatus.SCHEDULED,
                        later.ends_at > window.c.ends_at,
                    ),
                ),
                _not_queued(
                    f"{EmailKind.FOLLOW_UP}:r",
                    Registration.id,
                    ":s",
                    window.c.session_id,
                    window.c.key_suffix,
                ),
            )
            .order_by(Registration.id, window.c.session_id)
        ).all()
        for registration, session_id, marked, key_suffix in missing:
            variant = FOLLOW_UP_VARIANTS.get(marked, "neutral")
            if queue_email(
                EmailKind.FOLLOW_UP,
                registration=registration,
                session_id=session_id,
                key_parts=tuple(key_suffix.split(":")[1:]),
                context={"variant": variant},
            ):
                queued += 1
    db.session.commit()
    return queued


def queue_due(now: datetime) -> tuple[int, int] | None:
    """Both sweeps, by one caller at a time across all hosts; None (and a log line) when
    another caller is already sweeping."""
    with only_one("queue_due") as held:
        if not held:
            log.info("reminder and follow-up sweep skipped: another one is running")
            return None
        return queue_due_reminders(now), queue_due_followups(now)
