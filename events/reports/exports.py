"""Every table of the report page as CSV, read from the same Report the page shows.

Numbers are plain numbers a spreadsheet can add up: counts, money in the clinic's currency
with two decimals, shares as percentages with one decimal (empty where there is nothing to
divide by). Names are quoted against formula injection, as the roster's CSV does."""

from __future__ import annotations

import csv
import io

from events.reports.figures import PASS_FIGURES, PEOPLE_FIGURES, SESSION_FIGURES, Figure, Ratio
from events.reports.report import BreakdownRow, ChartRow, FigureValue, Report
from events.staff.rosters import csv_safe

TABLES = {
    "figures": "All figures for the dates",
    "breakdown": "Figures by the chosen breakdown",
    "trend": "Visits over time",
    "fill": "Fill rate by offering",
    "attendance": "Attendance by location",
    "codes": "Code redemptions by partner",
}


def csv_number(figure: Figure, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Ratio):
        return "" if value.value is None else f"{value.value * 100:.1f}"
    if figure.unit == "money":
        return f"{int(value) / 100:.2f}"  # type: ignore[call-overload]
    return str(value)


def _write(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def _unit(figure: Figure, currency: str) -> str:
    return {"money": f" ({currency.upper()})", "percent": " (%)", "days": " (days)"}.get(figure.unit, "")


def figures_csv(report: Report) -> str:
    rows = [["figure", "value", "definition"]]
    for item in (*report.summary, *report.people, *report.passes):
        rows.append(
            [
                item.figure.label + _unit(item.figure, report.currency),
                csv_number(item.figure, item.value),
                item.figure.definition,
            ]
        )
    return _write(rows)


def breakdown_csv(report: Report) -> str:
    header = [report.breakdown_label] + [f.label + _unit(f, report.currency) for f in SESSION_FIGURES]
    lines: list[BreakdownRow] = [*report.rows, report.totals]
    rows = [header] + [
        [csv_safe(line.label)] + [csv_number(v.figure, v.value) for v in line.values] for line in lines
    ]
    return _write(rows)


def _chart_csv(label: str, value_label: str, rows: list[ChartRow], values: list[str]) -> str:
    return _write(
        [[label, value_label], *([csv_safe(r.label), v] for r, v in zip(rows, values, strict=True))]
    )


def table_csv(report: Report, table: str) -> str:
    if table == "figures":
        return figures_csv(report)
    if table == "breakdown":
        return breakdown_csv(report)
    if table == "trend":
        return _chart_csv("period", "visits", report.trend, [str(int(r.value)) for r in report.trend])
    if table == "codes":
        return _write(
            [["partner tag", "redemptions", f"discount ({report.currency.upper()})"]]
            + [
                [csv_safe(c.partner_tag or "No partner"), str(c.redemptions), f"{c.discount_cents / 100:.2f}"]
                for c in report.codes_by_partner
            ]
        )
    if table == "fill":
        return _chart_csv(
            "offering",
            "fill rate at start (%)",
            report.fill_by_offering,
            [f"{r.value:.1f}" for r in report.fill_by_offering],
        )
    return _chart_csv(
        "location", "attendance (%)", report.attendance_by_location,
        ["" if r.text == "–" else f"{r.value:.1f}" for r in report.attendance_by_location],
    )  # fmt: skip


def report_json(report: Report) -> dict:
    """The report for the JSON API: numbers, never formatted text; money in integer cents."""

    def values(items: list[FigureValue]) -> dict:
        return {item.figure.key: _json(item.value) for item in items}

    return {
        "range": {"from": report.first_day.isoformat(), "to": report.last_day.isoformat()},
        "currency": report.currency,
        "breakdown": report.breakdown,
        "figures": values(report.summary),
        "people": {item.figure.key: _json(item.value) for item in report.people},
        # Admins' reports only; null in an instructor's (passes and codes are the clinic's).
        "passes": values(report.passes) if report.passes else None,
        "codes_by_partner": [
            {"partner_tag": c.partner_tag, "redemptions": c.redemptions, "discount_cents": c.discount_cents}
            for c in report.codes_by_partner
        ],
        "rows": [{"label": row.label, "figures": values(row.values)} for row in report.rows],
        "definitions": {
            f.key: {"label": f.label, "unit": f.unit, "definition": f.definition}
            for f in (*SESSION_FIGURES, *PEOPLE_FIGURES, *PASS_FIGURES)
        },
    }


def _json(value: object) -> object:
    if isinstance(value, Ratio):
        return {"part": value.part, "whole": value.whole, "value": value.value}
    return value
