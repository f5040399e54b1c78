"""The front desk: find a registration, see its payment and emails, refund, register someone."""

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.forms import attempt
from events.models import Offering, Refund, Registration, RegistrationStatus
from events.payments import refunds
from events.registration import links
from events.registration.forms import ConfirmForm
from events.registration.services import Outcome, Person, RegistrationError, succeeded_payment
from events.staff import emails, offerings, registrations
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import OnBehalfForm, RefundForm, SearchForm
from events.staff.errors import AdminError
from events.staff.parsers import dollars_to_cents, page_before


@bp.get("/admin/registrations")
@admin_required
def admin_registrations() -> ResponseReturnValue:
    form = SearchForm(request.args)
    form.offering_id.choices = [(None, "Any offering"), *offerings.offering_choices()]
    before = page_before(request.args.get("before"))
    page = registrations.RegistrationPage([], None)
    if form.validate():
        page = registrations.search_registrations(
            form.q.data or "", form.offering_id.data, form.status.data or "", before
        )
    return render_template(
        "staff/admin/registrations.html", form=form, lines=page.lines, page=page, before=before
    )


def _render_registration(
    registration: Registration, status: int = 200, refund_form: RefundForm | None = None
) -> tuple[str, int]:
    payment = succeeded_payment(registration)
    held = registration.status == RegistrationStatus.HELD
    return render_template(
        "staff/admin/registration.html",
        registration=registration,
        payment=payment,
        refundable=refunds.refundable_remaining(payment),
        refund_form=refund_form or RefundForm(formdata=None),
        emails=emails.registration_emails(registration),
        confirm_form=ConfirmForm(),
        pay_url=links.pay_url(registration, external=True) if held else None,
        can_retry=refunds.can_retry,
    ), status


@bp.get("/admin/registrations/<int:registration_id>")
@admin_required
def admin_registration(registration_id: int) -> ResponseReturnValue:
    return _render_registration(get_or_404(Registration, registration_id))


@bp.post("/admin/registrations/<int:registration_id>/refund")
@admin_required
def admin_refund(registration_id: int) -> ResponseReturnValue:
    registration = get_or_404(Registration, registration_id)
    form = RefundForm()
    if form.validate_on_submit():
        assert form.amount.data is not None  # DataRequired
        amount_cents = dollars_to_cents(form.amount.data)
        refund = attempt(
            form,
            lambda: registrations.manual_refund(registration, amount_cents, form.reason.data, current_user),
        )
        if refund is not None:
            # Queued: the worker sends it to Stripe; this page shows when it is issued.
            flash(f"Refund of ${refund.amount_cents / 100:,.2f} queued.", "success")
            return redirect(url_for("staff.admin_registration", registration_id=registration.id))
    return _render_registration(registration, 400, refund_form=form)


@bp.post("/admin/refunds/<int:refund_id>/retry")
@admin_required
def admin_refund_retry(refund_id: int) -> ResponseReturnValue:
    refund = get_or_404(Refund, refund_id)
    registration_id = refund.payment.registration_id
    if ConfirmForm().validate_on_submit():
        try:
            refund = registrations.retry_refund(refund.id, current_user)
        except AdminError as error:
            flash(str(error), "error")
        else:
            flash(f"Refund of ${refund.amount_cents / 100:,.2f} queued again.", "success")
    else:
        flash("The form expired. Please try again.", "error")
    return redirect(url_for("staff.admin_registration", registration_id=registration_id) + "#payment-h")


@bp.route("/admin/offerings/<int:offering_id>/register", methods=["GET", "POST"])
@admin_required
def admin_register_on_behalf(offering_id: int) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    form = OnBehalfForm()
    upcoming = offerings.upcoming_sessions(offering)
    form.session_id.choices = [(s.id, f"{s.local_start:%a %b %-d, %Y %-I:%M %p}") for s in upcoming]
    if not offering.kind.per_session:
        form.session_id.choices = [(None, "All dates")]
    if form.validate_on_submit():
        person = Person(form.name.data, form.email.data, form.phone.data or "")
        try:
            result = registrations.register_on_behalf(offering, form.session_id.data, person, current_user)
        except RegistrationError as error:
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
