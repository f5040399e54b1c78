"""Changing one booking from its admin page: cancel, transfer, correct details, take payment at
the desk. Cancel and transfer ask first (what will happen, in words and dollars), then act."""

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.extensions import db
from events.forms import FieldError, attempt, show_form_error
from events.models import PaymentMethod, Registration, RegistrationStatus
from events.registration.forms import ConfirmForm
from events.registration.services import Person
from events.staff import bookings
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import BookingCancelForm, DeskPaymentForm, DetailsForm, TransferForm
from events.staff.bookings import money
from events.staff.errors import AdminError


def _back(registration: Registration) -> ResponseReturnValue:
    return redirect(url_for("staff.admin_registration", registration_id=registration.id))


@bp.route("/admin/registrations/<int:registration_id>/cancel", methods=["GET", "POST"])
@admin_required
def admin_booking_cancel(registration_id: int) -> ResponseReturnValue:
    registration = get_or_404(Registration, registration_id)
    form = BookingCancelForm()
    quote = None
    if form.validate_on_submit():
        choice = bookings.RefundChoice(form.refund.data)
        if form.expected_cents.data is None:
            quote = bookings.cancel_quote(registration, choice)  # the confirmation step
        else:
            done = attempt(
                form,
                lambda: bookings.cancel_booking(
                    registration.id, choice, form.reason.data, current_user, form.expected_cents.data
                ),
            )
            if done is not None:
                flash(_cancelled_message(done), "success")
                return _back(registration)
            quote = bookings.cancel_quote(registration, choice)
    # A refusal (the refund changed meanwhile) shows the new quote to confirm, with its reason.
    status = 400 if form.form_errors or (form.is_submitted() and quote is None) else 200
    live = registration.status in (RegistrationStatus.CONFIRMED, RegistrationStatus.HELD)
    return render_template(
        "staff/admin/booking_cancel.html",
        registration=registration,
        form=form,
        quote=quote,
        live=live,
        when=bookings.when_label(registration),
        policy=bookings.cancel_quote(registration, bookings.RefundChoice.POLICY),
        full=bookings.cancel_quote(registration, bookings.RefundChoice.FULL),
    ), status


def _cancelled_message(result: bookings.CancelResult) -> str:
    message = _seat_cancelled_message(result)
    if not result.credits_refund_cents:
        return message
    # Its class pass was already refunded: the credit given back is refunded as money.
    amount = money(result.credits_refund_cents)
    if result.credits_method is not None and result.credits_method.at_desk:
        return (
            f"{message} Its class pass was already refunded, so the credit is refunded as money: "
            f"Return {amount} to them at the desk ({result.credits_method.value}, recorded as refunded)."
        )
    return (
        f"{message} Its class pass was already refunded, so the credit is refunded as money: "
        f"a refund of {amount} to their card is queued."
    )


def _seat_cancelled_message(result: bookings.CancelResult) -> str:
    registration, refund_cents = result.registration, result.refund_cents
    told = " and emailed" if registration.email else ""
    if not refund_cents:
        if result.credits_refund_cents:
            return (
                f"{registration.name}'s booking is cancelled{told}; nothing to refund for the seat. "
                "The seat is free."
            )
        return f"{registration.name}'s booking is cancelled{told}; no refund. The seat is free."
    if result.at_desk:
        return (
            f"{registration.name}'s booking is cancelled{told}. Return {money(refund_cents)} to them "
            "at the desk (recorded as refunded). The seat is free."
        )
    return (
        f"{registration.name}'s booking is cancelled{told}. A refund of {money(refund_cents)} to their "
        "card is queued (shown below once Stripe has issued it). The seat is free."
    )


@bp.route("/admin/registrations/<int:registration_id>/transfer", methods=["GET", "POST"])
@admin_required
def admin_booking_transfer(registration_id: int) -> ResponseReturnValue:
    registration = get_or_404(Registration, registration_id)
    form = TransferForm()
    form.target.choices = [("", "Choose a date or offering"), *bookings.transfer_targets(registration)]
    quote = None
    if form.validate_on_submit():
        target = attempt(form, lambda: bookings.parse_target(form.target.data))
        if target is not None:
            offering_id, session_id = target
            if form.expected_difference.data is None:
                quote = attempt(form, lambda: bookings.transfer_quote(registration, offering_id, session_id))
            else:
                try:
                    result = bookings.transfer_booking(
                        registration.id,
                        offering_id,
                        session_id,
                        form.reason.data,
                        current_user,
                        form.expected_difference.data,
                        send_payment_link=bool(form.payment_link.data),
                        accept_general_seat=bool(form.accept_general_seat.data),
                    )
                except FieldError as refused:  # (as attempt() does)
                    db.session.rollback()
                    show_form_error(form, refused)
                    result = None
                    if isinstance(refused, bookings.CommunitySeatGone):
                        # Their community seat went meanwhile: the quote again, at the general price.
                        quote = attempt(
                            form, lambda: bookings.transfer_quote(registration, offering_id, session_id)
                        )
                if result is not None:
                    flash(_transferred_message(result), "success")
                    return redirect(url_for("staff.admin_registration", registration_id=result.new.id))
    status = 400 if form.is_submitted() and quote is None else 200
    return render_template(
        "staff/admin/booking_transfer.html",
        registration=registration,
        form=form,
        quote=quote,
        current=bookings.when_label(registration),
        live=registration.status == RegistrationStatus.CONFIRMED,
    ), status


def _transferred_message(result: bookings.TransferResult) -> str:
    new = result.new
    text = f"{new.name} is moved to {bookings.when_label(new)}"
    text += "; the new confirmation is emailed and the old date cancelled." if new.email else "."
    if result.refund_cents:
        where = (
            "to return at the desk (recorded as refunded)"
            if result.method is not None and result.method.at_desk
            else "to their card is queued"
        )
        text += f" The difference, {money(result.refund_cents)}, {where}."
    if result.due_cents and result.link_sent:
        text += (
            f" A link to pay the difference, {money(result.due_cents)}, by card is emailed to them "
            "(or take it at the desk)."
        )
    elif result.due_cents:
        text += f" Collect the difference, {money(result.due_cents)}, at the desk."
    return text


@bp.route("/admin/registrations/<int:registration_id>/details", methods=["GET", "POST"])
@admin_required
def admin_booking_details(registration_id: int) -> ResponseReturnValue:
    registration = get_or_404(Registration, registration_id)
    form = DetailsForm(
        data={"name": registration.name, "email": registration.email, "phone": registration.phone}
    )
    if form.validate_on_submit():
        person = Person(form.name.data, form.email.data or "", form.phone.data or "")
        correction = attempt(
            form, lambda: bookings.correct_details(registration.id, person, form.reason.data, current_user)
        )
        if correction is not None:
            text = f"Corrected {registration.name}'s {', '.join(correction.changed)}."
            if correction.resent_to:
                text += f" The confirmation is sent again to {correction.resent_to}."
            flash(text, "success")
            return _back(registration)
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/booking_details.html", registration=registration, form=form), status


@bp.route("/admin/registrations/<int:registration_id>/desk-payment", methods=["GET", "POST"])
@admin_required
def admin_desk_payment(registration_id: int) -> ResponseReturnValue:
    registration = get_or_404(Registration, registration_id)
    held = registration.status == RegistrationStatus.HELD  # (else: a booking's balance, if any)
    form = DeskPaymentForm()
    if form.validate_on_submit():
        method = PaymentMethod(form.method.data)
        payment = attempt(
            form,
            lambda: bookings.take_desk_payment(registration.id, method, form.note.data or "", current_user),
        )
        if payment is not None:
            what = (
                "Comp recorded"
                if method is PaymentMethod.COMP
                else f"{money(payment.amount_cents)} {method.value} recorded"
            )
            if held:
                told = "; the confirmation is emailed" if registration.email else ""
                flash(f"{what}: {registration.name} is booked{told}.", "success")
            else:
                flash(f"{what}: {registration.name} owes nothing now.", "success")
            return _back(registration)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "staff/admin/desk_payment.html",
        registration=registration,
        form=form,
        held=held,
        amount=registration.price_cents if held else bookings.balance_due(registration),
    ), status


@bp.post("/admin/registrations/<int:registration_id>/balance-link")
@admin_required
def admin_balance_link(registration_id: int) -> ResponseReturnValue:
    """Email the member the link to pay what their booking still owes, by card."""
    registration = get_or_404(Registration, registration_id)
    if not ConfirmForm().validate():
        flash("The form expired. Please try again.", "error")
        return _back(registration)
    try:
        due = bookings.send_balance_link(registration.id, current_user)
    except AdminError as error:
        db.session.rollback()
        flash(f"No payment link was sent: {error}", "error")
        return _back(registration)
    flash(f"A link to pay {money(due)} by card is emailed to {registration.email}.", "success")
    return _back(registration)
