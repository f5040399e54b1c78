"""The rows the figures count, read from the database in a fixed number of aggregate queries.

However many sessions a range holds, a report reads: the locations, the sessions in the range,
then one grouped query each for registrations, attendance, waitlist, payments, refunds, and
the people. Nothing is loaded per row.

Ranges are days in each location's own time zone: a class at 11:30 pm on the last day of a
month belongs to that month where it meets. Each location's days are turned into UTC bounds
here (a handful of locations), so the same SQL selects exactly on PostgreSQL and SQLite.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from events.extensions import db
from events.models import (
    Attendance,
    AttendanceStatus,
    LedgerKind,
    Location,
    Offering,
    OfferingKind,
    Pass,
    PassLedgerEntry,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    PromoCode,
    PromoRedemption,
    Refund,
    RefundStatus,
    Registration,
    RegistrationStatus,
    ReportSessionFacts,
    ReportVisit,
    SeatPool,
    Session,
    SessionStatus,
    User,
    UTCDateTime,
    WaitlistEntry,
    WaitlistStatus,
)
from events.reports.figures import (
    RETURN_WINDOW,
    CreditUse,
    PartnerCodes,
    PassFacts,
    PeopleCounts,
    PersonHistory,
    SessionFacts,
)

MAX_ID_LIST = 2000


@dataclass(frozen=True)
class Scope:
    """Whose sessions: everyone's (an admin), or one instructor's (those they teach, their own
    and the ones they substitute for, as rosters decide: events/staff/access.py instructor_of)."""

    instructor_id: int | None = None


def local_bounds(first_day: date, last_day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC moments where first_day starts and the day after last_day starts, in zone."""
    start = datetime.combine(first_day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def teacher_id_column() -> sa.ColumnElement[Any]:
    return sa.func.coalesce(Session.instructor_id, Offering.instructor_id)


def _in_range(
    locations: list[Location],
    first_day: date,
    last_day: date,
    starts: Any = Session.starts_at,
    location: Any = Session.location_id,
) -> sa.ColumnElement[bool]:
    parts = []
    for place in locations:
        start, end = local_bounds(first_day, last_day, ZoneInfo(place.timezone))
        parts.append(sa.and_(location == place.id, starts >= start, starts < end))
    if not parts:
        return sa.false()
    # The widest bounds as well, so the index on starts_at narrows the rows before the
    # per-location test (one OR of several locations alone reads every session).
    starts_list, ends = zip(
        *(local_bounds(first_day, last_day, ZoneInfo(loc.timezone)) for loc in locations), strict=True
    )
    return sa.and_(starts >= min(starts_list), starts < max(ends), sa.or_(*parts))


def _in_range_bound(places: int, starts: Any = Session.starts_at, location: Any = Session.location_id) -> Any:
    """_in_range for this many locations, built once: their ids and bounds are parameters
    (_in_range_params), so a statement using it can be kept and run again."""
    if not places:
        return sa.false()
    parts = [
        sa.and_(
            location == sa.bindparam(f"place{n}"),
            starts >= sa.bindparam(f"start{n}"),
            starts < sa.bindparam(f"end{n}"),
        )
        for n in range(places)
    ]
    return sa.and_(starts >= sa.bindparam("start"), starts < sa.bindparam("end"), sa.or_(*parts))


def _in_range_params(locations: list[Location], first_day: date, last_day: date) -> dict[str, Any]:
    params: dict[str, Any] = {}
    zones: dict[str, tuple[datetime, datetime]] = {}
    for n, place in enumerate(locations):
        if place.timezone not in zones:
            zones[place.timezone] = local_bounds(first_day, last_day, ZoneInfo(place.timezone))
        params[f"place{n}"] = place.id
        params[f"start{n}"], params[f"end{n}"] = zones[place.timezone]
    if zones:
        params["start"] = min(start for start, _ in zones.values())
        params["end"] = max(end for _, end in zones.values())
    return params


def _in_scope(scope: Scope) -> sa.ColumnElement[bool]:
    if scope.instructor_id is None:
        return sa.true()
    return teacher_id_column() == scope.instructor_id


def _hours_from(earlier: Any, later: Any) -> sa.ColumnElement[Any]:
    """later − earlier in hours, in the dialect's own date arithmetic."""
    if db.session.get_bind().dialect.name == "sqlite":
        return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 24.0
    return sa.extract("epoch", later - earlier) / 3600.0


def _anonymous(registration: Any) -> sa.ColumnElement[bool]:
    """No address to tell people apart by: a walk-in who gave none, or anonymised details (a
    placeholder address under .invalid, or none at all)."""
    return sa.or_(
        registration.email_normalized.is_(None),
        registration.email_normalized == "",
        registration.email_normalized.like("%.invalid"),
    )


def _sum_if(condition: sa.ColumnElement[bool], value: Any = 1) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, value), else_=0)), 0)


def _people_without_grouping(first_day: date, last_day: date, zone: ZoneInfo) -> PeopleCounts:
    """Everyone's people figures when every location keeps one time zone: the range is then one
    span of time [start, end), and a person's first visit in it is the visit whose previous one
    (prev_at) is before the start, so each person is one row and nothing needs grouping. The
    same for their first workshop in it (prev_workshop_at). Equal to the grouped count (a test
    compares them on random data)."""
    v = ReportVisit
    start, end = local_bounds(first_day, last_day, zone)
    first_in_range = sa.or_(v.prev_at.is_(None), v.prev_at < start)
    first_timer = sa.and_(first_in_range, v.starts_at == v.first_at)
    first_workshop = sa.and_(
        v.kind == OfferingKind.WORKSHOP.value,
        sa.or_(v.prev_workshop_at.is_(None), v.prev_workshop_at < start),
    )
    window_hours = RETURN_WINDOW.total_seconds() / 3600
    row = db.session.execute(
        sa.select(
            _sum_if(first_in_range).label("people"),
            _sum_if(first_timer).label("first_timers"),
            _sum_if(
                sa.and_(
                    first_timer,
                    v.second_at.is_not(None),
                    _hours_from(v.first_at, v.second_at) <= window_hours,
                )
            ).label("came_back"),
            _sum_if(first_workshop).label("workshop_goers"),
            _sum_if(sa.and_(first_workshop, v.last_class_at > v.starts_at)).label("went_on"),
        ).where(v.starts_at >= start, v.starts_at < end)
    ).one()
    return PeopleCounts(
        people=int(row.people),
        first_timers=int(row.first_timers),
        came_back=int(row.came_back),
        workshop_goers=int(row.workshop_goers),
        went_on=int(row.went_on),
    )


def _sessions_select(in_range: sa.ColumnElement[bool], *extra: Any) -> sa.Select[Any]:
    """The range's sessions with what names and places them (one row each)."""
    earlier = aliased(Session)
    first_of_pool = ~sa.exists().where(
        earlier.seat_pool_id == Session.seat_pool_id,
        sa.or_(
            earlier.starts_at < Session.starts_at,
            sa.and_(earlier.starts_at == Session.starts_at, earlier.id < Session.id),
        ),
    )
    teacher = aliased(User)
    return (
        sa.select(
            Session.id,
            Session.offering_id,
            Offering.title,
            Offering.kind,
            Offering.topic,
            Session.location_id,
            Location.name,
            Location.timezone,
            teacher_id_column().label("teacher_id"),
            teacher.name,
            Session.starts_at,
            Session.status,
            Offering.is_cancelled,
            SeatPool.capacity,
            Session.seat_pool_id,
            (first_of_pool if not extra else sa.literal(True)).label("first_of_pool"),
            *extra,
        )
        .join(Offering, Offering.id == Session.offering_id)
        .join(Location, Location.id == Session.location_id)
        .join(SeatPool, SeatPool.id == Session.seat_pool_id)
        .outerjoin(teacher, teacher.id == teacher_id_column())
        .where(in_range)
        .order_by(Session.starts_at, Session.id)
    )


def session_facts_from_summary(
    first_day: date, last_day: date, scope: Scope, locations: list[Location], after: datetime | None = None
) -> list[SessionFacts]:
    """The range's sessions read live (those starting after `after` only, when given), their
    facts from report_session_facts (a session made since the last refresh has none yet: zeros
    until the next)."""
    params = _in_range_params(locations, first_day, last_day)
    scoped = scope.instructor_id is not None
    if scoped:
        params["teacher_id"] = scope.instructor_id
    if after is not None:
        params["after"] = after
    statement = _summary_sessions_statement(len(locations), scoped, after is not None)
    rows = db.session.execute(statement, params).all()
    # By position (ten thousand rows at ten years): the session's 16 columns, then whether it
    # has a summary row, then SUMMARY_FIELDS in order (first_of_pool from the summary, not the
    # placeholder at 15).
    defaults = tuple(SUMMARY_DEFAULTS[name] for name in SUMMARY_FIELDS)
    zones: dict[str, ZoneInfo] = {}
    facts = []
    for row in rows:
        values = row[17:] if row[16] is not None else defaults
        zone = zones.get(row.timezone) or zones.setdefault(row.timezone, ZoneInfo(row.timezone))
        facts.append(
            SessionFacts(
                row.id,
                row.offering_id,
                row.title,
                row.kind.value,
                row.topic,
                row.location_id,
                row.name,
                row.teacher_id,
                row[9] or "No instructor named",
                row.starts_at,
                row.starts_at.astimezone(zone).date(),
                row.status is SessionStatus.CANCELLED or bool(row.is_cancelled),
                row.capacity,
                *values,  # SUMMARY_FIELDS are SessionFacts' next fields, in its order
            )
        )
    return facts


@functools.lru_cache(maxsize=64)
def _summary_sessions_statement(places: int, scoped: bool, after: bool) -> sa.Select[Any]:
    """session_facts_from_summary's statement, built once per number of locations (building
    it and its cache key again for each request cost more than running it for a month)."""
    in_range = _in_range_bound(places)
    if scoped:
        in_range = sa.and_(in_range, teacher_id_column() == sa.bindparam("teacher_id"))
    if after:
        in_range = sa.and_(in_range, Session.starts_at > sa.bindparam("after"))
    f = ReportSessionFacts
    return _sessions_select(
        in_range, f.session_id.label("summarised"), *(getattr(f, name) for name in SUMMARY_FIELDS)
    ).outerjoin(f, f.session_id == Session.id)


# What report_session_facts keeps of SessionFacts, and a session's values before it has a row.
SUMMARY_FIELDS = (
    "booked_at_start", "confirmed", "attendance_taken", "present", "first_of_pool", "late_cancellations",
    "waitlist_joined", "offers_made", "offers_claimed", "offers_expired", "filled_at", "card_cents",
    "desk_cents", "refund_cents",
)  # fmt: skip
assert SUMMARY_FIELDS == tuple(f.name for f in fields(SessionFacts))[13:], "summary fields out of order"
SUMMARY_DEFAULTS: dict[str, Any] = {name: 0 for name in SUMMARY_FIELDS} | {
    "attendance_taken": False,
    "first_of_pool": True,
    "filled_at": None,
}


def session_facts(
    first_day: date, last_day: date, scope: Scope, currency: str, locations: list[Location]
) -> list[SessionFacts]:
    in_range = sa.and_(_in_range(locations, first_day, last_day), _in_scope(scope))
    rows = db.session.execute(_sessions_select(in_range)).all()

    # The ids themselves, not a subquery: the planner then reads each table through its index
    # on these ids instead of hashing the whole table (seen at ten-year size).
    # Past a few thousand, a list of ids costs more to send and plan than it saves (half a
    # second at ten years): the range's own query stands in for it and the planner hashes.
    if len(rows) <= MAX_ID_LIST:
        session_ids: Any = [row.id for row in rows]
        pool_ids: Any = sorted({row.seat_pool_id for row in rows})
    else:
        session_ids = sa.select(Session.id).join(Offering, Offering.id == Session.offering_id).where(in_range)
        pool_ids = (
            sa.select(Session.seat_pool_id).join(Offering, Offering.id == Session.offering_id).where(in_range)
        )

    pool_starts = (
        sa.select(Session.seat_pool_id.label("pool_id"), sa.func.min(Session.starts_at).label("pool_start"))
        .where(Session.seat_pool_id.in_(pool_ids))
        .group_by(Session.seat_pool_id)
        .subquery()
    )
    booked_since = sa.func.coalesce(Registration.confirmed_at, Registration.created_at)
    booked_at_start = sa.or_(
        sa.and_(
            Registration.status == RegistrationStatus.CONFIRMED, booked_since <= pool_starts.c.pool_start
        ),
        sa.and_(
            Registration.status == RegistrationStatus.CANCELLED,
            Registration.confirmed_at.is_not(None),
            Registration.confirmed_at <= pool_starts.c.pool_start,
            Registration.cancelled_at > pool_starts.c.pool_start,
        ),
    )
    late = sa.and_(
        Registration.status == RegistrationStatus.CANCELLED,
        Registration.confirmed_at.is_not(None),
        Registration.cancelled_at.is_not(None),
        _hours_from(Registration.cancelled_at, pool_starts.c.pool_start) < Offering.cancellation_cutoff_hours,
    )
    registrations = {
        row.pool_id: row
        for row in db.session.execute(
            sa.select(
                Registration.seat_pool_id.label("pool_id"),
                _sum_if(Registration.status == RegistrationStatus.CONFIRMED).label("confirmed"),
                _sum_if(booked_at_start).label("booked_at_start"),
                sa.func.max(sa.case((booked_at_start, booked_since), else_=None)).label("last_seat_at"),
                _sum_if(late).label("late"),
            )
            .join(pool_starts, pool_starts.c.pool_id == Registration.seat_pool_id)
            .join(Offering, Offering.id == Registration.offering_id)
            .group_by(Registration.seat_pool_id)
        )
    }

    attendance = {
        row.session_id: row
        for row in db.session.execute(
            sa.select(
                Attendance.session_id,
                sa.func.count(Attendance.id).label("marked"),
                _sum_if(
                    sa.and_(
                        Attendance.status == AttendanceStatus.PRESENT,
                        Registration.status == RegistrationStatus.CONFIRMED,
                    )
                ).label("present"),
            )
            .join(Registration, Registration.id == Attendance.registration_id)
            .where(Attendance.session_id.in_(session_ids))
            .group_by(Attendance.session_id)
        )
    }

    waitlists = {
        row.pool_id: row
        for row in db.session.execute(
            sa.select(
                WaitlistEntry.seat_pool_id.label("pool_id"),
                sa.func.count(WaitlistEntry.id).label("joined"),
                sa.func.count(WaitlistEntry.offered_at).label("offered"),
                _sum_if(WaitlistEntry.status == WaitlistStatus.CLAIMED).label("claimed"),
                _sum_if(WaitlistEntry.status == WaitlistStatus.EXPIRED).label("expired"),
                sa.func.min(WaitlistEntry.created_at).label("opened_at"),
            )
            .where(WaitlistEntry.seat_pool_id.in_(pool_ids))
            .group_by(WaitlistEntry.seat_pool_id)
        )
    }

    desk_methods = (PaymentMethod.CASH, PaymentMethod.CHECK)
    payments = {
        row.pool_id: row
        for row in db.session.execute(
            sa.select(
                Registration.seat_pool_id.label("pool_id"),
                _sum_if(Payment.method == PaymentMethod.CARD, Payment.amount_cents).label("card"),
                _sum_if(Payment.method.in_(desk_methods), Payment.amount_cents).label("desk"),
            )
            .join(Registration, Registration.id == Payment.registration_id)
            .where(
                Registration.seat_pool_id.in_(pool_ids),
                Payment.status == PaymentStatus.SUCCEEDED,
                Payment.currency == currency,
            )
            .group_by(Registration.seat_pool_id)
        )
    }
    refunded = {
        row.pool_id: row.cents
        for row in db.session.execute(
            sa.select(
                Registration.seat_pool_id.label("pool_id"),
                sa.func.sum(Refund.amount_cents).label("cents"),
            )
            .join(Payment, Payment.id == Refund.payment_id)
            .join(Registration, Registration.id == Payment.registration_id)
            .where(
                Registration.seat_pool_id.in_(pool_ids),
                Refund.status == RefundStatus.SUCCEEDED,
                Payment.currency == currency,
            )
            .group_by(Registration.seat_pool_id)
        )
    }

    facts = []
    for row in rows:
        zone = ZoneInfo(row.timezone)
        cancelled = row.status is SessionStatus.CANCELLED or bool(row.is_cancelled)
        reg = registrations.get(row.seat_pool_id)
        marks = attendance.get(row.id)
        first = bool(row.first_of_pool)
        wait = waitlists.get(row.seat_pool_id) if first else None
        paid = payments.get(row.seat_pool_id) if first else None
        booked = int(reg.booked_at_start) if reg else 0
        filled_at = None
        if first and not cancelled:
            candidates = [wait.opened_at] if wait and wait.opened_at else []
            if reg and booked >= row.capacity > 0 and reg.last_seat_at:
                candidates.append(reg.last_seat_at)
            filled_at = min(candidates) if candidates else None
        facts.append(
            SessionFacts(
                session_id=row.id,
                offering_id=row.offering_id,
                offering_title=row.title,
                kind=row.kind.value,
                topic=row.topic,
                location_id=row.location_id,
                location_name=row.name,
                instructor_id=row.teacher_id,
                instructor_name=row[9] or "No instructor named",
                starts_at=row.starts_at,
                local_day=row.starts_at.astimezone(zone).date(),
                cancelled=cancelled,
                capacity=row.capacity,
                booked_at_start=booked,
                confirmed=int(reg.confirmed) if reg else 0,
                attendance_taken=bool(marks and marks.marked),
                present=int(marks.present) if marks else 0,
                first_of_pool=first,
                # The clinic calling a date off is not a member cancelling late.
                late_cancellations=int(reg.late) if first and reg and not cancelled else 0,
                waitlist_joined=int(wait.joined) if wait else 0,
                offers_made=int(wait.offered) if wait else 0,
                offers_claimed=int(wait.claimed) if wait else 0,
                offers_expired=int(wait.expired) if wait else 0,
                filled_at=filled_at,
                card_cents=int(paid.card) if paid else 0,
                desk_cents=int(paid.desk) if paid else 0,
                refund_cents=int(refunded.get(row.seat_pool_id) or 0) if first else 0,
            )
        )
    return facts


def people_histories(
    first_day: date, last_day: date, scope: Scope, now: datetime, locations: list[Location]
) -> list[PersonHistory]:
    """Each person's history as a record (the figures' definitions in figures.py count these;
    the report itself reads people_counts, the same figures counted in the database)."""
    rows = db.session.execute(_per_person(first_day, last_day, scope, now, locations)).all()
    return [
        PersonHistory(
            first_visit=_utc(row.first_visit),
            first_visit_in_range=_utc(row.first_in_range),
            second_visit=_utc_or_none(row.second_visit),
            first_workshop_in_range=_utc_or_none(row.first_workshop_in_range),
            last_class_visit=_utc_or_none(row.last_class),
        )
        for row in rows
    ]


def people_counts(
    first_day: date, last_day: date, scope: Scope, now: datetime, locations: list[Location]
) -> PeopleCounts:
    """The people figures counted in one statement: the per-person reduction below, summed in
    the database, so a range of ten years returns one row, not a record per person. Each sum is
    the definition of its figure in figures.py (first_timers, return_rate, workshop_to_class),
    written over the same columns; a test compares the two on random data."""
    return _count_people(_per_person(first_day, last_day, scope, now, locations).subquery("per_person"))


def _count_people(person: Any) -> PeopleCounts:
    """Sum the per-person columns (first_visit, first_in_range, second_visit,
    first_workshop_in_range, last_class) into the people figures' parts."""
    p = person.c
    first_timer = p.first_visit == p.first_in_range
    window_hours = RETURN_WINDOW.total_seconds() / 3600
    row = db.session.execute(
        sa.select(
            sa.func.count().label("people"),
            _sum_if(first_timer).label("first_timers"),
            _sum_if(
                sa.and_(
                    first_timer,
                    p.second_visit.is_not(None),
                    _hours_from(p.first_visit, p.second_visit) <= window_hours,
                )
            ).label("came_back"),
            _sum_if(p.first_workshop_in_range.is_not(None)).label("workshop_goers"),
            _sum_if(
                sa.and_(
                    p.first_workshop_in_range.is_not(None),
                    p.last_class.is_not(None),
                    p.last_class > p.first_workshop_in_range,
                )
            ).label("went_on"),
        )
    ).one()
    return PeopleCounts(
        people=int(row.people),
        first_timers=int(row.first_timers),
        came_back=int(row.came_back),
        workshop_goers=int(row.workshop_goers),
        went_on=int(row.went_on),
    )


def people_counts_from_summary(
    first_day: date, last_day: date, scope: Scope, locations: list[Location]
) -> PeopleCounts:
    """The same counts read from report_visits (events/reports/summaries.py): the range's
    visits only, each carrying its person's first, second and last class visit of all time."""
    v = ReportVisit
    zones = {place.timezone for place in locations}
    if scope.instructor_id is None and len(zones) == 1:
        return _people_without_grouping(first_day, last_day, ZoneInfo(zones.pop()))
    where = [_in_range(locations, first_day, last_day, v.starts_at, v.location_id)]
    if scope.instructor_id is not None:
        where.append(v.teacher_id == scope.instructor_id)
    per_person = (
        sa.select(
            sa.func.max(v.first_at).label("first_visit"),
            sa.func.min(v.starts_at).label("first_in_range"),
            sa.func.max(v.second_at).label("second_visit"),
            sa.func.min(sa.case((v.kind == OfferingKind.WORKSHOP.value, v.starts_at), else_=None)).label(
                "first_workshop_in_range"
            ),
            sa.func.max(v.last_class_at).label("last_class"),
        )
        .where(*where)
        .group_by(v.person)
        .subquery("per_person")
    )
    return _count_people(per_person)


def _per_person(
    first_day: date, last_day: date, scope: Scope, now: datetime, locations: list[Location]
) -> sa.Select[Any]:
    """Everyone who came to a session in the range, with their visits across all time.

    A visit: a confirmed registration at a session held (started, not cancelled), where it was
    marked present or, at a session where nobody was marked, simply booked.

    Written as plain joins (attendance by LEFT JOIN, no correlated subqueries), so its plan is
    a few hash joins over the tables whatever the planner's statistics say: a fresh database
    with none once made the correlated form run a scan per row."""
    in_range = sa.and_(_in_range(locations, first_day, last_day), _in_scope(scope))
    mark = aliased(Attendance)
    marked_sessions = sa.select(Attendance.session_id).distinct().subquery("marked_sessions")
    person = sa.case(
        (_anonymous(Registration), sa.literal("registration:") + sa.cast(Registration.id, sa.String)),
        else_=Registration.email_normalized,
    )

    def visits(*joins: tuple[Any, Any], where: Any) -> sa.Select[Any]:
        query = (
            sa.select(
                person.label("person"),
                Session.starts_at.label("starts_at"),
                Offering.kind.label("kind"),
                sa.case((in_range, 1), else_=0).label("in_range"),
            )
            .select_from(Registration)
            .join(Session, Session.seat_pool_id == Registration.seat_pool_id)
            .join(Offering, Offering.id == Session.offering_id)
        )
        for target, on in joins:
            query = query.join(target, on)
        return (
            query.outerjoin(
                mark, sa.and_(mark.registration_id == Registration.id, mark.session_id == Session.id)
            )
            .outerjoin(marked_sessions, marked_sessions.c.session_id == Session.id)
            .where(
                Registration.status == RegistrationStatus.CONFIRMED,
                Session.status == SessionStatus.SCHEDULED,
                Session.starts_at <= now,
                sa.or_(mark.status == AttendanceStatus.PRESENT, marked_sessions.c.session_id.is_(None)),
                where,
            )
        )

    # Who came in the range (read from the range's sessions), then their visits of all time:
    # found by address through its index, or by registration for those without one.
    came = visits(where=in_range).subquery("came")
    emails = (
        sa.select(came.c.person.label("email"))
        .where(~came.c.person.like("registration:%"))
        .distinct()
        .subquery("emails")
    )
    nameless = (
        sa.select(came.c.person.label("key"))
        .where(came.c.person.like("registration:%"))
        .distinct()
        .subquery("nameless")
    )
    all_visits = sa.union_all(
        visits((emails, emails.c.email == Registration.email_normalized), where=~_anonymous(Registration)),
        visits((nameless, nameless.c.key == person), where=_anonymous(Registration)),
    ).subquery("history")

    # Each person's visits numbered in time order: the first and the second are read in the
    # same pass as the rest (a correlated lookup per person would be quadratic).
    numbered = sa.select(
        all_visits,
        sa.func.row_number()
        .over(partition_by=all_visits.c.person, order_by=all_visits.c.starts_at)
        .label("nth"),
    ).subquery("numbered")
    v = numbered.c
    in_range_start = sa.case((v.in_range == 1, v.starts_at), else_=None)
    workshop_in_range = sa.case(
        (sa.and_(v.in_range == 1, v.kind == OfferingKind.WORKSHOP.value), v.starts_at), else_=None
    )
    per_person = (
        sa.select(
            sa.func.min(v.starts_at).label("first_visit"),
            sa.func.min(in_range_start).label("first_in_range"),
            sa.func.min(sa.case((v.nth == 2, v.starts_at), else_=None)).label("second_visit"),
            sa.func.min(workshop_in_range).label("first_workshop_in_range"),
            sa.func.max(sa.case((v.kind == OfferingKind.CLASS.value, v.starts_at), else_=None)).label(
                "last_class"
            ),
        )
        .group_by(v.person)
        .having(sa.func.min(in_range_start).is_not(None))
    )
    return per_person


def _utc_or_none(value: datetime | str | None) -> datetime | None:
    return None if value is None else _utc(value)


def _utc(value: datetime | str) -> datetime:
    # Aggregates over a union lose the column's type on SQLite: a string may come back.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def pass_facts(first_day: date, last_day: date, zone: ZoneInfo, currency: str) -> PassFacts:
    """Passes and codes in the range, by when things happened, in the clinic's time zone (a
    pass is not at a location). One statement, whatever the number of passes."""
    start, end = local_bounds(first_day, last_day, zone)
    params = {"start": start, "end": end, "currency": currency}
    rows = db.session.execute(_pass_statement(), params).all()
    sold = paid = refunded = 0
    used: list[CreditUse] = []
    partners: list[PartnerCodes] = []
    for row in rows:
        if row.part == "use":
            used.append(CreditUse(int(row.a), int(row.b), int(row.c)))
        elif row.part == "sums":
            sold, paid, refunded = int(row.a or 0), int(row.b or 0), int(row.c or 0)
        else:
            partners.append(PartnerCodes(row.tag or "", int(row.a), int(row.b)))
    return PassFacts(
        credits_sold=sold,
        uses=tuple(used),
        pass_payments_cents=paid,
        pass_refunds_cents=refunded,
        codes=tuple(partners),
    )


@functools.cache
def _pass_statement() -> sa.CompoundSelect:
    """pass_facts' statement, built once: the bounds and currency are its parameters."""
    start = sa.bindparam("start", type_=UTCDateTime)
    end = sa.bindparam("end", type_=UTCDateTime)
    currency = sa.bindparam("currency", type_=sa.String)
    in_range = sa.and_(PassLedgerEntry.created_at >= start, PassLedgerEntry.created_at < end)
    # One statement for the three parts (rows told apart by `part`, ordered within each):
    # used per pass price, the sums, the codes per partner.
    in_order: list[sa.ColumnElement[Any]] = [sa.literal_column(name) for name in ("part", "tag", "a", "b")]
    no_tag = sa.cast(sa.null(), sa.String)
    # Used: spends (negative rows) and their returns (positive), so -(sum) is the net use.
    uses = (
        sa.select(
            sa.literal("use").label("part"),
            no_tag.label("tag"),
            Pass.price_cents.label("a"),
            Pass.credits.label("b"),
            (-sa.func.sum(PassLedgerEntry.credits)).label("c"),
        )
        .join(Pass, Pass.id == PassLedgerEntry.pass_id)
        .where(
            in_range,
            PassLedgerEntry.kind.in_((LedgerKind.SPEND, LedgerKind.RETURN)),
            Pass.currency == currency,
        )
        .group_by(Pass.price_cents, Pass.credits)
    )
    sums = sa.select(
        sa.literal("sums").label("part"),
        no_tag.label("tag"),
        sa.select(sa.func.coalesce(sa.func.sum(PassLedgerEntry.credits), 0))
        .join(Pass, Pass.id == PassLedgerEntry.pass_id)
        .where(in_range, PassLedgerEntry.kind == LedgerKind.PURCHASE, Pass.currency == currency)
        .scalar_subquery()
        .label("a"),
        sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_cents), 0))
        .where(
            # pass_id's index finds them (a pass payment names its pass): not a scan of all.
            Payment.pass_id.is_not(None),
            Payment.purpose == PaymentPurpose.PASS,
            Payment.status == PaymentStatus.SUCCEEDED,
            Payment.method != PaymentMethod.COMP,
            Payment.currency == currency,
            sa.func.coalesce(Payment.paid_at, Payment.created_at) >= start,
            sa.func.coalesce(Payment.paid_at, Payment.created_at) < end,
        )
        .scalar_subquery()
        .label("b"),
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_cents), 0))
        .join(Payment, Payment.id == Refund.payment_id)
        .where(
            Payment.pass_id.is_not(None),
            Payment.purpose == PaymentPurpose.PASS,
            Refund.status == RefundStatus.SUCCEEDED,
            Payment.currency == currency,
            Refund.created_at >= start,
            Refund.created_at < end,
        )
        .scalar_subquery()
        .label("c"),
    )
    codes = (
        sa.select(
            sa.literal("code").label("part"),
            PromoCode.partner_tag.label("tag"),
            sa.func.count(PromoRedemption.id).label("a"),
            sa.func.coalesce(sa.func.sum(PromoRedemption.discount_cents), 0).label("b"),
            sa.literal(0).label("c"),
        )
        .join(PromoCode, PromoCode.id == PromoRedemption.promo_code_id)
        .where(
            PromoRedemption.released_at.is_(None),
            PromoRedemption.created_at >= start,
            PromoRedemption.created_at < end,
        )
        .group_by(PromoCode.partner_tag)
    )
    return sa.union_all(uses, sums, codes).order_by(*in_order)


def active_locations_for_reports() -> list[Location]:
    """Every location, active or not: past sessions met at closed ones too."""
    return list(db.session.scalars(sa.select(Location).order_by(Location.name)))
