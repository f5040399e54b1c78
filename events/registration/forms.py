"""Forms for people without accounts. CSRF and the input rules come with events.forms.Form."""

from collections.abc import Mapping, Sequence
from typing import Any

from flask_babel import lazy_gettext
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional, Regexp

from events.consent.services import ConsentAnswer
from events.forms import Form, deliverable_email, member_email_field, member_name_field, strip_spaces
from events.pricing import PriceChoice

_l = lazy_gettext  # (read when a form is shown, in the page's language)


NO_DATE_CHOSEN = _l("Choose the date you'd like to come.")


def _price_choice_field() -> StringField:
    """The price chosen: "tier-12", "community" or "list" (the registration and claim forms)."""
    return StringField(
        _l("Price"),
        validators=[
            Optional(),
            Regexp(r"^(tier-[0-9]{1,9}|community|list)$", message=_l("Please choose one of the prices.")),
        ],
    )


def _code_field() -> StringField:
    return StringField(
        _l("Code"),
        filters=[strip_spaces],
        validators=[Optional(), Length(max=40, message=_l("That code is too long. Please check it."))],
    )


class PersonForm(Form):
    # First, as on the page: the error summary lists the problems in the order of the fields.
    session_id = IntegerField(
        _l("Date"),
        validators=[
            Optional(),
            NumberRange(min=1, max=2**31 - 1, message=_l("Please choose one of the dates.")),
        ],
    )
    name = member_name_field()
    email = member_email_field(_l("Please enter your email, so we can send your confirmation."))
    phone = StringField(
        _l("Phone (optional)"),
        filters=[strip_spaces],
        validators=[
            Optional(),
            Length(max=40, message=_l("That phone number is too long.")),
            Regexp(r"^[0-9+().\-\s]{7,}$", message=_l("Please use digits, spaces and + ( ) - only.")),
        ],
    )

    # How it is priced (events/pricing.py): a sliding-scale tier ("tier-12"), a community seat
    # ("community") or the list price ("list"); and a promo code, optional. The service checks
    # them against the offering: a wrong one is a form error.
    price_choice = _price_choice_field()
    code = _code_field()

    # The offering's consent document, when it requires one: the version the form showed and
    # the tick. Checked by the service (events/consent/services.py), which knows the current one.
    consent_version_id = IntegerField(
        validators=[Optional(), NumberRange(min=1, max=2**31 - 1, message=_l("Please try again."))]
    )
    # The language of the consent text the form showed ("en": the version's own English text).
    consent_language = StringField(validators=[Optional(), Length(max=12, message=_l("Please try again."))])
    consent = BooleanField(_l("I agree"))

    def __init__(self, *args: Any, needs_date: bool = False, **kwargs: Any) -> None:
        """needs_date: a drop-in class, registered for one date, so the date is asked for
        with the name and email (one answer lists every missing piece)."""
        super().__init__(*args, **kwargs)
        self.needs_date = needs_date

    def validate(self, extra_validators: Mapping[str, Sequence[Any]] | None = None) -> bool:
        valid = super().validate(extra_validators)
        if self.needs_date and self.session_id.data is None and not self.session_id.errors:
            self.session_id.errors = [NO_DATE_CHOSEN]
            return False
        return valid


def price_choice(form: "PersonForm | ClaimForm") -> PriceChoice:
    """The price the form asked for (validated: one of the shapes price_choice allows)."""
    return PriceChoice.from_form(form.price_choice.data, form.code.data)


def consent_answer(form: PersonForm) -> ConsentAnswer:
    return ConsentAnswer(
        form.consent_version_id.data, bool(form.consent.data), form.consent_language.data or "en"
    )


class FindRegistrationsForm(Form):
    """ "Find my registrations": an address, nothing else."""

    email = StringField(
        _l("Your email address"),
        filters=[strip_spaces],
        validators=[
            DataRequired(_l("Please enter the email address you registered with.")),
            Email(
                _l("That doesn't look like an email address. Please check it."), check_deliverability=False
            ),
            deliverable_email,
            Length(max=254, message=_l("That email address is too long.")),
        ],
    )


class ConfirmForm(Form):
    """A button that changes something (cancel, leave, claim): CSRF only."""


class ConsentForm(Form):
    """A consent document read and agreed to on its own (a waitlist claim, the check-in screen):
    the version shown and the tick, checked by the service against the current version."""

    consent_version_id = IntegerField(
        validators=[Optional(), NumberRange(min=1, max=2**31 - 1, message=_l("Please try again."))]
    )
    # The language of the consent text the form showed ("en": the version's own English text).
    consent_language = StringField(validators=[Optional(), Length(max=12, message=_l("Please try again."))])
    consent = BooleanField(_l("I agree"))

    @property
    def answer(self) -> ConsentAnswer:
        return ConsentAnswer(
            self.consent_version_id.data, bool(self.consent.data), self.consent_language.data or "en"
        )


class ClaimForm(ConsentForm):
    """Claiming a waitlist offer: the price chosen and a code, as on the registration form
    (a free offering ignores them), then the consent document when one is required."""

    # (Declared again after the price: fields list in the order they were made, as on the page.)
    price_choice = _price_choice_field()
    code = _code_field()
    consent_version_id = IntegerField(
        validators=[Optional(), NumberRange(min=1, max=2**31 - 1, message=_l("Please try again."))]
    )
    # The language of the consent text the form showed ("en": the version's own English text).
    consent_language = StringField(validators=[Optional(), Length(max=12, message=_l("Please try again."))])
    consent = BooleanField(_l("I agree"))


class CancelForm(Form):
    """The cancel confirmation: the refund the person was shown, so a different one (the
    cut-off passed meanwhile) is shown to them again instead of being given silently."""

    refund_cents = IntegerField(
        validators=[InputRequired(), NumberRange(min=0, max=10**9, message=_l("Please try again."))]
    )
