"""Forms for people without accounts. CSRF comes with FlaskForm."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional, Regexp


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class PersonForm(FlaskForm):
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


class ConfirmForm(FlaskForm):
    """A button that changes something (cancel, leave, claim): CSRF only."""
