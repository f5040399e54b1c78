"""Hostile and odd input, case by case: each answered with a clear 4xx and nothing stored.

The walk over every form and every id route is tests/integration/test_all_forms.py; these
pin the cases the hardening issue reported, with the message a person sees.
"""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa
from werkzeug.test import EnvironBuilder, run_wsgi_app

from events.models import (
    Location,
    Offering,
    OutboxEmail,
    Payment,
    Refund,
    Registration,
    Role,
    Session,
    User,
    WaitlistEntry,
)
from events.notifications.content import build
from events.notifications.sender import Renderer
from events.registration import links
from events.registration.services import Person, register
from tests.factories import make_clinic, make_location, workshop
from tests.helpers import csrf_token
from tests.integration.test_staff_admin import login, offering_form, token_from

NUL_MESSAGE = "This can&#39;t contain a NUL character."
SINGLE_LINE_MESSAGE = "This must be a single line without control characters."


def count(db, model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# --- Item 5: request bodies are bounded, and refused before they are read ---


class CountingStream(io.RawIOBase):
    """A request body of `size` bytes that counts how much of it the app reads."""

    def __init__(self, size: int):
        self.size = size
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b"x" * n
        self.read_bytes += n
        return n


def post_stream(app, path: str, size: int, chunked: bool, content_type="application/json"):
    stream = CountingStream(size)
    environ = EnvironBuilder(path=path, method="POST", content_type=content_type).get_environ()
    environ["wsgi.input"] = stream
    if chunked:  # no Content-Length: the server (gunicorn) marks where the body ends
        environ.pop("CONTENT_LENGTH", None)
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = str(size)
    environ["HTTP_STRIPE_SIGNATURE"] = "t=1,v1=bad"
    app_iter, status, headers = run_wsgi_app(app, environ, buffered=True)
    response = app.response_class(app_iter, status=status, headers=headers)
    return response, stream.read_bytes


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_webhook_body_over_its_limit_is_413_before_it_is_read(app, chunked):
    limit = app.config["WEBHOOK_MAX_BYTES"]
    assert limit < app.config["MAX_CONTENT_LENGTH"] // 10

    response, read = post_stream(app, "/stripe/webhook", 100 * 1024 * 1024, chunked)

    assert response.status_code == 413
    # Refused from the Content-Length alone, or after at most the limit (and a read buffer).
    assert read == 0 if not chunked else read <= limit + 64 * 1024


def test_a_webhook_body_within_its_limit_still_reaches_the_signature_check(app):
    response, _ = post_stream(app, "/stripe/webhook", 10_000, chunked=False)
    assert response.status_code == 400 and response.json["error"]["title"] == "Invalid signature"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_any_other_body_over_max_content_length_is_413(app, chunked, db):
    offering = workshop()
    db.session.commit()
    size = app.config["MAX_CONTENT_LENGTH"] + 1024 * 1024
    response, read = post_stream(
        app,
        f"/offerings/{offering.slug}/register",
        size,
        chunked,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert read == 0 if not chunked else read <= app.config["MAX_CONTENT_LENGTH"] + 64 * 1024
    assert count(db, Registration) == 0


def test_the_pay_endpoint_takes_only_a_small_json_body(client, db):
    registration, signed, token = _held(client, db)
    body = json.dumps({"token": "tok_" + "a" * 100, "pad": "x" * 10_000})
    response = client.post(
        f"/manage/{signed}/pay", data=body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 413
    assert count(db, Payment) == 0


# --- Item 6: public 500s ---


@pytest.mark.parametrize("route", ["register", "waitlist"])
@pytest.mark.parametrize("name", ["Eve\x00Null", "Eve\r\nBcc: x", "Eve\x1b[31m"])
def test_a_name_with_nul_or_control_characters_is_a_form_error(client, db, route, name):
    offering = workshop(capacity=0 if route == "waitlist" else 5)
    db.session.commit()
    page = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)

    response = client.post(
        f"/offerings/{offering.slug}/{route}",
        data={"csrf_token": csrf_token(page), "name": name, "email": "eve@example.com"},
    )

    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert (NUL_MESSAGE if "\x00" in name else SINGLE_LINE_MESSAGE) in body
    assert count(db, Registration) == 0 and count(db, WaitlistEntry) == 0


def test_a_nul_in_the_staff_sign_in_email_is_a_form_error(client, db):
    page = client.get("/staff/login").get_data(as_text=True)
    response = client.post(
        "/staff/login",
        data={"csrf_token": csrf_token(page), "email": "admin@clinic.example\x00", "password": "whatever12"},
    )
    assert response.status_code == 400
    assert NUL_MESSAGE in response.get_data(as_text=True)


def _held(client, db):
    offering = workshop(price_cents=3000)
    db.session.commit()
    registration = register(offering, None, Person("Pat Payer", "pat@example.com")).registration
    signed = links.sign(registration.token, links.MANAGE_SALT)
    page = client.get(f"/manage/{signed}/pay")
    assert page.status_code == 200
    return registration, signed, csrf_token(page.get_data(as_text=True))


def test_the_pay_endpoint_answers_json_5000_deep_with_413(client, db):
    registration, signed, token = _held(client, db)
    body = '{"token": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client.post(
        f"/manage/{signed}/pay", data=body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 413
    assert count(db, Payment) == 0


@pytest.mark.parametrize(
    "body, message",
    [
        ("[" * 1500 + "]" * 1500, "nested too deeply"),  # fits the size limit; json.loads would recurse
        ('{"token": ' + "[" * 1500 + "]" * 1500 + "}", "nested too deeply"),
        ('{"token": "tok_\\ud800"}', "isn't valid"),
        ('{"token\\udfff": "tok_abc"}', "isn't valid"),
        (b'{"token": "tok_\xff"}', "must be UTF-8"),
        ('{"token": "tok_abc"', "must be JSON"),
        ('"tok_abc"', "must be a JSON object"),
        ('{"token": "tok_abc\\r\\nX-Evil: 1"}', "malformed"),
        ('{"token": "tok_abc\\u0000"}', "malformed"),
        ('{"token": "tok_abc\\n"}', "malformed"),
        ('{"token": "tok_"}', "malformed"),
        ('{"token": "tok_abc def"}', "malformed"),
        ('{"token": ["tok_abc"]}', "malformed"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_the_pay_endpoint_refuses_odd_json_with_a_400_saying_why(client, db, body, message):
    registration, signed, token = _held(client, db)
    response = client.post(
        f"/manage/{signed}/pay", data=body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["status"] == "failed" and message in response.json["message"]
    assert count(db, Payment) == 0


@pytest.mark.parametrize(
    "intent", ["pi_abc%00", "pi_abc%0D%0AX:%20y", "pi_%ED%B2%80", "pi_" + "9" * 400, "pi_"]
)
def test_the_payment_return_ignores_a_malformed_intent_id(client, db, intent):
    registration, signed, _ = _held(client, db)
    response = client.get(f"/manage/{signed}/pay/complete?payment_intent={intent}")
    assert response.status_code == 302  # back to the pay page, nothing asked of Stripe
    assert count(db, Payment) == 0


@pytest.mark.parametrize(
    "path", ["/offerings/a%00b", "/locations/x%00", "/manage/%0d%0a", "/resources/a%00/b.pdf"]
)
def test_a_control_character_in_a_path_segment_is_a_404(client, db, path):
    assert client.get(path).status_code == 404


# --- Item 7: staff 500s ---


@pytest.fixture
def admin(client, db):
    user = login(client, db, Role.ADMIN)
    location = make_location(name="North Loop")
    db.session.commit()
    return user, location


@pytest.mark.parametrize(
    "field, value",
    [
        ("title", "Evil\x00title"),
        ("description", "Line one\x00"),
        ("topic", "Back\x00"),
        ("summary", "a\x0bb"),
        ("title", "Evil\r\nBcc: x"),  # item 8: would silence every email about the offering
        ("title", "Evil\nBcc: x"),
        ("title", "Evil\u2028Bcc: x"),
        ("reminders", "24h\x00"),
        ("price", "Infinity"),
        ("price", "1e400"),
        ("price", "9" * 400),
        ("price", "NaN"),
    ],
)
def test_an_offering_with_control_characters_or_absurd_numbers_is_refused(client, db, admin, field, value):
    _, location = admin
    token = token_from(client, "/staff/admin/offerings/new")
    data = offering_form(location.id, csrf_token=token, **{field: value})

    response = client.post("/staff/admin/offerings/new", data=data)

    assert response.status_code == 400
    assert count(db, Offering) == 0


def test_a_description_keeps_its_line_breaks(client, db, admin):
    _, location = admin
    token = token_from(client, "/staff/admin/offerings/new")
    data = offering_form(location.id, csrf_token=token, description="First line\r\n\r\n\tSecond line")
    assert client.post("/staff/admin/offerings/new", data=data).status_code == 302
    assert db.session.scalar(sa.select(Offering.description)) == "First line\n\n\tSecond line"


@pytest.mark.parametrize("field", ["name", "address_line1", "city", "directions", "phone"])
def test_a_location_with_a_nul_is_refused(client, db, admin, field):
    token = token_from(client, "/staff/admin/locations/new")
    data = {
        "csrf_token": token,
        "name": "South",
        "address_line1": "1 Main St",
        "city": "Minneapolis",
        "region": "MN",
        "postal_code": "55401",
        "country": "US",
        "timezone": "America/Chicago",
        "is_active": "y",
    }
    data[field] = data.get(field, "") + "\x00"
    response = client.post("/staff/admin/locations/new", data=data)
    assert response.status_code == 400 and NUL_MESSAGE in response.get_data(as_text=True)
    assert count(db, Location) == 1


@pytest.mark.parametrize("field", ["name", "email", "bio"])
def test_an_instructor_with_a_nul_is_refused(client, db, admin, field):
    token = token_from(client, "/staff/admin/instructors/new")
    data = {"csrf_token": token, "name": "Maya", "email": "maya@clinic.example", "bio": "", "is_active": "y"}
    data[field] += "\x00"
    response = client.post("/staff/admin/instructors/new", data=data)
    assert response.status_code == 400 and NUL_MESSAGE in response.get_data(as_text=True)
    assert count(db, User) == 1  # the admin


@pytest.mark.parametrize("first_day", ["9999-12-31", "2101-01-01", "1999-12-31", "2026-13-45", "0001-01-01"])
def test_a_weekly_series_at_an_absurd_date_is_a_form_error(client, db, admin, first_day):
    offering = workshop()
    db.session.commit()
    token = token_from(client, f"/staff/admin/offerings/{offering.id}")
    response = client.post(
        f"/staff/admin/offerings/{offering.id}/sessions",
        data={
            "csrf_token": token,
            "first_day": first_day,
            "start": "18:00",
            "duration_minutes": "60",
            "weeks": "52",
            "location_id": "None",
        },
    )
    assert response.status_code == 400
    assert count(db, Session) == 1


def test_registrations_search_with_a_nul_is_answered_not_crashed(client, db, admin):
    response = client.get("/staff/admin/registrations", query_string={"q": "\x00"})
    assert response.status_code == 200
    assert NUL_MESSAGE in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "amount", ["Infinity", "-Infinity", "NaN", "1e400", "1e2", "9" * 400, "-5", "0", "1.234"]
)
def test_an_absurd_refund_amount_is_a_form_error(client, db, admin, amount):
    offering = workshop(price_cents=3000)
    db.session.commit()
    registration = register(offering, None, Person("Pat Payer", "pat@example.com")).registration
    token = token_from(client, f"/staff/admin/registrations/{registration.id}")
    response = client.post(
        f"/staff/admin/registrations/{registration.id}/refund",
        data={"csrf_token": token, "amount": amount, "reason": "Goodwill"},
    )
    assert response.status_code == 400
    assert count(db, Refund) == 0


@pytest.mark.parametrize("text, cents", [("25", 2500), ("25.5", 2550), ("$1,200.00", 120000), (" 0.01 ", 1)])
def test_money_amounts_as_people_type_them(text, cents):
    from events.inputs import parse_money
    from events.staff.parsers import dollars_to_cents

    assert dollars_to_cents(parse_money(text)) == cents


def test_ids_beyond_the_integer_column_are_404_on_staff_routes(client, db, admin, app):
    int_rules = [r for r in app.url_map.iter_rules() if "<int:" in r.rule]
    assert len(int_rules) >= 14
    for rule in int_rules:
        for value in (2**31, 2**63, 10**400):
            url = rule.rule
            for name in rule.arguments:
                url = url.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", "x")
            method = "GET" if "GET" in rule.methods else "POST"
            response = client.open(url, method=method, data={})
            assert response.status_code == 404, f"{method} {url} -> {response.status_code}"
    # And the largest id the column holds is an ordinary miss.
    assert client.get(f"/staff/admin/offerings/{2**31 - 1}").status_code == 404


def test_a_stored_title_with_a_line_break_still_gets_its_emails_built(app, db):
    """Titles stored before the forms refused control characters: the subject is one line."""
    make_clinic(email_subjects="titled")  # the clinic's choice: the title in the subject
    offering = workshop(title="Evil\r\nBcc: x")
    db.session.commit()
    registration = register(offering, None, Person("Ana", "ana@example.com")).registration
    row = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.registration_id == registration.id))
    with app.test_request_context():
        content = build(row)
        assert content.subject == "You're registered: Evil Bcc: x"
        message = Renderer().render(row, content)
    assert b"\r\nBcc:" not in message.split(b"\r\n\r\n")[0]


def test_form_errors_are_shown_next_to_the_field(client, db, admin):
    _, location = admin
    token = token_from(client, "/staff/admin/offerings/new")
    data = offering_form(location.id, csrf_token=token, title="Evil\r\nBcc: x")
    page = client.post("/staff/admin/offerings/new", data=data).get_data(as_text=True)
    assert f'<p class="field-error" id="title-error">{SINGLE_LINE_MESSAGE}</p>' in page


@pytest.mark.parametrize("target", ["/%0d%0aSet-Cookie:%20x=1", "/staff/%00", "/a%0Ab"])
def test_a_sign_in_next_with_control_characters_goes_home(client, db, target):
    user = login(client, db, Role.INSTRUCTOR)
    client.post("/staff/logout", data={"csrf_token": token_from(client, "/staff/")})
    page = client.get("/staff/login").get_data(as_text=True)
    response = client.post(
        f"/staff/login?next={target}",
        data={"csrf_token": csrf_token(page), "email": user.email, "password": "correct horse battery"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
