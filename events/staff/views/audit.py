"""The audit trail, for admins."""

from flask import render_template
from flask.typing import ResponseReturnValue

from events import audit
from events.staff.access import admin_required, bp


@bp.get("/audit")
@admin_required
def audit_log() -> ResponseReturnValue:
    return render_template("staff/audit.html", entries=audit.latest(300))
