"""The Flask application factory: create_app(config=None) builds the app, its extensions and blueprints."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from events import cli, errors, filters, inputs, languages, migrating, pricing, redaction, security
from events.api.views import bp as api_bp
from events.catalog.cache import CachedPageMiddleware, csrf_token_for_page, mark_changer_fresh
from events.catalog.seat_slots import seat_slot
from events.catalog.views import bp as catalog_bp
from events.clinic import current_clinic
from events.config import Config
from events.db_sqlite import configure_sqlite
from events.extensions import babel, csrf, db, limiter, login_manager
from events.models import Clinic
from events.notifications import devmail
from events.passes.booking_views import bp as pass_booking_bp
from events.passes.views import bp as passes_bp
from events.payments.declines import decline_message
from events.payments.webhooks import bp as payments_bp
from events.privacy.views import bp as privacy_bp
from events.registration.views import bp as registration_bp
from events.resources.views import bp as resources_bp
from events.staff import accounts  # noqa: F401  (registers the user loader)
from events.staff.views import bp as staff_bp

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "events" / "static"),
        instance_path=Config.INSTANCE_PATH,
    )

    # Before anything logs: no private link token or address reaches a log (events/redaction.py).
    redaction.install()
    app.config.from_object(Config)
    if config:
        app.config.update(config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    inputs.install_converters(app)  # before any route: bounded ids, no control characters in paths

    db.init_app(app)

    @app.teardown_appcontext  # runs before Flask-SQLAlchemy's own (teardowns run in reverse)
    def end_database_session(_error: BaseException | None) -> None:
        """End the request's database session even on a connection the database has just cut
        (a restart): the rollback raises then, and the response already made would be
        replaced by the server's bare 500."""
        try:
            db.session.remove()
        except sa.exc.DBAPIError:
            app.logger.warning("Discarding a database session whose connection was lost", exc_info=True)
            try:
                db.session.registry().invalidate()  # close its connections, no rollback, out of the pool
            finally:
                db.session.registry.clear()

    migrating.install(app)  # Flask-Migrate and Alembic load only when used
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    # Member-facing text is translated from translations/ (gettext); staff pages stay English.
    # A test may add a directory of its own (BABEL_TRANSLATION_DIRECTORIES, ';'-separated).
    babel.init_app(
        app,
        default_translation_directories=str(ROOT / "translations"),
        locale_selector=languages.babel_locale_selector,
    )
    languages.register(app)

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            configure_sqlite(db.engine)

    app.register_blueprint(catalog_bp)
    app.register_blueprint(registration_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(resources_bp)
    app.register_blueprint(privacy_bp)
    app.register_blueprint(passes_bp)
    app.register_blueprint(pass_booking_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)
    # The read-only catalog and API are served from the page cache; rate limits guard the
    # routes that write or authenticate (registration, payment, staff sign-in and reset).
    limiter.exempt(catalog_bp)
    limiter.exempt(api_bp)

    devmail.register(app)

    errors.register(app)
    security.register(app)
    inputs.register(app)

    # Cached pages carry a placeholder that is replaced by each visitor's token.
    app.jinja_env.globals["csrf_token"] = csrf_token_for_page
    app.context_processor(lambda: {"csrf_token": csrf_token_for_page})  # after Flask-WTF's, so it wins
    # The schedule's seat badges, left as slots while a page is rendered for its parts.
    app.jinja_env.globals["seat_slot"] = seat_slot
    filters.register(app)
    pricing.register_template_globals(app)
    # A declined card in the member's words (the payment-failed email), chosen by Stripe's code.
    app.jinja_env.globals["decline_message"] = decline_message

    app.after_request(mark_changer_fresh)
    # (Flask's documented way to wrap its WSGI app; a type checker sees a method assigned to.)
    app.wsgi_app = CachedPageMiddleware(app.wsgi_app, app)  # type: ignore[method-assign]
    # Outermost, so the page cache sees the client's scheme and host too.
    app.wsgi_app = security.behind_proxies(  # type: ignore[method-assign, assignment]
        app.wsgi_app, app.config["PROXY_COUNT"]
    )

    cli.register(app)

    @app.context_processor
    def inject_clinic() -> dict[str, Clinic]:
        return {"clinic": current_clinic()}

    return app
