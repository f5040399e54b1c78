"""Retention: a person's data is kept for RETENTION_MONTHS after their last session, then
anonymised by a nightly task (worker.tasks.anonymise_expired; `flask anonymise-expired`).

A person is an address (a walk-in who gave none is a person of their own). Their last session
is the latest end among everything booked or waited for with that address: a person with an
old and a recent booking keeps both until the recent one is old too. A class pass counts as
activity until it ends: its expiry, or when its unused credits were refunded, or its hold when
its purchase was voided; a pass that can still be used and has no end yet (paused, or valid
from a first class not yet booked) keeps its holder's data however old it is. One query finds
who is due (GROUP BYs over the sessions, the refunds and the rows not yet anonymised), and each
chunk of rows is then anonymised by a few UPDATEs and committed: the same statements for 10 or
300,000 registrations, and never a long lock.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from events import audit
from events.extensions import db
from events.locks import only_one
from events.models import (
    LedgerKind,
    Pass,
    PassLedgerEntry,
    PassStatus,
    Registration,
    Session,
    UTCDateTime,
    WaitlistEntry,
    utcnow,
)
from events.privacy import anonymise

# When the nightly run starts (UTC; the beat schedule in worker/app.py reads it): 3:15 am in
# Minneapolis in winter, 4:15 am in summer, when nobody is booking.
NIGHTLY_RUN_UTC = time(9, 15)
PAGE_DAYS = 20  # dates per page of the admin preview
# The "end" of a class pass that has none yet (paused, or valid from a first class not booked):
# later than any cut-off, so its holder is never due while it lasts, and left off the preview.
NO_END = datetime(9999, 1, 1, tzinfo=UTC)


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the 31st becomes the month's last day)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def months_after(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return day.replace(year=year, month=month + 1, day=min(day.day, calendar.monthrange(year, month + 1)[1]))


def retention_months() -> int:
    return int(current_app.config["RETENTION_MONTHS"])


def retention_cutoff(now: datetime | None = None) -> datetime:
    """Data of people whose last session ended before this is due for anonymising."""
    return months_before(now or utcnow(), retention_months())


def _pass_ends() -> sa.Select:
    """Every pass not anonymised yet: ("p", its id, its holder, when it ended or ends). NO_END:
    no end is known (paused, or valid from a first class not booked yet), so its holder is
    never due while it lasts; an expiry to come keeps them too, as a session to come does."""
    # When each refunded pass was refunded: one pass over the ledger's refund rows (a correlated
    # lookup per pass would look cheaper than it is to the planner, and cost a JIT compile).
    refunded = (
        sa.select(PassLedgerEntry.pass_id, sa.func.max(PassLedgerEntry.created_at).label("at"))
        .where(PassLedgerEntry.kind == LedgerKind.REFUND)
        .group_by(PassLedgerEntry.pass_id)
        .subquery("pass_refunded")
    )
    ended = sa.case(
        (
            Pass.status == PassStatus.REFUNDED,
            sa.func.coalesce(refunded.c.at, Pass.activated_at, Pass.created_at),
        ),
        (
            Pass.status.in_((PassStatus.VOID, PassStatus.HELD)),
            sa.func.coalesce(Pass.hold_expires_at, Pass.created_at),
        ),
        (Pass.frozen_since.is_not(None), sa.literal(NO_END, UTCDateTime)),
        else_=sa.func.coalesce(Pass.expires_at, sa.literal(NO_END, UTCDateTime)),
    )
    return (
        sa.select(
            sa.literal("p").label("kind"),
            Pass.id.label("row_id"),
            Pass.email_normalized.label("person"),
            sa.type_coerce(ended, UTCDateTime).label("last_at"),
        )
        .select_from(Pass)
        .outerjoin(refunded, refunded.c.pass_id == Pass.id)
        .where(Pass.anonymised_at.is_(None))
    )


def _rows_with_last_session() -> sa.Subquery:
    """Every row not anonymised yet: ("r", "w" or "p", its id, its person, when its last session
    ends, or its pass ended).

    A registration's last session is its class's, or the last of its offering's; a waitlist
    place's, the last of its pool's. Without any session: when the row was made. A pass: see
    _pass_ends (NULL when it has not ended)."""
    offering_last = (
        sa.select(Session.offering_id, sa.func.max(Session.ends_at).label("last_end"))
        .group_by(Session.offering_id)
        .subquery("offering_last")
    )
    pool_last = (
        sa.select(Session.seat_pool_id, sa.func.max(Session.ends_at).label("last_end"))
        .group_by(Session.seat_pool_id)
        .subquery("pool_last")
    )
    registration_person = sa.case(
        (Registration.email_normalized == "", sa.literal("walk-in:") + sa.cast(Registration.id, sa.String)),
        else_=Registration.email_normalized,
    )
    registrations = (
        sa.select(
            sa.literal("r").label("kind"),
            Registration.id.label("row_id"),
            registration_person.label("person"),
            sa.func.coalesce(
                Session.ends_at, offering_last.c.last_end, Registration.created_at, type_=UTCDateTime
            ).label("last_at"),
        )
        .select_from(Registration)
        .outerjoin(Session, Session.id == Registration.session_id)
        .outerjoin(
            offering_last,
            sa.and_(
                Registration.session_id.is_(None), offering_last.c.offering_id == Registration.offering_id
            ),
        )
        .where(Registration.anonymised_at.is_(None))
    )
    entries = (
        sa.select(
            sa.literal("w").label("kind"),
            WaitlistEntry.id.label("row_id"),
            WaitlistEntry.email_normalized.label("person"),
            sa.func.coalesce(pool_last.c.last_end, WaitlistEntry.created_at, type_=UTCDateTime).label(
                "last_at"
            ),
        )
        .select_from(WaitlistEntry)
        .outerjoin(pool_last, pool_last.c.seat_pool_id == WaitlistEntry.seat_pool_id)
        .where(WaitlistEntry.anonymised_at.is_(None))
    )
    return sa.union_all(registrations, entries, _pass_ends()).subquery("held_rows")


def _people(rows: sa.Subquery) -> sa.Subquery:
    """Per person: their last activity (NO_END with a pass that has no end yet) and how many
    rows they have."""
    return (
        sa.select(rows.c.person, sa.func.max(rows.c.last_at).label("last_at"), sa.func.count().label("rows"))
        .group_by(rows.c.person)
        .subquery("people")
    )


def _ended_before(people: sa.Subquery, cutoff: datetime) -> sa.ColumnElement[bool]:
    # One plain comparison, as before passes: a second condition on the aggregate made the
    # planner expect almost no one due and join the people to their rows by a nested loop
    # (measured: 32 s instead of 0.1 s at 50,000 passes).
    return people.c.last_at < cutoff


@dataclass(frozen=True)
class DueRows:
    registration_ids: list[int]
    waitlist_entry_ids: list[int]
    people: int
    pass_ids: list[int]


def due_rows(cutoff: datetime) -> DueRows:
    """The rows of every person whose last session ended before `cutoff` (one query)."""
    rows = _rows_with_last_session()
    people = _people(rows)
    found = db.session.execute(
        sa.select(rows.c.kind, rows.c.row_id, rows.c.person)
        .join(people, people.c.person == rows.c.person)
        .where(_ended_before(people, cutoff))
        .order_by(rows.c.row_id)
    ).all()
    registration_ids = [row_id for kind, row_id, _ in found if kind == "r"]
    entry_ids = [row_id for kind, row_id, _ in found if kind == "w"]
    pass_ids = [row_id for kind, row_id, _ in found if kind == "p"]
    return DueRows(registration_ids, entry_ids, len({person for _, _, person in found}), pass_ids)


@dataclass(frozen=True)
class RetentionRun:
    people: int
    registrations: int
    waitlist_entries: int
    address_emails: int
    cutoff: datetime
    passes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "people": self.people,
            "registrations": self.registrations,
            "waitlist_entries": self.waitlist_entries,
            "passes": self.passes,
            "address_emails": self.address_emails,
        }


def anonymise_expired(now: datetime | None = None) -> RetentionRun | None:
    """Anonymise everyone past the retention period. None if another host is running it."""
    now = now or utcnow()
    with only_one("retention") as held:
        if not held:
            return None
        cutoff = retention_cutoff(now)
        due = due_rows(cutoff)
        db.session.commit()  # the read's snapshot ends here; each chunk is its own transaction
        registrations = entries = 0
        for ids in anonymise.chunks(due.registration_ids):
            registrations += anonymise.anonymise_registrations(ids, now)
            db.session.commit()
        for ids in anonymise.chunks(due.waitlist_entry_ids):
            entries += anonymise.anonymise_waitlist_entries(ids, now)
            db.session.commit()
        passes = 0
        for ids in anonymise.chunks(due.pass_ids):
            passes += anonymise.anonymise_passes(ids, now)
            db.session.commit()
        # Emails about an address alone ("find my registrations", privacy links) are kept no
        # longer than the bookings they were about.
        from_models = anonymise.anonymise_address_emails(anonymise.OutboxEmail.created_at < cutoff)
        run = RetentionRun(due.people, registrations, entries, from_models, cutoff, passes)
        if registrations or entries or passes:
            audit.record(
                None,
                "privacy.retention_anonymised",
                "retention",
                0,
                people=due.people,
                registrations=registrations,
                waitlist_entries=entries,
                passes=passes,
                months=retention_months(),
            )
        db.session.commit()
    return run


@dataclass(frozen=True)
class DueDay:
    """The people whose data is anonymised on one date (their last session + the period)."""

    last_session_day: date
    anonymised_on: date
    people: int
    rows: int


@dataclass(frozen=True)
class RetentionPreview:
    months: int
    cutoff: datetime
    next_run: datetime  # UTC
    due_now: int  # people already past the period: anonymised at the next run
    due_now_rows: int
    days: list[DueDay]
    next_after: date | None  # the next page starts after this last-session day


def next_run_after(now: datetime) -> datetime:
    run = datetime.combine(now.date(), NIGHTLY_RUN_UTC, tzinfo=now.tzinfo)
    return run if run > now else run + timedelta(days=1)


def preview(now: datetime | None = None, after: date | None = None) -> RetentionPreview:
    """What the next runs will anonymise: people already due, then by the day their last
    session ended (so the day their data goes), PAGE_DAYS days a page. Two queries."""
    now = now or utcnow()
    months = retention_months()
    cutoff = retention_cutoff(now)
    people = _people(_rows_with_last_session())
    due_now, due_now_rows = db.session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(people.c.rows), 0)).where(
            _ended_before(people, cutoff)
        )
    ).one()
    # Days in UTC: the boundary is a moment, and a day's people go in the first run after it.
    last_day = sa.func.date(people.c.last_at)
    query = (
        sa.select(last_day.label("day"), sa.func.count(), sa.func.sum(people.c.rows))
        .where(people.c.last_at >= cutoff, people.c.last_at < NO_END)
        .group_by(last_day)
        .order_by(last_day)
        .limit(PAGE_DAYS + 1)
    )
    if after is not None:
        query = query.where(
            people.c.last_at >= datetime.combine(after + timedelta(days=1), time(), tzinfo=now.tzinfo)
        )
    found = db.session.execute(query).all()
    days = [
        DueDay(_as_date(day), months_after(_as_date(day), months), int(count), int(rows))
        for day, count, rows in found[:PAGE_DAYS]
    ]
    next_after = days[-1].last_session_day if len(found) > PAGE_DAYS else None
    return RetentionPreview(
        months, cutoff, next_run_after(now), int(due_now), int(due_now_rows), days, next_after
    )


def _as_date(value: object) -> date:
    # PostgreSQL's date() gives a date, SQLite's a string.
    return value if isinstance(value, date) else date.fromisoformat(str(value))
