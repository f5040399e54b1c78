"""Forms for the admin pages. Every one is an events.forms.Form (a FlaskForm, so every POST carries a
CSRF token, with the app's input rules)."""

from typing import Any

from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from events.forms import Form, MoneyField, deliverable_email
from events.forms import strip_spaces as _strip  # (the one shared filter, short here)
from events.languages import languages
from events.models import OfferingKind


def _int_or_none(value: str | int | None) -> int | None:
    return int(value) if value not in (None, "", "None") else None


class OfferingForm(Form):
    kind = SelectField("Kind", choices=[(k.value, k.value.capitalize()) for k in OfferingKind])
    title = StringField(
        "Title", filters=[_strip], validators=[DataRequired("Give it a title."), Length(max=200)]
    )
    slug = StringField(
        "Web address name (slug)",
        filters=[_strip],
        validators=[Optional(), Length(max=100), Regexp(r"^[a-z0-9-]+$", message="Use a-z, 0-9 and - only.")],
    )
    topic = StringField("Topic", filters=[_strip], validators=[DataRequired("Give a topic."), Length(max=80)])
    summary = StringField("Summary (one line)", filters=[_strip], validators=[Length(max=400)])
    description = TextAreaField("Description", filters=[_strip], validators=[Length(max=20000)])
    what_to_bring = TextAreaField("What to bring", filters=[_strip], validators=[Length(max=5000)])
    location_id = SelectField("Location", coerce=int, validators=[DataRequired("Choose a location.")])
    instructor_id = SelectField("Instructor", coerce=_int_or_none, validate_choice=True)
    price = MoneyField(
        "Price in dollars (0 = free)",
        places=2,
        default=0,
        validators=[Optional(), NumberRange(min=0, max=100000, message="Enter a price from 0 to 100000.")],
    )
    capacity = IntegerField(
        "Capacity (seats)",
        default=12,
        validators=[
            DataRequired("Enter the number of seats."),
            NumberRange(min=1, max=1000, message="1 to 1000."),
        ],
    )
    credits_per_booking = IntegerField(
        "Class-pass credits per booking",
        default=1,
        # Optional: left empty (or a form posted without it) is 1.
        validators=[Optional(), NumberRange(min=1, max=20, message="1 to 20.")],
    )
    cancellation_cutoff_hours = IntegerField(
        "Full refund until (hours before start)",
        default=24,
        validators=[Optional(), NumberRange(min=0, max=24 * 60, message="0 to 1440 hours.")],
    )
    late_cancel_refund_percent = IntegerField(
        "Refund after the cut-off (%)",
        default=0,
        validators=[Optional(), NumberRange(min=0, max=100, message="0 to 100.")],
    )
    reminders = StringField(
        "Reminders before each session", default="24h, 2h", filters=[_strip], validators=[Length(max=100)]
    )
    followup_delay_minutes = IntegerField(
        "Follow-up email (minutes after the end)",
        default=120,
        validators=[Optional(), NumberRange(min=0, max=60 * 24 * 14, message="0 to 20160 minutes.")],
    )
    # Community seats (events/pricing.py): kept at the community price until the release time.
    community_seats = IntegerField(
        "Community seats (per date for a class; 0 = none)",
        default=0,
        validators=[Optional(), NumberRange(min=0, max=1000, message="0 to 1000.")],
    )
    community_price = MoneyField(
        "Community seats' price (dollars, 0 = free)",
        places=2,
        default=0,
        validators=[Optional(), NumberRange(min=0, max=100000, message="Enter a price from 0 to 100000.")],
    )
    community_release_hours = IntegerField(
        "Unclaimed community seats join general sale (hours before start)",
        default=24,
        validators=[Optional(), NumberRange(min=0, max=24 * 60, message="0 to 1440 hours.")],
    )
    is_published = BooleanField("Published (shown on the schedule)", default=True)
    consent_document_id = SelectField(
        "Consent document people must accept", coerce=_int_or_none, validate_choice=True
    )


class SessionsForm(Form):
    first_day = DateField("Date (first date for a series)", validators=[DataRequired("Choose a date.")])
    start = TimeField("Start time (local)", validators=[DataRequired("Choose a start time.")])
    duration_minutes = IntegerField(
        "Duration (minutes)",
        default=60,
        validators=[DataRequired("Enter the length."), NumberRange(min=5, max=24 * 60, message="5 to 1440.")],
    )
    weeks = IntegerField(
        "Number of weeks (1 = a single date)",
        default=1,
        validators=[DataRequired("Enter 1 or more."), NumberRange(min=1, max=52, message="1 to 52.")],
    )
    location_id = SelectField("Location", coerce=_int_or_none)


class _Confirmable(Form):
    # Set by the confirmation page's button: the first submit only shows what will happen.
    confirmed = HiddenField(validators=[Optional(), Regexp(r"^yes$", message="Send the form again.")])

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed.data == "yes"


class MoveSessionForm(_Confirmable):
    day = DateField("New date", validators=[DataRequired("Choose a date.")])
    start = TimeField("Start time", validators=[DataRequired("Choose a start time.")])
    end = TimeField("End time", validators=[DataRequired("Choose an end time.")])
    location_id = SelectField("Location", coerce=_int_or_none)


class SubstituteForm(_Confirmable):
    instructor_id = SelectField("Who teaches this date", coerce=_int_or_none)
    notify = BooleanField("Email the people registered about the new instructor", default=False)


class CancelSessionForm(_Confirmable):
    reason = StringField(
        "Reason (told to attendees)",
        filters=[_strip],
        validators=[DataRequired("Say why, briefly."), Length(max=300)],
    )


class CancelOfferingForm(Form):
    reason = StringField(
        "Reason (told to attendees)",
        filters=[_strip],
        validators=[DataRequired("Say why, briefly."), Length(max=300)],
    )
    # "yes" only from the confirmation page: a POST without it shows what would happen, no more.
    confirmed = HiddenField()


class LocationForm(Form):
    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Give it a name."), Length(max=120)]
    )
    slug = StringField(
        "Web address name (slug)",
        filters=[_strip],
        validators=[Optional(), Length(max=80), Regexp(r"^[a-z0-9-]+$", message="Use a-z, 0-9 and - only.")],
    )
    address_line1 = StringField(
        "Street address",
        filters=[_strip],
        validators=[DataRequired("Enter the street address."), Length(max=200)],
    )
    address_line2 = StringField("Address line 2", filters=[_strip], validators=[Length(max=200)])
    city = StringField(
        "City", filters=[_strip], validators=[DataRequired("Enter the city."), Length(max=100)]
    )
    region = StringField(
        "State", filters=[_strip], validators=[DataRequired("Enter the state."), Length(max=100)]
    )
    postal_code = StringField(
        "ZIP code", filters=[_strip], validators=[DataRequired("Enter the ZIP code."), Length(max=20)]
    )
    country = StringField(
        "Country code",
        default="US",
        filters=[_strip],
        validators=[DataRequired(), Regexp(r"^[A-Z]{2}$", message="Two capital letters, e.g. US.")],
    )
    timezone = StringField(
        "Time zone",
        default="America/Chicago",
        filters=[_strip],
        validators=[DataRequired("Enter a time zone."), Length(max=64)],
    )
    phone = StringField("Phone", filters=[_strip], validators=[Length(max=40)])
    directions = TextAreaField(
        "Directions (parking, entrance)", filters=[_strip], validators=[Length(max=5000)]
    )
    is_active = BooleanField("Active", default=True)


class InstructorForm(Form):
    name = StringField("Name", filters=[_strip], validators=[DataRequired("Enter a name."), Length(max=120)])
    email = StringField(
        "Email",
        filters=[_strip],
        validators=[
            DataRequired("Enter an email."),
            Email("That isn't an email address.", check_deliverability=False),
            Length(max=254),
        ],
    )
    bio = TextAreaField("Short bio", filters=[_strip], validators=[Length(max=5000)])


class OfferingTranslationForm(Form):
    """An offering's own words in one other language (an empty title removes the translation)."""

    title = StringField("Title", filters=[_strip], validators=[Optional(), Length(max=200)])
    summary = StringField("Summary (one line)", filters=[_strip], validators=[Length(max=400)])
    description = TextAreaField("Description", filters=[_strip], validators=[Length(max=20000)])
    what_to_bring = TextAreaField("What to bring", filters=[_strip], validators=[Length(max=5000)])


def offering_translation_form(tiers: list, **kwargs: Any) -> OfferingTranslationForm:
    """The offering's translation form with a name and a description field for each of its
    sliding-scale tiers (tier_<id>_name, tier_<id>_description): one form per language, so a
    translator does a language's text in one place. An empty name: that tier shows in English."""

    class WithTiers(OfferingTranslationForm):
        pass

    for tier in tiers:
        setattr(
            WithTiers,
            f"tier_{tier.id}_name",
            StringField(f"Tier “{tier.name}”: name", filters=[_strip], validators=[Length(max=80)]),
        )
        setattr(
            WithTiers,
            f"tier_{tier.id}_description",
            StringField(
                f"Tier “{tier.name}”: short description", filters=[_strip], validators=[Length(max=200)]
            ),
        )
    return WithTiers(**kwargs)


class LinkResourceForm(Form):
    title = StringField(
        "Title", filters=[_strip], validators=[DataRequired("Give it a title."), Length(max=200)]
    )
    url = StringField(
        "Web address", filters=[_strip], validators=[DataRequired("Enter the address."), Length(max=1000)]
    )
    description = StringField("Description", filters=[_strip], validators=[Length(max=500)])


class FileResourceForm(Form):
    title = StringField(
        "Title", filters=[_strip], validators=[DataRequired("Give it a title."), Length(max=200)]
    )
    file = FileField("File (PDF or image, up to 10 MB)", validators=[FileRequired("Choose a file.")])
    description = StringField("Description", filters=[_strip], validators=[Length(max=500)])


class RefundForm(Form):
    amount = MoneyField(
        "Amount to refund in dollars",
        places=2,
        validators=[
            DataRequired("Enter an amount."),
            NumberRange(min=0.01, message="Enter an amount above zero."),
        ],
    )
    reason = StringField(
        "Reason", filters=[_strip], validators=[DataRequired("Say why, briefly."), Length(max=200)]
    )
    confirmed = HiddenField()  # "yes" from the confirmation page only


class ConfirmStepForm(Form):
    """A change confirmed on its own page (retry a refund, remove a resource): CSRF, and
    confirmed="yes" from that page's button; a POST without it shows the page, no more."""

    confirmed = HiddenField()


class OnBehalfForm(Form):
    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Enter their name."), Length(max=120)]
    )
    email = StringField(
        "Email",
        filters=[_strip],
        validators=[
            DataRequired("Enter their email."),
            Email("That isn't an email address.", check_deliverability=False),
            deliverable_email,
            Length(max=254),
        ],
    )
    phone = StringField("Phone (optional)", filters=[_strip], validators=[Optional(), Length(max=40)])
    # The language their emails are written in (the choices are set from LANGUAGES by the view).
    language = SelectField("Their language (what we write to them in)", default="en")
    session_id = SelectField("Date (for a drop-in class)", coerce=_int_or_none)
    # How it is priced, as on the public form (events/pricing.py): a tier, a community seat or
    # the list price (the choices are set from the offering by the view), and a code.
    price_choice = SelectField(
        "Price",
        validate_choice=False,  # (the service checks it against the offering, as on the public form)
        validators=[
            Optional(),
            Regexp(r"^(tier-[0-9]{1,9}|community|list)$", message="Choose one of the prices."),
        ],
    )
    code = StringField(
        "Promo code (optional)",
        filters=[_strip],
        validators=[Optional(), Length(max=40, message="That code is too long.")],
    )
    # A paid one: send a payment link, or take the payment at the desk now.
    payment = RadioField(
        "Payment",
        default="link",
        choices=[
            ("link", "Send them a payment link"),
            ("cash", "Paid in cash at the desk"),
            ("check", "Paid by check at the desk"),
            ("comp", "Comp (free, by the clinic's choice)"),
        ],
    )
    payment_note = StringField(
        "Payment note (optional)", filters=[_strip], validators=[Optional(), Length(max=200)]
    )


def language_choices() -> list[tuple[str, str]]:
    """The member languages, each named in itself ("Español"), for a staff form's language field."""
    return [(code, language.name) for code, language in languages().items()]


class SearchForm(Form):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField("Name, email or offering", filters=[_strip], validators=[Length(max=200)])
    offering_id = SelectField("Offering", coerce=_int_or_none)
    status = SelectField(
        "Status",
        default="",
        choices=[
            ("", "Any"),
            ("confirmed", "Confirmed"),
            ("held", "Held (paying)"),
            ("cancelled", "Cancelled"),
            ("expired", "Expired"),
        ],
    )


class ClinicForm(Form):
    name = StringField(
        "Clinic name", filters=[_strip], validators=[DataRequired("Give the clinic's name."), Length(max=200)]
    )
    tagline = StringField(
        "Tagline (one line, at the top of the schedule)", filters=[_strip], validators=[Length(max=300)]
    )
    email = StringField(
        "Contact email",
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=254),
            # Replies and invites carry it, so every mail server must be able to take it.
            Email(
                "Enter an email address with no accents before the @, e.g. hello@clinic.example.",
                check_deliverability=False,
                allow_smtputf8=False,
            ),
        ],
    )
    phone = StringField(
        "Phone",
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=40),
            Regexp(r"^[0-9+().\-\s]{7,}$", message="Use digits, spaces and + ( ) - only."),
        ],
    )
    website_url = StringField(
        "Website",
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=500),
            Regexp(r"^https?://[^\s]+$", message="Start with https:// (or http://)."),
        ],
    )
    # What email subjects say (events/notifications/content.py NEUTRAL_SUBJECTS).
    email_subjects = SelectField(
        "Email subjects",
        choices=[
            ("neutral", "Neutral: the date only (“Your booking on Thu Dec 3”)"),
            ("titled", "With the offering's title (“You're registered: Back Spasms”)"),
        ],
        default="neutral",
        validators=[DataRequired("Choose what email subjects say.")],
    )


_MAX_ID = 2**63 - 1  # the largest id a BIGINT holds: anything above is not an id, and a form error
_NO_PAGE = "There is no such page: start again from the newest entries."


def _a_page_id(form: Form, field: IntegerField) -> None:
    # Compared as ints: NumberRange turns a 400-digit number into a float first, and overflows.
    if not isinstance(field.data, int) or not 0 <= field.data <= _MAX_ID:
        raise ValidationError(_NO_PAGE)


class AuditFilterForm(Form):
    """The audit trail's filters and page (a GET: it changes nothing)."""

    class Meta:
        csrf = False

    actor_id = SelectField("Person", coerce=_int_or_none)
    action = SelectField("Kind", default="")
    offering_id = SelectField("Offering", coerce=_int_or_none)
    date_from = DateField("From (date)", validators=[Optional()])
    date_to = DateField("To (date)", validators=[Optional()])
    before = IntegerField(validators=[Optional(), _a_page_id])
    after = IntegerField(validators=[Optional(), _a_page_id])

    def validate_date_to(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date.")


REASON = [DataRequired("Say why, briefly (it goes in the audit trail)."), Length(max=200)]


class BookingCancelForm(Form):
    """Cancel a member's booking: the refund chosen and why; then the confirmation posts the
    refund it showed (expected_cents), so a changed amount is shown again, never given silently."""

    refund = RadioField(
        "Refund",
        default="policy",
        choices=[
            ("full", "Full refund"),
            ("policy", "By the cancellation policy"),
            ("none", "No refund"),
        ],
        validators=[DataRequired("Choose a refund.")],
    )
    reason = StringField("Reason (kept in the audit trail)", filters=[_strip], validators=REASON)
    expected_cents = IntegerField(validators=[Optional(), NumberRange(min=0, max=10**9)])


class TransferForm(Form):
    target = SelectField("Move to", validators=[DataRequired("Choose where to move them.")])
    reason = StringField("Reason (kept in the audit trail)", filters=[_strip], validators=REASON)
    expected_difference = IntegerField(validators=[Optional(), NumberRange(min=-(10**9), max=10**9)])
    # A dearer target: email the member a link to pay the difference by card.
    payment_link = BooleanField("Email them a link to pay the difference by card", default=False)
    # A community-seat booking with no community seat left on the target: the confirmation
    # page said so, and confirming it moves them onto a general seat at the general price.
    accept_general_seat = BooleanField(default=False)


class DetailsForm(Form):
    """A member's details, checked as the public registration form checks them."""

    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Enter their name."), Length(max=120)]
    )
    email = StringField(
        "Email",
        filters=[_strip],
        validators=[
            Optional(),  # a walk-in may have given none (the service refuses removing one)
            Email("That isn't an email address.", check_deliverability=False),
            deliverable_email,
            Length(max=254),
        ],
    )
    phone = StringField(
        "Phone (optional)",
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=40, message="That phone number is too long."),
            Regexp(r"^[0-9+().\-\s]{7,}$", message="Use digits, spaces and + ( ) - only."),
        ],
    )
    reason = StringField("Reason (kept in the audit trail)", filters=[_strip], validators=REASON)


class DeskPaymentForm(Form):
    method = RadioField(
        "Paid by",
        choices=[("cash", "Cash"), ("check", "Check"), ("comp", "Comp (free, by the clinic's choice)")],
        validators=[DataRequired("Choose how they paid.")],
    )
    note = StringField("Note (optional)", filters=[_strip], validators=[Optional(), Length(max=200)])


class ConsentDocumentForm(Form):
    """A new consent document and the text of its first version."""

    title = StringField(
        "Title",
        filters=[_strip],
        validators=[
            DataRequired("Give the document a title."),
            Length(max=200, message="Under 200 characters."),
        ],
    )
    body = TextAreaField(
        "Text people read and agree to",
        validators=[DataRequired("Write the text."), Length(max=50000, message="Under 50,000 characters.")],
    )


class ConsentVersionForm(Form):
    """The text of a document's next version."""

    body = TextAreaField(
        "Text of the new version",
        validators=[DataRequired("Write the text."), Length(max=50000, message="Under 50,000 characters.")],
    )


class ConsentTranslationForm(Form):
    """The current version's title and text in one language (one form per language, prefixed
    with its code). Written once: a correction is a new version."""

    version_id = IntegerField(validators=[InputRequired(), NumberRange(min=1, max=2**31 - 1)])
    title = StringField(
        "Title",
        filters=[_strip],
        validators=[
            DataRequired("Give the translated title."),
            Length(max=200, message="Under 200 characters."),
        ],
    )
    body = TextAreaField(
        "Translated text",
        validators=[DataRequired("Write the text."), Length(max=50000, message="Under 50,000 characters.")],
    )


# --- Class passes ---


class PassProductForm(Form):
    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Give it a name."), Length(max=120)]
    )
    description = StringField("Description (one line)", filters=[_strip], validators=[Length(max=400)])
    credits = IntegerField(
        "Credits",
        default=10,
        validators=[
            DataRequired("Enter the number of credits."),
            NumberRange(min=1, max=500, message="1 to 500."),
        ],
    )
    price = MoneyField(
        "Price in dollars",
        places=2,
        validators=[
            InputRequired("Enter a price (0 for free)."),
            NumberRange(min=0, max=100000, message="Enter a price from 0 to 100000."),
        ],
    )
    validity_days = IntegerField(
        "Valid for (days)",
        default=90,
        validators=[
            DataRequired("Enter the days it is valid."),
            NumberRange(min=1, max=3650, message="1 to 3650."),
        ],
    )
    validity_starts = RadioField(
        "Counting from",
        default="purchase",
        choices=[("purchase", "The purchase"), ("first_use", "The first booking made with it")],
        validators=[DataRequired("Choose when the days start counting.")],
    )
    offering_kinds = SelectMultipleField(
        "Good for these kinds (none chosen: every kind)",
        choices=[(k.value, k.value.capitalize()) for k in OfferingKind],
        validators=[Optional()],
    )
    offering_ids = SelectMultipleField(
        "Only these offerings (none chosen: any)", coerce=int, validators=[Optional()]
    )
    location_ids = SelectMultipleField(
        "Only at these locations (none chosen: any)", coerce=int, validators=[Optional()]
    )
    is_on_sale = BooleanField("On sale (shown on the passes page)", default=True)
    position = IntegerField(
        "Position in the list",
        default=0,
        validators=[Optional(), NumberRange(min=0, max=1000, message="0 to 1000.")],
    )


class DeskPassForm(Form):
    product_id = SelectField("Pass", coerce=_int_or_none, validators=[DataRequired("Choose a pass.")])
    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Enter their name."), Length(max=120)]
    )
    email = StringField(
        "Email",
        filters=[_strip],
        validators=[
            DataRequired("Enter their email: the pass is sent there."),
            Email("That isn't an email address.", check_deliverability=False),
            deliverable_email,
            Length(max=254),
        ],
    )
    # The language their emails are written in (the choices are set from LANGUAGES by the view).
    language = SelectField("Their language (what we write to them in)", default="en")
    method = RadioField(
        "Paid by",
        choices=[("cash", "Cash"), ("check", "Check"), ("comp", "Comp (free, by the clinic's choice)")],
        validators=[DataRequired("Choose how they paid.")],
    )
    note = StringField("Note (optional)", filters=[_strip], validators=[Optional(), Length(max=200)])


class PassSearchForm(Form):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField("Name or email", filters=[_strip], validators=[Length(max=200)])


class PassAdjustForm(Form):
    credits = IntegerField(
        "Credits to add (a minus sign takes off)",
        validators=[
            InputRequired("Enter a number of credits."),
            NumberRange(min=-500, max=500, message="-500 to 500."),
        ],
    )
    reason = StringField(
        "Reason", filters=[_strip], validators=[DataRequired("Say why, briefly."), Length(max=200)]
    )
    confirmed = HiddenField()


class PassReasonForm(Form):
    """Freeze, unfreeze or refund a pass: a reason, then the confirmation page's button."""

    reason = StringField(
        "Reason", filters=[_strip], validators=[DataRequired("Say why, briefly."), Length(max=200)]
    )
    expected_cents = IntegerField(validators=[Optional(), NumberRange(min=0, max=10**9)])
    confirmed = HiddenField()


class PriceTierForm(Form):
    """A sliding-scale price on an offering ("Community $5 - no questions asked")."""

    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Give it a name, e.g. Standard."), Length(max=80)]
    )
    description = StringField(
        "Short description (optional)",
        filters=[_strip],
        validators=[Length(max=200, message="Up to 200 characters.")],
    )
    price = MoneyField(
        "Tier price (dollars, 0 = free)",
        places=2,
        validators=[
            InputRequired("Enter a price (0 for free)."),
            NumberRange(min=0, max=100000, message="Enter a price from 0 to 100000."),
        ],
    )
    position = IntegerField(
        "Order (lower first; empty: last)",
        validators=[Optional(), NumberRange(min=0, max=1000, message="0 to 1000.")],
    )


class PromoCodeForm(Form):
    code = StringField(
        "Code",
        filters=[_strip],
        validators=[
            DataRequired("Enter the code people type."),
            Length(max=40, message="Up to 40 characters."),
            Regexp(r"^[A-Za-z0-9_\- ]+$", message="Use letters, digits, - and _ only."),
        ],
    )
    kind = SelectField(
        "What it does",
        choices=[
            ("percent_off", "Percent off"),
            ("amount_off", "Amount off"),
            ("fixed_price", "Fixed price"),
        ],
    )
    percent = IntegerField(
        "Percent off (1-100)", validators=[Optional(), NumberRange(min=1, max=100, message="1 to 100.")]
    )
    amount = MoneyField(
        "Amount off, or the fixed price, in dollars",
        places=2,
        validators=[Optional(), NumberRange(min=0, max=100000, message="Enter an amount from 0 to 100000.")],
    )
    offering_kinds = SelectMultipleField(
        "Good for these kinds (none ticked and no offerings chosen: every offering)",
        choices=[(k.value, k.value.capitalize()) for k in OfferingKind],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    offering_ids = SelectMultipleField("…or these offerings", coerce=int, validate_choice=True)
    applies_to_passes = BooleanField("Good for class passes too")
    pass_product_ids = SelectMultipleField(
        "Only these passes (none chosen: every pass)", coerce=int, validate_choice=True
    )
    valid_from = DateField("Valid from (optional, first day)", validators=[Optional()])
    valid_until = DateField("Valid until (optional, last day)", validators=[Optional()])
    max_uses = IntegerField(
        "Uses in all (empty: no limit)",
        validators=[Optional(), NumberRange(min=0, max=10**6, message="0 to 1000000.")],
    )
    max_uses_per_email = IntegerField(
        "Uses per email address (empty: no limit)",
        validators=[Optional(), NumberRange(min=0, max=10**6, message="0 to 1000000.")],
    )
    partner_tag = StringField(
        "Partner tag for reports (optional)",
        filters=[_strip],
        validators=[Length(max=60), Regexp(r"^[a-z0-9-]*$", message="Use a-z, 0-9 and - only.")],
    )
    is_active = BooleanField("Active", default=True)
