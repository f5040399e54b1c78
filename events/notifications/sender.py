"""Turning an outbox row into a MIME message, and the only code that talks SMTP.

With MAIL_SERVER unset (the embedded default) messages are written as .eml files to
MAIL_OUTBOX_DIR instead, one file per outbox row (a resend overwrites, never duplicates).
"""

from __future__ import annotations

import hashlib
import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from pathlib import Path

from flask import current_app, render_template

from events.models import OutboxEmail
from events.notifications.content import EmailContent, build

SENT, RETRY, FAILED = "sent", "retry", "failed"
SMTP_TIMEOUT = 20  # seconds per command; bounded so a batch cannot outlive its claim


@dataclass(frozen=True)
class SendResult:
    outcome: str  # SENT | RETRY | FAILED
    error: str = ""


def _sender_domain() -> str:
    addresses = getaddresses([current_app.config["MAIL_DEFAULT_SENDER"]])
    address = addresses[0][1] if addresses else ""
    return address.rpartition("@")[2] or "localhost"


def message_id(row: OutboxEmail) -> str:
    """Stable per outbox row: a retried send carries the same Message-ID, so clients dedupe it."""
    digest = hashlib.sha256(row.dedupe_key.encode()).hexdigest()[:16]
    return f"<outbox-{row.id}.{digest}@{_sender_domain()}>"


def render_message(row: OutboxEmail, content: EmailContent | None = None) -> EmailMessage:
    content = content or build(row)
    text = render_template(f"emails/{row.kind}.txt", **content.context)
    html = render_template(f"emails/{row.kind}.html", **content.context)
    msg = EmailMessage()
    msg["Subject"] = content.subject
    msg["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    msg["To"] = row.to_email
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id(row)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text.strip() + "\n")
    msg.add_alternative(html, subtype="html")
    for attachment in content.attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        params = {"method": "PUBLISH"} if subtype == "calendar" else {}
        msg.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename, params=params
        )
    return msg


class FileTransport:
    """The embedded default: .eml files in a folder (see the /_dev/outbox page)."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, msg: EmailMessage, to: str, row_id: int) -> SendResult:
        target = self.folder / f"outbox-{row_id:08d}.eml"
        tmp = target.with_suffix(".eml.tmp")
        try:
            tmp.write_bytes(msg.as_bytes())
            os.replace(tmp, target)
        except OSError as error:
            return SendResult(RETRY, f"cannot write {target.name}: {error}")
        return SendResult(SENT)

    def close(self) -> None:
        pass


class SmtpTransport:
    """One SMTP connection reused for a batch; reconnects once per message after a drop."""

    def __init__(self, config):
        self.host = config["MAIL_SERVER"]
        self.port = int(config["MAIL_PORT"])
        self.use_tls = bool(config["MAIL_USE_TLS"])
        self.username = config.get("MAIL_USERNAME")
        self.password = config.get("MAIL_PASSWORD")
        self.envelope_from = getaddresses([config["MAIL_DEFAULT_SENDER"]])[0][1]
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT)
        try:
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

    def send(self, msg: EmailMessage, to: str, row_id: int) -> SendResult:
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(msg, from_addr=self.envelope_from, to_addrs=[to])
            return SendResult(SENT)
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


def _by_code(code: int, reply) -> SendResult:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    reason = f"{code} {text}"[:500]
    return SendResult(FAILED if 500 <= code < 600 else RETRY, reason)


def open_transport():
    config = current_app.config
    if config.get("MAIL_SERVER"):
        return SmtpTransport(config)
    return FileTransport(config["MAIL_OUTBOX_DIR"])
