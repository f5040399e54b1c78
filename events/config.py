"""Settings read from the environment, with defaults that run offline.

Production sets DATABASE_URL, REDIS_URL, SECRET_KEY, the Stripe keys and MAIL_*.
With nothing set, the app runs on SQLite in instance/, Celery over SQLite,
the local Stripe emulator and a mail outbox folder.
"""

import os
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("INSTANCE_PATH", Path(__file__).resolve().parent.parent / "instance"))


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'events.sqlite3'}")
    # Heroku-style URLs name the driver "postgres"; SQLAlchemy wants the psycopg 3 dialect.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-not-secret")
    SQLALCHEMY_DATABASE_URI = _database_url()
    # hide_parameters: a database error's message never quotes the values (names, emails,
    # tokens) into a log; the statement is still shown.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}

    # Public site
    SCHEDULE_PAGE_SIZE = int(os.environ.get("SCHEDULE_PAGE_SIZE", "20"))
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    PREFERRED_URL_SCHEME = os.environ.get("PREFERRED_URL_SCHEME", "http")
    # How many proxies in front of gunicorn set X-Forwarded-For/-Proto/-Host (0: none; the
    # headers are then ignored, since anyone could send them).
    PROXY_COUNT = int(os.environ.get("PROXY_COUNT", "0"))
    # After someone changes the catalog or seats, how long their own public pages are checked
    # against the database rather than this process's NOTIFY listener (read-your-writes; longer
    # than a listener can lag, see events/catalog/cache.py).
    PAGE_CACHE_FRESH_SECONDS = int(os.environ.get("PAGE_CACHE_FRESH_SECONDS", "60"))

    # Registration rules (defaults; offerings may override some of them)
    HOLD_MINUTES = int(os.environ.get("HOLD_MINUTES", "15"))
    # A hold whose payment is still in flight when it runs out is kept this much longer.
    PAYMENT_GRACE_MINUTES = int(os.environ.get("PAYMENT_GRACE_MINUTES", "10"))
    MANAGE_LINK_MAX_AGE_DAYS = int(os.environ.get("MANAGE_LINK_MAX_AGE_DAYS", "400"))

    # Celery
    REDIS_URL = os.environ.get("REDIS_URL")
    CELERY_BROKER_URL = REDIS_URL or f"sqla+sqlite:///{INSTANCE_DIR / 'celery-broker.sqlite3'}"

    # Stripe: with no keys, the local emulator (localstripe) on 127.0.0.1:8420.
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "sk_test_localstripe")
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_localstripe")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_localstripe")
    STRIPE_API_BASE = os.environ.get(
        "STRIPE_API_BASE", "" if os.environ.get("STRIPE_SECRET_KEY") else "http://127.0.0.1:8420"
    )

    STRIPE_TIMEOUT_SECONDS = float(os.environ.get("STRIPE_TIMEOUT_SECONDS", "15"))
    # Empty: Stripe's own Stripe.js, or the emulator's mock when STRIPE_API_BASE points at it.
    STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "")
    WAITLIST_OFFER_HOURS = int(os.environ.get("WAITLIST_OFFER_HOURS", "12"))

    # Mail: with no server, .eml files in instance/outbox/.
    MAIL_SERVER = os.environ.get("MAIL_SERVER")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "587"))
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_USE_TLS = _bool("MAIL_USE_TLS", True)
    # A bare address is shown with the clinic's name (from the database); "Name <address>" as is.
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "no-reply@localhost")
    EMAIL_DELIVERY_THREADS = int(os.environ.get("EMAIL_DELIVERY_THREADS", "3"))
    # How long a worker's claim on the emails it is sending lasts unless renewed (it renews
    # while alive): a killed worker's emails go out again about this long after it died.
    OUTBOX_CLAIM_LEASE_SECONDS = float(os.environ.get("OUTBOX_CLAIM_LEASE_SECONDS", "20"))
    MAIL_OUTBOX_DIR = os.environ.get("MAIL_OUTBOX_DIR", str(INSTANCE_DIR / "outbox"))

    # Request bodies: a larger one is answered 413 before it is read.
    # The largest resource file staff may upload.
    RESOURCE_MAX_BYTES = int(os.environ.get("RESOURCE_MAX_BYTES", str(10 * 1024 * 1024)))
    # Any request: an upload plus its form fields (1 MB of margin).
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(RESOURCE_MAX_BYTES + 1024 * 1024)))
    # Stripe's webhook events are a few kB; this leaves room for large ones.
    WEBHOOK_MAX_BYTES = int(os.environ.get("WEBHOOK_MAX_BYTES", str(256 * 1024)))
    # The pay page's JSON (a card token).
    PAY_MAX_BYTES = int(os.environ.get("PAY_MAX_BYTES", "4096"))

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)

    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", REDIS_URL or "memory://")
    # When the limit storage (Redis) is down, every limited route (register, waitlist, cancel,
    # pay, staff sign-in and reset) keeps its own limits counted in this process's memory
    # (with N gunicorn workers, up to N times the limit per address) until Redis answers
    # again: none of them fails because of the limiter. Anything else the limiter raises is
    # logged and the request goes on (fail open): a limiter must never turn a form into a 500.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True
    # Give up on an unreachable storage quickly rather than hold the request.
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}
    RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
    # Per-route limits (per client address), read per request so they can be tuned live.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute; 50 per hour")
    PASSWORD_RESET_RATE_LIMIT = os.environ.get("PASSWORD_RESET_RATE_LIMIT", "5 per minute; 20 per hour")
    REGISTER_RATE_LIMIT = os.environ.get("REGISTER_RATE_LIMIT", "20 per minute; 200 per hour")
    # Card submissions: enough for typos and declines, not for testing stolen cards in bulk.
    PAY_RATE_LIMIT = os.environ.get("PAY_RATE_LIMIT", "30 per minute")
