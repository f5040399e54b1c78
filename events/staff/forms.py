"""The sign-in, password and roster forms (the admin pages' forms are in admin_forms.py)."""

from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from events.forms import Form


class LoginForm(Form):
    email = StringField("Email", validators=[DataRequired("Enter your email."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=200)])


class ResetRequestForm(Form):
    email = StringField(
        "Email",
        validators=[
            DataRequired("Enter your email."),
            # Syntax only: a DNS lookup here would refuse every address when DNS is down.
            Email("That isn't an email address.", check_deliverability=False),
            Length(max=254),
        ],
    )


class NewPasswordForm(Form):
    password = PasswordField(
        "New password",
        validators=[
            DataRequired("Choose a password."),
            Length(min=10, max=200, message="Use at least 10 characters."),
        ],
    )
    confirm = PasswordField(
        "Repeat the new password", validators=[EqualTo("password", message="The two passwords differ.")]
    )


class CancelForm(Form):
    reason = StringField(
        "Reason (told to attendees)", validators=[DataRequired("Say why, briefly."), Length(max=300)]
    )
    # "yes" only from the confirmation page: a POST without it shows what would happen, no more.
    confirmed = HiddenField()
