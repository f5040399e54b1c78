"""Friendly error pages, and JSON errors under /api/."""

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask.wrappers import Response
from werkzeug.exceptions import HTTPException


class BadFilter(ValueError):
    """A query parameter that cannot be understood; shown to the user as a 400."""


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.endswith(".json")


def register(app: Flask) -> None:
    @app.errorhandler(BadFilter)
    def bad_filter(error: BadFilter) -> ResponseReturnValue:
        return _render(400, "That search could not be understood", str(error))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        titles = {
            404: "We couldn't find that page",
            400: "That request could not be understood",
            405: "That isn't allowed here",
            413: "That request is too large",
            429: "Too many requests",
        }
        # (A code of None is in no title, just as before: it gets the exception's name.)
        response = _render(error.code or 500, titles.get(error.code or 500, error.name), error.description)
        # Keep what the exception says beyond the body, e.g. Allow on a 405 and Retry-After on a 429.
        extra = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
        return (*response, extra)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> ResponseReturnValue:
        app.logger.exception("Unhandled error on %s", request.path)
        # A failed statement leaves the transaction aborted (on PostgreSQL); the error page
        # itself reads the clinic's name, so start clean.
        from events.extensions import db

        try:
            db.session.rollback()
        except Exception:  # the connection itself may be gone; the page must still render
            app.logger.warning("Rollback after an unhandled error failed", exc_info=True)
        return _render(500, "Something went wrong on our side", "Please try again in a moment.")


def _render(status: int, title: str, message: str | None) -> tuple[Response | str, int]:
    if _wants_json():
        return jsonify(error={"status": status, "title": title, "message": message}), status
    _ensure_clinic_for_error_page()
    return render_template("error.html", status=status, title=title, message=message), status


def _ensure_clinic_for_error_page() -> None:
    """The error page shows the clinic's name; with the database down, use a neutral one."""
    from flask import g

    from events.catalog.services import current_clinic
    from events.models import Clinic

    try:
        # Read it here: the rollback in `unexpected` expired it, and a database that has gone
        # away (a restart) must fail this line, not the template (a bare server 500).
        current_clinic().name  # noqa: B018
    except Exception:
        g.clinic = Clinic(name="Workshops & Classes", timezone="America/Chicago", currency="usd")
