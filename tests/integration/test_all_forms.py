"""Every form of the app, and every id in every route, fed hostile values: never a 5xx, and
what must be refused stores nothing.

Nothing here names a form. The pages come from the app's URL map (every GET route, its
arguments filled from a small world), visited as anonymous, an instructor and an admin; the
forms come from those pages' HTML (their action, method and fields, with the values a
person would submit). Each field then gets each hostile value while the other fields keep
theirs. A new form is covered as soon as some page shows it; a new POST route that no page
shows a form for fails test_every_post_route_has_a_form_on_some_page, so the world here
gets what that page needs.

Which values a field must refuse (all its tables unchanged afterwards):
- everywhere: NUL, other control characters, a 1 MB string;
- a single-line field (anything but a textarea): CR/LF too;
- a field with fixed values (select, hidden, button, number, date, time): every hostile value.
The rest (RTL text, emoji, a "-1" typed as a title) may be stored: then only "no 5xx" holds.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa
from flask import current_app
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from events.consent.services import create_document
from events.extensions import db as _db
from events.models import (
    Attendance,
    AttendanceStatus,
    EmailStatus,
    OfferingKind,
    OutboxEmail,
    PassProduct,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PriceTier,
    PrivacyAction,
    PrivacyRequest,
    PromoCode,
    PromoKind,
    Refund,
    RefundKind,
    RefundStatus,
    RegistrationStatus,
    Resource,
    ResourceKind,
    Role,
    User,
    WaitlistStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_email
from events.passes.admin import sell_at_desk
from events.passes.buying import Buyer, start_purchase
from events.privacy import requests as privacy_requests
from events.registration import links
from events.registration.services import Person, join_waitlist, register
from events.reset_links import reset_token
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token

# Refunds and cancellations the walk makes go to the Stripe emulator (a refused one answers fast).
pytestmark = pytest.mark.usefixtures("localstripe")

PASSWORD = "correct horse battery"
ROLES = ("anonymous", "instructor", "admin")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@dataclass(frozen=True)
class Hostile:
    label: str
    value: str
    refused_by: str  # "any" field, "single-line" fields, "fixed" fields only, or "none"


HOSTILE = [
    Hostile("NUL", "Eve\x00Null", "any"),
    Hostile("escape", "Eve\x1b[31mred", "any"),
    Hostile("bell", "\x07", "any"),
    Hostile("1 MB", "x" * 1_000_000, "any"),
    Hostile("CR/LF", "Evil\r\nBcc: x@example.com", "single-line"),
    Hostile("LF", "Evil\nBcc: x@example.com", "single-line"),
    Hostile("negative", "-1", "fixed"),
    Hostile("2^63", str(2**63), "fixed"),
    Hostile("-2^63-1", str(-(2**63) - 1), "fixed"),
    Hostile("400 digits", "9" * 400, "fixed"),  # past a float: NumberRange's isnan() overflows
    Hostile("year 9999", "9999-12-31", "fixed"),
    Hostile("month 13", "2026-13-45", "fixed"),
    # Sent as UTF-8 of a surrogate (ED A0 80), which the server decodes to U+FFFD replacement
    # characters: ordinary text by then, so it may be stored.
    Hostile("lone surrogate", "tok_\ud800", "fixed"),
    Hostile("RTL", "مرحبا \u202egnp.exe", "fixed"),
    Hostile("emoji", "🧘\u200d♀️ Yoga 💪🏽", "fixed"),
]
FIXED_KINDS = {"select", "hidden", "button", "radio", "number", "date", "time", "datetime-local"}
TEXT_KINDS = {"text", "email", "password", "search", "tel", "url"}


def must_refuse(hostile: Hostile, kind: str, name: str) -> bool:
    if name == "csrf_token" or kind in FIXED_KINDS:
        return True
    if hostile.refused_by == "any":
        return True
    return hostile.refused_by == "single-line" and kind in TEXT_KINDS


# --- The world: one of everything a page needs to show its forms ---


@pytest.fixture
def world(app):
    """Built in an app context of its own, popped before the first request: each request then
    runs in one of its own, with its own database session, as in production."""
    with app.app_context():
        world = _build_world(_db)
        _db.session.remove()
    return world


def _build_world(db) -> dict:
    make_clinic(name="Walker Clinic")
    location = make_location(slug="north-loop", name="North Loop")
    instructor = User(email="instructor@clinic.example", name="Ira Instructor", role=Role.INSTRUCTOR)
    admin = User(email="admin@clinic.example", name="Ada Admin", role=Role.ADMIN)
    for user in (instructor, admin):
        user.set_password(PASSWORD)
        db.session.add(user)
    paid = make_offering(
        location, OfferingKind.WORKSHOP, slug="paid", price_cents=3000, instructor=instructor
    )
    session = make_session(paid, upcoming_day(10))
    full = make_offering(location, slug="full", capacity=1, instructor=instructor)
    make_session(full, upcoming_day(12))
    # A drop-in class: its form chooses one of its dates (radio buttons), one chosen by the link.
    drop_in = make_offering(location, OfferingKind.CLASS, slug="drop-in", instructor=instructor)
    make_session(drop_in, upcoming_day(5))
    chosen_class = make_session(drop_in, upcoming_day(12))
    # A class starting in half an hour: its roster shows check-in, undo and the walk-in form.
    starting = make_session(drop_in, upcoming_day(0))
    starting.starts_at = utcnow() + timedelta(minutes=30)
    starting.ends_at = starting.starts_at + timedelta(hours=1)
    db.session.commit()
    # The class requires a consent document: its form asks for it, and Ari (booked without it)
    # is flagged on the roster, with the check-in screen's form to accept it.
    document = create_document("Class release", "Exercise carries some risk.", admin)
    drop_in.consent_document_id = document.id
    db.session.commit()
    arrived = register(drop_in, starting.id, Person("Ari Arrived", "ari@example.com")).registration
    db.session.add(
        Attendance(registration_id=arrived.id, session_id=starting.id, status=AttendanceStatus.PRESENT)
    )

    confirmed = register(paid, None, Person("Cora Confirmed", "cora@example.com")).registration
    confirmed.status = RegistrationStatus.CONFIRMED
    from tests.integration.test_payments import payment_row

    payment_row(confirmed, "pi_walker_paid", PaymentStatus.SUCCEEDED)
    # A refund Stripe refused, so the registration page shows its Retry form.
    failed_refund = Refund(
        payment_id=confirmed.payments[0].id,
        idempotency_key="walker-refund-1",
        kind=RefundKind.MANUAL,
        amount_cents=1000,
        status=RefundStatus.FAILED,
        last_error="Refused by Stripe",
    )
    db.session.add(failed_refund)
    held = register(paid, None, Person("Hal Held", "hal@example.com")).registration
    # Booked with $10 still due (moved onto a dearer date): the staff page's payment-link form,
    # and the member's balance page with its card form.
    owing = register(paid, None, Person("Bea Balance", "bea@example.com")).registration
    owing.status, owing.confirmed_at = RegistrationStatus.CONFIRMED, utcnow()
    db.session.add(
        Payment(
            registration_id=owing.id,
            stripe_payment_intent_id="pi_walker_part",
            amount_cents=2000,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
        )
    )
    register(full, None, Person("Fay Full", "fay@example.com"))
    entry = join_waitlist(full, None, Person("Wes Waiting", "wes@example.com")).entry
    entry.status = WaitlistStatus.OFFERED
    entry.offer_expires_at = utcnow() + timedelta(hours=6)
    queue_email(EmailKind.REGISTRATION_CONFIRMED, registration=confirmed)
    email = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.registration_id == confirmed.id))
    email.status = EmailStatus.FAILED
    resource = Resource(
        offering_id=paid.id, kind=ResourceKind.LINK, title="Handout", url="https://example.com/h"
    )
    db.session.add(resource)
    # A sliding-scale tier on the paid workshop (its edit and remove forms) and a promo code.
    tier = PriceTier(offering_id=paid.id, name="Community", description="No questions asked", price_cents=500)
    promo = PromoCode(code="WALKER", code_normalized="WALKER", kind=PromoKind.PERCENT_OFF, value=10)
    db.session.add_all([tier, promo])
    # A class pass on sale (its buy form), one sold at the desk (the staff pass page's adjust,
    # pause, refund and resend forms) and one held while its buyer pays (the card form).
    pass_product = PassProduct(name="5-class pass", credits=5, price_cents=5000, validity_days=60)
    db.session.add(pass_product)
    db.session.commit()
    sold_pass = sell_at_desk(pass_product.id, "Pat Pass", "pat@example.com", PaymentMethod.CASH, "", admin)
    held_pass = start_purchase(pass_product, Buyer("Hana Held", "hana@example.com"))
    # A "Download my data" link (events/privacy/requests.py): its page shows the download form.
    privacy_requests.request_link("cora@example.com", PrivacyAction.EXPORT)
    privacy_request = db.session.scalar(sa.select(PrivacyRequest).order_by(PrivacyRequest.id.desc()))
    # Booking with a class pass: an active pass (its page's "Book" buttons) and the emailed
    # link's confirm page ("Book it"), for the paid workshop.
    from events.passes import booking as pass_booking
    from tests.passbook_helpers import make_pass, make_product

    class_pass = make_pass("walker@example.com", make_product(kinds=""), name="Walker Pass")
    db.session.commit()
    with current_app.test_request_context():
        pass_link = pass_booking.sign_request(
            pass_booking.BookingRequest(paid.id, None, "Walker", "walker@example.com", "", "en")
        )
    return {
        "emails": {"instructor": instructor.email, "admin": admin.email},
        "args": {
            "offering_id": paid.id,
            "session_id": session.id,
            "registration_id": confirmed.id,
            "location_id": location.id,
            "user_id": instructor.id,
            "email_id": email.id,
            "refund_id": failed_refund.id,
            "resource_id": resource.id,
            "document_id": document.id,
            "tier_id": tier.id,
            "code_id": promo.id,
            "product_id": pass_product.id,
            "pass_id": sold_pass.id,
            "token": reset_token(instructor),
            "language": "es",  # an offering's translation (staff), and the public language switch
            "code": "es",
        },
        "slugs": {"/offerings/": paid.slug, "/locations/": location.slug},
        "extra_pages": [
            f"/offerings/{full.slug}",
            f"/offerings/{drop_in.slug}?session={chosen_class.id}",
            "/staff/admin/registrations?q=Cora",
            # A seat held while paying: its desk payment form.
            f"/staff/admin/registrations/{held.id}/desk-payment",
            f"/staff/admin/registrations/{owing.id}",
            f"/staff/sessions/{starting.id}",
            f"/staff/sessions/{starting.id}/walk-in",
            f"/staff/sessions/{starting.id}/message",
            f"/staff/sessions/{starting.id}/consent/{arrived.id}",
            f"/pass/{links.sign(class_pass.token, links.PASS_SALT)}",
        ],
        "signed": {
            "/manage/": links.sign(held.token, links.MANAGE_SALT),
            "/waitlist/": links.sign(entry.token, links.WAITLIST_SALT),
            "/balance/": links.sign(owing.token, links.BALANCE_SALT),
            "/my-data/": privacy_requests._serializer().dumps(privacy_request.nonce),
            "/pass/": links.sign(held_pass.token, links.PASS_SALT),
            "/pass-booking/": pass_link,
        },
        "manage_confirmed": links.sign(confirmed.token, links.MANAGE_SALT),
    }


SKIPPED_GET_PREFIXES = ("/static/", "/_dev/", "/api/", "/resources/")


def url_for_rule(rule, world, **ints) -> str | None:
    """The rule's URL with its arguments taken from the world (None: no page to visit)."""
    url = rule.rule
    for name in rule.arguments:
        if f"<int:{name}>" in url:
            value = ints.get(name, world["args"].get(name))
        elif name == "slug":
            value = next((v for prefix, v in world["slugs"].items() if url.startswith(prefix)), None)
        elif name == "signed":
            value = next((v for prefix, v in world["signed"].items() if url.startswith(prefix)), None)
        else:
            value = world["args"].get(name)
        if value is None:
            return None
        url = re.sub(rf"<(?:\w+:)?{name}>", str(value), url)
    return url


# --- Reading forms from pages ---


@dataclass
class FormField:
    name: str
    kind: str  # an <input> type, "textarea", "select" or "button"
    value: str = ""
    options: list[str] = field(default_factory=list)
    checked: bool = False


@dataclass
class PageForm:
    page: str
    action: str
    method: str
    multipart: bool
    fields: list[FormField] = field(default_factory=list)

    @property
    def key(self):
        return (self.method, self.action, tuple(sorted(f.name for f in self.fields)))


class FormParser(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[PageForm] = []
        self._form: PageForm | None = None
        self._textarea: FormField | None = None
        self._select: FormField | None = None
        self._form_actions: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = PageForm(
                page=self.page,
                action=urlsplit(a.get("action") or self.page).path,
                method=(a.get("method") or "get").lower(),
                multipart="multipart" in a.get("enctype", ""),
            )
            self.forms.append(self._form)
        elif tag in ("button", "input") and self._form is not None and a.get("formaction"):
            # A button posting the same fields elsewhere ("I have a class pass"): a form of its own.
            self._form_actions.append(urlsplit(a["formaction"]).path)
            return
        elif self._form is None or "name" not in a or "disabled" in a:
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind == "submit":
                return
            self._form.fields.append(FormField(a["name"], kind, a.get("value", ""), checked="checked" in a))
        elif tag == "button":
            self._form.fields.append(FormField(a["name"], "button", a.get("value", "")))
        elif tag == "textarea":
            self._textarea = FormField(a["name"], "textarea")
            self._form.fields.append(self._textarea)
        elif tag == "select":
            self._select = FormField(a["name"], "select")
            self._form.fields.append(self._select)
        elif tag == "option" and self._select is not None:
            self._select.options.append(a.get("value", ""))
            if "selected" in a:
                self._select.value = a.get("value", "")

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag):
        if tag == "form":
            if self._form is not None:
                for action in self._form_actions:
                    f = self._form
                    self.forms.append(PageForm(f.page, action, f.method, f.multipart, list(f.fields)))
            self._form_actions = []
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def plausible(f: FormField) -> str | None:
    """What a person would submit for the field (None: leave it out, an unticked box)."""
    if f.kind == "checkbox":
        return f.value or "y" if f.checked else None
    if f.kind == "radio":  # the one chosen of its group
        return f.value if f.checked else None
    if f.kind == "select":
        return f.value or (f.options[-1] if f.options else "")
    if f.value:
        return f.value
    return {
        "email": "walker@example.com",
        "password": "a long password 123",
        "number": "1",
        "date": upcoming_day(20).isoformat(),
        "time": "18:00",
        "url": "https://example.com/page",
        "tel": "612-555-0100",
    }.get(f.kind, "Walker text")


def same_radio_group(f: FormField, target: FormField) -> bool:
    """Another radio button of the target's group: a browser sends one value per group."""
    return f is not target and f.kind == target.kind == "radio" and f.name == target.name


# --- Visiting, posting and comparing ---


class Visitor:
    def __init__(self, app, world, role):
        self.client = app.test_client()
        self.role = role
        if role != "anonymous":
            page = self.client.get("/staff/login").get_data(as_text=True)
            data = {"csrf_token": csrf_token(page), "email": world["emails"][role], "password": PASSWORD}
            signed_in = self.client.post("/staff/login", data=data)
            assert signed_in.status_code == 302, f"{role} could not sign in"

    def forms(self, app, world) -> list[PageForm]:
        pages = [
            url_for_rule(rule, world)
            for rule in app.url_map.iter_rules()
            if "GET" in rule.methods and not rule.rule.startswith(SKIPPED_GET_PREFIXES)
        ]
        found = {}
        for page in [p for p in pages if p] + world["extra_pages"]:
            response = self.client.get(page)
            assert response.status_code < 500, f"{self.role}: GET {page} -> {response.status_code}"
            if response.status_code == 200 and response.mimetype == "text/html":
                parser = FormParser(urlsplit(page).path)
                parser.feed(response.get_data(as_text=True))
                for form in parser.forms:
                    found.setdefault(form.key, form)
        return list(found.values())

    def submit(self, form: PageForm, values: list[tuple[str, str]]):
        if form.method == "get":
            query = urlencode(values, encoding="utf-8", errors="surrogatepass")
            return self.client.get(f"{form.action}?{query}")
        if form.multipart:
            data = MultiDict(values)
            for f in form.fields:
                if f.kind == "file":
                    data.add(f.name, FileStorage(stream=io.BytesIO(PDF), filename="walker.pdf"))
            # Encoded here, in memory: the test client spools a large body to a temporary
            # file that it never closes (a ResourceWarning, an error under pytest's settings).
            boundary, body = encode_multipart(data)
            return self.client.post(
                form.action, data=body, content_type=f"multipart/form-data; boundary={boundary}"
            )
        body = urlencode(values, encoding="utf-8", errors="surrogatepass")
        return self.client.post(form.action, data=body, content_type="application/x-www-form-urlencoded")


def _surrogate(value: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in value)


def database_fingerprint(app) -> str:
    """Every table's rows, hashed in one statement: equal before and after = nothing stored."""
    parts = [
        f"(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \"{table.name}\" t)"
        for table in _db.metadata.sorted_tables
    ]
    with app.app_context():
        fingerprint = _db.session.scalar(sa.text("SELECT " + " || ".join(parts)))
        _db.session.remove()
    return fingerprint


def walk(app, world, role) -> tuple[int, list[str], list[PageForm]]:
    """Post every hostile value into every field of every form the role sees."""
    visitor = Visitor(app, world, role)
    forms = visitor.forms(app, world)
    problems, posts = [], 0
    stored = database_fingerprint(app)
    # Values that must be refused first, while the world is as built; then the others, which
    # may legitimately change it (a reason typed in emoji cancels an offering).
    for refused_pass in (True, False):
        for form in forms:
            baseline = [(f, plausible(f)) for f in form.fields]
            for target in form.fields:
                if target.kind == "file":
                    continue
                for hostile in HOSTILE:
                    refuse = must_refuse(hostile, target.kind, target.name)
                    if refuse is not refused_pass or (form.multipart and _surrogate(hostile.value)):
                        continue  # (multipart bodies are encoded strictly by the test client)
                    values = [
                        (f.name, hostile.value if f is target else value)
                        for f, value in baseline
                        if (value is not None or f is target) and not same_radio_group(f, target)
                    ]
                    response = visitor.submit(form, values)
                    posts += 1
                    where = (
                        f"{role}: {form.method.upper()} {form.action} (form on {form.page}) "
                        f"field {target.name!r} ({target.kind}) = {hostile.label}"
                    )
                    if response.status_code >= 500:
                        problems.append(f"{where} -> {response.status_code}")
                    if refuse:
                        before, stored = stored, database_fingerprint(app)
                        if stored != before:
                            problems.append(f"{where} -> {response.status_code}, but something was stored")
    return posts, problems, forms


# The walk grows with every form (a fingerprint of every table after each refused post): the
# admin's took 501 s on a machine at load 17 once the consent forms came, over the default 300.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("role", ROLES)
def test_every_form_refuses_hostile_values_without_a_5xx(app, world, role):
    posts, problems, forms = walk(app, world, role)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    # The walk found forms to post to (a broken crawl would pass vacuously).
    assert posts > 0 and forms, role


# Routes that take no HTML form: each has its own tests of odd bodies.
NOT_FORMS = {
    "payments.stripe_webhook": "tests/integration/test_webhooks.py, test_hostile_input.py (413)",
}


def test_every_post_route_has_a_form_on_some_page(app, world):
    """So the walk above covers it: a new POST route needs a page (and the world) that shows its form."""
    seen = set()
    for role in ROLES:
        for form in Visitor(app, world, role).forms(app, world):
            adapter = app.url_map.bind("localhost")
            try:
                endpoint, _ = adapter.match(form.action, method=form.method.upper())
            except Exception:  # a form posting nowhere
                continue
            seen.add(endpoint)
    post_routes = {r.endpoint for r in app.url_map.iter_rules() if "POST" in r.methods}
    missing = post_routes - seen - set(NOT_FORMS)
    assert not missing, f"no page showed a form for {sorted(missing)}: add to the world what shows it"


@pytest.mark.parametrize("role", ROLES)
def test_every_integer_in_every_route_out_of_range_is_not_a_5xx(app, world, role):
    visitor = Visitor(app, world, role)
    token = csrf_token(visitor.client.get("/staff/login").get_data(as_text=True))
    int_rules = [r for r in app.url_map.iter_rules() if "<int:" in r.rule]
    assert len(int_rules) >= 14
    for rule in int_rules:
        int_args = re.findall(r"<int:(\w+)>", rule.rule)
        for name in int_args:
            for value in (2**31, 2**63, -1, 10**400):
                url = url_for_rule(rule, world, **{name: value})
                method = "GET" if "GET" in rule.methods else "POST"
                response = visitor.client.open(url, method=method, data={"csrf_token": token})
                where = f"{role}: {method} {url[:120]}"
                assert response.status_code < 500, f"{where} -> {response.status_code}"
                if role == "admin" or rule.rule.startswith("/api/"):
                    assert response.status_code == 404, f"{where} -> {response.status_code}"
