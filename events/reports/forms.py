"""The report's choices: which days (a preset or two dates) and which breakdown. A GET form:
it changes nothing, so it has no CSRF token; anything it cannot understand is a form error."""

from __future__ import annotations

from datetime import date

from werkzeug.datastructures import MultiDict
from wtforms import DateField, SelectField
from wtforms.validators import Optional

from events.forms import Form
from events.reports.report import BREAKDOWNS, MAX_RANGE_DAYS, PRESETS, preset_range


class ReportForm(Form):
    class Meta:
        csrf = False

    preset = SelectField("Dates", choices=list(PRESETS.items()), default="last_4_weeks")
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To (included)", validators=[Optional()])
    by = SelectField("Break down by", choices=list(BREAKDOWNS.items()), default="offering")

    def validate(self, extra_validators: object = None) -> bool:
        valid = super().validate()
        if not valid or self.preset.data != "custom":
            return valid
        first, last = self.date_from.data, self.date_to.data
        if first is None:
            self.date_from.errors = ["Enter the first day, e.g. 2026-03-01."]
        if last is None:
            self.date_to.errors = ["Enter the last day, e.g. 2026-03-31."]
        elif first is not None and last < first:
            self.date_to.errors = ["The last day is before the first day."]
        elif first is not None and (last - first).days > MAX_RANGE_DAYS:
            self.date_to.errors = ["Choose at most eleven years."]
        return not (self.date_from.errors or self.date_to.errors)

    def chosen_range(self, today: date) -> tuple[date, date]:
        """After validate(): the first and last day asked for."""
        if self.preset.data == "custom" and self.date_from.data and self.date_to.data:
            return self.date_from.data, self.date_to.data
        return preset_range(self.preset.data or "last_4_weeks", today)


def report_form(args: MultiDict[str, str]) -> ReportForm:
    """The form from the query string; dates with no preset named mean the dates chosen."""
    form = ReportForm(args)
    if not args.get("preset") and (args.get("date_from") or args.get("date_to")):
        form.preset.data = "custom"
    return form
