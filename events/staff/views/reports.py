"""The reports page and its CSV files: admins see every session's figures, an instructor only
the sessions they teach (their own and those they substitute for)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from events.clinic import current_clinic
from events.reports import charts, exports
from events.reports.forms import report_form
from events.reports.report import BREAKDOWNS, build_report
from events.staff.access import bp


def _today() -> datetime:
    return datetime.now(ZoneInfo(current_clinic().timezone))


def _query_args() -> dict[str, str]:
    """The choices as they were made, for the CSV links."""
    return {
        name: request.args[name]
        for name in ("preset", "date_from", "date_to", "by")
        if request.args.get(name)
    }


@bp.get("/reports")
@login_required
def reports() -> ResponseReturnValue:
    form = report_form(request.args)
    if not form.validate():
        return render_template("staff/reports/index.html", form=form, report=None), 400
    first_day, last_day = form.chosen_range(_today().date())
    report = build_report(first_day, last_day, form.by.data or "offering", current_user)
    return render_template(
        "staff/reports/index.html",
        form=form,
        report=report,
        charts=charts,
        tables=exports.TABLES,
        csv_args=_query_args(),
        breakdowns=BREAKDOWNS,
    )


@bp.get("/reports/<any(figures, breakdown, trend, fill, attendance, codes):table>.csv")
@login_required
def reports_csv(table: str) -> ResponseReturnValue:
    form = report_form(request.args)
    if not form.validate():
        abort(400, description="Those report dates or choices could not be understood.")
    first_day, last_day = form.chosen_range(_today().date())
    report = build_report(first_day, last_day, form.by.data or "offering", current_user)
    filename = f"report-{table}-{first_day.isoformat()}-to-{last_day.isoformat()}.csv"
    return Response(
        exports.table_csv(report, table),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
