"""Friendly error pages, and JSON errors under /api/."""

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask.wrappers import Response
from flask_babel import gettext, ngettext
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from events.clinic import clinic_or_neutral
from events.extensions import db


class BadFilter(ValueError):
    """A query parameter that cannot be understood; shown to the user as a 400.

    `name` is the query argument at fault; `for_person` says it in the words of the filter
    form (the message itself names the arguments, for the API and the error page); `kept` is
    what the form shows back in the box (the visitor's value, shortened, without control
    characters)."""

    def __init__(
        self, message: str, name: str | None = None, for_person: str | None = None, kept: str = ""
    ) -> None:
        super().__init__(message)
        self.name = name
        self.for_person = for_person or message
        self.kept = kept


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.endswith(".json")


def register(app: Flask) -> None:
    @app.errorhandler(BadFilter)
    def bad_filter(error: BadFilter) -> ResponseReturnValue:
        return _render(400, gettext("That search could not be understood"), str(error))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        titles = {
            404: gettext("We couldn't find that page"),
            400: gettext("That request could not be understood"),
            405: gettext("That isn't allowed here"),
            413: gettext("That request is too large"),
            429: gettext("Please wait a little"),
        }
        # Werkzeug's own sentences are English: ours are said in the page's language.
        own_words = {
            404: gettext(
                "The page may have moved, or the link may be mistyped. "
                "The schedule lists everything on offer."
            ),
            400: gettext("Something in the request was not as expected. Please go back and try again."),
            405: gettext("That isn't allowed here."),
            413: gettext("That is more than we can take in one go. Please send less."),
        }
        # (A code of None is in no title, just as before: it gets the exception's name.)
        message = error.description
        if error.code in own_words and message == type(error).description:
            message = own_words[error.code]
        if isinstance(error, RateLimitExceeded) and not error.limit.error_message:
            message = _rate_limit_sentence(error)  # not Flask-Limiter's "3 per 1 hour"
        response = _render(error.code or 500, titles.get(error.code or 500, error.name), message)
        # Keep what the exception says beyond the body, e.g. Allow on a 405 and Retry-After on a 429.
        extra = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
        return (*response, extra)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> ResponseReturnValue:
        app.logger.exception("Unhandled error on %s", request.path)
        # A failed statement leaves the transaction aborted (on PostgreSQL); the error page
        # itself reads the clinic's name, so start clean.
        try:
            db.session.rollback()
        except Exception:  # the connection itself may be gone; the page must still render
            app.logger.warning("Rollback after an unhandled error failed", exc_info=True)
        return _render(
            500, gettext("Something went wrong on our side"), gettext("Please try again in a moment.")
        )


def _rate_limit_sentence(error: RateLimitExceeded) -> str:
    """A limit said as a person would: how long to wait, in words."""
    seconds = error.limit.limit.get_expiry()
    if seconds <= 60:
        return gettext("That was tried many times in a short while. Please wait a minute, then try again.")
    if seconds < 3600:
        minutes = seconds // 60
        return ngettext(
            "That was tried many times in a short while. Please wait %(num)d minute, then try again.",
            "That was tried many times in a short while. Please wait %(num)d minutes, then try again.",
            minutes,
        )
    if seconds < 86400:
        if seconds == 3600:
            return gettext("That was tried many times in a short while. Please wait an hour, then try again.")
        return ngettext(
            "That was tried many times in a short while. Please wait %(num)d hour, then try again.",
            "That was tried many times in a short while. Please wait %(num)d hours, then try again.",
            seconds // 3600,
        )
    if seconds == 86400:
        return gettext("That was tried many times in a short while. Please wait a day, then try again.")
    return ngettext(
        "That was tried many times in a short while. Please wait %(num)d day, then try again.",
        "That was tried many times in a short while. Please wait %(num)d days, then try again.",
        seconds // 86400,
    )


def _render(status: int, title: str, message: str | None) -> tuple[Response | str, int]:
    if _wants_json():
        return jsonify(error={"status": status, "title": title, "message": message}), status
    _ensure_clinic_for_error_page()
    return render_template("error.html", status=status, title=title, message=message), status


def _ensure_clinic_for_error_page() -> None:
    """The error page shows the clinic's name; with the database down, use a neutral one."""
    clinic_or_neutral()
