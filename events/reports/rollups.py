"""The summaries summed ahead, so a long range reads about as many rows as a short one.

At ten years a range holds 10,000 sessions and 230,000 visits; reading them one by one (even
from report_session_facts and report_visits) costs hundreds of milliseconds in Python and the
database. The same rebuild (events/reports/summaries.py) therefore also keeps:

- report_rollups: figures.SessionTotals of the sessions started by the refresh, summed per
  location, offering and instructor over each local day, week (Monday), month and year. A
  range reads its whole years, then months at its edges (or its weeks or months, for a
  breakdown by week or month), then single days at the edges,
  grouped in the database by what the page breaks it down by; the sessions starting after
  the refresh (the schedule ahead) are read one by one as before and added.
- report_fill_leads: the days before the start at which each session filled (a median is not
  a sum): only the sessions that filled are read.
- report_people_days: where every location keeps one time zone, per local day the counts the
  people figures are read from (people_counts_from_days below explains how), so a range that
  runs to today costs a lookup, not a count of every visit in it.

Each is exact: equal to the live figures for any range of days a user can pick (the tests in
tests/integration/test_report_summaries.py compare them on random clinics).
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from events.extensions import db
from events.models import (
    Location,
    Offering,
    OfferingKind,
    ReportFillLead,
    ReportPeopleDay,
    ReportRollup,
    ReportVisit,
    User,
    UTCDateTime,
)
from events.reports import facts as facts_module
from events.reports.figures import ADDITIVE_PARTS, RETURN_WINDOW, PeopleCounts, SessionFacts, SessionTotals

NO_INSTRUCTOR = "No instructor named"
# A range shorter than this reads its sessions one by one (with their summarised facts): a
# month's hundred sessions cost less as one statement than the rollups' five.
ONE_BY_ONE_DAYS = 45
DIMENSIONS = ("offering", "kind", "topic", "location", "instructor", "week", "month")
PEOPLE_PARTS = ("people", "first_timers", "came_back", "workshop_goers", "went_on")


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())  # weeks start on Monday


def month_start(day: date) -> date:
    return day.replace(day=1)


def year_start(day: date) -> date:
    return day.replace(month=1, day=1)


def dimension_value(dimension: str, f: SessionFacts) -> Any:
    """The value a session is grouped by, exactly as the database's column gives it."""
    if dimension == "offering":
        return f.offering_title
    if dimension == "kind":
        return f.kind
    if dimension == "topic":
        return f.topic
    if dimension == "location":
        return f.location_name
    if dimension == "instructor":
        return f.instructor_name
    if dimension == "week":
        return week_start(f.local_day)
    return month_start(f.local_day)


Groups = dict[str, dict[Any, SessionTotals]]


def group_facts(rows: list[SessionFacts], dimensions: set[str], now: datetime) -> Groups:
    """Sessions read one by one, summed per value of each dimension."""
    groups: Groups = {dimension: {} for dimension in dimensions}
    for row in rows:
        totals = SessionTotals.of_one(row, now)
        for dimension, by_value in groups.items():
            value = dimension_value(dimension, row)
            by_value[value] = by_value[value] + totals if value in by_value else totals
    return groups


# --- Rebuilt with the summaries ---


def rebuild_sessions(rows: list[SessionFacts], now: datetime) -> None:
    """report_rollups and report_fill_leads from every session's facts (as the rebuild
    computed them), for the sessions started by `now` (whether one was held is then settled)."""
    db.session.execute(sa.delete(ReportRollup))
    db.session.execute(sa.delete(ReportFillLead))
    sums: dict[tuple[Any, ...], SessionTotals] = {}
    leads = []
    for row in rows:
        if row.starts_at > now:
            continue
        totals = SessionTotals.of_one(row, now)
        day = row.local_day
        periods = (
            ("day", day),
            ("week", week_start(day)),
            ("month", month_start(day)),
            ("year", year_start(day)),
        )
        for grain, period in periods:
            key = (grain, period, row.location_id, row.offering_id, row.instructor_id)
            sums[key] = sums[key] + totals if key in sums else totals
        if totals.fill_leads:
            leads.append(
                {
                    "session_id": row.session_id,
                    "local_day": day,
                    "location_id": row.location_id,
                    "offering_id": row.offering_id,
                    "teacher_id": row.instructor_id,
                    "lead_days": totals.fill_leads[0],
                }
            )
    if sums:
        # On the connection, one executemany: the ORM's bulk insert sent these a row at a time
        # (rows whose None columns differ), 20 s at ten years.
        db.session.connection().execute(
            sa.insert(ReportRollup),
            [
                {
                    "grain": grain,
                    "period": period,
                    "week": week_start(period) if grain in ("day", "week") else None,
                    "month": month_start(period) if grain in ("day", "month") else None,
                    "location_id": location_id,
                    "offering_id": offering_id,
                    "teacher_id": teacher_id,
                    **{name: getattr(totals, name) for name in ADDITIVE_PARTS},
                }
                # In the order a range reads them: a grain's periods side by side on disk.
                for (grain, period, location_id, offering_id, teacher_id), totals in sorted(
                    sums.items(), key=lambda item: item[0][:2]
                )
            ],
        )
    if leads:
        db.session.connection().execute(sa.insert(ReportFillLead), leads)


def _people_parts(v: Any) -> dict[str, tuple[sa.ColumnElement[bool], Any]]:
    """Each people figure as the visits it counts in a range [start, end): those in it whose
    earlier visit (the column; none counts as before) was before the start, and that meet the
    condition. The same conditions as facts._people_without_grouping."""
    first = v.starts_at == v.first_at
    workshop = v.kind == OfferingKind.WORKSHOP.value
    window_hours = RETURN_WINDOW.total_seconds() / 3600
    came_back = sa.and_(
        first, v.second_at.is_not(None), facts_module._hours_from(v.first_at, v.second_at) <= window_hours
    )
    return {
        "people": (sa.literal(True), v.prev_at),
        "first_timers": (first, v.prev_at),
        "came_back": (came_back, v.prev_at),
        "workshop_goers": (workshop, v.prev_workshop_at),
        "went_on": (sa.and_(workshop, v.last_class_at > v.starts_at), v.prev_workshop_at),
    }


def one_zone(locations: list[Location]) -> str | None:
    zones = {place.timezone for place in locations}
    return zones.pop() if len(zones) == 1 else None


def rebuild_people_days(locations: list[Location]) -> None:
    """report_people_days from report_visits (rebuilt just before), when one time zone holds.

    For day d starting at s: before = visits whose earlier visit is before s (or none),
    ended = visits before s. Each visit is put in the day its moment falls in (the last day
    starting at or before it: an indexed lookup each, the same on PostgreSQL and SQLite),
    and the days are then counted up in order."""
    db.session.execute(sa.delete(ReportPeopleDay))
    zone_name = one_zone(locations)
    if zone_name is None:
        return
    v = ReportVisit
    first, last = db.session.execute(sa.select(sa.func.min(v.starts_at), sa.func.max(v.starts_at))).one()
    if first is None:
        return
    zone = ZoneInfo(zone_name)
    # A day either side: the first row is before every visit, the last after every one.
    first_day = facts_module._utc(first).astimezone(zone).date() - timedelta(days=1)
    last_day = facts_module._utc(last).astimezone(zone).date() + timedelta(days=1)
    days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    starts = [facts_module.local_bounds(day, day, zone)[0] for day in days]
    zeros = {f"{name}_{part}": 0 for name in PEOPLE_PARTS for part in ("before", "ended")}
    db.session.connection().execute(
        sa.insert(ReportPeopleDay),
        [
            {"day": day, "zone": zone_name, "starts_at": start, **zeros}
            for day, start in zip(days, starts, strict=True)
        ],
    )

    def day_of(moment: Any) -> Any:
        # The latest start at or before it, through the index on starts_at (max(day) would
        # read every earlier day: the planner cannot know days and starts go together).
        d = ReportPeopleDay
        return (
            sa.select(d.day)
            .where(d.starts_at <= moment)
            .order_by(d.starts_at.desc())
            .limit(1)
            .scalar_subquery()
        )

    parts = _people_parts(v)
    counted: dict[tuple[str, str], dict[Any, int]] = {}

    def count_by_day(moment: Any, names: list[str], part: str) -> None:
        inner = sa.select(
            day_of(moment).label("day"),
            *(sa.case((parts[name][0], 1), else_=0).label(name) for name in names),
        ).subquery()
        rows = db.session.execute(
            sa.select(inner.c.day, *(sa.func.sum(inner.c[name]) for name in names)).group_by(inner.c.day)
        ).all()
        for name_index, name in enumerate(names):
            counted[(name, part)] = {_as_date(row[0]): int(row[1 + name_index] or 0) for row in rows}

    count_by_day(v.starts_at, list(PEOPLE_PARTS), "ended")
    count_by_day(v.prev_at, ["people", "first_timers", "came_back"], "before")
    count_by_day(v.prev_workshop_at, ["workshop_goers", "went_on"], "before")

    rows = []
    running = {key: by_day.get(None, 0) for key, by_day in counted.items()}  # none before: always
    for day, start in zip(days, starts, strict=True):
        rows.append(
            {"day": day, "zone": zone_name, "starts_at": start}
            | {f"{n}_{p}": c for (n, p), c in running.items()}
        )
        for key, by_day in counted.items():
            running[key] += by_day.get(day, 0)
    db.session.execute(sa.delete(ReportPeopleDay))
    db.session.connection().execute(sa.insert(ReportPeopleDay), rows)


def _as_date(value: Any) -> date | None:
    # An aggregate over a subquery loses the column's type on SQLite: a string may come back.
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


# --- Read by a report ---


def _aligned(day: date, grain: str, up: bool) -> date:
    """The first day of the grain's period at or after (up) or at or before `day`."""
    start = {"week": week_start, "month": month_start, "year": year_start}[grain](day)
    if not up or start == day:
        return start
    if grain == "week":
        return start + timedelta(days=7)
    if grain == "month":
        return month_start(start + timedelta(days=32))
    return date(start.year + 1, 1, 1)


def _pieces(first_day: date, last_day: date, grains: tuple[str, ...]) -> list[tuple[str, date, date]]:
    """[first_day, last_day] as (grain, first period, period after) pieces, each day once: the
    whole periods of the coarsest grain inside it, then the finer grains at its edges, then days."""
    if not grains:
        return [("day", first_day, last_day + timedelta(days=1))]
    grain, finer = grains[0], grains[1:]
    inner_start = _aligned(first_day, grain, up=True)
    inner_end = _aligned(last_day + timedelta(days=1), grain, up=False)
    if inner_start >= inner_end:
        return _pieces(first_day, last_day, finer)
    pieces = [(grain, inner_start, inner_end)]
    if first_day < inner_start:
        pieces += _pieces(first_day, inner_start - timedelta(days=1), finer)
    if inner_end <= last_day:
        pieces += _pieces(inner_end, last_day, finer)
    return pieces


# The grains a dimension can be read from: a week's or a month's own, else the coarsest.
GRAINS_FOR = {"week": ("week",), "month": ("month",)}
COARSEST = ("year", "month")


def _span(grains: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """The rollup rows of a range read as pieces of these grains (_pieces): piece n's first
    period and the period after it are the parameters lo<n> and hi<n> (_span_params)."""
    r = ReportRollup
    return sa.or_(
        *(
            sa.and_(r.grain == grain, r.period >= sa.bindparam(f"lo{n}"), r.period < sa.bindparam(f"hi{n}"))
            for n, grain in enumerate(grains)
        )
    )


def _span_params(pieces: list[tuple[str, date, date]]) -> dict[str, date]:
    params = {}
    for n, (_, lo, hi) in enumerate(pieces):
        params[f"lo{n}"], params[f"hi{n}"] = lo, hi
    return params


def _instructor_name() -> sa.ColumnElement[str]:
    return sa.func.coalesce(sa.func.nullif(User.name, ""), NO_INSTRUCTOR)


def _kind_text() -> sa.ColumnElement[str]:
    # The stored text itself: the Enum's conversion of each row cost more than the rest of
    # reading a thousand rows.
    return sa.type_coerce(Offering.kind, sa.String)


def _column(dimension: str) -> Any:
    return {
        "offering": Offering.title,
        "kind": _kind_text(),
        "topic": Offering.topic,
        "location": Location.name,
        "instructor": _instructor_name(),
        "week": ReportRollup.week,
        "month": ReportRollup.month,
    }[dimension]


def grouped(
    dimensions: set[str],
    first_day: date,
    last_day: date,
    scope: facts_module.Scope,
    as_of: datetime,
    now: datetime,
    locations: list[Location],
    leads_for: str | None = None,
    parts_only: dict[str, tuple[str, ...]] | None = None,
) -> Groups:
    """SessionTotals per value of each dimension over the range: the rollups (a grouped query
    per dimension), the sessions that filled (one query), and the sessions starting after
    as_of, read one by one from the summary (held or not as at `now`). A short range: all its
    sessions one by one from the summary.

    leads_for: the one dimension whose groups need their fill leads (the median of days to
    fill); None: every dimension's. Leaving out the others reads only that dimension's names
    for the thousand sessions that filled in ten years, not every name the page groups by.

    parts_only: dimensions whose groups need only these parts (a chart's), the others left at
    zero: ten years hold 500 offerings, and summing all 18 parts of each for a chart of
    three cost the database and Python more than the chart."""
    if (last_day - first_day).days < ONE_BY_ONE_DAYS:
        rows = facts_module.session_facts_from_summary(first_day, last_day, scope, locations)
        return group_facts(rows, dimensions, now)
    scoped = scope.instructor_id is not None
    teacher = {"teacher_id": scope.instructor_id} if scoped else {}
    only = parts_only or {}
    groups: Groups = {}
    for dimension in dimensions:
        pieces = _pieces(first_day, last_day, GRAINS_FOR.get(dimension, COARSEST))
        parts = only.get(dimension, ADDITIVE_PARTS)
        statement = _rollup_statement(dimension, tuple(grain for grain, _, _ in pieces), scoped, parts)
        sums = db.session.execute(statement, _span_params(pieces) | teacher)
        if parts == ADDITIVE_PARTS:
            groups[dimension] = {_value(dimension, row[0]): SessionTotals.from_parts(row[1:]) for row in sums}
        else:
            groups[dimension] = {
                _value(dimension, row[0]): SessionTotals(**dict(zip(parts, row[1:], strict=True)))
                for row in sums
            }

    lead_dimensions = dimensions if leads_for is None else {leads_for}
    # Only the names wanted, joined only when needed: a thousand rows of a name or two.
    named = tuple(
        dimension
        for dimension in ("offering", "kind", "topic", "location", "instructor")
        if dimension in lead_dimensions
    )
    leads = _leads_statement(named, scoped)
    lead_lists: dict[str, dict[Any, list[float]]] = {dimension: {} for dimension in lead_dimensions}
    # Each dimension's value taken from the row by position, a week or month once per day:
    # a thousand filled sessions made a dataclass and walked dimension_value's tests each.
    periods: dict[str, dict[Any, date]] = {"week": {}, "month": {}}
    period_of = {"week": week_start, "month": month_start}
    position = {dimension: 2 + n for n, dimension in enumerate(named)}
    for row in db.session.execute(leads, {"first_day": first_day, "last_day": last_day} | teacher):
        lead = float(row[0])
        for dimension, leads_by_value in lead_lists.items():
            if dimension in position:
                value = row[position[dimension]]
            else:
                seen = periods[dimension]
                value = seen.get(row[1])
                if value is None:
                    value = seen[row[1]] = period_of[dimension](_as_date(row[1]))  # type: ignore[arg-type]
            if value in leads_by_value:
                leads_by_value[value].append(lead)
            else:
                leads_by_value[value] = [lead]
    for dimension, leads_by_value in lead_lists.items():
        into = groups[dimension]
        for value, values in leads_by_value.items():
            into[value] = SessionTotals.from_parts(into.get(value, SessionTotals()).parts(), tuple(values))

    ahead = facts_module.session_facts_from_summary(first_day, last_day, scope, locations, after=as_of)
    if ahead:
        for dimension, by_value in group_facts(ahead, dimensions, now).items():
            into = groups[dimension]
            for value, totals in by_value.items():
                if dimension in only:
                    totals = SessionTotals(**{name: getattr(totals, name) for name in only[dimension]})
                elif dimension not in lead_dimensions:
                    totals = SessionTotals.from_parts(totals.parts())
                into[value] = into[value] + totals if value in into else totals
    return groups


# The statements are built once, their days and instructor parameters (building one again,
# and its cache key, for each request cost more than running it).


@functools.lru_cache(maxsize=256)
def _rollup_statement(
    dimension: str, grains: tuple[str, ...], scoped: bool, parts: tuple[str, ...] = ADDITIVE_PARTS
) -> sa.Select[Any]:
    """A dimension's rollups over a range read as pieces of these grains, grouped by its value:
    the value, then the sum of each part named."""
    r = ReportRollup
    value = _column(dimension)
    query = sa.select(value.label("value"), *_summed_parts(parts))
    if dimension in ("offering", "kind", "topic"):
        query = query.join(Offering, Offering.id == r.offering_id)
    elif dimension == "location":
        query = query.join(Location, Location.id == r.location_id)
    elif dimension == "instructor":
        query = query.select_from(r).outerjoin(User, User.id == r.teacher_id)
    else:
        query = query.select_from(r)
    query = query.where(_span(grains))
    if scoped:
        query = query.where(r.teacher_id == sa.bindparam("teacher_id"))
    return query.group_by(value)


@functools.lru_cache(maxsize=64)
def _leads_statement(named: tuple[str, ...], scoped: bool) -> sa.Select[Any]:
    """The fill leads of the sessions in [first_day, last_day]: lead, local day, then the names."""
    f = ReportFillLead
    leads = sa.select(f.lead_days, f.local_day, *(_column(dimension) for dimension in named)).select_from(f)
    if {"offering", "kind", "topic"} & set(named):
        leads = leads.join(Offering, Offering.id == f.offering_id)
    if "location" in named:
        leads = leads.join(Location, Location.id == f.location_id)
    if "instructor" in named:
        leads = leads.outerjoin(User, User.id == f.teacher_id)
    leads = leads.where(f.local_day >= sa.bindparam("first_day"), f.local_day <= sa.bindparam("last_day"))
    if scoped:
        leads = leads.where(f.teacher_id == sa.bindparam("teacher_id"))
    return leads


def _summed_parts(parts: tuple[str, ...] = ADDITIVE_PARTS) -> list[sa.ColumnElement[int]]:
    # Cast back to bigint: PostgreSQL sums a bigint as numeric, which arrives as a Decimal to
    # convert (about 9,000 of them for a ten-year range by offering).
    r = ReportRollup
    return [sa.cast(sa.func.sum(getattr(r, name)), sa.BigInteger) for name in parts]


def _value(dimension: str, value: Any) -> Any:
    if isinstance(value, OfferingKind):
        return value.value
    if dimension in ("week", "month"):
        return _as_date(value)
    return value


def people_counts_from_days(
    first_day: date, last_day: date, zone_name: str, as_of: datetime
) -> PeopleCounts | None:
    """Everyone's people figures for [start, end) when every location keeps one time zone, or
    None when counting the range's own visits is cheaper (a range far from today) or the days
    are not kept for this zone.

    A figure counts the visits v with start <= v.starts_at < end whose earlier visit (X) was
    before start. Since X <= v.starts_at, that is: (X before start) - (v before start) -
    (X before start and v at or after end). The first two are the start day's row; the last
    is read from the visits after the range only (none for a range that runs to today)."""
    zone = ZoneInfo(zone_name)
    start, end = facts_module.local_bounds(first_day, last_day, zone)
    if as_of - end >= end - start:
        return None
    params = {"zone": zone_name, "first_day": first_day, "start": start, "end": end}
    statement = _people_days_statement(db.session.get_bind().dialect.name)
    row = db.session.execute(statement, params).one_or_none()
    if row is None:
        return None
    counts = {
        name: getattr(row, f"{name}_before") - getattr(row, f"{name}_ended") - int(getattr(row, name) or 0)
        for name in PEOPLE_PARTS
    }
    return PeopleCounts(**counts)


@functools.lru_cache(maxsize=4)
def _people_days_statement(dialect: str) -> sa.Select[Any]:
    """people_counts_from_days' statement (per dialect: _hours_from is the dialect's own): the
    start day's row beside the visits after the range, its zone, first day and bounds as
    parameters."""
    d = ReportPeopleDay
    zone = sa.bindparam("zone", type_=sa.String)
    day = sa.func.coalesce(
        sa.select(sa.func.max(d.day))
        .where(d.zone == zone, d.day <= sa.bindparam("first_day", type_=sa.Date))
        .scalar_subquery(),
        sa.select(sa.func.min(d.day)).where(d.zone == zone).scalar_subquery(),
    )
    v = ReportVisit
    start = sa.bindparam("start", type_=UTCDateTime)
    parts = _people_parts(v)
    after = (
        sa.select(
            *(
                facts_module._sum_if(sa.and_(condition, sa.or_(earlier.is_(None), earlier < start))).label(
                    name
                )
                for name, (condition, earlier) in parts.items()
            )
        )
        .where(v.starts_at >= sa.bindparam("end", type_=UTCDateTime))
        .subquery("after_range")
    )
    # Columns, not the mapped rows: the session may still hold a day's row from before a rebuild.
    kept = [getattr(d, f"{name}_{part}") for name in PEOPLE_PARTS for part in ("before", "ended")]
    return (
        sa.select(*kept, after)
        .select_from(sa.join(d, after, sa.true()))  # one row beside one row
        .where(d.day == day, d.zone == zone)
    )
