"""The public form to buy a class pass (CSRF and the input rules come with events.forms.Form)."""

from flask_babel import lazy_gettext
from wtforms import StringField
from wtforms.validators import Length, Optional

from events.forms import Form, member_email_field, member_name_field, strip_spaces

_l = lazy_gettext


class BuyPassForm(Form):
    name = member_name_field()
    email = member_email_field(_l("Please enter your email: your pass is sent there."))
    # A promo code, if the member has one (checked and priced by events/pricing.py).
    code = StringField(
        _l("Code (optional)"),
        filters=[strip_spaces],
        validators=[Optional(), Length(max=40, message=_l("That code is too long."))],
    )
