"""Forms for people without accounts. CSRF and the input rules come with events.forms.Form."""

from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional, Regexp

from events.forms import Form


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class PersonForm(Form):
    name = StringField(
        "Your name",
        filters=[_strip],
        validators=[
            DataRequired("Please tell us your name."),
            Length(max=120, message="That name is too long."),
        ],
    )
    email = StringField(
        "Email",
        filters=[_strip],
        validators=[
            DataRequired("Please enter your email, so we can send your confirmation."),
            Email("That doesn't look like an email address.", check_deliverability=False),
            Length(max=254),
        ],
    )
    phone = StringField(
        "Phone (optional)",
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=40, message="That phone number is too long."),
            Regexp(r"^[0-9+().\-\s]{7,}$", message="Please use digits, spaces and + ( ) - only."),
        ],
    )
    session_id = IntegerField(
        "Date",
        validators=[Optional(), NumberRange(min=1, max=2**31 - 1, message="Please choose one of the dates.")],
    )


class ConfirmForm(Form):
    """A button that changes something (cancel, leave, claim): CSRF only."""


class CancelForm(Form):
    """The cancel confirmation: the refund the person was shown, so a different one (the
    cut-off passed meanwhile) is shown to them again instead of being given silently."""

    refund_cents = IntegerField(
        validators=[InputRequired(), NumberRange(min=0, max=10**9, message="Please try again.")]
    )
