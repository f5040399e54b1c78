"""Development only: the .eml files the embedded mail default wrote, at /_dev/outbox.

Registered when the app runs in debug, or when no MAIL_SERVER is set outside production
(APP_ENV=production turns it off). Everything shown is escaped; only plain file names
inside MAIL_OUTBOX_DIR can be opened.
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, render_template_string

bp = Blueprint("devmail", __name__, url_prefix="/_dev/outbox")
NAME = re.compile(r"^[A-Za-z0-9._-]+\.eml$")

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Outbox (development)</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#243b3b}
td,th{padding:.3rem .6rem;text-align:left;border-bottom:1px solid #ddd}
pre{white-space:pre-wrap;background:#f6f4ef;padding:1rem}</style>
</head><body><h1>Outbox (development)</h1><p>Emails written to {{ folder }}. Nothing here was sent.</p>
{% if message %}<p><a href="{{ url_for('devmail.index') }}">All emails</a></p>
<dl>{% for k, v in headers %}<dt><strong>{{ k }}</strong></dt><dd>{{ v }}</dd>{% endfor %}</dl>
<pre>{{ text }}</pre>{% if attachments %}<p>Attachments: {{ attachments|join(', ') }}</p>{% endif %}
{% else %}<table><thead><tr><th>File</th><th>To</th><th>Subject</th></tr></thead><tbody>
{% for f in files %}<tr><td><a href="{{ url_for('devmail.show', name=f.name) }}">{{ f.name }}</a></td>
<td>{{ f.to }}</td><td>{{ f.subject }}</td></tr>
{% else %}<tr><td colspan="3">No emails yet.</td></tr>{% endfor %}</tbody></table>{% endif %}
</body></html>"""


def _folder() -> Path:
    return Path(current_app.config["MAIL_OUTBOX_DIR"])


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        return BytesParser(policy=policy.default).parse(fh)


@bp.get("/")
def index() -> str:
    folder = _folder()
    files = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.eml"), reverse=True)[:200]:
            headers = _parse(path)
            files.append(
                {"name": path.name, "to": headers.get("To", ""), "subject": headers.get("Subject", "")}
            )
    return render_template_string(PAGE, files=files, folder=str(folder), message=None)


@bp.get("/<name>")
def show(name: str) -> str:
    if not NAME.match(name):
        abort(404)
    path = _folder() / name
    if not path.is_file():
        abort(404)
    msg = _parse(path)
    body = msg.get_body(preferencelist=("plain",))
    attachments = [part.get_filename() or part.get_content_type() for part in msg.iter_attachments()]
    return render_template_string(
        PAGE,
        message=True,
        folder=str(_folder()),
        headers=[(k, msg[k]) for k in ("From", "To", "Subject", "Date", "Message-ID")],
        text=body.get_content() if body is not None else "",
        attachments=attachments,
    )


def register(app: Flask) -> None:
    production = app.config["APP_ENV"].lower() == "production"
    if app.debug or (not app.config["MAIL_SERVER"] and not production):
        app.register_blueprint(bp)
