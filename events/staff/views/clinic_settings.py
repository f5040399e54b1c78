"""The admin page for the clinic's own details (name, contact address and phone)."""

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.forms import attempt
from events.staff import clinic_settings
from events.staff.access import admin_required, bp
from events.staff.admin_forms import ClinicForm


@bp.route("/admin/clinic", methods=["GET", "POST"])
@admin_required
def admin_clinic() -> ResponseReturnValue:
    clinic = clinic_settings.clinic_for_admin()
    form = ClinicForm(obj=clinic) if request.method == "GET" and clinic else ClinicForm()
    if form.validate_on_submit():
        data = {key: getattr(form, key).data or "" for key in clinic_settings.CLINIC_FIELDS}
        saved = attempt(form, lambda: clinic_settings.save_clinic(data, current_user))
        if saved is not None:
            flash("The clinic's details are saved.", "success")
            return redirect(url_for("staff.admin_clinic"))
    status = 400 if form.is_submitted() else 200
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    return render_template("staff/admin/clinic.html", form=form, sender=sender), status
