"""Internationalized email addresses (RFC 6530), decided: with MAIL_SMTPUTF8 set (the server
takes them), accepted at the form and delivered; unset (the default), the forms refuse an
accented local part (tests/integration/test_email_addresses_refused_without_smtputf8.py).

`zoe@exämple.com` (a Unicode domain) goes to every server, its domain written in IDNA form
(`zoe@xn--exmple-cua.com`). `zoë@exämple.com` (a Unicode local part too) goes through SMTPUTF8
(RFC 6531) where the server offers it, the address written as it is in the To header, never as
RFC 2047 encoded words inside the address (which no server delivers). A server that does not
offer SMTPUTF8 cannot take such an address: the email fails at once, with the reason staff see
on the Failed emails page, and is not retried for a day. Tested against the suite's aiosmtpd
server, which offers SMTPUTF8, and one started here that doesn't.
"""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from events.models import EmailStatus, OutboxEmail
from events.notifications.delivery import deliver_due
from events.notifications.sender import NO_SMTPUTF8
from events.registration.services import Person, register
from tests.factories import make_clinic, workshop
from tests.helpers import csrf_token
from tests.worker.conftest import SmtpServer

ACCENTED = "zoë@exämple.com"  # the address
ACCENTED_ENVELOPE = "zoë@xn--exmple-cua.com"
DOMAIN_ONLY = "zoe@exämple.com"
DOMAIN_ONLY_ASCII = "zoe@xn--exmple-cua.com"


@pytest.fixture(scope="module")
def ascii_server():
    server = SmtpServer(enable_SMTPUTF8=False)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def smtputf8_configured(app, monkeypatch):
    """These tests are about a server configured as taking SMTPUTF8 (MAIL_SMTPUTF8=True)."""
    monkeypatch.setitem(app.config, "MAIL_SMTPUTF8", True)


@pytest.fixture
def smtp_utf8(smtp):
    """The suite's server: aiosmtpd's Controller offers SMTPUTF8 unless told not to."""
    assert smtp.smtp_options.get("enable_SMTPUTF8", True)
    return smtp


@pytest.fixture
def smtp_ascii(ascii_server, smtp, app, monkeypatch):
    """The app sending to a server that does not offer SMTPUTF8."""
    ascii_server.clear()
    monkeypatch.setitem(app.config, "MAIL_PORT", ascii_server.port)
    yield ascii_server
    ascii_server.clear()


def _status(db, address):
    db.session.expire_all()
    return db.session.execute(
        sa.select(OutboxEmail.status, OutboxEmail.attempts, OutboxEmail.last_error).where(
            OutboxEmail.to_email == address
        )
    ).one()


def _headers(raw: bytes) -> email.message.EmailMessage:
    # (Headers in UTF-8, as SMTPUTF8 sends them; the parts are ASCII-encoded.)
    return email.message_from_string(raw.decode("utf-8"), policy=policy.SMTPUTF8)


def test_with_smtputf8_the_registration_form_accepts_an_accented_address(db, client):
    make_clinic()
    offering = workshop(title="Posture")
    db.session.commit()
    path = f"/offerings/{offering.slug}"
    data = {
        "csrf_token": csrf_token(client.get(path).get_data(as_text=True)),
        "name": "Zoë",
        "email": ACCENTED,
    }
    response = client.post(f"{path}/register", data=data)
    assert response.status_code == 302 and "/manage/" in response.headers["Location"]
    assert _status(db, ACCENTED)[0] == EmailStatus.PENDING


def test_delivered_through_smtputf8_where_the_server_offers_it(db, smtp_utf8):
    make_clinic(name="Clínica Año", email="hola@clínica.example")
    offering = workshop(title="Posture")
    db.session.commit()
    register(offering, None, Person("Zoë", ACCENTED))
    register(offering, None, Person("Zoe", DOMAIN_ONLY))

    stats = deliver_due()
    assert (stats.sent, stats.failed) == (2, 0)
    received = {rcpt: (raw, options) for rcpt, raw, options in smtp_utf8.handler.envelopes}
    assert set(received) == {ACCENTED_ENVELOPE, DOMAIN_ONLY_ASCII}  # domains always in IDNA form

    raw, options = received[ACCENTED_ENVELOPE]
    assert "SMTPUTF8" in options
    to_line = next(line for line in raw.split(b"\r\n") if line.startswith(b"To:"))
    assert to_line == f"To: {ACCENTED}".encode()  # UTF-8 as it is: no =?utf-8?...?= in the address
    message = _headers(raw)
    assert message["To"].addresses[0].addr_spec == ACCENTED
    assert message["Subject"].startswith("You're registered for ")
    assert "Hello Zoë," in message.get_body(("plain",)).get_content()
    [reply_to] = message["Reply-To"].addresses  # the clinic's contact, its domain in IDNA form
    assert (reply_to.display_name, reply_to.addr_spec) == ("Clínica Año", "hola@xn--clnica-4va.example")

    raw, options = received[DOMAIN_ONLY_ASCII]
    assert "SMTPUTF8" not in options  # an ASCII address needs nothing special
    message = _headers(raw)
    assert message["To"].addresses[0].addr_spec == DOMAIN_ONLY_ASCII
    assert message["Reply-To"].addresses[0].addr_spec == "hola@xn--clnica-4va.example"


def test_without_smtputf8_the_domain_still_goes_and_an_accented_name_fails_at_once(db, smtp_ascii):
    smtp = smtp_ascii
    offering = workshop(title="Posture")
    db.session.commit()
    register(offering, None, Person("Zoë", ACCENTED))
    register(offering, None, Person("Zoe", DOMAIN_ONLY))
    register(offering, None, Person("Ana", "ana@example.com"))  # after it in the batch: still sent

    stats = deliver_due()
    assert (stats.sent, stats.failed, stats.retried) == (2, 1, 0)
    assert {rcpt for rcpt, _ in smtp.messages} == {DOMAIN_ONLY_ASCII, "ana@example.com"}
    status, attempts, error = _status(db, ACCENTED)
    assert (status, attempts, error) == (EmailStatus.FAILED, 1, NO_SMTPUTF8)
    assert _status(db, DOMAIN_ONLY)[0] == EmailStatus.SENT
    assert deliver_due().sent == 0  # not tried again


@pytest.mark.real_commits  # delivery marks rows sent on its own autocommit connection
def test_the_development_outbox_writes_the_address_as_it_is(db, app, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "MAIL_SERVER", None)
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    offering = workshop(title="Posture")
    db.session.commit()
    register(offering, None, Person("Zoë", ACCENTED))
    assert deliver_due().sent == 1
    [written] = list(Path(tmp_path).glob("*.eml"))
    raw = written.read_bytes()
    assert f"To: {ACCENTED}".encode() in raw and b"=?utf-8?" not in raw.split(b"\r\n\r\n")[0].lower()


def test_an_undeliverable_domain_fails_its_email_without_putting_the_address_in_a_log(db, smtp, caplog):
    """A domain no IDNA encoding can express (a label over 63 characters) is the address's
    fault, not a bug: the email fails at once with the reason for staff, and the log names the
    row only (the encoder's message would quote the address's label)."""
    label = "ä" + "x" * 70
    address = f"ana@{label}.example"
    make_clinic()
    offering = workshop(title="Posture")
    db.session.commit()
    register(offering, None, Person("Ana", address))

    with caplog.at_level("DEBUG"):
        stats = deliver_due()

    assert (stats.sent, stats.failed) == (0, 1)
    status, _, last_error = _status(db, address)
    assert status == EmailStatus.FAILED and last_error.startswith("address: ")
    assert "xxxxxxxx" not in caplog.text and "Traceback" not in caplog.text
    assert smtp.handler.envelopes == []
