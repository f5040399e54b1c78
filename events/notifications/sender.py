"""Turning an outbox row into a MIME message, and the only code that talks SMTP.

With MAIL_SERVER unset (the embedded default) messages are written as .eml files to
MAIL_OUTBOX_DIR instead, one file per outbox row (a resend overwrites, never duplicates).

Rendering is done by a Renderer, made once per batch: it looks each template up once and
writes the MIME message straight to bytes (multipart/alternative text + HTML, quoted-
printable, an optional base64 attachment in multipart/mixed). The email package's
EmailMessage parses every header it is given and re-flattens the whole tree on send, which
cost more than the SMTP exchange itself; the bytes are what it would produce, give or take
the transfer encoding, and parse back to the same message (tests/worker check that). An
address whose local part is not ASCII (SMTPUTF8) still goes through EmailMessage; a Unicode
domain is written in its IDNA form, which every server takes (events/notifications/addresses.py).

Stamping: the emails of a kind in STAMPED_KINDS (the reminder, sent by the thousand) are
rendered once per session in a batch, with markers where the person's name and link go, and
each person's values are put in by replacing the markers (HTML-escaped in the HTML part, as
the template would have): the templates run once per session instead of twice per email.
Only kinds whose templates use these values bare ({{ name }}, {% if name %}, {{ manage_url }})
and otherwise read only what the key names (tests/worker/test_worker_email_stamping.py checks
both, and that the bytes match a plain render).

Every email carries a Reply-To of the clinic's own contact address (the clinic's `email`,
set by admins on the Clinic page), so a reply reaches people rather than the no-reply sender.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import random
import re
import secrets
import smtplib
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from email import policy as email_policy
from email.charset import Charset
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import Any, Protocol

from flask import current_app
from flask.config import Config
from jinja2 import Template
from markupsafe import escape

from events.clinic import current_clinic
from events.languages import current_language, in_language
from events.models import OutboxEmail
from events.notifications.addresses import (
    Recipient,
    contact_address,
    recipient,
    sender_address,
    sender_mailbox,
)
from events.notifications.content import Attachment, EmailContent, build
from events.notifications.outbox import email_language

SENT, RETRY, FAILED = "sent", "retry", "failed"
SMTP_TIMEOUT = 20  # seconds per command: how long a silent server can stall a batch (the lease renews)
# Why an address with accents before the @ is not sent, for staff (Failed emails) to read.
NO_SMTPUTF8 = (
    "The mail server does not accept addresses with non-ASCII characters before the @ "
    "(it does not offer SMTPUTF8), so this address cannot be delivered through it."
)


@dataclass(frozen=True)
class SendResult:
    outcome: str  # SENT | RETRY | FAILED
    error: str = ""


def _sender_domain() -> str:
    return sender_address(current_app.config["MAIL_DEFAULT_SENDER"]).rpartition("@")[2] or "localhost"


def message_id(row: OutboxEmail, domain: str | None = None) -> str:
    """Stable per outbox row: a retried send carries the same Message-ID, so clients dedupe it."""
    digest = hashlib.sha256(row.dedupe_key.encode()).hexdigest()[:16]
    return f"<outbox-{row.id}.{digest}@{domain or _sender_domain()}>"


CRLF = b"\r\n"
_FOLD = email_policy.SMTP  # folds and RFC 2047-encodes the headers that need it
_SIMPLE_MAX = 78 - len("Subject: ")


def _header_value(value: str) -> str:
    if "\r" in value or "\n" in value:  # as EmailMessage refuses them: no header injection
        raise ValueError(f"Header values may not contain linefeed or carriage return characters: {value!r}")
    return value


def _header(name: str, value: str) -> bytes:
    _header_value(value)
    if value.isascii():
        if len(name) + 2 + len(value) <= 78:
            return f"{name}: {value}".encode("ascii") + CRLF
        return _FOLD.fold_binary(name, value)
    # Not ASCII: RFC 2047 encoded words, folded. Not through the policy: fold_binary returns a
    # short non-ASCII value unencoded (so "You're registered: Café Posture" failed to encode
    # and was never sent), and its folder drops the space between two words where it splits a
    # long value. Header keeps those spaces inside its encoded words.
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}".encode("ascii") + CRLF


def _mailbox_header(name: str, display_name: str, address: str) -> bytes:
    """From: Name <address>. A non-ASCII name is one RFC 2047 encoded word, written as is:
    split into several, Python's address parser keeps the space between them that RFC 2047
    drops (so readers would disagree), and the policy's refolding added or lost a space."""
    if display_name.isascii():
        return _header(name, formataddr((display_name, address)))
    _header_value(display_name)
    word = Charset("utf-8").header_encode(display_name)  # may pass 75 characters; readers accept it
    separator = " " if len(name) + len(word) + len(address) + 5 <= 78 else "\r\n "
    return f"{name}: {word}{separator}<{address}>".encode("ascii") + CRLF


def _boundary() -> str:
    # As the email package does: '=' runs cannot occur in quoted-printable or base64 bodies.
    return "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="


def _text_part(subtype: str, text: str) -> bytes:
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    if not body.endswith("\n"):
        body += "\n"
    encoded = binascii.b2a_qp(body.encode("utf-8"), istext=True).replace(b"\n", CRLF)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii")
        + encoded
    )


def _attachment_part(attachment: Attachment) -> bytes:
    maintype, subtype = attachment.content_type.split("/", 1)
    params = f'; method="{attachment.method}"' if attachment.method else ""
    filename = _FOLD.fold_binary("Content-Disposition", f'attachment; filename="{attachment.filename}"')
    return (
        f"Content-Type: {maintype}/{subtype}{params}\r\nContent-Transfer-Encoding: base64\r\n".encode("ascii")
        + filename
        + CRLF
        + base64.encodebytes(attachment.data).replace(b"\n", CRLF)
    )


def _multipart(subtype: str, parts: list[bytes], headers: bytes = b"") -> bytes:
    boundary = _boundary()
    out = [headers, f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode("ascii")]
    sep = f"--{boundary}\r\n".encode("ascii")
    for part in parts:
        out += [sep, part, CRLF]
    out.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(out)


# Kinds rendered once per session and stamped with each person's name and link (see above).
STAMPED_KINDS = frozenset({"reminder"})
# What differs from one person to the next in a stamped email: put in by replacing markers.
STAMPED_PERSONAL = ("name", "manage_url")


def _stamp_key(kind: str, context: dict[str, Any]) -> tuple:
    """Everything else a stamped template reads (the batch's objects do not change under it)."""
    session, offering = context.get("session"), context["offering"]
    return (
        kind,
        current_language(),  # each person's email is written in their own language
        offering.id,
        session.id if session is not None else None,
        context["location"].id if context.get("location") is not None else None,
        context.get("when_text"),
        context.get("subject"),
        context.get("schedule_url"),
        bool(context.get("name")),  # "Hello," or "Hello Ann,"
    )


class Renderer:
    """Made once per batch (inside the request context that delivery pushes): the templates
    and the constant headers are looked up once, not per email."""

    def __init__(self) -> None:
        config = current_app.config
        self.env = current_app.jinja_env
        name, address = sender_mailbox(config["MAIL_DEFAULT_SENDER"])
        if not name:  # a bare address configured: people see the clinic's own name
            name = current_clinic().name
        self.sender = formataddr((name, address))  # quoted as needed
        self.from_header = _mailbox_header("From", name, address)
        self.domain = _sender_domain()
        self.templates: dict[str, Template] = {}
        # Stamped kinds: (text, html) rendered with markers, per _stamp_key. The markers are
        # random per batch, so no text anyone wrote can contain them.
        self.stamped: dict[tuple, tuple[str, str]] = {}
        tag = secrets.token_hex(6)
        self.markers = {name: f"\ue000{tag}:{name}\ue001" for name in STAMPED_PERSONAL}
        self.ascii_sender = sender_address(self.sender).isascii()
        # Replies go to the clinic's contact address, when it has one that any server takes.
        clinic = current_clinic()
        self.reply_to: Address | None = None
        self.reply_to_header = b""
        contact = contact_address(clinic.email)
        if contact and contact != address:
            self.reply_to = Address(display_name=clinic.name, addr_spec=contact)
            self.reply_to_header = _mailbox_header("Reply-To", clinic.name, contact)

    def _template(self, name: str) -> Template:
        template = self.templates.get(name)
        if template is None:
            template = self.templates[name] = self.env.get_template(name)
        return template

    def render_parts(self, row: OutboxEmail, content: EmailContent) -> tuple[str, str]:
        if row.kind in STAMPED_KINDS and content.context.get("manage_url") is not None:
            return self._stamped_parts(row.kind, content.context)
        return self._render_parts(row.kind, content.context)

    def _render_parts(self, kind: str, context: dict[str, Any]) -> tuple[str, str]:
        # As render_template would, minus the per-call lookups and context processors (the
        # email templates use only their own context, which already carries the clinic).
        text = self._template(f"emails/{kind}.txt").render(context)
        html = self._template(f"emails/{kind}.html").render(context)
        return text, html

    def _stamped_parts(self, kind: str, context: dict[str, Any]) -> tuple[str, str]:
        key = _stamp_key(kind, context)
        parts = self.stamped.get(key)
        if parts is None:
            marked = dict(context)
            for name, marker in self.markers.items():
                if name != "name" or context.get("name"):  # an empty name stays empty: "Hello,"
                    marked[name] = marker
            parts = self.stamped[key] = self._render_parts(kind, marked)
        text, html = parts
        for name, marker in self.markers.items():
            value = str(context.get(name) or "")
            text = text.replace(marker, value)  # the .txt templates are not autoescaped
            html = html.replace(marker, str(escape(value)))
        return text, html

    def render(self, row: OutboxEmail, content: EmailContent) -> bytes | EmailMessage:
        """The message as SMTP-ready bytes (CRLF), or an EmailMessage for a non-ASCII address."""
        text, html = self.render_parts(row, content)
        to = recipient(row.to_email)
        if to.needs_smtputf8 or not self.ascii_sender:
            return _email_message(
                to, content, text, html, self.sender, message_id(row, self.domain), self.reply_to
            )
        headers = b"".join(
            [
                _header("Subject", content.subject),
                self.from_header,
                self.reply_to_header,
                _header("To", to.header),
                b"Date: " + formatdate(localtime=False, usegmt=True).encode("ascii") + CRLF,
                _header("Message-ID", message_id(row, self.domain)),
                b"Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n",
            ]
        )
        alternative = [_text_part("plain", text.strip() + "\n"), _text_part("html", html)]
        if not content.attachments:
            return _multipart("alternative", alternative, headers)
        parts = [_multipart("alternative", alternative)] + [_attachment_part(a) for a in content.attachments]
        return _multipart("mixed", parts, headers)


def render_message(row: OutboxEmail, content: EmailContent | None = None) -> EmailMessage:
    """One row's message as an EmailMessage (the same bytes the delivery code sends, parsed)."""
    with in_language(email_language(row)):
        content = content or build(row)
        rendered = Renderer().render(row, content)
    if isinstance(rendered, EmailMessage):
        return rendered
    return BytesParser(policy=email_policy.default).parsebytes(rendered)


def envelope_recipient(address: str) -> str:
    """RCPT TO for an outbox row's address (raises UndeliverableAddress)."""
    return recipient(address).envelope


def _email_message(
    to: Recipient,
    content: EmailContent,
    text: str,
    html: str,
    sender: str,
    msgid: str,
    reply_to: Address | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = content.subject
    msg["From"] = sender
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["To"] = to.header
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = msgid
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text.strip() + "\n")
    msg.add_alternative(html, subtype="html")
    for attachment in content.attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        params = {"method": attachment.method} if attachment.method else {}
        msg.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename, params=params
        )
    return msg


class Transport(Protocol):
    """Where delivery hands each message: a folder, an SMTP server (or a test's stand-in).

    before_end, if given, is called right before the message is handed over for good (an SMTP
    server's end of data, a file's write): everything that can go ahead of that moment has
    gone. If it raises, the message is not handed over (never accepted by the server) and the
    exception comes out of send()."""

    def send(
        self, msg: bytes | EmailMessage, to: str, row_id: int, before_end: Callable[[], None] | None = None
    ) -> SendResult: ...

    def close(self) -> None: ...


class FileTransport:
    """The embedded default: .eml files in a folder (see the /_dev/outbox page)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(
        self, msg: bytes | EmailMessage, to: str, row_id: int, before_end: Callable[[], None] | None = None
    ) -> SendResult:
        if before_end is not None:
            before_end()
        target = self.folder / f"outbox-{row_id:08d}.eml"
        tmp = target.with_suffix(".eml.tmp")
        try:
            # An internationalized address stays as it is (as SMTPUTF8 would send it), never
            # RFC 2047 words inside the address.
            tmp.write_bytes(msg if isinstance(msg, bytes) else msg.as_bytes(policy=email_policy.SMTPUTF8))
            os.replace(tmp, target)
        except OSError as error:
            return SendResult(RETRY, f"cannot write {target.name}: {error}")
        return SendResult(SENT)

    def close(self) -> None:
        pass


class EndWithheld(Exception):
    """before_end raised between a message's body and its end of data: the message was never
    accepted. `error` is what before_end raised."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"end of data withheld: {error!r}")
        self.error = error


# A '.' at the start of a line doubled, as smtplib.SMTP.data does (RFC 5321 4.5.2).
_LEADING_DOT = re.compile(rb"(?m)^\.")


class _WithheldEndSMTP(smtplib.SMTP):
    """smtplib.SMTP whose DATA can stop between the body and its end ("."): with before_end
    set, data() sends the body, calls before_end, and only then sends the end of data. The
    server accepts nothing before that end, so the body goes out while the caller still waits
    on something (the previous message's mark); if before_end raises, the server is left
    mid-DATA and discards the message when the connection is dropped (EndWithheld tells the
    caller to drop it: nothing else may be sent on it, a QUIT would be read as data). The bytes
    on the wire are smtplib's own, in two writes instead of one."""

    before_end: Callable[[], None] | None = None

    def data(self, msg: Any) -> tuple[int, bytes]:
        before_end = self.before_end
        if before_end is None:
            return super().data(msg)
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        body = _LEADING_DOT.sub(b"..", bytes(msg))  # (sendmail has made a str bytes already)
        if body[-2:] != CRLF:
            body += CRLF
        self.send(body)
        try:
            before_end()
        except BaseException as error:
            raise EndWithheld(error) from error
        self.send(b"." + CRLF)
        return self.getreply()


class SmtpTransport:
    """One SMTP connection reused for a batch; reconnects once per message after a drop."""

    def __init__(self, config: Config) -> None:
        self.host = config["MAIL_SERVER"]
        self.port = int(config["MAIL_PORT"])
        self.use_tls = bool(config["MAIL_USE_TLS"])
        self.username = config["MAIL_USERNAME"]
        self.password = config["MAIL_PASSWORD"]
        self.envelope_from = sender_address(config["MAIL_DEFAULT_SENDER"])
        self._smtp: _WithheldEndSMTP | None = None

    def _connect(self) -> _WithheldEndSMTP:
        smtp = _WithheldEndSMTP(self.host, self.port, timeout=SMTP_TIMEOUT)
        try:
            # The end of data is a small write right after the body's (see _WithheldEndSMTP):
            # without NODELAY, Nagle's algorithm could hold it until the body is acknowledged.
            if smtp.sock is not None:  # (connected by the constructor)
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if self.use_tls:
                smtp.starttls()
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(
        self, msg: bytes | EmailMessage, to: str, row_id: int, before_end: Callable[[], None] | None = None
    ) -> SendResult:
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            smtp = self._smtp
            if not to.isascii() and not smtp.has_extn("smtputf8"):
                return SendResult(FAILED, NO_SMTPUTF8)  # asking again will not change the server
            smtp.before_end = before_end
            try:
                if isinstance(msg, bytes):  # already CRLF-terminated MIME (Renderer.render)
                    smtp.sendmail(self.envelope_from, [to], msg)
                else:
                    smtp.send_message(msg, from_addr=self.envelope_from, to_addrs=[to])
            finally:
                smtp.before_end = None
            return SendResult(SENT)
        except EndWithheld as withheld:
            self._drop()  # mid-DATA: the server discards the message; the connection is spent
            raise withheld.error from None
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = error.recipients.get(to, (450, b"refused"))
            return _by_code(code, reply)
        except smtplib.SMTPResponseException as error:  # sender refused, data refused, ...
            if error.smtp_code == 421:  # the server is closing the connection
                self._drop()
            return _by_code(error.smtp_code, error.smtp_error)
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            # Connection refused, reset, timed out or dropped: temporary by nature.
            self._drop()
            return SendResult(RETRY, f"{type(error).__name__}: {error}"[:500])

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            except OSError:
                pass
        self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()


def _by_code(code: int, reply: Any) -> SendResult:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    reason = f"{code} {text}"[:500]
    return SendResult(FAILED if 500 <= code < 600 else RETRY, reason)


def open_transport() -> Transport:
    config = current_app.config
    if config["MAIL_SERVER"]:
        return SmtpTransport(config)
    return FileTransport(config["MAIL_OUTBOX_DIR"])
