"""Every setting, declared once: its name, its default and what it means.

Production sets DATABASE_URL, REDIS_URL, SECRET_KEY, the Stripe keys and MAIL_*.
With nothing set, the app runs on SQLite in instance/, Celery over SQLite,
the local Stripe emulator and a mail outbox folder.

Each setting of `Config` is declared through one of the helpers below: `env_str`, `env_int`,
`env_float`, `env_bool` and `env_optional` read it from the environment variable of the same
name; `declare` takes a value computed in code. Each records the setting's default and
one-line meaning in SETTINGS, from which the README's settings tables are printed
(`make settings-table`); tests/unit/test_settings_documented.py fails when they differ.
The code reads a setting as `config["NAME"]`, with no default of its own: the default is here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


@dataclass(frozen=True)
class Setting:
    name: str  # the key in app.config (and Config's attribute)
    meaning: str
    default: str  # the default as the README shows it
    env: str | None  # the environment variable that sets it; None: set in code only


# Every setting, in the order declared (the README's order).
SETTINGS: dict[str, Setting] = {}


def _show(value: object) -> str:
    """A default as the README shows it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int) and value >= 1024 and value % 1024 == 0:
        return f"{value // MB} MB" if value % MB == 0 else f"{value // 1024} kB"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value == "":
        return "empty"
    if isinstance(value, int | float):
        return str(value)
    return f"`{value}`" if isinstance(value, str) else f"`{value!r}`"


def declare(name: str, value: T, meaning: str, *, env: str | None = None, shown: str | None = None) -> T:
    """Record a setting whose value is computed here (env: the variable it comes from, if any).

    shown: how the README states the default, when it is not the value itself (a secret, or a
    default that depends on another setting)."""
    if name in SETTINGS:
        raise ValueError(f"setting {name} declared twice")
    SETTINGS[name] = Setting(name, meaning, shown if shown is not None else _show(value), env)
    return value


def env_str(name: str, default: str, meaning: str, *, shown: str | None = None) -> str:
    declare(name, default, meaning, env=name, shown=shown)
    return os.environ.get(name, default)


def env_optional(name: str, meaning: str, *, shown: str | None = None) -> str | None:
    """A string setting that is unset (None) unless the environment sets it."""
    declare(name, None, meaning, env=name, shown=shown)
    return os.environ.get(name)


def env_int(name: str, default: int, meaning: str, *, shown: str | None = None) -> int:
    declare(name, default, meaning, env=name, shown=shown)
    value = os.environ.get(name)
    return default if value is None else int(value)


def env_float(name: str, default: float, meaning: str, *, shown: str | None = None) -> float:
    declare(name, default, meaning, env=name, shown=shown)
    value = os.environ.get(name)
    return float(default if value is None else value)


def env_bool(name: str, default: bool, meaning: str) -> bool:
    """On for `1`, `true`, `yes` or `on` (any case), off for anything else."""
    declare(name, default, meaning, env=name)
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _database_url(url: str) -> str:
    # Heroku-style URLs name the driver "postgres"; SQLAlchemy wants the psycopg 3 dialect.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# Languages Babel has no locale data for: their gettext catalogue gives the words, and these
# names and patterns give the dates, times and money (events/filters.py). Hmong (White Hmong,
# Hmoob Dawb) is the clinic's next language; its translator checks these words.
CATALOGUE_ONLY_LANGUAGE_PATTERNS: dict[str, dict[str, object]] = {
    "hmn": {
        "name": "Hmoob",
        # Monday first, as Python's weekday() counts.
        "days": ["Hnub Ib", "Hnub Ob", "Hnub Peb", "Hnub Plaub", "Hnub Tsib", "Hnub Rau", "Hnub Xya"],
        "short_days": ["Ib", "Ob", "Peb", "Plaub", "Tsib", "Rau", "Xya"],
        "months": [f"Lub {n} Hlis" for n in range(1, 13)],
        "short_months": [f"{n} Hlis" for n in range(1, 13)],
        "day": "{weekday}, {day} {month}",  # a day in full: "Hnub Ob, 3 Lub 3 Hlis"
        "short_day": "{weekday} {day} {month}",
        "time": "{hour24}:{minute}",  # 24-hour clock: "18:30"
        "money": "{symbol}{amount}",  # "$15.50"
        "decimal": ".",
        "group": ",",
    },
}


class Config:
    # Paths and secrets
    INSTANCE_PATH = env_str(
        "INSTANCE_PATH",
        str(ROOT / "instance"),
        "the folder for the SQLite files, uploads and the mail outbox (environment only)",
        shown="`instance/` in the checkout",
    )
    SECRET_KEY = env_str(
        "SECRET_KEY",
        "dev-only-not-secret",
        "signs sessions and private links; **set a long random value**",
        shown="a dev-only value",
    )
    SQLALCHEMY_DATABASE_URI = declare(
        "SQLALCHEMY_DATABASE_URI",
        _database_url(os.environ.get("DATABASE_URL", f"sqlite:///{Path(INSTANCE_PATH) / 'events.sqlite3'}")),
        "the database: PostgreSQL, e.g. `postgresql://user:pass@host/db`",
        env="DATABASE_URL",
        shown="SQLite in `instance/`",
    )
    SQLALCHEMY_ENGINE_OPTIONS = declare(
        "SQLALCHEMY_ENGINE_OPTIONS",
        {"pool_pre_ping": True, "hide_parameters": True},
        "a pooled connection is checked before use; a database error's message never quotes "
        "the values (names, emails, tokens) into a log, only the statement",
    )

    # Public site
    SCHEDULE_PAGE_SIZE = env_int("SCHEDULE_PAGE_SIZE", 20, "sessions per page of the schedule and the API")
    FEED_MAX_EVENTS = env_int("FEED_MAX_EVENTS", 2000, "the most sessions an iCalendar feed lists")
    PUBLIC_BASE_URL = env_str(
        "PUBLIC_BASE_URL", "http://127.0.0.1:5000", "the site's public address, for links in emails"
    )
    PREFERRED_URL_SCHEME = env_str(
        "PREFERRED_URL_SCHEME", "http", "the scheme of URLs built outside a request (Flask's)"
    )
    # The app's ProxyFix is the only reader of these headers; with 0, gunicorn trusts them from
    # nobody either (gunicorn.conf.py).
    PROXY_COUNT = env_int(
        "PROXY_COUNT",
        0,
        "how many proxies in front of gunicorn set `X-Forwarded-For`/`-Proto`/`-Host` "
        "(0: the headers are ignored); see below the table",
    )
    PAGE_CACHE_ENABLED = env_bool(
        "PAGE_CACHE_ENABLED", True, "keep rendered public pages in each process's memory (off: render each)"
    )
    PAGE_CACHE_SIZE = env_int("PAGE_CACHE_SIZE", 512, "the most pages each process's cache keeps")
    PAGE_CACHE_MAX_BYTES = env_int(
        "PAGE_CACHE_MAX_BYTES", 32 * MB, "the most bytes each process's cache keeps"
    )
    # See events/catalog/cache.py.
    PAGE_CACHE_LISTEN = env_bool(
        "PAGE_CACHE_LISTEN",
        True,
        "on PostgreSQL, a thread per process listens for catalog changes (on SQLite, a check of "
        "PRAGMA data_version), so a cached page needs no query (off: each reads the catalog's "
        "version from the database)",
    )
    # Read-your-writes: longer than a listener can lag (see events/catalog/cache.py).
    PAGE_CACHE_FRESH_SECONDS = env_int(
        "PAGE_CACHE_FRESH_SECONDS",
        60,
        "after someone changes the catalog or seats, how long their own public pages are checked "
        "against the database (read-your-writes across processes)",
    )

    # Languages (events/languages.py): adding one is this setting and its catalogue in translations/.
    LANGUAGES = env_str(
        "LANGUAGES",
        "en,es,so",
        "the languages members can choose, by code, comma separated (English is always offered "
        "and is the default); each needs its catalogue in `translations/`",
    )
    CATALOGUE_ONLY_LANGUAGES = declare(
        "CATALOGUE_ONLY_LANGUAGES",
        CATALOGUE_ONLY_LANGUAGE_PATTERNS,
        "languages Babel has no data for, with their own name and how dates, times and money are "
        "written in them (offered once listed in `LANGUAGES`)",
        shown="Hmong (`hmn`)",
    )
    # Members are in Minnesota: a language's own Babel locale writes US dollars as "18 US$"
    # (es) or "US$18" (so); a US locale writes "$18" as every price they see around them.
    MONEY_LOCALES = declare(
        "MONEY_LOCALES",
        {"es": "es_US", "so": "en_US"},
        "the Babel locale each language writes money in (a US one, so dollars read `$18`); a "
        "language not listed writes money its own locale's way",
        shown="`es`: `es_US`, `so`: `en_US`",
    )

    # Registration rules (defaults; offerings may override some of them)
    HOLD_MINUTES = env_int("HOLD_MINUTES", 15, "how long a seat is held while someone pays")
    PAYMENT_GRACE_MINUTES = env_int(
        "PAYMENT_GRACE_MINUTES",
        10,
        "how much longer a hold is kept when its payment is still in flight (a charge's answer lost)",
    )
    MANAGE_LINK_MAX_AGE_DAYS = env_int(
        "MANAGE_LINK_MAX_AGE_DAYS", 400, "how long a registration's emailed manage link works"
    )
    BALANCE_LINK_MAX_AGE_DAYS = env_int(
        "BALANCE_LINK_MAX_AGE_DAYS",
        14,
        "how long the emailed link to pay what a booking still owes (a transfer onto a dearer date) works",
    )
    WAITLIST_OFFER_HOURS = env_int(
        "WAITLIST_OFFER_HOURS", 12, "the longest a waitlist offer stays open (shorter as the session nears)"
    )

    # Check-in on the roster (and walk-ins, which are checked in at once)
    CHECKIN_OPENS_MINUTES_BEFORE = env_int(
        "CHECKIN_OPENS_MINUTES_BEFORE", 60, "how many minutes before a session starts its check-in opens"
    )
    CHECKIN_CLOSES_DAYS_AFTER = env_int(
        "CHECKIN_CLOSES_DAYS_AFTER",
        0,
        "check-in closes at the end of the session's day in its location's zone, plus this many days",
    )

    # Celery, the worker and the outbox
    REDIS_URL = env_optional(
        "REDIS_URL",
        "the Celery broker and the rate limits' storage",
        shown="unset: Celery over SQLite, limits in memory",
    )
    CELERY_BROKER_URL = declare(
        "CELERY_BROKER_URL",
        REDIS_URL or f"sqla+sqlite:///{Path(INSTANCE_PATH) / 'celery-broker.sqlite3'}",
        "the Celery broker",
        shown="`REDIS_URL`, else SQLite in `instance/`",
    )
    WORKER_SWEEP_SECONDS = env_float(
        "WORKER_SWEEP_SECONDS",
        60,
        "how often beat queues the due reminders and runs housekeeping (lapsed holds and offers, "
        "pending refunds, open payments)",
    )
    # Delivery also returns a dead worker's emails once their claim's lease runs out, and costs two
    # small queries when there is nothing to send.
    WORKER_DELIVER_SWEEP_SECONDS = env_float(
        "WORKER_DELIVER_SWEEP_SECONDS",
        min(WORKER_SWEEP_SECONDS, 10),
        "how often beat sends whatever is due in the outbox",
        shown="`WORKER_SWEEP_SECONDS`, at most 10",
    )
    OUTBOX_PUBLISH = declare(
        "OUTBOX_PUBLISH",
        None,
        "after a commit that queued emails, nudge the worker through the broker to send them now "
        "(else beat's sweep does)",
        shown="unset: on, except under `TESTING`",
    )
    EMAIL_DELIVERY_THREADS = env_int(
        "EMAIL_DELIVERY_THREADS", 3, "threads sending the outbox in one delivery run (SQLite: one)"
    )
    # The worker renews its claim while alive.
    OUTBOX_CLAIM_LEASE_SECONDS = env_float(
        "OUTBOX_CLAIM_LEASE_SECONDS",
        20,
        "how long a worker's claim on the emails it is sending lasts: a killed worker's emails "
        "go out again about this long after it died",
    )

    # Stripe: with no keys, the local emulator (localstripe) on 127.0.0.1:8420.
    STRIPE_SECRET_KEY = env_str(
        "STRIPE_SECRET_KEY",
        "sk_test_localstripe",
        "Stripe's secret key; with it set, the real Stripe and `https://js.stripe.com/v3/` are used",
        shown="the local emulator's",
    )
    STRIPE_PUBLISHABLE_KEY = env_str(
        "STRIPE_PUBLISHABLE_KEY",
        "pk_test_localstripe",
        "Stripe's publishable key, given to Stripe.js on the pay page",
        shown="the local emulator's",
    )
    STRIPE_WEBHOOK_SECRET = env_str(
        "STRIPE_WEBHOOK_SECRET",
        "whsec_localstripe",
        "checks the signature of the events Stripe posts to `/stripe/webhook`",
        shown="the local emulator's",
    )
    STRIPE_API_BASE = env_str(
        "STRIPE_API_BASE",
        "" if os.environ.get("STRIPE_SECRET_KEY") else "http://127.0.0.1:8420",
        "where the Stripe API is (empty: Stripe's own)",
        shown="the local emulator, `http://127.0.0.1:8420`; empty when `STRIPE_SECRET_KEY` is set",
    )
    STRIPE_TIMEOUT_SECONDS = env_float("STRIPE_TIMEOUT_SECONDS", 15, "how long one Stripe call may take")
    STRIPE_JS_URL = env_str(
        "STRIPE_JS_URL",
        "",
        "where the pay page loads Stripe.js from (empty: Stripe's own, or the emulator's mock "
        "when `STRIPE_API_BASE` points at it)",
    )

    # Mail: with no server, .eml files in instance/outbox/.
    MAIL_SERVER = env_optional("MAIL_SERVER", "the SMTP server (unset: `.eml` files in `MAIL_OUTBOX_DIR`)")
    MAIL_PORT = env_int("MAIL_PORT", 587, "the SMTP server's port")
    MAIL_USERNAME = env_optional("MAIL_USERNAME", "the SMTP login (unset: none)")
    MAIL_PASSWORD = env_optional("MAIL_PASSWORD", "the SMTP password")
    MAIL_USE_TLS = env_bool("MAIL_USE_TLS", True, "STARTTLS to the SMTP server")
    MAIL_SMTPUTF8 = env_bool(
        "MAIL_SMTPUTF8",
        False,
        "the mail server accepts non-ASCII local parts (SMTPUTF8); unset, the forms refuse "
        "addresses with accents before the @",
    )
    MAIL_DEFAULT_SENDER = env_str(
        "MAIL_DEFAULT_SENDER",
        "no-reply@localhost",
        "the From address; a bare address is shown with the clinic's name, `Name <address>` as written",
    )
    MAIL_OUTBOX_DIR = env_str(
        "MAIL_OUTBOX_DIR",
        str(Path(INSTANCE_PATH) / "outbox"),
        "where emails are written without `MAIL_SERVER` (shown at `/_dev/outbox/`)",
        shown="`instance/outbox/`",
    )
    APP_ENV = env_str(
        "APP_ENV", "", "`production` hides the development outbox page even when `MAIL_SERVER` is unset"
    )

    # Uploads and request bodies: a larger body is answered 413 before it is read.
    UPLOAD_FOLDER = env_optional(
        "UPLOAD_FOLDER", "where the resource files staff upload are kept", shown="`instance/uploads/`"
    )
    RESOURCE_MAX_BYTES = env_int("RESOURCE_MAX_BYTES", 10 * MB, "the largest resource file staff may upload")
    MAX_CONTENT_LENGTH = env_int(
        "MAX_CONTENT_LENGTH",
        RESOURCE_MAX_BYTES + 1 * MB,
        "the largest request body (an upload and its form fields)",
        shown="`RESOURCE_MAX_BYTES` + 1 MB",
    )
    # Werkzeug applies it to multipart forms' fields; events/inputs.py to urlencoded forms too.
    MAX_FORM_MEMORY_SIZE = declare(
        "MAX_FORM_MEMORY_SIZE", 500_000, "the largest form without files, in bytes (Flask's default)"
    )
    WEBHOOK_MAX_BYTES = env_int(
        "WEBHOOK_MAX_BYTES",
        256 * 1024,
        "the largest body accepted at `/stripe/webhook` (Stripe's are a few kB)",
    )
    PAY_MAX_BYTES = env_int("PAY_MAX_BYTES", 4096, "the largest JSON body of the pay page's card submission")

    # Session cookie
    SESSION_COOKIE_HTTPONLY = declare(
        "SESSION_COOKIE_HTTPONLY", True, "page scripts cannot read the session cookie"
    )
    SESSION_COOKIE_SAMESITE = declare(
        "SESSION_COOKIE_SAMESITE", "Lax", "the session cookie is not sent with another site's POST"
    )
    SESSION_COOKIE_SECURE = env_bool(
        "SESSION_COOKIE_SECURE", False, "the session cookie is sent over HTTPS only: set to `1` behind HTTPS"
    )

    # Rate limits. When the limit storage (Redis) is down, every limited route (register,
    # waitlist, cancel, pay, staff sign-in and reset) keeps its own limits counted in this
    # process's memory (with N gunicorn workers, up to N times the limit per address) until Redis
    # answers again: none of them fails because of the limiter. Anything else the limiter raises
    # is logged and the request goes on (fail open): a limiter must never turn a form into a 500.
    RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True, "per-address rate limits (429 beyond)")
    RATELIMIT_STORAGE_URI = env_str(
        "RATELIMIT_STORAGE_URI",
        REDIS_URL or "memory://",
        "where the rate limits are counted",
        shown="`REDIS_URL`, else `memory://`",
    )
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = declare(
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED",
        True,
        "while the limit storage is down, each process counts the limits in its memory",
    )
    RATELIMIT_SWALLOW_ERRORS = declare(
        "RATELIMIT_SWALLOW_ERRORS", True, "a limiter error is logged and the request goes on"
    )
    RATELIMIT_STORAGE_OPTIONS = declare(
        "RATELIMIT_STORAGE_OPTIONS",
        {"socket_connect_timeout": 1, "socket_timeout": 1},
        "give up on an unreachable limit storage after a second rather than hold the request",
    )
    # Per-route limits (per client address), read per request so they can be tuned live.
    LOGIN_RATE_LIMIT = env_str(
        "LOGIN_RATE_LIMIT", "10 per minute; 50 per hour", "staff sign-in attempts per address"
    )
    PASSWORD_RESET_RATE_LIMIT = env_str(
        "PASSWORD_RESET_RATE_LIMIT", "5 per minute; 20 per hour", "password reset requests per address"
    )
    REGISTER_RATE_LIMIT = env_str(
        "REGISTER_RATE_LIMIT",
        "20 per minute; 200 per hour",
        "registrations, waitlist joins and cancellations per address",
    )
    PAY_RATE_LIMIT = env_str(
        "PAY_RATE_LIMIT",
        "30 per minute",
        "card submissions per address: enough for typos and declines, not for testing stolen cards",
    )
    # "Find my registrations" (events/registration/lookup.py): the page answers the same for
    # every address; these bound how often it can be asked and how many emails it can cause.
    FIND_REGISTRATIONS_RATE_LIMIT = env_str(
        "FIND_REGISTRATIONS_RATE_LIMIT",
        "5 per minute; 30 per hour",
        "“Find my registrations” requests per client address",
    )
    FIND_REGISTRATIONS_ADDRESS_RATE_LIMIT = env_str(
        "FIND_REGISTRATIONS_ADDRESS_RATE_LIMIT",
        "3 per hour; 10 per day",
        "“Find my registrations” requests per email address asked about, from any client",
    )
    FIND_REGISTRATIONS_EMAIL_MINUTES = env_int(
        "FIND_REGISTRATIONS_EMAIL_MINUTES",
        10,
        "at most one “Find my registrations” email per email address in this many minutes",
    )

    # Privacy (events/privacy/): how long personal data is kept, and the links that export or erase it
    RETENTION_MONTHS = env_int(
        "RETENTION_MONTHS",
        24,
        "months after a person's last session before their name, email, phone and notes are "
        "anonymised by the nightly task (counts, attendance and money stay)",
    )
    PRIVACY_LINK_MINUTES = env_int(
        "PRIVACY_LINK_MINUTES",
        60,
        "how long an emailed “Download my data” or “Delete my data” link works (it works once)",
    )

    # Booking with a class pass (events/passes/booking.py)
    PASS_BOOKING_LINK_MINUTES = env_int(
        "PASS_BOOKING_LINK_MINUTES",
        60,
        "how long the emailed “confirm your booking with your class pass” link works",
    )
    PASS_RETURN_EXTENSION_DAYS = env_int(
        "PASS_RETURN_EXTENSION_DAYS",
        30,
        "when the clinic cancels or moves a class booked with a class pass, the credits it gives "
        "back stay usable at least this many days: a pass expired, or expiring sooner, is extended "
        "(0: never; they expire with the pass)",
    )

    # gunicorn (read by gunicorn.conf.py)
    PORT = env_int("PORT", 8000, "the port gunicorn listens on")
    WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", 2, "gunicorn's worker processes")
    WEB_THREADS = env_int("WEB_THREADS", 4, "threads per gunicorn worker")
    FORWARDED_ALLOW_IPS = env_str(
        "FORWARDED_ALLOW_IPS",
        "127.0.0.1,::1",
        "with `PROXY_COUNT` above 0: the proxy's address(es), comma-separated, the only peers "
        "gunicorn accepts forwarded headers from",
    )


def settings_table() -> str:
    """The README's settings tables, in Markdown (`make settings-table` writes them there)."""
    from_env = ["| variable | meaning | default |", "|---|---|---|"]
    in_code = ["| setting | meaning | value |", "|---|---|---|"]
    for setting in SETTINGS.values():
        if setting.env is None:
            in_code.append(f"| `{setting.name}` | {setting.meaning} | {setting.default} |")
        else:
            name = f"`{setting.env}`"
            if setting.env != setting.name:
                name += f" (`{setting.name}`)"
            from_env.append(f"| {name} | {setting.meaning} | {setting.default} |")
    note = "Set in code (tests change them through `create_app(config)`):"
    return "\n".join([*from_env, "", note, "", *in_code]) + "\n"
