"""The public form to buy a class pass (CSRF and the input rules come with events.forms.Form)."""

from flask_babel import lazy_gettext
from wtforms import StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from events.forms import Form, deliverable_email

_l = lazy_gettext


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class BuyPassForm(Form):
    name = StringField(
        _l("Your name"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Please tell us your name.")),
            Length(max=120, message=_l("That name is too long.")),
        ],
    )
    email = StringField(
        _l("Email"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Please enter your email: your pass is sent there.")),
            Email(_l("That doesn't look like an email address."), check_deliverability=False),
            deliverable_email,
            Length(max=254),
        ],
    )
    # A promo code, if the member has one (checked and priced by events/pricing.py).
    code = StringField(
        _l("Code (optional)"),
        filters=[_strip],
        validators=[Optional(), Length(max=40, message=_l("That code is too long."))],
    )
