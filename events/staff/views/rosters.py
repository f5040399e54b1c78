"""An instructor's sessions and each session's roster: check-in, CSV, print."""

from flask import Response, abort, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from events.models import AttendanceStatus, Session
from events.registration.forms import ConfirmForm
from events.staff import rosters
from events.staff.access import bp, visible_session
from events.staff.errors import RosterError
from events.staff.forms import CancelForm


@bp.get("/")
@login_required
def home() -> ResponseReturnValue:
    return render_template("staff/home.html", sessions=rosters.upcoming_sessions_for(current_user))


def session_or_404(session_id: int) -> Session:
    return visible_session(current_user, session_id) or abort(404)


@bp.get("/sessions/<int:session_id>")
@login_required
def roster(session_id: int) -> ResponseReturnValue:
    session = session_or_404(session_id)
    lines, waitlist = rosters.roster(session)
    return render_template(
        "staff/roster.html",
        session=session,
        lines=lines,
        waitlist=waitlist,
        form=ConfirmForm(),
        cancel_form=CancelForm(),
    )


@bp.post("/sessions/<int:session_id>/attendance/<int:registration_id>")
@login_required
def mark_attendance(session_id: int, registration_id: int) -> ResponseReturnValue:
    session = session_or_404(session_id)
    wants_json = request.accept_mimetypes.best == "application/json"
    try:
        status = AttendanceStatus(request.form.get("status", ""))
        row = rosters.mark_attendance(session, registration_id, status, current_user)
    except ValueError:
        message = "Choose present or absent."
        return (jsonify(error=message), 400) if wants_json else (abort(400, description=message))
    except RosterError as error:
        return (jsonify(error=str(error)), 404) if wants_json else abort(404, description=str(error))
    if wants_json:
        return jsonify(registration_id=registration_id, status=row.status.value)
    return redirect(url_for("staff.roster", session_id=session_id) + f"#r{registration_id}")


@bp.get("/sessions/<int:session_id>/roster.csv")
@login_required
def roster_csv(session_id: int) -> ResponseReturnValue:
    session = session_or_404(session_id)
    filename = f"roster-{session.local_start:%Y-%m-%d}-{session.offering.slug}.csv"
    return Response(
        rosters.roster_csv(session),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/sessions/<int:session_id>/print")
@login_required
def roster_print(session_id: int) -> ResponseReturnValue:
    session = session_or_404(session_id)
    lines, waitlist = rosters.roster(session)
    return render_template("staff/roster_print.html", session=session, lines=lines, waitlist=waitlist)
