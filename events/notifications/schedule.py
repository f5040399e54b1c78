"""Which reminders and follow-ups are due now. Plain functions of `now`, run by the sweep.

Times are stored in UTC, so "24 hours before" is 24 real hours before, whatever the clocks
do that day. Each email is queued with a dedupe key naming the registration, the session
and the window, so running the sweep any number of times queues it exactly once. Each kind
is one INSERT ... SELECT of the emails not queued yet (per chunk of windows), after one read
of the sessions: the same few statements whether nothing, 3 or 10,000 emails are due.
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
    EmailStatus,
    Offering,
    OutboxEmail,
    Registration,
    RegistrationStatus,
    Session,
    SessionStatus,
    UTCDateTime,
    utcnow,
)
from events.notifications.outbox import EmailKind, insert_outbox
from events.notifications.publish import mark_queued

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


def _dedupe_key(*key_parts: str | sa.ColumnElement[Any] | QueryableAttribute[Any]) -> sa.ColumnElement[str]:
    """A dedupe key written out in SQL, byte for byte what dedupe_key (outbox.py) makes of the
    same parts, so that rows queued one at a time and rows queued by the sweep dedupe alike."""
    key: sa.ColumnElement[str] = sa.literal(key_parts[0], sa.String)
    for part in key_parts[1:]:
        key = key + (part if isinstance(part, str) else sa.cast(part, sa.String))
    return key


def _not_queued(key: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """No outbox row has this dedupe key yet."""
    return ~sa.exists().where(OutboxEmail.dedupe_key == key)


# Many windows at once are split so that no statement has more than this many SELECTs
# (SQLite allows 500 in one compound statement).
WINDOWS_PER_STATEMENT = 200


def _chunks(rows: list) -> list[list]:
    return [rows[i : i + WINDOWS_PER_STATEMENT] for i in range(0, len(rows), WINDOWS_PER_STATEMENT)]


# Each sweep asks the database only for the emails not queued yet and inserts just those: an
# INSERT that finds its row already there still takes an id from the sequence, and sweeping
# every minute over everyone in an open window would use ids up by the million. The missing
# rows are inserted by one INSERT ... SELECT per kind (per chunk of windows), not one per
# person: 10,000 due is one statement, as 3 are. ON CONFLICT still guards the key, should
# another transaction queue the same email meanwhile.

# The outbox columns the sweep's SELECTs give, in this order: every column without NULL that
# queue_email or the model's Python-side defaults fill in (the id comes from its sequence).
_SWEPT_COLUMNS = (
    "status",
    "attempts",
    "last_error",
    "context",
    "created_at",
    "send_after",
    "to_email",
    "registration_id",
    "session_id",
    "kind",
    "dedupe_key",
)


def _queue_selected(
    kind: str,
    context: sa.ColumnElement[Any],
    session_id: sa.ColumnElement[Any],
    key: sa.ColumnElement[str],
    query: sa.Select[Any],
) -> int:
    """Insert, in one statement, one outbox email of `kind` for each registration `query`
    finds (it selects FROM/JOIN/WHERE only; this adds the columns). Returns how many it added."""
    queued_at = utcnow()  # as queue_email: sent as soon as the worker gets to it
    rows = query.with_only_columns(
        sa.literal(EmailStatus.PENDING, OutboxEmail.__table__.c.status.type),
        sa.literal(0, sa.Integer),
        sa.literal("", sa.String),
        context,
        sa.literal(queued_at, UTCDateTime),
        sa.literal(queued_at, UTCDateTime),
        Registration.email,
        Registration.id,
        session_id,
        sa.literal(kind, sa.String),
        key,
        maintain_column_froms=True,
    )
    insert = (
        insert_outbox()
        .from_select(list(_SWEPT_COLUMNS), rows, include_defaults=False)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    # (SQLAlchemy keeps an INSERT's rowcount only when asked; run as a plain statement on the
    # session's connection, not through the ORM's bulk INSERT.)
    added = db.session.connection().execute(insert.execution_options(preserve_rowcount=True)).rowcount
    if added:
        mark_queued(db.session())  # the worker is nudged after commit, as queue_email does
    return added


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
        # "reminder:r12:s40:1440m" (":v1" added once the session has moved).
        key = _dedupe_key(
            f"{EmailKind.REMINDER}:r",
            Registration.id,
            ":s",
            window.c.session_id,
            ":",
            window.c.offset_minutes,
            "m",
            window.c.key_suffix,
        )
        queued += _queue_selected(
            EmailKind.REMINDER,
            sa.literal({}, sa.JSON),
            window.c.session_id,
            key,
            sa.select(Registration.id)
            .join(window, _covers(window))
            .where(
                # Registered inside this window: they have just been told everything.
                Registration.created_at <= window.c.opens,
                _not_queued(key),
            )
            .order_by(Registration.id, window.c.session_id),
        )
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
        # The variant by the person's mark, as a JSON value on both databases (each branch a
        # JSON parameter: PostgreSQL gets a json value, SQLite its text).
        context = sa.case(
            {
                status: sa.literal({"variant": variant}, sa.JSON)
                for status, variant in FOLLOW_UP_VARIANTS.items()
            },
            value=mark,
            else_=sa.literal({"variant": "neutral"}, sa.JSON),
        )
        # "follow_up:r12:s40" (":v1" added once the session has moved).
        key = _dedupe_key(
            f"{EmailKind.FOLLOW_UP}:r", Registration.id, ":s", window.c.session_id, window.c.key_suffix
        )
        queued += _queue_selected(
            EmailKind.FOLLOW_UP,
            context,
            window.c.session_id,
            key,
            sa.select(Registration.id)
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
                _not_queued(key),
            )
            .order_by(Registration.id, window.c.session_id),
        )
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
