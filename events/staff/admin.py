"""Admin pages under /staff/admin/: offerings, sessions, places, instructors, resources, money, email.

Every route is admin_required and every form a FlaskForm (CSRF). The rules live in
admin_services; these views parse forms, call them and show the outcome.
Uploaded resource files are served by the small public blueprint `resources_bp` at the end.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm

from events.extensions import Base, db
from events.models import (
    Location,
    Offering,
    OfferingKind,
    OutboxEmail,
    Refund,
    Registration,
    Resource,
    Role,
    User,
)
from events.payments.refunds import can_retry
from events.registration import links
from events.registration.forms import ConfirmForm
from events.registration.services import Outcome, Person, RegistrationError, succeeded_payment
from events.staff import admin_required, bp, services
from events.staff import admin_services as svc
from events.staff.admin_forms import (
    CancelOfferingForm,
    FileResourceForm,
    InstructorForm,
    LinkResourceForm,
    LocationForm,
    OfferingForm,
    OnBehalfForm,
    RefundForm,
    SearchForm,
    SessionsForm,
)


def upload_dir() -> Path:
    return Path(current_app.config["UPLOAD_FOLDER"] or Path(current_app.instance_path) / "uploads")


def _form_error(form: FlaskForm, error: svc.AdminError) -> None:
    """Show a rule's refusal next to its field, or at the top of the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, str(error)]
    else:
        form.form_errors.append(str(error))


M = TypeVar("M", bound=Base)


def _get_or_404(model: type[M], id_: int) -> M:
    return db.session.get(model, id_) or abort(404)


@bp.get("/admin/")
@admin_required
def admin_index() -> ResponseReturnValue:
    counts = {
        "failed_emails": db.session.scalar(
            sa.select(sa.func.count()).select_from(OutboxEmail).where(OutboxEmail.status == "failed")
        ),
    }
    return render_template("staff/admin/index.html", counts=counts)


# --- Offerings ---


def _offering_choices(form: OfferingForm) -> None:
    form.location_id.choices = [
        (loc.id, loc.name + ("" if loc.is_active else " (inactive)"))
        for loc in db.session.scalars(sa.select(Location).order_by(Location.name))
    ]
    form.instructor_id.choices = [(None, "No instructor")] + [
        (u.id, u.name + ("" if u.is_active else " (inactive)")) for u in svc.instructors()
    ]


def _offering_data(form: OfferingForm) -> dict:
    return {
        "kind": OfferingKind(form.kind.data),
        "title": form.title.data,
        "slug": form.slug.data or "",
        "topic": form.topic.data,
        "summary": form.summary.data or "",
        "description": form.description.data or "",
        "what_to_bring": form.what_to_bring.data or "",
        "location_id": form.location_id.data,
        "instructor_id": form.instructor_id.data,
        "price_cents": svc.dollars_to_cents(form.price.data or 0),
        "capacity": form.capacity.data,
        "cancellation_cutoff_hours": form.cancellation_cutoff_hours.data
        if form.cancellation_cutoff_hours.data is not None
        else 24,
        "late_cancel_refund_percent": form.late_cancel_refund_percent.data or 0,
        "reminder_offsets": svc.parse_reminder_offsets(form.reminders.data or ""),
        "followup_delay_minutes": form.followup_delay_minutes.data
        if form.followup_delay_minutes.data is not None
        else 120,
        "is_published": bool(form.is_published.data),
    }


@bp.get("/admin/offerings")
@admin_required
def admin_offerings() -> ResponseReturnValue:
    offerings = svc.list_offerings()
    return render_template("staff/admin/offerings.html", offerings=offerings, status=svc.offering_status)


@bp.route("/admin/offerings/new", methods=["GET", "POST"])
@admin_required
def admin_offering_new() -> ResponseReturnValue:
    form = OfferingForm()
    _offering_choices(form)
    if not form.location_id.choices:
        flash("Add a location first: every offering meets somewhere.", "error")
        return redirect(url_for("staff.admin_location_new"))
    if form.validate_on_submit():
        try:
            offering = svc.create_offering(_offering_data(form), current_user)
        except svc.AdminError as error:
            db.session.rollback()
            _form_error(form, error)
        else:
            flash(f"“{offering.title}” created. Now add its dates.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/offering_form.html", form=form, offering=None), status


@bp.route("/admin/offerings/<int:offering_id>/edit", methods=["GET", "POST"])
@admin_required
def admin_offering_edit(offering_id: int) -> ResponseReturnValue:
    offering = _get_or_404(Offering, offering_id)
    form = OfferingForm(obj=offering) if request.method == "GET" else OfferingForm()
    _offering_choices(form)
    if request.method == "GET":
        form.kind.data = offering.kind.value
        form.price.data = Decimal(offering.price_cents) / 100  # what MoneyField holds (shown the same)
        form.reminders.data = svc.format_reminder_offsets(offering.reminder_offsets)
    if form.validate_on_submit():
        try:
            svc.update_offering(offering, _offering_data(form), current_user)
        except svc.AdminError as error:
            db.session.rollback()
            _form_error(form, error)
        else:
            flash("Saved.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/offering_form.html", form=form, offering=offering), status


def _sessions_form(offering: Offering, form: SessionsForm | None = None) -> SessionsForm:
    form = form or SessionsForm(formdata=None)
    form.location_id.choices = [(None, f"Usual: {offering.location.name}")] + [
        (loc.id, loc.name)
        for loc in db.session.scalars(
            sa.select(Location)
            .where(Location.is_active.is_(True), Location.id != offering.location_id)
            .order_by(Location.name)
        )
    ]
    return form


def _render_offering(offering: Offering, status: int = 200, **forms: Any) -> tuple[str, int]:
    forms.setdefault("sessions_form", _sessions_form(offering))
    forms.setdefault("link_form", LinkResourceForm(formdata=None))
    forms.setdefault("file_form", FileResourceForm(formdata=None))
    forms.setdefault("cancel_form", CancelOfferingForm(formdata=None))
    return render_template(
        "staff/admin/offering.html",
        offering=offering,
        pools=svc.seat_pools(offering),
        status_label=svc.offering_status(offering),
        confirm_form=ConfirmForm(),
        resource_href=svc.resource_href,
        **forms,
    ), status


@bp.get("/admin/offerings/<int:offering_id>")
@admin_required
def admin_offering(offering_id: int) -> ResponseReturnValue:
    return _render_offering(_get_or_404(Offering, offering_id))


@bp.post("/admin/offerings/<int:offering_id>/sessions")
@admin_required
def admin_sessions_add(offering_id: int) -> ResponseReturnValue:
    offering = _get_or_404(Offering, offering_id)
    form = _sessions_form(offering, SessionsForm())
    if form.validate_on_submit():
        location = db.session.get(Location, form.location_id.data) if form.location_id.data else None
        try:
            created = svc.add_sessions(
                offering,
                form.first_day.data,
                form.start.data,
                form.duration_minutes.data,
                form.weeks.data,
                location,
                current_user,
            )
        except svc.AdminError as error:
            db.session.rollback()
            _form_error(form, error)
        else:
            flash(f"{len(created)} date(s) added.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id) + "#sessions")
    return _render_offering(offering, 400, sessions_form=form)


@bp.post("/admin/offerings/<int:offering_id>/cancel")
@admin_required
def admin_offering_cancel(offering_id: int) -> ResponseReturnValue:
    offering = _get_or_404(Offering, offering_id)
    form = CancelOfferingForm()
    if not form.validate_on_submit():
        return _render_offering(offering, 400, cancel_form=form)
    refunds = services.cancel_offering(offering.id, current_user, form.reason.data)
    flash(f"Offering cancelled; everyone is being told. {refunds} refund(s) queued.", "success")
    return redirect(url_for("staff.admin_offering", offering_id=offering.id))


# --- Resources ---


@bp.post("/admin/offerings/<int:offering_id>/resources/link")
@admin_required
def admin_resource_link(offering_id: int) -> ResponseReturnValue:
    offering = _get_or_404(Offering, offering_id)
    form = LinkResourceForm()
    if form.validate_on_submit():
        try:
            svc.add_link(offering, form.title.data, form.url.data, form.description.data or "", current_user)
        except svc.AdminError as error:
            db.session.rollback()
            _form_error(form, error)
        else:
            flash("Link added.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id) + "#resources")
    return _render_offering(offering, 400, link_form=form)


@bp.post("/admin/offerings/<int:offering_id>/resources/file")
@admin_required
def admin_resource_file(offering_id: int) -> ResponseReturnValue:
    offering = _get_or_404(Offering, offering_id)
    form = FileResourceForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            svc.add_file(
                offering,
                form.title.data,
                form.description.data or "",
                upload.stream,
                upload.filename or "",
                upload_dir(),
                current_user,
                max_bytes=current_app.config["RESOURCE_MAX_BYTES"],
            )
        except svc.AdminError as error:
            db.session.rollback()
            _form_error(form, error)
        else:
            flash("File added.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id) + "#resources")
        finally:
            upload.close()  # a large upload is spooled to a temporary file
    return _render_offering(offering, 400, file_form=form)


@bp.post("/admin/resources/<int:resource_id>/delete")
@admin_required
def admin_resource_delete(resource_id: int) -> ResponseReturnValue:
    resource = _get_or_404(Resource, resource_id)
    offering_id = resource.offering_id
    if ConfirmForm().validate_on_submit():
        svc.delete_resource(resource, upload_dir(), current_user)
        flash("Resource removed.", "success")
    else:
        flash("The form expired. Please try again.", "error")
    return redirect(url_for("staff.admin_offering", offering_id=offering_id) + "#resources")


# --- Locations ---


@bp.get("/admin/locations")
@admin_required
def admin_locations() -> ResponseReturnValue:
    locations = db.session.scalars(
        sa.select(Location).order_by(Location.is_active.desc(), Location.name)
    ).all()
    return render_template("staff/admin/locations.html", locations=locations)


def _location_data(form: LocationForm) -> dict:
    data = {k: (getattr(form, k).data or "") for k in svc.LOCATION_FIELDS if k != "is_active"}
    data["is_active"] = bool(form.is_active.data)
    data["slug"] = form.slug.data or ""
    return data


@bp.route("/admin/locations/new", methods=["GET", "POST"])
@admin_required
def admin_location_new() -> ResponseReturnValue:
    return _location_page(None)


@bp.route("/admin/locations/<int:location_id>/edit", methods=["GET", "POST"])
@admin_required
def admin_location_edit(location_id: int) -> ResponseReturnValue:
    return _location_page(_get_or_404(Location, location_id))


def _location_page(location: Location | None) -> ResponseReturnValue:
    form = LocationForm(obj=location) if request.method == "GET" and location else LocationForm()
    if form.validate_on_submit():
        try:
            location = svc.save_location(location, _location_data(form), current_user)
        except svc.AdminError as error:
            db.session.rollback()
            _form_error(form, error)
        else:
            flash(f"{location.name} saved.", "success")
            return redirect(url_for("staff.admin_locations"))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/location_form.html", form=form, location=location), status


# --- Instructors ---


@bp.get("/admin/instructors")
@admin_required
def admin_instructors() -> ResponseReturnValue:
    return render_template("staff/admin/instructors.html", instructors=svc.instructors())


@bp.route("/admin/instructors/new", methods=["GET", "POST"])
@admin_required
def admin_instructor_new() -> ResponseReturnValue:
    return _instructor_page(None)


@bp.route("/admin/instructors/<int:user_id>/edit", methods=["GET", "POST"])
@admin_required
def admin_instructor_edit(user_id: int) -> ResponseReturnValue:
    user = _get_or_404(User, user_id)
    if user.role is not Role.INSTRUCTOR:
        abort(404)
    return _instructor_page(user)


def _instructor_page(user: User | None) -> ResponseReturnValue:
    form = InstructorForm(obj=user) if request.method == "GET" and user else InstructorForm()
    if form.validate_on_submit():
        try:
            user = svc.save_instructor(
                user,
                {
                    "name": form.name.data,
                    "email": form.email.data,
                    "bio": form.bio.data or "",
                },
                current_user,
            )
        except svc.AdminError as error:
            db.session.rollback()
            _form_error(form, error)
        else:
            flash(
                f"{user.name} saved."
                + (" They set a password with “Forgot your password”." if not user.password_hash else ""),
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
    user = _get_or_404(User, user_id)
    if user.role is not Role.INSTRUCTOR:
        abort(404)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            svc.set_staff_active(user, active, current_user)
        except svc.AdminError as error:
            db.session.rollback()
            form.form_errors.append(str(error))
        else:
            flash(f"{user.name} is {'reactivated' if active else 'deactivated'}.", "success")
            return redirect(url_for("staff.admin_instructors"))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/instructor_status.html", form=form, user=user, active=active), status


# --- Registrations and payments ---


@bp.get("/admin/registrations")
@admin_required
def admin_registrations() -> ResponseReturnValue:
    form = SearchForm(request.args)
    form.offering_id.choices = [(None, "Any offering")] + [
        (o.id, o.title) for o in db.session.scalars(sa.select(Offering).order_by(Offering.title))
    ]
    lines = []
    if form.validate():
        lines = svc.search_registrations(form.q.data or "", form.offering_id.data, form.status.data or "")
    return render_template("staff/admin/registrations.html", form=form, lines=lines)


def _render_registration(
    registration: Registration, status: int = 200, refund_form: RefundForm | None = None
) -> tuple[str, int]:
    payment = succeeded_payment(registration)
    pay_url = None
    if registration.status.value == "held":
        pay_url = url_for(
            "registration.pay", signed=links.sign(registration.token, links.MANAGE_SALT), _external=True
        )
    return render_template(
        "staff/admin/registration.html",
        registration=registration,
        payment=payment,
        refundable=svc.refundable_cents(payment),
        refund_form=refund_form or RefundForm(formdata=None),
        emails=svc.registration_emails(registration),
        confirm_form=ConfirmForm(),
        pay_url=pay_url,
        can_retry=can_retry,
    ), status


@bp.get("/admin/registrations/<int:registration_id>")
@admin_required
def admin_registration(registration_id: int) -> ResponseReturnValue:
    return _render_registration(_get_or_404(Registration, registration_id))


@bp.post("/admin/registrations/<int:registration_id>/refund")
@admin_required
def admin_refund(registration_id: int) -> ResponseReturnValue:
    registration = _get_or_404(Registration, registration_id)
    form = RefundForm()
    if form.validate_on_submit():
        assert form.amount.data is not None  # DataRequired
        try:
            refund = svc.manual_refund(
                registration, svc.dollars_to_cents(form.amount.data), form.reason.data, current_user
            )
        except svc.AdminError as error:
            db.session.rollback()
            _form_error(form, error)
        else:
            # Queued: the worker sends it to Stripe; this page shows when it is issued.
            flash(f"Refund of ${refund.amount_cents / 100:,.2f} queued.", "success")
            return redirect(url_for("staff.admin_registration", registration_id=registration.id))
    return _render_registration(registration, 400, refund_form=form)


@bp.post("/admin/refunds/<int:refund_id>/retry")
@admin_required
def admin_refund_retry(refund_id: int) -> ResponseReturnValue:
    refund = _get_or_404(Refund, refund_id)
    registration_id = refund.payment.registration_id
    if ConfirmForm().validate_on_submit():
        try:
            refund = svc.retry_refund(refund.id, current_user)
        except svc.AdminError as error:
            flash(str(error), "error")
        else:
            flash(f"Refund of ${refund.amount_cents / 100:,.2f} queued again.", "success")
    else:
        flash("The form expired. Please try again.", "error")
    return redirect(url_for("staff.admin_registration", registration_id=registration_id) + "#payment-h")


@bp.post("/admin/emails/<int:email_id>/resend")
@admin_required
def admin_email_resend(email_id: int) -> ResponseReturnValue:
    email = _get_or_404(OutboxEmail, email_id)
    back = request.form.get("back", "")
    if back not in ("", "failed"):  # the page's own hidden field; anything else is not our form
        abort(400)
    back_to_failed = back == "failed"
    if ConfirmForm().validate_on_submit():
        try:
            svc.resend_email(email, current_user)
        except svc.AdminError as error:
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
    return render_template(
        "staff/admin/failed_emails.html", emails=svc.failed_emails(), confirm_form=ConfirmForm()
    )


@bp.route("/admin/offerings/<int:offering_id>/register", methods=["GET", "POST"])
@admin_required
def admin_register_on_behalf(offering_id: int) -> ResponseReturnValue:
    offering = _get_or_404(Offering, offering_id)
    form = OnBehalfForm()
    upcoming = svc.upcoming_sessions(offering)
    form.session_id.choices = [(s.id, f"{s.local_start:%a %b %-d, %Y %-I:%M %p}") for s in upcoming]
    if not offering.kind.per_session:
        form.session_id.choices = [(None, "All dates")]
    if form.validate_on_submit():
        person = Person(form.name.data, form.email.data, form.phone.data or "")
        try:
            result = svc.register_on_behalf(offering, form.session_id.data, person, current_user)
        except RegistrationError as error:
            db.session.rollback()
            form.form_errors.append(str(error))
        else:
            if result.outcome is Outcome.FULL:
                form.form_errors.append("It's full. Raise the capacity first, or add them to the waitlist.")
            elif result.outcome is Outcome.ALREADY_REGISTERED:
                assert result.registration is not None  # the registration they already have
                flash(f"{person.email} is already registered.", "success")
                return redirect(url_for("staff.admin_registration", registration_id=result.registration.id))
            else:
                assert result.registration is not None  # confirmed or held: the new registration
                flash(
                    "Registered; the confirmation email is on its way."
                    if result.outcome is Outcome.CONFIRMED
                    else "A seat is held while they pay: send them the payment link below.",
                    "success",
                )
                return redirect(url_for("staff.admin_registration", registration_id=result.registration.id))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/register.html", form=form, offering=offering), status


# --- Public: resource files, shared with attendees by email ---

resources_bp = Blueprint("resources", __name__)


@resources_bp.get("/resources/<key>/<filename>")
def resource_file(key: str, filename: str) -> ResponseReturnValue:
    resource = svc.file_resource_by_key(key)
    if resource is None:
        abort(404)
    if filename != svc.public_filename(resource):
        return redirect(svc.resource_href(resource, external=False))
    path = upload_dir() / resource.stored_filename
    if not path.is_file():
        abort(404)
    response = send_file(
        path,
        mimetype=resource.content_type,
        as_attachment=False,
        download_name=svc.public_filename(resource),
        max_age=3600,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
