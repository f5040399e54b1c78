"""A report: the figures for a range of days, whose sessions, broken down one way.

The page, its CSV files and the JSON API all read the Report built here, so they cannot
disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from events.clinic import current_clinic
from events.models import User, utcnow
from events.reports import facts as facts_module
from events.reports import rollups, summaries
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
    SessionRows,
    SessionTotals,
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
# What the fill chart reads of each offering's totals (_charts: sessions_held, fill_rate_at_start).
FILL_CHART_PARTS: tuple[str, ...] = ("held", "booked_held", "seats_held")
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


@lru_cache(maxsize=1024)
def week_label(monday: date) -> str:
    return f"Week of {monday:%b} {monday.day}, {monday.year}"


def _group_key(breakdown: str, value: Any) -> tuple[Any, str]:
    """(what sorts the group, what names it) for a value of the breakdown
    (rollups.dimension_value: a title, a kind, a Monday, the 1st of a month...)."""
    if breakdown == "offering":
        return value.lower(), value
    if breakdown == "kind":
        return value, value.capitalize()
    if breakdown == "topic":
        return value.lower(), value or "No topic"
    if breakdown in ("location", "instructor"):
        return value.lower(), value
    if breakdown == "week":
        return value, week_label(value)
    return (value.year, value.month), _month_label(value.year, value.month)


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


def session_values(rows: SessionRows, now: datetime) -> list[FigureValue]:
    totals = rows if isinstance(rows, SessionTotals) else SessionTotals.of(rows, now)
    return [FigureValue(f, f.compute(totals, now)) for f in SESSION_FIGURES]


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
    by_month = (last_day - first_day).days > 120
    trend_by = "month" if by_month else "week"
    dimensions = {breakdown, trend_by, "offering", "location"}
    # The summaries when the worker keeps them (events/reports/summaries.py), else the live rows.
    state = summaries.usable_state(now)
    people: PeopleCounts | None = None
    if state is not None:
        # The offerings for the fill chart only (unless the breakdown is by offering): its parts.
        parts_only: dict[str, tuple[str, ...]] = {}
        if breakdown != "offering":
            parts_only["offering"] = FILL_CHART_PARTS
        groups = rollups.grouped(
            dimensions, first_day, last_day, scope, state.as_of, now, locations, breakdown, parts_only
        )
        zone = rollups.one_zone(locations)
        if scope.instructor_id is None and zone is not None:
            people = rollups.people_counts_from_days(first_day, last_day, zone, state.as_of)
        if people is None:
            people = facts_module.people_counts_from_summary(first_day, last_day, scope, locations)
    else:
        session_rows = facts_module.session_facts(first_day, last_day, scope, clinic.currency, locations)
        groups = rollups.group_facts(session_rows, dimensions, now)
        people = facts_module.people_counts(first_day, last_day, scope, now, locations)

    # Merged by what sorts them: a title written in other case is the same offering.
    merged: dict[Any, tuple[str, SessionTotals]] = {}
    for value in sorted(groups[breakdown], key=str):
        sort_key, label = _group_key(breakdown, value)
        if sort_key in merged:
            merged[sort_key] = (merged[sort_key][0], merged[sort_key][1] + groups[breakdown][value])
        else:
            merged[sort_key] = (label, groups[breakdown][value])
    breakdown_rows = [
        BreakdownRow(label, session_values(totals, now))
        for _, (label, totals) in sorted(merged.items(), key=lambda g: g[0])
    ]
    # Every session has a location: the locations' totals are everything's. The fill leads
    # are the breakdown's (every session is in one of its groups too): only its groups carry
    # them when read from the rollups.
    everything = sum(groups["location"].values(), SessionTotals())
    all_leads = tuple(lead for totals in groups[breakdown].values() for lead in totals.fill_leads)
    summary = session_values(SessionTotals.from_parts(everything.parts(), all_leads), now)

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
    _charts(report, groups, trend_by, now)
    return report


def _charts(report: Report, groups: rollups.Groups, trend_by: str, now: datetime) -> None:
    report.trend_title = "Visits per month" if trend_by == "month" else "Visits per week"
    report.trend = [
        ChartRow(label.removeprefix("Week of "), count, f"{count:,}")
        for _, label, count in sorted(
            (*_group_key(trend_by, value), visits(totals, now)) for value, totals in groups[trend_by].items()
        )
    ]

    # By title, as the breakdown does: a workshop run each month is one line, not twelve.
    by_offering = groups["offering"]
    busiest = sorted(by_offering, key=lambda title: (-sessions_held(by_offering[title], now), title))
    rates = []
    for title in busiest:
        rate = fill_rate_at_start(by_offering[title], now)
        if rate.value is not None:
            rates.append((title, rate))
    # Only the bars shown are written out (ten years hold 500 offerings; 15 are drawn).
    report.fill_by_offering = [
        ChartRow(title, rate.part / rate.whole * 100, format_value(FIGURES["fill_rate_at_start"], rate))
        for title, rate in rates[:CHART_BARS]
    ]
    report.more_offerings = max(len(rates) - CHART_BARS, 0)

    by_location = groups["location"]
    for name in sorted(by_location):
        rate = attendance_rate(by_location[name], now)
        report.attendance_by_location.append(
            ChartRow(name, (rate.value or 0) * 100, format_value(FIGURES["attendance_rate"], rate))
        )
