"""Emails as staff see them: the failed ones, and sending one again."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.models import OutboxEmail
from events.registration.forms import ConfirmForm
from events.staff import emails
from events.staff.access import admin_required, bp, get_or_404
from events.staff.errors import AdminError
from events.staff.parsers import page_before


@bp.post("/admin/emails/<int:email_id>/resend")
@admin_required
def admin_email_resend(email_id: int) -> ResponseReturnValue:
    email = get_or_404(OutboxEmail, email_id)
    back = request.form.get("back", "")
    if back not in ("", "failed"):  # the page's own hidden field; anything else is not our form
        abort(400)
    back_to_failed = back == "failed"
    if ConfirmForm().validate_on_submit():
        try:
            emails.resend_email(email, current_user)
        except AdminError as error:
            flash(str(error), "error")
        else:
            flash(f"The {email.kind.replace('_', ' ')} email to {email.to_email} is queued again.", "success")
    else:
        flash("The form expired. Please try again.", "error")
    if back_to_failed or email.registration_id is None:
        return redirect(url_for("staff.admin_failed_emails"))
    return redirect(url_for("staff.admin_registration", registration_id=email.registration_id) + "#emails")


@bp.get("/admin/emails/failed")
@admin_required
def admin_failed_emails() -> ResponseReturnValue:
    before = page_before(request.args.get("before"))
    page = emails.failed_emails(before)
    return render_template(
        "staff/admin/failed_emails.html",
        emails=page.emails,
        registrations=emails.registrations_of(page.emails),
        page=page,
        before=before,
        confirm_form=ConfirmForm(),
    )
