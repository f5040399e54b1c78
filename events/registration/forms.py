"""Forms for people without accounts. CSRF and the input rules come with events.forms.Form."""

from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional, Regexp

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


class FindRegistrationsForm(Form):
    """ "Find my registrations": an address, nothing else."""

    email = StringField(
        "Your email address",
        filters=[_strip],
        validators=[
            DataRequired("Please enter the email address you registered with."),
            Email("That doesn't look like an email address. Please check it.", check_deliverability=False),
            Length(max=254, message="That email address is too long."),
        ],
    )


class ConfirmForm(Form):
    """A button that changes something (cancel, leave, claim): CSRF only."""
