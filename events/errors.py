"""Friendly error pages, and JSON errors under /api/."""

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException


class BadFilter(ValueError):
    """A query parameter that cannot be understood; shown to the user as a 400."""


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.endswith(".json")


def register(app):
    @app.errorhandler(BadFilter)
    def bad_filter(error):
        return _render(400, "That search could not be understood", str(error))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        titles = {
            404: "We couldn't find that page",
            400: "That request could not be understood",
            405: "That isn't allowed here",
            429: "Too many requests",
        }
        return _render(error.code or 500, titles.get(error.code, error.name), error.description)

    @app.errorhandler(Exception)
    def unexpected(error):
        app.logger.exception("Unhandled error on %s", request.path)
        # A failed statement leaves the transaction aborted (on PostgreSQL); the error page
        # itself reads the clinic's name, so start clean.
        from events.extensions import db

        try:
            db.session.rollback()
        except Exception:  # the connection itself may be gone; the page must still render
            app.logger.warning("Rollback after an unhandled error failed", exc_info=True)
        return _render(500, "Something went wrong on our side", "Please try again in a moment.")


def _render(status: int, title: str, message: str):
    if _wants_json():
        return jsonify(error={"status": status, "title": title, "message": message}), status
    return render_template("error.html", status=status, title=title, message=message), status
