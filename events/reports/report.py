"""A report: the figures for a range of days, whose sessions, broken down one way.

The page, its CSV files and the JSON API all read the Report built here, so they cannot
disagree."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from events.clinic import current_clinic
from events.models import User, utcnow
from events.reports import facts as facts_module
from events.reports import summaries
from events.reports.figures import (
    FIGURES,
    PASS_FIGURES,
    PEOPLE_FIGURES,
    SESSION_FIGURES,
    Figure,
    PartnerCodes,
    PassFacts,
    PeopleCounts,
    PersonHistory,
    Ratio,
    SessionFacts,
    attendance_rate,
    fill_rate_at_start,
    sessions_held,
    visits,
)

PRESETS = {
    "last_4_weeks": "Last 4 weeks",
    "this_month": "This month",
    "last_month": "Last month",
    "this_year": "This year",
    "custom": "Dates I choose",
}
BREAKDOWNS = {
    "offering": "Offering",
    "kind": "Kind",
    "topic": "Topic",
    "location": "Location",
    "instructor": "Instructor",
    "week": "Week",
    "month": "Month",
}
MAX_RANGE_DAYS = 366 * 11  # ten years and some: the clinic's whole history, never more
CHART_BARS = 15


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The first and last day (inclusive) of a preset, around today (the clinic's today)."""
    if preset == "this_month":
        return today.replace(day=1), _month_end(today)
    if preset == "last_month":
        last_month_end = today.replace(day=1) - timedelta(days=1)
        return last_month_end.replace(day=1), last_month_end
    if preset == "this_year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    return today - timedelta(days=27), today  # last 4 weeks, today included


def _month_end(day: date) -> date:
    next_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return next_month - timedelta(days=1)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())  # weeks start on Monday


@lru_cache(maxsize=1024)
def week_label(monday: date) -> str:
    return f"Week of {monday:%b} {monday.day}, {monday.year}"


def _group_key(breakdown: str) -> Callable[[SessionFacts], tuple[Any, str]]:
    """(what sorts the group, what names it) for one session."""
    if breakdown == "offering":
        return lambda f: (f.offering_title.lower(), f.offering_title)
    if breakdown == "kind":
        return lambda f: (f.kind, f.kind.capitalize())
    if breakdown == "topic":
        return lambda f: (f.topic.lower(), f.topic or "No topic")
    if breakdown == "location":
        return lambda f: (f.location_name.lower(), f.location_name)
    if breakdown == "instructor":
        return lambda f: (f.instructor_name.lower(), f.instructor_name)
    if breakdown == "week":
        return lambda f: (week_start(f.local_day), week_label(week_start(f.local_day)))
    return lambda f: (
        (f.local_day.year, f.local_day.month),
        _month_label(f.local_day.year, f.local_day.month),
    )


@lru_cache(maxsize=512)
def _month_label(year: int, month: int) -> str:
    return f"{date(year, month, 1):%B %Y}"  # once per month, not once per session


def format_value(figure: Figure, value: object) -> str:
    if value is None:
        return "–"
    if figure.unit == "money":
        return f"${int(value) / 100:,.2f}"  # type: ignore[call-overload]
    if figure.unit == "percent" and isinstance(value, Ratio):
        return f"{value} ({value.part:,} of {value.whole:,})" if value.whole else "–"
    if figure.unit == "days":
        return f"{value} days"
    return f"{value:,}" if isinstance(value, int) else str(value)


@dataclass(frozen=True)
class FigureValue:
    figure: Figure
    value: object

    @property
    def text(self) -> str:
        return format_value(self.figure, self.value)


@dataclass(frozen=True)
class BreakdownRow:
    label: str
    values: list[FigureValue]


@dataclass(frozen=True)
class ChartRow:
    label: str
    value: float  # what the bar's length shows
    text: str  # the number as read in the table: "81% (505 of 624)"

    @property
    def bar_text(self) -> str:
        """What fits at the end of a bar on a phone: "81%"."""
        return self.text.split(" (")[0]


@dataclass
class Report:
    first_day: date
    last_day: date
    breakdown: str
    currency: str
    instructor_name: str | None  # set when the report is one instructor's own
    summary: list[FigureValue]
    people: list[FigureValue]
    rows: list[BreakdownRow]
    totals: BreakdownRow
    # When the summaries it was read from were last equal to the live rows (None: read live).
    as_of: datetime | None = None
    # The clinic's passes and codes: for admins (an instructor's report has none).
    passes: list[FigureValue] = field(default_factory=list)
    codes_by_partner: list[PartnerCodes] = field(default_factory=list)
    trend_title: str = ""
    trend: list[ChartRow] = field(default_factory=list)
    fill_by_offering: list[ChartRow] = field(default_factory=list)
    more_offerings: int = 0
    attendance_by_location: list[ChartRow] = field(default_factory=list)

    @property
    def breakdown_label(self) -> str:
        return BREAKDOWNS[self.breakdown]

    def value(self, key: str) -> object:
        for item in (*self.summary, *self.people, *self.passes):
            if item.figure.key == key:
                return item.value
        raise KeyError(key)


def session_values(rows: list[SessionFacts], now: datetime) -> list[FigureValue]:
    return [FigureValue(f, f.compute(rows, now)) for f in SESSION_FIGURES]


def people_values(people: PeopleCounts | list[PersonHistory]) -> list[FigureValue]:
    return [FigureValue(f, f.compute(people)) for f in PEOPLE_FIGURES]


def pass_values(passes: PassFacts) -> list[FigureValue]:
    return [FigureValue(f, f.compute(passes)) for f in PASS_FIGURES]


def build_report(
    first_day: date, last_day: date, breakdown: str, user: User, now: datetime | None = None
) -> Report:
    now = now or utcnow()
    clinic = current_clinic()
    scope = facts_module.Scope(None if user.is_admin else user.id)
    locations = facts_module.active_locations_for_reports()
    # The summaries when the worker keeps them (events/reports/summaries.py), else the live rows.
    state = summaries.usable_state(now)
    if state is not None:
        session_rows = facts_module.session_facts_from_summary(first_day, last_day, scope, locations)
        people: PeopleCounts = facts_module.people_counts_from_summary(first_day, last_day, scope, locations)
    else:
        session_rows = facts_module.session_facts(first_day, last_day, scope, clinic.currency, locations)
        people = facts_module.people_counts(first_day, last_day, scope, now, locations)

    key_of = _group_key(breakdown)
    groups: dict[Any, tuple[str, list[SessionFacts]]] = {}
    for row in session_rows:
        sort_key, label = key_of(row)
        groups.setdefault(sort_key, (label, []))[1].append(row)
    breakdown_rows = [
        BreakdownRow(label, session_values(rows, now))
        for _, (label, rows) in sorted(groups.items(), key=lambda g: g[0])
    ]
    summary = session_values(session_rows, now)

    report = Report(
        first_day=first_day,
        last_day=last_day,
        breakdown=breakdown,
        currency=clinic.currency,
        instructor_name=None if user.is_admin else user.name,
        summary=summary,
        people=people_values(people),
        rows=breakdown_rows,
        totals=BreakdownRow("All", summary),
        as_of=state.as_of if state is not None else None,
    )
    if user.is_admin:
        passes = facts_module.pass_facts(first_day, last_day, ZoneInfo(clinic.timezone), clinic.currency)
        report.passes = pass_values(passes)
        report.codes_by_partner = list(passes.codes)
    _charts(report, session_rows, now)
    return report


def _charts(report: Report, rows: list[SessionFacts], now: datetime) -> None:
    by_month = (report.last_day - report.first_day).days > 120
    trend_key = _group_key("month" if by_month else "week")
    report.trend_title = "Visits per month" if by_month else "Visits per week"
    trend: dict[Any, tuple[str, list[SessionFacts]]] = {}
    for row in rows:
        sort_key, label = trend_key(row)
        trend.setdefault(sort_key, (label.removeprefix("Week of "), []))[1].append(row)
    report.trend = [
        ChartRow(label, count, f"{count:,}")
        for _, (label, group) in sorted(trend.items(), key=lambda g: g[0])
        for count in [visits(group, now)]
    ]

    # By title, as the breakdown does: a workshop run each month is one line, not twelve.
    by_offering: dict[str, list[SessionFacts]] = defaultdict(list)
    for row in rows:
        by_offering[row.offering_title].append(row)
    busiest = sorted(by_offering.values(), key=lambda g: (-sessions_held(g, now), g[0].offering_title))
    fills = []
    for group in busiest:
        rate = fill_rate_at_start(group, now)
        if rate.value is not None:
            fills.append(
                ChartRow(
                    group[0].offering_title,
                    rate.value * 100,
                    format_value(FIGURES["fill_rate_at_start"], rate),
                )
            )
    report.fill_by_offering = fills[:CHART_BARS]
    report.more_offerings = max(len(fills) - CHART_BARS, 0)

    by_location: dict[str, list[SessionFacts]] = defaultdict(list)
    for row in rows:
        by_location[row.location_name].append(row)
    for name in sorted(by_location):
        rate = attendance_rate(by_location[name], now)
        report.attendance_by_location.append(
            ChartRow(name, (rate.value or 0) * 100, format_value(FIGURES["attendance_rate"], rate))
        )
