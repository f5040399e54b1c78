"""An instructor's sessions and each session's roster: check-in and undo, walk-ins, CSV, print."""

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from events.consent import services as consent
from events.forms import attempt
from events.models import AttendanceStatus, Session
from events.registration.forms import ConfirmForm
from events.registration.services import Person
from events.staff import rosters
from events.staff.access import bp, visible_session
from events.staff.errors import CheckinClosed, RosterError
from events.staff.forms import CancelForm, WalkInForm


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
    page = rosters.roster_page(session, request.args.get("q", ""))
    return render_template(
        "staff/roster.html",
        session=session,
        page=page,
        form=ConfirmForm(),
        cancel_form=CancelForm(),
    )


def _roster_url(session_id: int, registration_id: int | None = None) -> str:
    anchor = f"#r{registration_id}" if registration_id else ""
    return url_for("staff.roster", session_id=session_id) + anchor


def _attendance_answer(
    session: Session, registration_id: int, status: AttendanceStatus | None
) -> ResponseReturnValue:
    """JSON for the page's script (the new mark and the count), else back to the roster."""
    if request.accept_mimetypes.best == "application/json":
        count = rosters.here_count(session)
        return jsonify(
            registration_id=registration_id,
            status=status.value if status else None,
            present=count.present,
            expected=count.expected,
            count_text=count.text,
        )
    return redirect(_roster_url(session.id, registration_id))


def _refused(session_id: int, error: RosterError, code: int) -> ResponseReturnValue:
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error=str(error)), code
    if isinstance(error, CheckinClosed):
        flash(str(error), "error")
        return redirect(_roster_url(session_id))
    abort(code, description=str(error))


@bp.post("/sessions/<int:session_id>/attendance/<int:registration_id>")
@login_required
def mark_attendance(session_id: int, registration_id: int) -> ResponseReturnValue:
    session = session_or_404(session_id)
    try:
        status = AttendanceStatus(request.form.get("status", ""))
    except ValueError:
        message = "Choose present or absent."
        if request.accept_mimetypes.best == "application/json":
            return jsonify(error=message), 400
        abort(400, description=message)
    try:
        row = rosters.mark_attendance(session, registration_id, status, current_user)
    except CheckinClosed as error:
        return _refused(session_id, error, 409)
    except RosterError as error:
        return _refused(session_id, error, 404)
    return _attendance_answer(session, registration_id, row.status)


@bp.post("/sessions/<int:session_id>/attendance/<int:registration_id>/undo")
@login_required
def undo_attendance(session_id: int, registration_id: int) -> ResponseReturnValue:
    session = session_or_404(session_id)
    try:
        rosters.clear_attendance(session, registration_id, current_user)
    except CheckinClosed as error:
        return _refused(session_id, error, 409)
    except RosterError as error:
        return _refused(session_id, error, 404)
    return _attendance_answer(session, registration_id, None)


@bp.route("/sessions/<int:session_id>/walk-in", methods=["GET", "POST"])
@login_required
def add_walk_in(session_id: int) -> ResponseReturnValue:
    session = session_or_404(session_id)
    form = WalkInForm()
    if form.validate_on_submit():
        person = Person(form.name.data, form.email.data or "", form.phone.data or "")
        registration = attempt(form, lambda: rosters.add_walk_in(session, person, current_user))
        if registration is not None:
            if consent.required_version(session.offering) is not None:
                # A walk-in booked without the consent document: ask now, on this phone.
                flash(
                    f"{registration.name} added and checked in. Now hand them the phone to read this.",
                    "success",
                )
                return redirect(
                    url_for("staff.accept_consent", session_id=session.id, registration_id=registration.id)
                )
            flash(f"{registration.name} added and checked in.", "success")
            return redirect(_roster_url(session.id, registration.id))
    status = 400 if form.is_submitted() else 200
    count = rosters.here_count(session)
    return render_template("staff/walk_in.html", session=session, form=form, count=count), status


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
    return render_template("staff/roster_print.html", session=session, page=rosters.roster_page(session))
