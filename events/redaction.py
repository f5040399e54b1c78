"""Keep private link tokens and personal data out of every log line.

Private links carry their token in the path (/manage/<signed>, /waitlist/<signed>, /pass/<signed>,
/staff/password-reset/<token>): a 400-day manage link can cancel and refund. Logs keep ids,
never those tokens, an email address, or the values a database error quotes back.

Two places use this: gunicorn's access log (gunicorn.conf.py: redacted request line and
referrer, query string dropped) and every log record of the web and worker processes
(`install`, called by create_app, so gunicorn workers and the Celery worker both get it).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

REDACTED = "[redacted]"

# The segment after these prefixes is a private token, whatever it looks like.
_PRIVATE_PATH = re.compile(r"(/(?:manage|waitlist|pass|staff/password-reset)/)[^/?#\s\"']+")
# Anything shaped like an itsdangerous token, wherever it appears: payload (a compressed one
# starts with a dot), a 6-character timestamp, a signature of 27+ characters. (Dotted names
# such as worker.tasks.queue_scheduled_emails do not fit.)
_SIGNED = re.compile(r"\.?[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}")
# An address (its domain has a dot: not the worker's node name, celery@host), internationalized
# ones too (zoë@exämple.com: \w is any letter or digit).
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# A Stripe client secret (pi_..._secret_...) lets a page confirm a payment.
_CLIENT_SECRET = re.compile(r"_secret_[A-Za-z0-9]+")
# What database errors quote back: SQLAlchemy's parameter list, PostgreSQL's DETAIL lines.
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\n|$|\s*\()", re.DOTALL)
_KEY_DETAIL = re.compile(r"(Key \([^)]*\))=\(.*?\)(?= already exists| is not present| conflicts|\.|\n|$)")
_FAILING_ROW = re.compile(r"Failing row contains \(.*?\)(?=\.?\n|\.?$)", re.MULTILINE)


def redact_text(text: str) -> str:
    text = _PRIVATE_PATH.sub(r"\1" + REDACTED, text)
    text = _SIGNED.sub(REDACTED, text)
    text = _EMAIL.sub("[email]", text)
    text = _CLIENT_SECRET.sub("_secret_" + REDACTED, text)
    text = _SQL_PARAMETERS.sub("[parameters: hidden]", text)
    text = _KEY_DETAIL.sub(r"\1=(" + REDACTED + ")", text)
    return _FAILING_ROW.sub("Failing row contains (" + REDACTED + ")", text)


def redact_url(url: str) -> str:
    """A path (or full URL) with private segments redacted and any query string dropped
    (return URLs carry payment secrets; nothing we need to read later is in one)."""
    if not url or url == "-":
        return url
    base, question, _query = url.partition("?")
    return redact_text(base) + ("?" + REDACTED if question else "")


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (with its arguments merged in) and its traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: keep the record as logging would
            return True
        record.msg, record.args = redact_text(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


_install_lock = threading.Lock()
_installed = False


def install() -> None:
    """Redact every log record this process makes, whichever handler writes it.

    Handlers are made at different times by gunicorn, Celery and Flask (some after the app
    is created), so the filter runs where records are made (the record factory), not on
    handlers one by one. Idempotent."""
    global _installed
    with _install_lock:
        if _installed:
            return
        make_record = logging.getLogRecordFactory()
        redacting = RedactingFilter()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make_record(*args, **kwargs)
            redacting.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
