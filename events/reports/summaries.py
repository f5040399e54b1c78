"""The report summaries: rebuilt from the live rows, set-based, by the worker.

At a clinic's ten-year size a report read live joins every registration, attendance mark and
payment of the range (and every visit of its people, of all time); the summaries keep what
those joins produce, so a report reads only its range's rows:

- report_session_facts: each session's SessionFacts numbers, exactly as facts.session_facts
  computes them (the same function writes them);
- report_visits: each visit, with its person's first and second visit and last class visit
  of all time beside it (one INSERT ... SELECT with window functions);
- from those, the rollups a long range reads instead (events/reports/rollups.py).

refresh() runs every sweep (worker/tasks.py). It first reads a fingerprint of the rows the
summaries come from (one statement); when nothing changed it only moves as_of on and returns:
the summaries still equal the live figures. Otherwise it rebuilds them all in one
transaction. A report uses them when they exist (build_report) and says as of when; tests
prove a refreshed summary gives every figure the live computation gives, on PostgreSQL and
SQLite (tests/integration/test_report_summaries.py).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from events.clinic import current_clinic
from events.extensions import db
from events.locks import only_one
from events.models import (
    Attendance,
    AttendanceStatus,
    CatalogState,
    Offering,
    OfferingKind,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    Registration,
    RegistrationStatus,
    ReportSessionFacts,
    ReportSummaryState,
    ReportVisit,
    SeatPool,
    Session,
    SessionStatus,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.reports import facts as facts_module
from events.reports import rollups
from events.reports.figures import SessionFacts

STATE_ID = 1


def usable_state(now: datetime) -> ReportSummaryState | None:
    """The summaries' state if a report at `now` may read them (built, and not from its future)."""
    state = db.session.get(ReportSummaryState, STATE_ID)
    if state is None or state.as_of > now:
        return None
    return state


def fingerprint(now: datetime) -> str:
    """What the summaries depend on, in one statement: any registration, mark, waitlist entry,
    payment or refund made or changed in status, any seat change (pools' versions), any edit
    to offerings or sessions (the catalog's version), a person anonymised, and each session
    that has started since (visits count only once a session began)."""

    def scalar(query: Any) -> Any:
        return query.scalar_subquery()

    def ids_where(model: Any, condition: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, model.id), else_=0)), 0)

    r = Registration
    parts = [
        scalar(sa.select(sa.func.count(r.id))),
        scalar(sa.select(ids_where(r, r.status == RegistrationStatus.CONFIRMED))),
        scalar(sa.select(ids_where(r, r.status == RegistrationStatus.CANCELLED))),
        scalar(sa.select(ids_where(r, facts_module._anonymous(r)))),
        scalar(sa.select(sa.func.count(Attendance.id))),
        scalar(sa.select(ids_where(Attendance, Attendance.status == AttendanceStatus.PRESENT))),
        scalar(sa.select(sa.func.coalesce(sa.func.sum(SeatPool.version), 0))),
        scalar(sa.select(sa.func.coalesce(sa.func.sum(SeatPool.capacity), 0))),
        scalar(sa.select(sa.func.count(WaitlistEntry.id))),
        scalar(sa.select(ids_where(WaitlistEntry, WaitlistEntry.offered_at.is_not(None)))),
        scalar(sa.select(ids_where(WaitlistEntry, WaitlistEntry.status == WaitlistStatus.CLAIMED))),
        scalar(sa.select(ids_where(WaitlistEntry, WaitlistEntry.status == WaitlistStatus.EXPIRED))),
        scalar(sa.select(ids_where(Payment, Payment.status == PaymentStatus.SUCCEEDED))),
        scalar(sa.select(sa.func.count(Refund.id))),
        scalar(sa.select(ids_where(Refund, Refund.status == RefundStatus.SUCCEEDED))),
        scalar(sa.select(sa.func.count(Session.id))),
        scalar(sa.select(ids_where(Session, Session.status == SessionStatus.CANCELLED))),
        scalar(sa.select(sa.func.count(Session.id)).where(Session.starts_at <= now)),
        scalar(sa.select(sa.func.coalesce(sa.func.max(CatalogState.version), 0))),
    ]
    row = db.session.execute(sa.select(*parts)).one()
    return ":".join(str(value) for value in row)


def _visits_select(now: datetime) -> sa.Select[Any]:
    """Every visit up to now, as facts.people_histories defines one: a confirmed registration at
    a session held (scheduled, started), marked present where anyone was marked there; a
    person is their address, or their registration when they have none (or it was removed).
    With each person's first and second visit and last class visit of all time."""
    mark = aliased(Attendance)
    marked_sessions = sa.select(Attendance.session_id).distinct().subquery("marked_sessions")
    person = sa.case(
        (
            facts_module._anonymous(Registration),
            sa.literal("registration:") + sa.cast(Registration.id, sa.String),
        ),
        else_=Registration.email_normalized,
    )
    visits = (
        sa.select(
            Registration.id.label("registration_id"),
            Session.id.label("session_id"),
            person.label("person"),
            Session.starts_at.label("starts_at"),
            Session.location_id.label("location_id"),
            facts_module.teacher_id_column().label("teacher_id"),
            sa.cast(Offering.kind, sa.String(20)).label("kind"),
        )
        .select_from(Registration)
        .join(Session, Session.seat_pool_id == Registration.seat_pool_id)
        .join(Offering, Offering.id == Session.offering_id)
        .outerjoin(mark, sa.and_(mark.registration_id == Registration.id, mark.session_id == Session.id))
        .outerjoin(marked_sessions, marked_sessions.c.session_id == Session.id)
        .where(
            Registration.status == RegistrationStatus.CONFIRMED,
            Session.status == SessionStatus.SCHEDULED,
            Session.starts_at <= now,
            sa.or_(mark.status == AttendanceStatus.PRESENT, marked_sessions.c.session_id.is_(None)),
        )
        .subquery("visits")
    )
    numbered = sa.select(
        visits,
        sa.func.row_number()
        .over(partition_by=visits.c.person, order_by=(visits.c.starts_at, visits.c.session_id))
        .label("nth"),
    ).subquery("numbered")
    n = numbered.c
    return sa.select(
        n.registration_id,
        n.session_id,
        n.person,
        n.starts_at,
        n.location_id,
        n.teacher_id,
        n.kind,
        sa.func.min(n.starts_at).over(partition_by=n.person).label("first_at"),
        sa.func.min(sa.case((n.nth == 2, n.starts_at), else_=None))
        .over(partition_by=n.person)
        .label("second_at"),
        sa.func.max(sa.case((n.kind == OfferingKind.CLASS.value, n.starts_at), else_=None))
        .over(partition_by=n.person)
        .label("last_class_at"),
        sa.func.lag(n.starts_at).over(partition_by=n.person, order_by=n.nth).label("prev_at"),
        sa.func.max(sa.case((n.kind == OfferingKind.WORKSHOP.value, n.starts_at), else_=None))
        .over(partition_by=n.person, order_by=n.nth, rows=(None, -1))
        .label("prev_workshop_at"),
    )


def _all_days() -> tuple[date, date] | None:
    first, last = db.session.execute(
        sa.select(sa.func.min(Session.starts_at), sa.func.max(Session.starts_at))
    ).one()
    if first is None:
        return None
    first = facts_module._utc(first)
    last = facts_module._utc(last)
    # A day either side: the bounds are each location's local days.
    return first.date() - timedelta(days=1), last.date() + timedelta(days=1)


def rebuild(now: datetime) -> None:
    """Both tables made equal to the live rows as of `now`, in the caller's transaction."""
    db.session.execute(sa.delete(ReportSessionFacts))
    db.session.execute(sa.delete(ReportVisit))  # and the rollups, replaced below
    days = _all_days()
    locations = facts_module.active_locations_for_reports()
    rows: list[SessionFacts] = []
    if days is not None:
        rows = facts_module.session_facts(
            days[0], days[1], facts_module.Scope(), current_clinic().currency, locations
        )
        if rows:
            db.session.execute(
                sa.insert(ReportSessionFacts),
                [
                    {
                        "session_id": row.session_id,
                        **{k: v for k, v in asdict(row).items() if k in facts_module.SUMMARY_FIELDS},
                    }
                    for row in rows
                ],
            )
    columns = [
        "registration_id", "session_id", "person", "starts_at", "location_id", "teacher_id", "kind",
        "first_at", "second_at", "last_class_at", "prev_at", "prev_workshop_at",
    ]  # fmt: skip
    db.session.execute(sa.insert(ReportVisit).from_select(columns, _visits_select(now)))
    rollups.rebuild_sessions(rows, now)
    rollups.rebuild_people_days(locations)
    if db.session.get_bind().dialect.name == "postgresql":
        # Fresh statistics for the planner (a table rebuilt wholesale has none worth reading).
        db.session.execute(
            sa.text(
                "ANALYZE report_visits, report_session_facts, report_rollups, report_fill_leads, "
                "report_people_days"
            )
        )


def refresh(now: datetime | None = None, force: bool = False) -> dict | None:
    """Bring the summaries up to now: a fingerprint first, a rebuild only if it changed.
    None when another refresh holds the lock."""
    now = now or utcnow()
    with only_one("report-summaries") as mine:
        if not mine:
            return None
        state = db.session.get(ReportSummaryState, STATE_ID, with_for_update=True)
        print_ = fingerprint(now)
        if state is not None and state.fingerprint == print_ and not force:
            state.as_of = max(state.as_of, now)
            db.session.commit()
            return {"rebuilt": False}
        rebuild(now)
        if state is None:
            state = ReportSummaryState(id=STATE_ID, as_of=now, fingerprint=print_, rebuilt_at=utcnow())
            db.session.add(state)
        else:
            state.as_of, state.fingerprint, state.rebuilt_at = now, print_, utcnow()
        db.session.commit()
        return {"rebuilt": True}
