"""Register, pay, manage and the waitlist, for people without accounts.

Each view reads input, calls one service and renders or redirects.
"""

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from events import pricing
from events.calendar import build_calendar
from events.catalog import services as catalog
from events.catalog.cache import cached, field_placeholder
from events.catalog.views import render_offering_page
from events.clinic import current_clinic
from events.consent import services as consent
from events.extensions import config_limit, limiter
from events.filters import format_money
from events.forms import FieldError, show_form_error
from events.inputs import is_stripe_id
from events.languages import current_language
from events.models import (
    ConsentVersion,
    Offering,
    Registration,
    RegistrationStatus,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.payments import services as payments
from events.payments.pay_endpoint import card_payment_answer
from events.rate_limits import limit_link_requests
from events.registration import links, lookup, services
from events.registration import manage as pages
from events.registration.forms import (
    CancelForm,
    ClaimForm,
    ConfirmForm,
    FindRegistrationsForm,
    PersonForm,
    consent_answer,
    price_choice,
)
from events.registration.seats import waitlist_position
from events.security import stripe_js_url

bp = Blueprint("registration", __name__)


def _offering_or_404(slug: str) -> Offering:
    return catalog.get_offering(slug) or abort(404)


def _render_offering(
    offering: Offering, form: PersonForm, status: int = 200, **extra: Any
) -> tuple[str, int]:
    chosen = form.session_id.data if isinstance(form.session_id.data, int) else None
    return render_offering_page(offering, chosen_session_id=chosen, form=form, **extra), status


def _render_full(offering: Offering, form: PersonForm) -> ResponseReturnValue:
    """The answer to everyone who finds the class full: the offering page saying it has just
    filled up, with their name, email and phone in the waitlist form. When a crowd races for
    the last seats, nearly all of them get it at once, so it is rendered once per change to the
    class (the page cache) and only their answers are filled in per response."""
    answers = {name: getattr(form, name).data or "" for name in ("name", "email", "phone")}

    def render() -> str:
        for name in answers:
            getattr(form, name).data = field_placeholder(name)
        return _render_offering(offering, form, full=True)[0]

    chosen = form.session_id.data if isinstance(form.session_id.data, int) else None
    return cached(render, fields=answers, variant=("full", chosen, bool(form.consent.data)))


def _person(form: PersonForm) -> services.Person:
    return services.Person(
        name=form.name.data.strip(),
        email=form.email.data.strip(),
        phone=(form.phone.data or "").strip(),
        language=current_language(),  # the page's language: their emails follow it
    )


def _already_registered(offering: Offering) -> str:
    """The same answer for a seat held and one booked, to anyone but the browser that made it:
    it gives no link and doesn't say which (see services.LINK_EMAIL_WINDOW)."""
    what = "class" if offering.kind.per_session else offering.kind.value
    return {
        "class": gettext(
            "This email is already registered for this class. We've emailed the link to that "
            "registration to that address (it can take a minute to arrive)."
        ),
        "workshop": gettext(
            "This email is already registered for this workshop. We've emailed the link to that "
            "registration to that address (it can take a minute to arrive)."
        ),
        "course": gettext(
            "This email is already registered for this course. We've emailed the link to that "
            "registration to that address (it can take a minute to arrive)."
        ),
    }[what]


def _still_waiting(offering: Offering) -> str:
    """The answer to someone on the waitlist whose registration found no seat: they keep their
    place. Neither the link to it nor its number in line (anyone may type anyone's email): the
    link went to their address, as joining the waitlist again sends it, and its page shows the
    number."""
    what = "class" if offering.kind.per_session else offering.kind.value
    return {
        "class": gettext(
            "This class is still full. You're still on the waitlist, and we'll email you if a seat "
            "opens. We've also emailed you the link to your place, which shows where you are in line."
        ),
        "workshop": gettext(
            "This workshop is still full. You're still on the waitlist, and we'll email you if a seat "
            "opens. We've also emailed you the link to your place, which shows where you are in line."
        ),
        "course": gettext(
            "This course is still full. You're still on the waitlist, and we'll email you if a seat "
            "opens. We've also emailed you the link to your place, which shows where you are in line."
        ),
    }[what]


def _resume(registration: Registration) -> ResponseReturnValue:
    """Back to a registration this browser made: its payment while the hold lasts (which says
    "Continue to payment: your seat is held until 3:57 pm CST")."""
    if services.hold_is_live(registration):
        return redirect(links.pay_url(registration, resumed=True))
    if registration.status == RegistrationStatus.CONFIRMED:
        flash(gettext("You're already registered for this. Here is your registration."), "success")
    return redirect(links.manage_url(registration, external=False))


@bp.post("/offerings/<slug>/register")
@limiter.limit(config_limit("REGISTER_RATE_LIMIT"))
def register(slug: str) -> ResponseReturnValue:
    offering = catalog.get_offering(slug, for_page=False) or abort(404)
    form = PersonForm(needs_date=offering.kind.per_session)
    if not form.validate():
        return _render_offering(offering, form, 400)
    try:
        result = services.register(
            offering,
            form.session_id.data,
            _person(form),
            browser_key=links.browser_key(),
            consent_answer=consent_answer(form),
            price_choice=price_choice(form),
        )
    except consent.ConsentError as error:
        # Not ticked, or the text changed meanwhile: the form again, showing the current text
        # (unticked if it changed: they have not read those words yet).
        if isinstance(error, consent.ConsentChanged):
            form.consent.data = False
        show_form_error(form, error)
        return _render_offering(offering, form, 409, consent_version=error.version)
    except services.RegistrationError as error:
        show_form_error(form, FieldError(str(error), error.field))
        # Only community seats left: the form also offers the waitlist for a general seat.
        waitlist_too = isinstance(error, services.OnlyCommunitySeatsLeft)
        return _render_offering(offering, form, 409, waitlist_too=waitlist_too)
    match result.outcome:
        case services.Outcome.CONFIRMED:
            assert result.registration is not None  # a confirmed outcome comes with its registration
            flash(gettext("You're registered! A confirmation email is on its way."), "success")
            return redirect(links.manage_url(result.registration, external=False))
        case services.Outcome.HELD:
            assert result.registration is not None  # a hold comes with its registration
            return redirect(links.pay_url(result.registration))
        case services.Outcome.RESUME:
            assert result.registration is not None  # the registration this browser made
            return _resume(result.registration)
        case services.Outcome.ALREADY_REGISTERED:
            form.form_errors.append(_already_registered(offering))
            return _render_offering(offering, form, 409)
        case services.Outcome.FULL if result.waiting is not None:
            return _render_offering(offering, form, 409, full=True, still_waiting=_still_waiting(offering))
        case services.Outcome.FULL:
            return _render_full(offering, form)


@bp.post("/offerings/<slug>/waitlist")
@limiter.limit(config_limit("REGISTER_RATE_LIMIT"))
def join_waitlist(slug: str) -> ResponseReturnValue:
    offering = _offering_or_404(slug)
    form = PersonForm(needs_date=offering.kind.per_session)
    if not form.validate():
        return _render_offering(offering, form, 400, full=True)
    try:
        result = services.join_waitlist(
            offering, form.session_id.data, _person(form), browser_key=links.browser_key()
        )
    except services.RegistrationError as error:
        show_form_error(form, FieldError(str(error), error.field))
        return _render_offering(offering, form, 409)
    match result.outcome:
        case services.WaitlistOutcome.JOINED:
            assert result.entry is not None  # joining made the entry
            flash(gettext("You're on the waitlist. We'll email you if a seat opens."), "success")
            return redirect(links.waitlist_url(result.entry, external=False))
        case services.WaitlistOutcome.ALREADY_WAITING:
            # Neutral: never the link here (anyone may type anyone's email); it went by email.
            what = "date" if offering.kind.per_session else offering.kind.value
            form.form_errors.append(
                {
                    "date": gettext(
                        "You're already on the waitlist for this date. We've emailed you the link to "
                        "your place."
                    ),
                    "workshop": gettext(
                        "You're already on the waitlist for this workshop. "
                        "We've emailed you the link to your place."
                    ),
                    "course": gettext(
                        "You're already on the waitlist for this course. We've emailed you the link to "
                        "your place."
                    ),
                }[what]
            )
        case services.WaitlistOutcome.RESUME:
            assert result.registration is not None  # the registration this browser made
            return _resume(result.registration)
        case services.WaitlistOutcome.ALREADY_REGISTERED:
            form.form_errors.append(_already_registered(offering))
        case services.WaitlistOutcome.SEATS_AVAILABLE:
            form.form_errors.append(gettext("Good news: a seat is free. You can register now."))
    return _render_offering(offering, form, 409)


def _registration_from_link(signed: str) -> Registration:
    token = links.token_from_link(signed, links.MANAGE_SALT)
    return services.registration_by_token(token) or abort(404)


@bp.get("/manage/<signed>")
def manage(signed: str) -> ResponseReturnValue:
    registration = _registration_from_link(signed)
    return render_template("registration/manage.html", page=pages.manage_page(registration), signed=signed)


def _render_cancel(
    registration: Registration, signed: str, status: int = 200, changed: bool = False
) -> tuple[str, int]:
    preview = pages.cancel_preview(registration)
    return render_template(
        "registration/cancel.html", preview=preview, signed=signed, changed=changed
    ), status


@bp.get("/manage/<signed>/cancel")
def cancel_confirm(signed: str) -> ResponseReturnValue:
    """Cancelling asks once: what will be refunded, by the policy, and when it reaches the card."""
    registration = _registration_from_link(signed)
    if not pages.can_cancel(registration):
        return redirect(url_for("registration.manage", signed=signed))
    return _render_cancel(registration, signed)


@bp.post("/manage/<signed>/cancel")
@limiter.limit(config_limit("REGISTER_RATE_LIMIT"))
def cancel(signed: str) -> ResponseReturnValue:
    registration = _registration_from_link(signed)
    if not pages.can_cancel(registration):
        return redirect(url_for("registration.manage", signed=signed))
    form = CancelForm()
    if not form.validate():
        # Not confirmed on the confirmation page (an old page's button, an expired form): ask.
        return _render_cancel(registration, signed, 400)
    try:
        _, refund_cents = services.cancel_registration(
            registration.id, expected_refund_cents=form.refund_cents.data
        )
    except services.QuoteChanged:
        return _render_cancel(registration, signed, 409, changed=True)
    if refund_cents:
        amount = format_money(refund_cents, registration.currency)
        flash(
            gettext(
                "Your registration is cancelled. A refund of %(amount)s is on its way to your card: "
                "it usually arrives within %(arrives)s.",
                amount=amount,
                arrives=pages.refund_arrives(),
            ),
            "success",
        )
    else:
        flash(gettext("Your registration is cancelled."), "success")
    return redirect(url_for("registration.manage", signed=signed))


@bp.get("/manage/<signed>/calendar.ics")
def registration_calendar(signed: str) -> ResponseReturnValue:
    registration = _registration_from_link(signed)
    sessions = services.registration_sessions(registration)
    body = build_calendar(current_clinic(), registration.offering.title, sessions, registration=registration)
    return current_app.response_class(
        body,
        mimetype="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="registration.ics"'},
    )


@bp.get("/manage/<signed>/pay")
def pay(signed: str) -> ResponseReturnValue:
    """The payment page; `?back=1`: they came back to it by registering again; `?retry=1`: the
    payment they came back from did not go through (say, the bank's check failed)."""
    registration = _registration_from_link(signed)
    if not services.hold_is_live(registration):
        # The manage page says where it stands (paid, released...), in one message.
        return redirect(url_for("registration.manage", signed=signed))
    return render_template(
        "registration/pay.html",
        page=pages.manage_page(registration),
        registration=registration,
        signed=signed,
        resumed=request.args.get("back") == "1",
        retry=request.args.get("retry") == "1",
        stripe_js_url=stripe_js_url(),
        publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
    )


@bp.post("/manage/<signed>/pay")
@limiter.limit(config_limit("PAY_RATE_LIMIT"))
def pay_submit(signed: str) -> ResponseReturnValue:
    registration = _registration_from_link(signed)
    return card_payment_answer(payments.pay_with_card, registration.id)


@bp.get("/manage/<signed>/pay/complete")
def pay_complete(signed: str) -> ResponseReturnValue:
    """Where the browser lands after paying: confirm from Stripe's state, as the webhook would."""
    registration = _registration_from_link(signed)
    intent_id = request.args.get("payment_intent", "")
    outcome, registration = payments.complete_after_return(
        registration.id, intent_id if is_stripe_id(intent_id, "pi_") else None
    )
    match outcome:
        case payments.ReturnOutcome.CONFIRMED:
            flash(
                gettext(
                    "Payment received: you're booked! Your confirmation and receipt are on their way "
                    "by email."
                ),
                "success",
            )
        case payments.ReturnOutcome.PROCESSING:
            flash(gettext("Your payment is processing. We'll email you as soon as it completes."), "success")
        case payments.ReturnOutcome.RETRY:
            # The pay page says it, with the time the seat is held until: one message.
            return redirect(url_for("registration.pay", signed=signed, retry="1"))
        case payments.ReturnOutcome.RELEASED:
            pass  # the manage page says so, with what to do next
    return redirect(url_for("registration.manage", signed=signed))


# --- Waitlist ---


def _entry_from_link(signed: str) -> WaitlistEntry:
    token = links.token_from_link(signed, links.WAITLIST_SALT)
    return services.waitlist_entry_by_token(token) or abort(404)


def _render_waitlist_entry(
    entry: WaitlistEntry,
    signed: str,
    form: ClaimForm | None = None,
    consent_version: ConsentVersion | None = None,
    status: int = 200,
) -> tuple[str, int]:
    position = waitlist_position(entry) if entry.status == WaitlistStatus.WAITING else None
    claimed = (
        pages.claimed_place(entry.registration, resumed=True)
        if entry.status == WaitlistStatus.CLAIMED and entry.registration is not None
        else None
    )
    offering = entry.seat_pool.offering
    # An offer is for a general seat; while a community seat is kept they may take it instead.
    community_left = (
        pricing.community_left_by_pool(offering, [entry.seat_pool], utcnow())[entry.seat_pool_id]
        if entry.status == WaitlistStatus.OFFERED
        else 0
    )
    return render_template(
        "registration/waitlist.html",
        entry=entry,
        position=position,
        claimed=claimed,
        sessions=services.waitlist_sessions(entry),
        community_left=community_left,
        form=form or ClaimForm(formdata=None),
        consent_version=consent_version or consent.required_version(entry.seat_pool.offering),
        signed=signed,
    ), status


@bp.get("/waitlist/<signed>")
def waitlist_entry(signed: str) -> ResponseReturnValue:
    return _render_waitlist_entry(_entry_from_link(signed), signed)


@bp.post("/waitlist/<signed>/leave")
def leave_waitlist(signed: str) -> ResponseReturnValue:
    entry = _entry_from_link(signed)
    if not ConfirmForm().validate():
        abort(400, description=gettext("The form expired. Please go back and try again."))
    services.leave_waitlist(entry.id)
    flash(gettext("You've left the waitlist."), "success")
    return redirect(url_for("registration.waitlist_entry", signed=signed))


@bp.post("/waitlist/<signed>/claim")
def claim_offer(signed: str) -> ResponseReturnValue:
    entry = _entry_from_link(signed)
    form = ClaimForm()
    if not form.validate():
        if form.csrf_token.errors:
            abort(400, description=gettext("The form expired. Please go back and try again."))
        return _render_waitlist_entry(entry, signed, form, status=400)
    already_claimed = entry.status == WaitlistStatus.CLAIMED
    try:
        registration = services.claim_offer(
            entry.id,
            browser_key=links.browser_key(),
            consent_answer=form.answer,
            price_choice=price_choice(form),
        )
    except consent.ConsentError as error:
        if isinstance(error, consent.ConsentChanged):
            form.consent.data = False
        show_form_error(form, error)
        return _render_waitlist_entry(entry, signed, form, error.version, 409)
    except services.RegistrationError as error:
        if error.field in ("price_choice", "code"):
            # A price or code that can't be used: beside its field, the offer still open.
            show_form_error(form, FieldError(str(error), error.field))
            return _render_waitlist_entry(entry, signed, form, status=409)
        flash(str(error), "error")
        return redirect(url_for("registration.waitlist_entry", signed=signed))
    # Claimed already (a second press, or back from the pay page): to where it stands now.
    place = pages.claimed_place(registration, resumed=already_claimed)
    if place.state == pages.State.CONFIRMED:
        if already_claimed:
            flash(gettext("You already claimed this seat. Here is your registration."), "success")
        else:
            flash(gettext("The seat is yours! A confirmation email is on its way."), "success")
    return redirect(place.action.url)


# --- Find my registrations ---


def ASKED_TOO_OFTEN_FOR_ADDRESS() -> str:  # noqa: N802 - a message, read when it is shown
    return gettext(
        "We've already sent the list for this email address several times recently. Please look for "
        "it in your inbox (and in your spam or junk folder); you can ask again in an hour."
    )


@bp.route("/find-my-registrations", methods=["GET", "POST"])
@limit_link_requests("find-address", FindRegistrationsForm, ASKED_TOO_OFTEN_FOR_ADDRESS)
def find_registrations() -> ResponseReturnValue:
    """The same answer for every address: whether it has registered is never shown here."""
    form = FindRegistrationsForm()
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template("registration/find.html", form=form, sent_to=None), status
    lookup.request_lookup(form.email.data, language=current_language())
    return render_template(
        "registration/find.html",
        form=FindRegistrationsForm(formdata=None),
        sent_to=form.email.data,
        minutes=current_app.config["FIND_REGISTRATIONS_EMAIL_MINUTES"],
    )


# --- Paying what a booking still owes (the payment link emailed after a transfer) ---


def _registration_from_balance_link(signed: str) -> Registration:
    token = links.token_from_link(signed, links.BALANCE_SALT)
    return services.registration_by_token(token) or abort(
        404, description=gettext("This link is no longer valid. Please use the newest link from your email.")
    )


@bp.get("/balance/<signed>")
def balance(signed: str) -> ResponseReturnValue:
    """What is still owed and what for, with the card form; or that it is paid already."""
    registration = _registration_from_balance_link(signed)
    return render_template(
        "registration/balance.html",
        page=pages.balance_page(registration),
        signed=signed,
        retry=request.args.get("retry") == "1",
        manage_url=links.manage_url(registration, external=False),
        stripe_js_url=stripe_js_url(),
        publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
    )


@bp.post("/balance/<signed>/pay")
@limiter.limit(config_limit("PAY_RATE_LIMIT"))
def balance_pay(signed: str) -> ResponseReturnValue:
    registration = _registration_from_balance_link(signed)
    return card_payment_answer(payments.pay_balance_with_card, registration.id)


@bp.get("/balance/<signed>/complete")
def balance_complete(signed: str) -> ResponseReturnValue:
    """Where the browser lands after paying: applied from Stripe's state, as the webhook would."""
    registration = _registration_from_balance_link(signed)
    intent_id = request.args.get("payment_intent", "")
    outcome, registration = payments.complete_balance_after_return(
        registration.id, intent_id if is_stripe_id(intent_id, "pi_") else None
    )
    match outcome:
        case payments.BalanceOutcome.PAID:
            flash(
                gettext("Payment received: nothing more is owed. Your receipt is on its way by email."),
                "success",
            )
        case payments.BalanceOutcome.PROCESSING:
            flash(gettext("Your payment is processing. We'll email you as soon as it completes."), "success")
        case payments.BalanceOutcome.RETRY:
            return redirect(url_for("registration.balance", signed=signed, retry="1"))
        case payments.BalanceOutcome.NOT_OWED:
            pass  # the page says the booking is no longer booked
    return redirect(url_for("registration.balance", signed=signed))
