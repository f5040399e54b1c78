"""Booking with a class pass: asking for the emailed link, confirming through it, and booking
from the pass's own page. Each view reads input, calls one service and renders or redirects."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from werkzeug.routing import BuildError
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange

from events.catalog import services as catalog
from events.catalog.views import render_offering_page
from events.consent import services as consent
from events.extensions import config_limit, db, limiter
from events.forms import FieldError, Form, show_form_error
from events.languages import current_language
from events.models import Offering, Pass, Registration, RegistrationStatus, Session, utcnow
from events.passes import booking
from events.registration import links
from events.registration.forms import ConfirmForm, PersonForm
from events.registration.services import (
    ONLY_COMMUNITY_SEATS_LEFT,
    Person,
    RegistrationError,
    pass_credits_come_back,
)

bp = Blueprint("pass_booking", __name__)


@bp.app_template_global()
def pass_bookable_sessions(class_pass: Pass) -> list[booking.Bookable]:
    """For the pass page's partial (templates/passes/_book_with_pass.html)."""
    return booking.bookable_sessions(class_pass)


@bp.app_template_global()
def pass_credits_come_back_now(registration: Registration) -> bool:
    """Whether cancelling a pass booking now (by the policy) gives its credits back."""
    return pass_credits_come_back(registration, utcnow())


@bp.app_template_global()
def staff_pass_label(registration: Registration) -> str:
    """ "Class pass: 1 credit (6 of 10 left, expires Jun 14)" for the staff registration page."""
    return booking.staff_pass_label(registration)


def _already_booked(registration: Registration) -> ResponseReturnValue:
    """To the booking this address already has: booked, or a seat held while they pay by card
    (its page offers to pay or release it; nothing was taken from the pass)."""
    if registration.status is RegistrationStatus.HELD:
        flash(
            gettext(
                "You already have a seat held for this while you pay by card. Nothing was taken from "
                "your pass: release that seat on this page to book with your pass instead."
            ),
            "success",
        )
    else:
        flash(gettext("You're already booked for this. Nothing more was taken from your pass."), "success")
    return redirect(links.manage_url(registration, external=False))


class BookFromPassForm(Form):
    """A "Book" button on the pass page: the date, and CSRF."""

    session_id = IntegerField(
        validators=[InputRequired(), NumberRange(min=1, max=2**31 - 1, message="Please choose a date.")]
    )


def _person(form: PersonForm) -> Person:
    return Person(
        name=form.name.data.strip(),
        email=form.email.data.strip(),
        phone=(form.phone.data or "").strip(),
        language=current_language(),
    )


@bp.post("/offerings/<slug>/book-with-pass")
@limiter.limit(config_limit("REGISTER_RATE_LIMIT"))
def request_link(slug: str) -> ResponseReturnValue:
    """ "I have a class pass": email the address the link that confirms the booking. The answer
    is the same whether or not the address holds a pass."""
    offering = catalog.get_offering(slug) or abort(404)
    form = PersonForm(needs_date=offering.kind.per_session)

    def again(status: int) -> ResponseReturnValue:
        chosen = form.session_id.data if isinstance(form.session_id.data, int) else None
        return render_offering_page(offering, chosen_session_id=chosen, form=form), status

    if not form.validate():
        return again(400)
    try:
        booking.request_booking_link(offering, form.session_id.data, _person(form))
    except RegistrationError as error:
        show_form_error(form, FieldError(str(error), error.field))
        return again(409)
    return render_template(
        "passes/link_sent.html", offering=offering, sent_to=form.email.data, minutes=booking.link_minutes()
    )


def _request_from_link(signed: str) -> booking.BookingRequest:
    try:
        return booking.read_request(signed)
    except booking.LinkExpired:
        abort(
            410,
            description=gettext(
                "This link has expired. Please go back to the class and choose “I have a class pass” again."
            ),
        )
    except booking.LinkInvalid:
        abort(404, description=gettext("This link is not valid. Please use the link from your email."))


def _consent_answer() -> consent.ConsentAnswer | None:
    """What the page said about the offering's consent document; None if it showed none."""
    raw = request.form.get("consent_version_id", "")
    if not raw:
        return None
    version_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None
    language = request.form.get("consent_language", "")[:13] or "en"  # (too long: names no text)
    return consent.ConsentAnswer(version_id, request.form.get("consent") == "y", language)


def _asked(answer: consent.ConsentAnswer | None) -> consent.ConsentAnswer:
    """A member's booking is always checked: a page that showed no document answered 'no'."""
    return answer or consent.ConsentAnswer(None, False)


def _render_confirm(
    preview: booking.ConfirmPreview,
    signed: str,
    status: int = 200,
    problem: str = "",
    who: booking.BookingRequest | None = None,
    consent_error: consent.ConsentError | None = None,
) -> ResponseReturnValue:
    version = getattr(consent_error, "version", None) or consent.required_version(preview.offering)
    return render_template(
        "passes/confirm.html",
        who=who,
        preview=preview,
        signed=signed,
        problem=problem,
        consent_version=version,
        consent_errors=[str(consent_error)] if consent_error else [],
        form=ConfirmForm(formdata=None),
        manage_url=links.manage_url(preview.registration, external=False) if preview.registration else None,
        summary=booking.pass_summary(preview.registration) if preview.registration else None,
    ), status


@bp.get("/pass-booking/<signed>")
def confirm(signed: str) -> ResponseReturnValue:
    wanted = _request_from_link(signed)
    preview = booking.confirm_preview(wanted) or abort(404)
    return _render_confirm(preview, signed, who=wanted)


@bp.post("/pass-booking/<signed>")
@limiter.limit(config_limit("REGISTER_RATE_LIMIT"))
def book(signed: str) -> ResponseReturnValue:
    wanted = _request_from_link(signed)
    offering = db.session.get(Offering, wanted.offering_id) or abort(404)
    if not ConfirmForm().validate():
        abort(400, description=gettext("The form expired. Please go back and try again."))
    try:
        result = booking.book_with_pass(
            offering, wanted.session_id, wanted.person, consent_answer=_asked(_consent_answer())
        )
    except consent.ConsentError as error:
        preview = booking.confirm_preview(wanted) or abort(404)
        return _render_confirm(preview, signed, 409, who=wanted, consent_error=error)
    except RegistrationError as error:
        preview = booking.confirm_preview(wanted) or abort(404)
        return _render_confirm(preview, signed, 409, problem=str(error))
    return _after_booking(result, lambda: booking.confirm_preview(wanted), signed, wanted)


def still_waiting(position: int) -> str:
    """A pass holder's place on the waitlist of what they tried to book (their link is theirs)."""
    return gettext(
        "You're on the waitlist for it: number %(position)d. We'll email you if a seat opens.",
        position=position,
    )


def _after_booking(  # type: ignore[no-untyped-def]
    result: booking.PassBookingResult, preview_now, signed: str, who: booking.BookingRequest
) -> ResponseReturnValue:
    match result.outcome:
        case booking.Outcome.BOOKED:
            assert result.registration is not None
            flash(gettext("You're booked! A confirmation email is on its way."), "success")
            return redirect(links.manage_url(result.registration, external=False))
        case booking.Outcome.ALREADY_BOOKED if result.registration is not None:
            return _already_booked(result.registration)
    preview = preview_now() or abort(404)
    problem = {
        booking.Outcome.FULL: gettext("Sorry, this has just filled up. Nothing was taken from your pass."),
        # A pass takes a general seat: told as the registration form tells a general booking.
        booking.Outcome.ONLY_COMMUNITY_SEATS: str(ONLY_COMMUNITY_SEATS_LEFT),
        booking.Outcome.NO_PASS: gettext("Your class pass can't pay for this now. Nothing was booked."),
        booking.Outcome.ALREADY_BOOKED: gettext("You're already booked for this."),
    }[result.outcome]
    return _render_confirm(preview, signed, 409, problem=problem, who=who)


# --- From the pass's own page ---


def _pass_from_link(signed: str) -> Pass:
    try:
        token = links.unsign(signed, links.PASS_SALT)
    except links.LinkExpired:
        abort(410, description=gettext("This link has expired. Please contact the clinic if you need help."))
    except links.LinkInvalid:
        abort(404, description=gettext("This link is not valid. Please use the link from your email."))
    return booking.pass_by_token(token) or abort(404)


def pass_page_url(signed: str) -> str | None:
    """The pass page (its blueprint may not be registered: then None)."""
    try:
        return url_for("passes.pass_page", signed=signed)
    except BuildError:
        return None


@bp.post("/pass/<signed>/book")
@limiter.limit(config_limit("REGISTER_RATE_LIMIT"))
def book_from_pass(signed: str) -> ResponseReturnValue:
    """A "Book" button of the pass page: the signed pass link is the proof of address."""
    pass_ = _pass_from_link(signed)
    form = BookFromPassForm()
    if not form.validate():
        if form.csrf_token.errors:
            abort(400, description=gettext("The form expired. Please go back and try again."))
        abort(400, description=gettext("Please choose one of the listed dates."))
    session = db.session.get(Session, form.session_id.data) or abort(
        404, description=gettext("Please choose one of the listed dates.")
    )
    offering = session.offering
    person = Person(pass_.name, pass_.email, "", pass_.language or current_language())
    back = pass_page_url(signed)
    answer = _consent_answer()
    try:
        result = booking.book_with_pass(
            offering,
            session.id if offering.kind.per_session else None,
            person,
            pass_id=pass_.id,
            consent_answer=_asked(answer),
        )
    except consent.ConsentError as error:
        # The pass page's Book button shows no document: read and agree here, then book.
        return render_template(
            "passes/book_consent.html",
            session=session,
            offering=offering,
            signed=signed,
            back=back,
            consent_version=getattr(error, "version", None) or consent.required_version(offering),
            consent_errors=[str(error)] if answer is not None else [],
        ), (409 if answer is not None else 200)
    except RegistrationError as error:
        return render_template("passes/book_problem.html", problem=str(error), back=back), 409
    match result.outcome:
        case booking.Outcome.BOOKED:
            assert result.registration is not None
            flash(gettext("You're booked! A confirmation email is on its way."), "success")
            return redirect(links.manage_url(result.registration, external=False))
        case booking.Outcome.ALREADY_BOOKED if result.registration is not None:
            return _already_booked(result.registration)
        case booking.Outcome.FULL:
            # On its waitlist: they keep their place, and are told so. Else: the waitlist, their
            # details filled in from the pass, as for a general seat below.
            full = gettext("Sorry, this has just filled up. Nothing was taken from your pass.")
            if result.waiting_position is not None:
                return render_template(
                    "passes/book_problem.html",
                    problem=full,
                    still_waiting=still_waiting(result.waiting_position),
                    back=back,
                ), 409
            return render_template(
                "passes/book_problem.html",
                problem=full,
                back=back,
                waitlist_offering=offering,
                waitlist_session=session,
                who=person,
            ), 409
        case booking.Outcome.ONLY_COMMUNITY_SEATS:
            # As the registration form answers a general booking: the waitlist for a general seat.
            return render_template(
                "passes/book_problem.html",
                problem=str(ONLY_COMMUNITY_SEATS_LEFT),
                back=back,
                waitlist_offering=offering,
                waitlist_session=session,
                who=person,
            ), 409
        case _:
            problem = gettext("Your class pass can't pay for this now. Nothing was booked.")
    return render_template("passes/book_problem.html", problem=problem, back=back), 409
