"""The base of every form in the app: FlaskForm (CSRF) plus the input rules of events.inputs.

Every field of every form gets, ahead of its own validators:
- a check of what was submitted for it: no NUL, no lone surrogates, no control characters
  (a textarea may hold newlines and tabs), so any field, even a select or a checkbox, refuses them;
- for a textarea, CR/LF and CR turned into LF (browsers send CR/LF);
- for a date, a sane range (a weekly series from 9999-12-31 would overflow);
- for a decimal, a finite amount of sane size (see MoneyField for money);
- for an integer, at most 64 bits (NumberRange turns an int into a float to compare it, and a
  400-digit one overflows into a 500).
A form subclassing Form is covered with no code of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from babel.support import NullTranslations, Translations
from flask import current_app, has_request_context
from flask_babel import get_locale, gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import DateField, DateTimeField, DecimalField, Field, IntegerField, StringField, TextAreaField
from wtforms.i18n import messages_path
from wtforms.validators import DataRequired, Email, Length, StopValidation, ValidationError

from events.extensions import db
from events.inputs import EARLIEST_DATE, LATEST_DATE, MONEY_MAX, parse_money, text_problem


def _submitted_text_is_clean(form: FlaskForm, field: Field) -> None:
    multiline = isinstance(field, TextAreaField)
    for raw in field.raw_data or ():
        if isinstance(raw, str) and (problem := text_problem(raw, multiline=multiline)):
            field.errors[:] = []  # one clear message, not "Not a valid choice" as well
            raise StopValidation(problem)


def _date_in_range(form: FlaskForm, field: Field) -> None:
    value = field.data
    if isinstance(value, date):  # a date or a datetime (a TimeField is a DateTimeField too)
        day = value.date() if isinstance(value, datetime) else value
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise StopValidation(
                gettext(
                    "Choose a date between %(earliest)s and %(latest)s.",
                    earliest=EARLIEST_DATE.year,
                    latest=LATEST_DATE.year,
                )
            )


def _decimal_is_sane(form: FlaskForm, field: Field) -> None:
    value = field.data
    if value is not None and (not value.is_finite() or abs(value) > MONEY_MAX):
        raise StopValidation(gettext("Enter a number of sensible size."))


def _unify_newlines(value: object) -> object:
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


_INT_LIMIT = 2**63


def _integer_is_sane(form: FlaskForm, field: Field) -> None:
    value = field.data
    if isinstance(value, int) and not -_INT_LIMIT <= value < _INT_LIMIT:
        raise StopValidation(gettext("Enter a number of sensible size."))


@functools.cache
def _wtforms_catalogue(locale: str | None) -> NullTranslations:
    if locale is None:  # (no request: the English, as Flask-WTF's own gives)
        return NullTranslations()
    return Translations.load(messages_path(), [locale], domain="wtforms")


class _WtformsMessages:
    """wtforms' own messages ("Not a valid integer value.") in the page's language, from its
    catalogues read once per process (Flask-WTF's own reads and parses the file again on every
    request that builds a form)."""

    def _catalogue(self) -> NullTranslations:
        locale = get_locale() if has_request_context() else None
        return _wtforms_catalogue(str(locale) if locale else None)

    def gettext(self, string: str) -> str:
        return self._catalogue().gettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._catalogue().ngettext(singular, plural, n)


_WTFORMS_MESSAGES = _WtformsMessages()


class Form(FlaskForm):
    class Meta:
        def get_translations(self, form: FlaskForm) -> Any:
            return _WTFORMS_MESSAGES  # (in place of Flask-WTF's, which this app always uses)

        def bind_field(self, form: FlaskForm, unbound_field: Any, options: dict[str, Any]) -> Field:
            # wtforms puts its DefaultMeta behind this Meta at runtime, hence the super() call.
            field = super().bind_field(form, unbound_field, options)  # type: ignore[misc]
            checks = [_submitted_text_is_clean]
            if isinstance(field, TextAreaField):
                field.filters = (*field.filters, _unify_newlines)
            if isinstance(field, DateField | DateTimeField):
                checks.append(_date_in_range)
            if isinstance(field, DecimalField):
                checks.append(_decimal_is_sane)
            if isinstance(field, IntegerField):
                checks.append(_integer_is_sane)
            field.validators = [*checks, *field.validators]
            return field


class MoneyField(DecimalField):
    """Dollars as people type them ('25', '25.50', '$1,200'): no exponents, no Infinity/NaN,
    no hundreds of digits (see events.inputs.parse_money)."""

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = parse_money(valuelist[0])
        except ValueError as error:
            self.data = None
            raise ValueError(str(error)) from None


__all__ = [
    "Form",
    "MoneyField",
    "ValidationError",
    "deliverable_email",
    "form_error_items",
    "member_email_field",
    "member_name_field",
    "strip_spaces",
]

NO_SMTPUTF8_MESSAGE = (
    "Please use an address without accents before the @ (for example zoe@, not zoë@): "
    "our mail server can't deliver to it yet."
)


def deliverable_email(form: FlaskForm, field: Field) -> None:
    """An address our mail server can deliver to, for every form that takes a member's email.

    Without SMTPUTF8 (MAIL_SMTPUTF8 unset) no server takes a non-ASCII local part (zoë@), so
    it is refused here, where the person can still give another, instead of every email to
    them failing later. An accented domain (zoe@exämple.com) is always fine: it goes in IDNA
    form. Runs after the syntax check (an address without an @ has no local part to judge)."""
    value = field.data
    if not isinstance(value, str) or "@" not in value or current_app.config["MAIL_SMTPUTF8"]:
        return
    if not value.rsplit("@", 1)[0].isascii():
        raise ValidationError(NO_SMTPUTF8_MESSAGE)


def strip_spaces(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


# Written _l(...) like the other forms' messages: `make translations-extract` reads lazy_gettext
# only, and these msgids are not in the catalogues yet (adding them is the translators' round).
_l = lazy_gettext


# A member's name and email, asked the same way (rules and messages) by every public form that
# takes them. Functions, not a mixin: a form lists its fields in the order they were made, and
# its error summary follows that order, so each form makes its own where it shows them.
def member_name_field() -> StringField:
    return StringField(
        _l("Your name"),
        filters=[strip_spaces],
        validators=[
            DataRequired(_l("Please tell us your name.")),
            Length(max=120, message=_l("That name is too long.")),
        ],
    )


def member_email_field(required_message: str) -> StringField:
    """`required_message`: what a member who left it empty reads, saying what it is for."""
    return StringField(
        _l("Email"),
        filters=[strip_spaces],
        validators=[
            DataRequired(required_message),
            Email(_l("That doesn't look like an email address."), check_deliverability=False),
            deliverable_email,
            Length(max=254),
        ],
    )


class FieldError(Exception):
    """A rule refused a change; the message is for the person who submitted the form, and
    `field` names the form field it belongs next to (None: at the top of the form)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def show_form_error(form: FlaskForm, error: FieldError) -> None:
    """Show a rule's refusal next to its field, or at the top of the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, str(error)]
    else:
        form.form_errors.append(str(error))


def form_error_items(
    form: FlaskForm | None, anchors: Mapping[str, str] | None = None
) -> list[tuple[str | None, str]]:
    """What a form's error summary lists, in the order of the form: the rule refusals that
    belong to no field first, then each field's first error with the id of the element to link
    to (the field's own id, or anchors[field name], e.g. the first radio of a group)."""
    if form is None:
        return []
    items: list[tuple[str | None, str]] = [(None, str(message)) for message in form.form_errors]
    for field in form:
        if not field.errors:
            continue
        if field.name == "csrf_token":
            items.append(
                (None, gettext("This page was open too long, so the form expired. Please send it again."))
            )
            continue
        items.append(((anchors or {}).get(field.name, field.id), str(field.errors[0])))
    return items


T = TypeVar("T")


def attempt(form: FlaskForm, action: Callable[[], T]) -> T | None:
    """Make the change a form asked for. If a rule refuses it (a FieldError), undo the
    transaction and show the refusal on the form: None, and the caller shows the form again."""
    try:
        return action()
    except FieldError as error:
        db.session.rollback()
        show_form_error(form, error)
        return None
