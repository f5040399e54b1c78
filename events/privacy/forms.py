"""The public privacy forms (CSRF and the hostile-input rules come with events.forms.Form)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length

from events.forms import Form, deliverable_email
from events.forms import strip_spaces as _strip  # (the one shared filter, short here)

ACTION_CHOICES = [
    ("export", _l("Download my data")),
    ("erase", _l("Delete my data")),
]


class MyDataForm(Form):
    """An address and what to do with its data; the link goes to that address."""

    email = StringField(
        _l("Your email address"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Please enter the email address you registered with.")),
            Email(
                _l("That doesn't look like an email address. Please check it."), check_deliverability=False
            ),
            deliverable_email,
            Length(max=254, message=_l("That email address is too long.")),
        ],
    )
    action = RadioField(
        _l("What would you like to do?"),
        choices=ACTION_CHOICES,
        validators=[InputRequired(_l("Please choose whether to download or delete your data."))],
    )


class ManageDataForm(Form):
    """The manage page's buttons: which link to email to the booking's address."""

    action = RadioField(choices=ACTION_CHOICES, validators=[InputRequired()])
