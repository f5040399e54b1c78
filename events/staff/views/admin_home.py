"""The admin's front page: where everything is, and what needs attention."""

from flask import render_template
from flask.typing import ResponseReturnValue

from events.staff import emails
from events.staff.access import admin_required, bp


@bp.get("/admin/")
@admin_required
def admin_index() -> ResponseReturnValue:
    return render_template("staff/admin/index.html", counts={"failed_emails": emails.failed_count()})
