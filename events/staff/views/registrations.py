"""The front desk: find a registration, see its payment and emails, refund, register someone."""

from collections.abc import Callable
from dataclasses import dataclass

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events import pricing
from events.consent import services as consent
from events.filters import dollars, staff_time
from events.forms import FieldError, attempt, show_form_error
from events.models import (
    Offering,
    Pass,
    PaymentMethod,
    Refund,
    RefundStatus,
    Registration,
    RegistrationStatus,
    User,
)
from events.passes import admin as pass_admin
from events.payments import refunds
from events.payments.receipts import card_brand_name
from events.registration import links
from events.registration.forms import ConfirmForm
from events.registration.seats import waitlist_position
from events.registration.services import Outcome, Person, RegistrationError, succeeded_payment
from events.staff import audit_trail, bookings, emails, offerings, registrations
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import ConfirmStepForm, OnBehalfForm, RefundForm, SearchForm, language_choices
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
    place = registration.session.location if registration.session else registration.offering.location
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
        refunded_by=registrations.staff_names_for_refunds(payment),
        history=audit_trail.registration_history(registration.id, place.zone),
        balance_due=bookings.balance_due(registration),
        other_payments=registrations.other_payments(registration, payment),
        balance_links_sent=registrations.balance_links_sent(registration),
        consents=consent.acceptances_of(registration.id),
        consent_needed=consent.required_version(registration.offering),
    ), status


@bp.get("/admin/registrations/<int:registration_id>")
@admin_required
def admin_registration(registration_id: int) -> ResponseReturnValue:
    return _render_registration(get_or_404(Registration, registration_id))


def _card(registration: Registration) -> str:
    payment = succeeded_payment(registration)
    if payment is not None and payment.method is not PaymentMethod.CARD:
        return f"{registration.name}, in {payment.method.value} at the desk"
    if payment is None or not payment.card_last4:
        return f"{registration.name}'s card"
    brand = card_brand_name(payment.card_brand)
    card = "card" if brand == "Card" else f"{brand} card"
    return f"{registration.name}'s {card} ending {payment.card_last4}"


@bp.post("/admin/registrations/<int:registration_id>/refund")
@admin_required
def admin_refund(registration_id: int) -> ResponseReturnValue:
    """The registration page's refund form posts here and gets a confirmation page (nothing
    changes); that page's button, with confirmed=yes, queues the refund."""
    registration = get_or_404(Registration, registration_id)
    form = RefundForm()
    if not form.validate_on_submit():
        return _render_registration(registration, 400, refund_form=form)
    assert form.amount.data is not None  # DataRequired
    amount_cents = dollars_to_cents(form.amount.data)
    back_url = url_for("staff.admin_registration", registration_id=registration.id)
    if form.confirmed.data == "yes":
        refund = attempt(
            form,
            lambda: registrations.manual_refund(registration, amount_cents, form.reason.data, current_user),
        )
        if refund is not None:
            if refund.status is RefundStatus.SUCCEEDED:  # a desk payment's: handed back at the desk
                flash(
                    f"Refund of {dollars(refund.amount_cents)} to {registration.name} recorded: "
                    "return it at the desk.",
                    "success",
                )
            else:
                # Queued: the worker sends it to Stripe; the registration's page shows when it is issued.
                flash(
                    f"Refund of {dollars(refund.amount_cents)} to {registration.name} queued; "
                    "it shows as issued when Stripe confirms it.",
                    "success",
                )
            return redirect(back_url + "#payment-h")
        return _render_registration(registration, 400, refund_form=form)
    payment = succeeded_payment(registration)
    left = refunds.refundable_remaining(payment)
    if payment is None:
        form.form_errors.append("There is no successful payment to refund.")
        return _render_registration(registration, 400, refund_form=form)
    if amount_cents > left:
        form.amount.errors = [f"At most {dollars(left)} is left to refund."]
        return _render_registration(registration, 400, refund_form=form)
    return render_template(
        "staff/admin/confirm.html",
        heading=f"Refund {dollars(amount_cents)} to {registration.name}?",
        lines=[
            f"Refund {dollars(amount_cents)} to {_card(registration)}, "
            f"for {registration.offering.title}. Reason: “{form.reason.data}”.",
            (
                f"{dollars(left - amount_cents)} will be left to refund after this."
                if left > amount_cents
                else "That is all that is left of the payment: nothing more can be refunded after this."
            ),
            (
                "The refund is queued and sent to Stripe in the background; it can't be called back."
                if payment.method is PaymentMethod.CARD
                else "It is recorded as returned at once: hand the money back at the desk."
            ),
        ],
        form=form,
        fields=[],
        hidden={"amount": f"{amount_cents / 100:.2f}", "reason": form.reason.data},
        action=url_for("staff.admin_refund", registration_id=registration.id),
        button=f"Refund {dollars(amount_cents)}",
        back_url=back_url + "#payment-h",
        back_label="Don't refund: back to the registration",
        nav="staff.admin_registrations",
    )


@dataclass(frozen=True)
class RefundOf:
    """Whose refund a retry page is about (a registration's or a class pass's): the words and the
    way back differ, the steps don't."""

    name: str
    sent: str  # how the page says where it goes: "of $30.00 to Ana's Visa card ending 4242"
    back_url: str
    back_label: str
    nav: str
    retry: Callable[[int, User], Refund]


def _refund_of(refund: Refund) -> RefundOf:
    registration = refund.payment.registration
    if registration is not None:
        return RefundOf(
            name=registration.name,
            sent=f"of {dollars(refund.amount_cents)} to {_card(registration)}",
            back_url=url_for("staff.admin_registration", registration_id=registration.id) + "#payment-h",
            back_label="Don't retry: back to the registration",
            nav="staff.admin_registrations",
            retry=registrations.retry_refund,
        )
    class_pass = get_or_404(Pass, refund.payment.pass_id or 0)  # neither: 404
    return RefundOf(
        name=class_pass.name,
        sent="for the class pass",
        back_url=url_for("staff.admin_pass", pass_id=class_pass.id) + "#payments-h",
        back_label="Don't retry: back to the pass",
        nav="staff.admin_passes",
        retry=pass_admin.retry_refund,
    )


@bp.route("/admin/refunds/<int:refund_id>/retry", methods=["GET", "POST"])
@admin_required
def admin_refund_retry(refund_id: int) -> ResponseReturnValue:
    """The Retry button posts here and gets a confirmation page; its button retries."""
    refund = get_or_404(Refund, refund_id)
    of = _refund_of(refund)
    form = ConfirmStepForm()
    if form.validate_on_submit() and form.confirmed.data == "yes":
        try:
            refund = of.retry(refund.id, current_user)
        except AdminError as error:
            flash(str(error), "error")
        else:
            flash(
                f"Refund of {dollars(refund.amount_cents)} to {of.name} queued again; "
                "it shows as issued when Stripe confirms it.",
                "success",
            )
        return redirect(of.back_url)
    if not refunds.can_retry(refund):
        flash("This refund can't be retried (it isn't a failed one).", "error")
        return redirect(of.back_url)
    failure = f" Stripe refused it: “{refund.last_error}”." if refund.last_error else ""
    return render_template(
        "staff/admin/confirm.html",
        heading=f"Retry the refund of {dollars(refund.amount_cents)} to {of.name}?",
        lines=[
            f"Send the refund {of.sent} to Stripe again.{failure}",
            "It is queued and sent in the background.",
        ],
        form=form,
        fields=[],
        hidden={},
        action=url_for("staff.admin_refund_retry", refund_id=refund.id),
        button="Retry the refund",
        back_url=of.back_url,
        back_label=of.back_label,
        nav=of.nav,
    ), 400 if form.errors else 200


@bp.route("/admin/offerings/<int:offering_id>/register", methods=["GET", "POST"])
@admin_required
def admin_register_on_behalf(offering_id: int) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    form = OnBehalfForm()
    upcoming = offerings.upcoming_sessions(offering)
    form.session_id.choices = [(s.id, staff_time(s.starts_at, s.location)) for s in upcoming]
    if not offering.kind.per_session:
        form.session_id.choices = [(None, "All dates")]
    form.language.choices = language_choices()
    form.price_choice.choices = registrations.desk_price_choices(offering)
    if not form.is_submitted():
        form.price_choice.data = pricing.form_default(offering) or None
    if form.validate_on_submit():
        person = Person(form.name.data, form.email.data, form.phone.data or "", form.language.data)
        desk_method = None if form.payment.data in (None, "link") else PaymentMethod(form.payment.data)
        try:
            result = registrations.register_on_behalf(
                offering,
                form.session_id.data,
                person,
                current_user,
                desk_method,
                form.payment_note.data or "",
                price_choice=pricing.PriceChoice.from_form(form.price_choice.data, form.code.data),
            )
        except RegistrationError as error:
            # A price or code that can't be used is shown beside its field (as on the public form).
            show_form_error(form, FieldError(str(error), error.field))
        except AdminError as error:  # the desk payment refused (the seat is held; the page offers it again)
            form.form_errors.append(str(error))
        else:
            if result.outcome is Outcome.FULL and result.waiting is not None:
                form.form_errors.append(
                    "It's full. They keep their place on the waitlist (number "
                    f"{waitlist_position(result.waiting)}). Raise the capacity first to book them now."
                )
            elif result.outcome is Outcome.FULL:
                form.form_errors.append("It's full. Raise the capacity first, or add them to the waitlist.")
            elif result.outcome is Outcome.ALREADY_REGISTERED:
                assert result.registration is not None  # the registration they already have
                flash(f"{person.email} is already registered.", "success")
                return redirect(url_for("staff.admin_registration", registration_id=result.registration.id))
            else:
                assert result.registration is not None  # confirmed or held: the new registration
                if result.outcome is Outcome.HELD:
                    message = "A seat is held while they pay: send them the payment link below."
                elif desk_method is PaymentMethod.COMP:
                    message = "Registered as a comp; the confirmation email is on its way."
                elif desk_method is not None:
                    message = (
                        f"Registered, paid by {desk_method.value} at the desk; "
                        "the confirmation email is on its way."
                    )
                else:
                    message = "Registered; the confirmation email is on its way."
                flash(message, "success")
                return redirect(url_for("staff.admin_registration", registration_id=result.registration.id))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/register.html", form=form, offering=offering), status
