"""Staff pages: sign-in, my sessions, rosters, check-in, CSV, print, cancellations, audit."""

import sqlalchemy as sa
from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user

from events.extensions import config_limit, db, limiter
from events.models import AttendanceStatus, AuditEntry, Session
from events.registration.forms import ConfirmForm
from events.staff import admin_required, auth, bp, services
from events.staff.forms import CancelForm, LoginForm, NewPasswordForm, ResetRequestForm


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(config_limit("LOGIN_RATE_LIMIT"), methods=["POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        user = auth.authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            return redirect(auth.safe_next(request.args.get("next")) or url_for("staff.home"))
        form.form_errors.append("That email and password don't match an active staff account.")
    return render_template("staff/login.html", form=form), (400 if form.errors or form.form_errors else 200)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    if ConfirmForm().validate():
        # Every copy of this cookie, and the account's other sessions, stop working too.
        auth.sign_out_everywhere(current_user._get_current_object())
        logout_user()
        flash("You're signed out.", "success")
    return redirect(url_for("staff.login"))


@bp.route("/password-reset", methods=["GET", "POST"])
@limiter.limit(config_limit("PASSWORD_RESET_RATE_LIMIT"), methods=["POST"])
def password_reset_request() -> ResponseReturnValue:
    form = ResetRequestForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data)
        # The same answer whether or not the account exists.
        flash("If that email belongs to a staff account, a reset link is on its way.", "success")
        return redirect(url_for("staff.login"))
    return render_template("staff/password_reset_request.html", form=form)


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
@limiter.limit(config_limit("LOGIN_RATE_LIMIT"), methods=["POST"])
def password_reset(token: str) -> ResponseReturnValue:
    user = auth.user_from_reset_token(token)
    if user is None:
        abort(410, description="This reset link has expired or was already used. Ask for a new one.")
    form = NewPasswordForm()
    if form.validate_on_submit():
        services.set_password(user, form.password.data)
        flash("Your password is changed. Please sign in.", "success")
        return redirect(url_for("staff.login"))
    return render_template("staff/password_reset.html", form=form)


@bp.get("/")
@login_required
def home() -> ResponseReturnValue:
    return render_template("staff/home.html", sessions=services.upcoming_sessions_for(current_user))


def _session_or_404(session_id: int) -> Session:
    return services.visible_session(current_user, session_id) or abort(404)


@bp.get("/sessions/<int:session_id>")
@login_required
def roster(session_id: int) -> ResponseReturnValue:
    session = _session_or_404(session_id)
    lines, waitlist = services.roster(session)
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
    session = _session_or_404(session_id)
    wants_json = request.accept_mimetypes.best == "application/json"
    try:
        status = AttendanceStatus(request.form.get("status", ""))
        row = services.mark_attendance(session, registration_id, status, current_user)
    except ValueError:
        message = "Choose present or absent."
        return (jsonify(error=message), 400) if wants_json else (abort(400, description=message))
    except services.RosterError as error:
        return (jsonify(error=str(error)), 404) if wants_json else abort(404, description=str(error))
    if wants_json:
        return jsonify(registration_id=registration_id, status=row.status.value)
    return redirect(url_for("staff.roster", session_id=session_id) + f"#r{registration_id}")


@bp.get("/sessions/<int:session_id>/roster.csv")
@login_required
def roster_csv(session_id: int) -> ResponseReturnValue:
    session = _session_or_404(session_id)
    filename = f"roster-{session.local_start:%Y-%m-%d}-{session.offering.slug}.csv"
    return Response(
        services.roster_csv(session),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/sessions/<int:session_id>/print")
@login_required
def roster_print(session_id: int) -> ResponseReturnValue:
    session = _session_or_404(session_id)
    lines, waitlist = services.roster(session)
    return render_template("staff/roster_print.html", session=session, lines=lines, waitlist=waitlist)


@bp.post("/sessions/<int:session_id>/cancel")
@admin_required
def cancel_session(session_id: int) -> ResponseReturnValue:
    session = _session_or_404(session_id)
    form = CancelForm()
    if not form.validate():
        flash("Give a reason to cancel (it is told to attendees).", "error")
        return redirect(url_for("staff.roster", session_id=session.id))
    refunds = services.cancel_session(session.id, current_user, form.reason.data)
    flash(f"Session cancelled; everyone is being told. {refunds} refund(s) queued.", "success")
    return redirect(url_for("staff.roster", session_id=session.id))


@bp.get("/audit")
@admin_required
def audit_log() -> ResponseReturnValue:
    entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(300)).all()
    return render_template("staff/audit.html", entries=entries)
