"""Sign-in, sign-out, password reset, and the admin's pages for instructors' accounts."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user

from events.extensions import config_limit, limiter
from events.forms import attempt
from events.models import Role, User
from events.registration.forms import ConfirmForm
from events.reset_links import user_from_reset_token
from events.staff import accounts
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import InstructorForm
from events.staff.forms import LoginForm, NewPasswordForm, ResetRequestForm


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(config_limit("LOGIN_RATE_LIMIT"), methods=["POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            return redirect(accounts.safe_next(request.args.get("next")) or url_for("staff.home"))
        form.form_errors.append("That email and password don't match an active staff account.")
    return render_template("staff/login.html", form=form), (400 if form.errors or form.form_errors else 200)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    if ConfirmForm().validate():
        # Every copy of this cookie, and the account's other sessions, stop working too.
        accounts.sign_out_everywhere(current_user._get_current_object())
        logout_user()
        flash("You're signed out.", "success")
    return redirect(url_for("staff.login"))


@bp.route("/password-reset", methods=["GET", "POST"])
@limiter.limit(config_limit("PASSWORD_RESET_RATE_LIMIT"), methods=["POST"])
def password_reset_request() -> ResponseReturnValue:
    form = ResetRequestForm()
    if form.validate_on_submit():
        accounts.request_password_reset(form.email.data)
        # The same answer whether or not the account exists.
        flash("If that email belongs to a staff account, a reset link is on its way.", "success")
        return redirect(url_for("staff.login"))
    return render_template("staff/password_reset_request.html", form=form)


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
@limiter.limit(config_limit("LOGIN_RATE_LIMIT"), methods=["POST"])
def password_reset(token: str) -> ResponseReturnValue:
    user = user_from_reset_token(token)
    if user is None:
        abort(410, description="This reset link has expired or was already used. Ask for a new one.")
    form = NewPasswordForm()
    if form.validate_on_submit():
        accounts.set_password(user, form.password.data)
        flash("Your password is changed. Please sign in.", "success")
        return redirect(url_for("staff.login"))
    return render_template("staff/password_reset.html", form=form)


# --- Instructors (admin) ---


@bp.get("/admin/instructors")
@admin_required
def admin_instructors() -> ResponseReturnValue:
    return render_template("staff/admin/instructors.html", instructors=accounts.instructors())


@bp.route("/admin/instructors/new", methods=["GET", "POST"])
@admin_required
def admin_instructor_new() -> ResponseReturnValue:
    return _instructor_page(None)


def _instructor_or_404(user_id: int) -> User:
    user = get_or_404(User, user_id)
    if user.role is not Role.INSTRUCTOR:
        abort(404)
    return user


@bp.route("/admin/instructors/<int:user_id>/edit", methods=["GET", "POST"])
@admin_required
def admin_instructor_edit(user_id: int) -> ResponseReturnValue:
    return _instructor_page(_instructor_or_404(user_id))


def _instructor_page(user: User | None) -> ResponseReturnValue:
    form = InstructorForm(obj=user) if request.method == "GET" and user else InstructorForm()
    if form.validate_on_submit():
        data = {"name": form.name.data, "email": form.email.data, "bio": form.bio.data or ""}
        saved = attempt(form, lambda: accounts.save_instructor(user, data, current_user))
        if saved is not None:
            flash(
                f"{saved.name} saved."
                + (" They set a password with “Forgot your password”." if not saved.password_hash else ""),
                "success",
            )
            return redirect(url_for("staff.admin_instructors"))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/instructor_form.html", form=form, user=user), status


@bp.route("/admin/instructors/<int:user_id>/deactivate", methods=["GET", "POST"])
@admin_required
def admin_instructor_deactivate(user_id: int) -> ResponseReturnValue:
    return _instructor_status_page(user_id, active=False)


@bp.route("/admin/instructors/<int:user_id>/reactivate", methods=["GET", "POST"])
@admin_required
def admin_instructor_reactivate(user_id: int) -> ResponseReturnValue:
    return _instructor_status_page(user_id, active=True)


def _instructor_status_page(user_id: int, active: bool) -> ResponseReturnValue:
    """A confirmation page (GET) whose button (POST) deactivates or reactivates the account."""
    user = _instructor_or_404(user_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        changed = attempt(form, lambda: accounts.set_staff_active(user, active, current_user))
        if changed is not None:
            if not changed:
                flash(f"{user.name} was already {'active' if active else 'deactivated'}.", "success")
            elif active:
                flash(f"{user.name} is reactivated: they can sign in again.", "success")
            else:
                flash(f"{user.name} is deactivated and signed out everywhere.", "success")
            return redirect(url_for("staff.admin_instructors"))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/instructor_status.html", form=form, user=user, active=active), status
