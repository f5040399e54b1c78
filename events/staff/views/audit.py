"""The audit trail, for admins: filtered by person, kind, offering and dates, a page at a time."""

from zoneinfo import ZoneInfo

from flask import render_template, request
from flask.typing import ResponseReturnValue

from events.clinic import current_clinic
from events.staff import audit_trail, offerings
from events.staff.access import admin_required, bp
from events.staff.admin_forms import AuditFilterForm


@bp.get("/audit")
@admin_required
def audit_log() -> ResponseReturnValue:
    form = AuditFilterForm(request.args)
    form.actor_id.choices = [(None, "Anyone"), *audit_trail.actor_choices()]
    form.action.choices = [("", "Any kind"), *audit_trail.action_choices()]
    form.offering_id.choices = [(None, "Any offering"), *offerings.offering_choices()]
    if not form.validate():
        return render_template("staff/audit.html", form=form, page=None), 400
    chosen = audit_trail.AuditFilter(
        actor_id=form.actor_id.data,
        action=form.action.data or "",
        offering_id=form.offering_id.data,
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        before=form.before.data,
        after=form.after.data,
    )
    zone = ZoneInfo(current_clinic().timezone)
    # The filters as chosen, for the paging links (which add before= or after=).
    filter_args = {
        name: request.args[name]
        for name in ("actor_id", "action", "offering_id", "date_from", "date_to")
        if request.args.get(name)
    }
    return render_template(
        "staff/audit.html", form=form, page=audit_trail.audit_page(chosen, zone), filter_args=filter_args
    )
