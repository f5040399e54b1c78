"""Development only: the .eml files the embedded mail default wrote, at /_dev/outbox.

Registered when the app runs in debug, or when no MAIL_SERVER is set outside production
(APP_ENV=production turns it off). Only plain file names inside MAIL_OUTBOX_DIR can be opened.

Each email is shown as the member will see it: its HTML part in a sandboxed frame (its own
response, /<name>/html, whose Content-Security-Policy allows the email's inline styles and
nothing else: no script, no request to anywhere, a unique origin), beside its text part and
its attachments (a calendar invite read out, and downloadable). The pages around it keep the
site's strict policy: styles from our own stylesheet only, no inline style or script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, render_template
from flask.typing import ResponseReturnValue

bp = Blueprint("devmail", __name__, url_prefix="/_dev/outbox")
NAME = re.compile(r"^[A-Za-z0-9._-]+\.eml$")
LISTED = 200  # the newest emails listed

# The page around the frame: the site's policy, plus frames from this site (the email).
PAGE_POLICY = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# The email itself: its inline styles (as mail clients show them), data: images, nothing else.
# `sandbox` makes it a unique origin that runs no script even if one were in it; its links open
# in a new tab (a <base target> is added), as they would from a mail client.
EMAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


def _folder() -> Path:
    return Path(current_app.config["MAIL_OUTBOX_DIR"])


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        message = BytesParser(policy=policy.default).parse(fh)
    assert isinstance(message, EmailMessage)  # policy.default parses to EmailMessage
    return message


def _message(name: str) -> EmailMessage:
    if not NAME.match(name):
        abort(404)
    path = _folder() / name
    if not path.is_file():
        abort(404)
    return _parse(path)


def _date(message: EmailMessage) -> datetime | None:
    try:
        return parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class InviteEvent:
    summary: str
    starts: str
    ends: str
    location: str
    organizer: str
    status: str


@dataclass(frozen=True)
class ShownAttachment:
    index: int
    filename: str
    content_type: str
    size: int
    method: str  # an invite's PUBLISH or CANCEL
    events: list[InviteEvent]
    text: str  # an invite as written (for a developer to read)


def _invite_events(data: bytes) -> list[InviteEvent]:
    from icalendar import Calendar  # here: the app starts without it (issue 17, goal 6)

    try:
        calendar = Calendar.from_ical(data)
    except ValueError:
        return []
    events = []
    for event in calendar.walk("VEVENT"):
        starts, ends = event.decoded("dtstart", None), event.decoded("dtend", None)
        events.append(
            InviteEvent(
                summary=str(event.get("summary", "")),
                starts=starts.strftime("%a %d %b %Y, %H:%M %Z") if isinstance(starts, datetime) else "",
                ends=ends.strftime("%H:%M %Z") if isinstance(ends, datetime) else "",
                location=str(event.get("location", "")),
                organizer=str(event.get("organizer", "")).removeprefix("mailto:"),
                status=str(event.get("status", "")),
            )
        )
    return events


def _attachments(message: EmailMessage) -> list[ShownAttachment]:
    shown = []
    for index, part in enumerate(message.iter_attachments()):
        data = part.get_payload(decode=True)
        payload = data if isinstance(data, bytes) else b""
        is_invite = part.get_content_type() == "text/calendar"
        shown.append(
            ShownAttachment(
                index=index,
                filename=part.get_filename() or f"attachment-{index + 1}",
                content_type=part.get_content_type(),
                size=len(payload),
                method=str(part.get_param("method") or ""),
                events=_invite_events(payload) if is_invite else [],
                text=payload.decode("utf-8", "replace") if is_invite else "",
            )
        )
    return shown


@bp.get("/")
def index() -> ResponseReturnValue:
    folder = _folder()
    files = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.eml"), reverse=True)[:LISTED]:
            message = _parse(path)
            files.append(
                {
                    "name": path.name,
                    "to": message.get("To", ""),
                    "subject": message.get("Subject", ""),
                    "date": _date(message),
                }
            )
    response = current_app.make_response(
        render_template("devmail/index.html", files=files, folder=str(folder))
    )
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@bp.get("/<name>")
def show(name: str) -> ResponseReturnValue:
    message = _message(name)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    headers = [
        (key, str(message[key]))
        for key in ("Subject", "From", "Reply-To", "To", "Date", "Message-ID")
        if message[key] is not None
    ]
    page = render_template(
        "devmail/show.html",
        name=name,
        subject=str(message.get("Subject", "")),
        headers=headers,
        text=text.get_content() if text is not None else "",
        has_html=html is not None,
        attachments=_attachments(message),
        folder=str(_folder()),
    )
    response = current_app.make_response(page)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@bp.get("/<name>/html")
def show_html(name: str) -> ResponseReturnValue:
    """The email's HTML part, for the sandboxed frame on its page (and nothing else)."""
    html = _message(name).get_body(preferencelist=("html",))
    if html is None:
        abort(404)
    content = html.get_content()
    base = '<base target="_blank">'
    content = (
        _HEAD.sub(lambda m: m.group(0) + base, content, count=1) if _HEAD.search(content) else base + content
    )
    response = current_app.response_class(content, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<name>/attachments/<number>")
def attachment(name: str, number: str) -> ResponseReturnValue:
    parts = list(_message(name).iter_attachments())
    if not (number.isascii() and number.isdigit() and len(number) < 4 and int(number) < len(parts)):
        abort(404)
    index = int(number)
    part = parts[index]
    data = part.get_payload(decode=True)
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", part.get_filename() or f"attachment-{index + 1}")
    return current_app.response_class(
        data if isinstance(data, bytes) else b"",
        mimetype=part.get_content_type(),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def register(app: Flask) -> None:
    production = app.config["APP_ENV"].lower() == "production"
    if app.debug or (not app.config["MAIL_SERVER"] and not production):
        app.register_blueprint(bp)
