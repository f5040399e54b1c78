"""The sign-in, password, roster, walk-in and message forms (the admin pages' forms are in admin_forms.py)."""

from wtforms import BooleanField, HiddenField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp

from events.forms import Form, deliverable_email
from events.forms import strip_spaces as _strip  # (the one shared filter, short here)


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


class WalkInForm(Form):
    """Someone who turned up without booking: a name, and an email or phone if they give one."""

    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Enter their name."), Length(max=120)]
    )
    email = StringField(
        "Email (optional: for the follow-up)",
        filters=[_strip],
        validators=[
            Optional(),
            Email("That isn't an email address.", check_deliverability=False),
            deliverable_email,
            Length(max=254),
        ],
    )
    phone = StringField("Phone (optional)", filters=[_strip], validators=[Optional(), Length(max=40)])


class MessageForm(Form):
    """A message to a session's (or an offering's) people: written, previewed, then confirmed."""

    subject = StringField(
        "Subject", filters=[_strip], validators=[DataRequired("Write a subject."), Length(max=150)]
    )
    body = TextAreaField("Message", validators=[DataRequired("Write the message."), Length(max=5000)])
    include_waitlist = BooleanField("Also send it to the people on the waitlist")
    # Set on the preview: the confirmation carries it, so sending twice is one message.
    request_key = HiddenField(validators=[Optional(), Regexp(r"^[A-Za-z0-9_-]{16,64}$")])
