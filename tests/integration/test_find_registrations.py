""" "Find my registrations" from the web side: the page answers the same for every address,
queues exactly one outbox row for it (no more than one per address per N minutes), is rate
limited per client and per address, and never writes the address or a link to a log."""

from __future__ import annotations

import html
import logging
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from events.config import Config
from events.models import OutboxEmail, utcnow
from events.notifications.outbox import EmailKind
from events.registration.lookup import request_lookup
from events.registration.services import Person, register
from tests.factories import make_clinic, workshop
from tests.helpers import csrf_token

PAGE = "/find-my-registrations"


def _rows(db) -> list[OutboxEmail]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.kind == EmailKind.FIND_REGISTRATIONS)
            .order_by(OutboxEmail.id)
        )
    )


def _ask(client, email: str, **environ):
    token = csrf_token(client.get(PAGE).get_data(as_text=True))
    return client.post(PAGE, data={"csrf_token": token, "email": email}, environ_base=environ)


def _normalized(body: str, email: str) -> str:
    """The page without what differs per visitor: the CSRF token and the address they typed."""
    body = re.sub(r'name="csrf_token" value="[^"]+"', "", body)
    return body.replace(email, "<address>")


@pytest.fixture
def booked(db):
    make_clinic(name="Test Clinic", email="hello@clinic.example")
    offering = workshop(title="Back Care")
    db.session.commit()
    register(offering, None, Person("Ana", "ana@example.com"))
    return offering


def test_every_public_page_links_to_it_from_the_footer(client, booked):
    for path in ("/", f"/offerings/{booked.slug}", PAGE):
        body = client.get(path).get_data(as_text=True)
        footer = body[body.index('<footer class="site-footer">') :]
        assert f'href="{PAGE}"' in footer and "Find my registrations" in footer, path


def test_the_answer_is_the_same_whether_or_not_the_address_has_registered(client, db, booked):
    before = len(_rows(db))
    known = _ask(client, "ana@example.com")
    unknown = _ask(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert _normalized(known.get_data(as_text=True), "ana@example.com") == _normalized(
        unknown.get_data(as_text=True), "nobody@example.com"
    )
    assert "Check your email" in known.get_data(as_text=True)
    # The same work for both: one row each, whatever they hold (read when the email is built).
    rows = _rows(db)
    assert len(rows) == before + 2
    assert [r.to_email for r in rows[-2:]] == ["ana@example.com", "nobody@example.com"]
    for row in rows[-2:]:
        assert row.registration_id is None and row.waitlist_entry_id is None and row.user_id is None
        assert "@" not in row.dedupe_key and "example" not in row.dedupe_key


def test_at_most_one_email_per_address_per_window(app, db, booked):
    minutes = app.config["FIND_REGISTRATIONS_EMAIL_MINUTES"]
    start = utcnow()
    with app.test_request_context():
        assert request_lookup("ana@example.com", now=start) is True
        # A flood: one email, however many asks (and whatever the case of the address).
        for second in range(1, 200, 7):
            assert request_lookup("ANA@example.com ", now=start + timedelta(seconds=second)) is False
        # Across the next window's boundary, still within N minutes of the last one: none.
        assert request_lookup("ana@example.com", now=start + timedelta(minutes=minutes - 1)) is False
        assert request_lookup("ana@example.com", now=start + timedelta(minutes=minutes, seconds=1)) is True
        assert request_lookup("other@example.com", now=start + timedelta(seconds=5)) is True
    assert [r.to_email for r in _rows(db)] == ["ana@example.com", "ana@example.com", "other@example.com"]


@pytest.mark.parametrize(
    "email, message",
    [
        ("", "Please enter the email address you registered with."),
        ("not an address", "That doesn't look like an email address."),
        ("a@b@c.example", "That doesn't look like an email address."),
    ],
)
def test_a_wrong_address_is_refused_on_the_form_and_nothing_is_queued(client, db, booked, email, message):
    response = _ask(client, email)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    assert "There is a problem" in body and message in body
    assert 'aria-invalid="true"' in body and "autofocus" in body
    assert _rows(db) == []


def test_rate_limited_per_client_and_per_address(app, db, booked, monkeypatch, rate_limits_enforced):
    monkeypatch.setitem(app.config, "FIND_REGISTRATIONS_RATE_LIMIT", "3 per minute")
    monkeypatch.setitem(app.config, "FIND_REGISTRATIONS_ADDRESS_RATE_LIMIT", "2 per hour")
    client = app.test_client()
    # One client asking about many addresses: its own limit.
    codes = [_ask(client, f"person{n}@example.com", REMOTE_ADDR="10.0.0.1").status_code for n in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    # One address asked about from many clients: the address's limit.
    codes = [_ask(client, "ana@example.com", REMOTE_ADDR=f"10.0.1.{n}").status_code for n in range(4)]
    assert codes == [200, 200, 429, 429]
    # The GET page is never limited.
    assert client.get(PAGE, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 200


def test_empty_or_malformed_submissions_from_many_visitors_share_no_bucket(
    app, db, booked, monkeypatch, rate_limits_enforced
):
    """An empty form sends nothing, so it counts against no address: five visitors tapping the
    button on an empty form each get the form back with its error, never a 429 for everyone."""
    monkeypatch.setitem(
        app.config, "FIND_REGISTRATIONS_ADDRESS_RATE_LIMIT", Config.FIND_REGISTRATIONS_ADDRESS_RATE_LIMIT
    )
    assert Config.FIND_REGISTRATIONS_ADDRESS_RATE_LIMIT.startswith("3 per hour")
    for n in range(5):
        response = _ask(app.test_client(), "", REMOTE_ADDR=f"10.0.2.{n}")
        body = html.unescape(response.get_data(as_text=True))
        assert response.status_code == 400, n
        assert "There is a problem" in body and "Please enter the email address you registered with." in body
    for n in range(5):
        assert _ask(app.test_client(), "not an address", REMOTE_ADDR=f"10.0.3.{n}").status_code == 400
    # A valid address is still limited, from any client: 3 per hour, the 4th refused.
    codes = [
        _ask(app.test_client(), "ana@example.com", REMOTE_ADDR=f"10.0.4.{n}").status_code for n in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    # ... with a sentence, not "3 per 1 hour"; and the address's own bucket is the normalized one.
    refused = _ask(app.test_client(), " ANA@Example.com ", REMOTE_ADDR="10.0.5.1")
    body = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 429 and "per 1 hour" not in body
    assert "We've already sent the list for this email address several times recently." in body


def test_a_client_over_its_limit_is_told_in_words(app, db, booked, monkeypatch, rate_limits_enforced):
    monkeypatch.setitem(app.config, "FIND_REGISTRATIONS_RATE_LIMIT", "1 per minute")
    client = app.test_client()
    assert _ask(client, "ana@example.com", REMOTE_ADDR="10.0.6.1").status_code == 200
    refused = _ask(client, "bo@example.com", REMOTE_ADDR="10.0.6.1")
    body = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 429 and "per 1 minute" not in body
    assert "Please wait a few minutes, then try again." in body


@pytest.mark.real_commits  # delivery marks rows sent on its own autocommit connection
def test_nothing_about_the_address_or_its_links_reaches_a_log(app, db, booked, caplog, monkeypatch):
    from events.notifications.delivery import deliver_due

    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(app.instance_path) + "/find-outbox")
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    assert _ask(client, "ana@example.com").status_code == 200
    deliver_due()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ana@example.com" not in logged and "/manage/" not in logged
