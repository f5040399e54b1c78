"""Rendered public pages, cached per process with exact invalidation.

A page is stored under its path, its query arguments, the current minute (the schedule hides
sessions as they start) and the catalog fingerprint: the catalog_state counter plus the sum of
every seat pool's version. Any change that could alter a public page changes the fingerprint in
the same transaction.

On PostgreSQL the fingerprint needs no query per request: every such transaction also sends
NOTIFY catalog_changed (delivered only if it commits), and one listener thread per process
counts the notifications; the process that commits counts its own change at once. While the
listener is not connected (startup, a database restart) requests read the fingerprint from the
database instead, and reconnecting counts as a change, so nothing missed meanwhile is served.

On SQLite (the embedded default) the same role is played by PRAGMA data_version, read on a
connection of the process's own: it moves whenever any connection of any process commits, and
reading it takes no lock. The fingerprint is read from the database only when it has moved, so
a hit there takes neither SQLite's write lock nor a query (SqliteChanges).

How fresh, exactly:
- The person who made a change (a registration, a cancellation, an admin edit) sees it on
  their very next page, whichever process serves it: the response to the change sets a short
  cookie (FRESH_COOKIE, PAGE_CACHE_FRESH_SECONDS) and, while it lasts, their public pages use
  the fingerprint read from the database (a cache miss only when something did change), never
  the replay middleware.
- In the process that committed the change, everyone sees it at once.
- Everyone else, served by another process, may get the page as it was until that process's
  listener thread has received the NOTIFY: normally within a few milliseconds of the commit,
  tens of milliseconds when that process is busy, since the thread waits its turn for the GIL
  (measured: up to 16 ms under page load, 7 stale reads of 14,123; up to 30 ms beside a
  CPU-bound thread). If the listener's connection dies without a word (a NAT, a failover),
  its TCP keepalives notice within about 35 s and the reconnect counts as a change; until
  then that process may serve what it had.

A miss on the schedule after a change to seats only renders no page: it is rebuilt from the
parts kept from its last render and each card's seat badge (events/catalog/seat_slots.py), with
the seats read from the database, or, for a change another process made, from its notification
(KnownSeats: a seat-only change's NOTIFY carries each pool's seats left).

Pages with forms carry a placeholder instead of the visitor's CSRF token; it is filled in on
every response, so cached HTML holds nothing personal. A visitor with flashed messages pending
gets a fresh render. The answer to a registration that finds the class full (the crowd racing
for the last seats) is cached the same way, under the POST's path: placeholders stand for the
person's answers in the waitlist form, filled in, escaped, on each response (cached(fields=...)).

Pages that hold nothing per visitor (no form token, no cookie set) are also served by
`CachedPageMiddleware` before Flask's request machinery, to visitors without a session cookie:
the complete response Flask produced (status, every header, body) replayed for the identical
raw request (scheme, host, path, query string) under the same minute and fingerprint. A hit
there skips routing, sessions, the rate limiter and the after-request hooks, which cost more
than the cached page itself; invalidation is exactly the same, since the fingerprint is.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf
from markupsafe import escape
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from werkzeug.wrappers import Request

from events.extensions import db
from events.languages import current_language, environ_language, languages_of
from events.models import (
    CatalogState,
    Clinic,
    ConsentDocument,
    ConsentTranslation,
    ConsentVersion,
    Location,
    Offering,
    OfferingConsent,
    OfferingTranslation,
    PriceTier,
    PriceTierTranslation,
    Resource,
    SeatPool,
    Session,
    User,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CSRF_PLACEHOLDER = "__csrf-token-placeholder__"
# A form field's value on a page cached for everyone who posts the same form (cached(fields=...)):
# the page is rendered with this instead of their answer, filled in on each response.
FIELD_PLACEHOLDER = "__field-{}-placeholder__"
_FIELD_PLACEHOLDERS = re.compile(rb"__field-([a-z_]+)-placeholder__")
# Set by `cached()` in the WSGI environ when the response may be replayed by the middleware.
REPLAYABLE_KEY = "events.page_cache.replay_key"
# (A consent document's versions show on the offering pages that require it.)
CATALOG_MODELS = (
    Offering,
    OfferingTranslation,
    PriceTier,  # (the offering page and the API show an offering's tiers)
    PriceTierTranslation,
    Session,
    Location,
    Clinic,
    User,
    Resource,
    ConsentDocument,
    ConsentVersion,
    ConsentTranslation,
    OfferingConsent,
)
# What public pages show of a staff account (an instructor's name, and bio on offering pages).
# Any other change to a saved account - a sign-out or deactivation (session_version,
# is_active), a new password, a role or email - leaves every public page as it was, so it
# must not empty every process's page cache.
PUBLIC_USER_COLUMNS = ("name", "bio")
# Set on the response to a request that changed the catalog or seats: read-your-writes.
FRESH_COOKIE = "catalog_fresh"


class PageCache:
    def __init__(self, max_entries: int = 512, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._entries: OrderedDict[tuple, tuple] = OrderedDict()
        self._sizes: dict[tuple, int] = {}
        self._lock = threading.Lock()
        self._flights: dict[tuple, threading.Lock] = {}
        self.max_entries = max_entries
        # Bounded in bytes too: any query string makes a new entry, and a feed can be large.
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> tuple | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return entry

    def get_or_render(self, key: tuple, render: Callable[[], tuple | None]) -> tuple | None:
        """The entry under key, rendering it if missing. Concurrent misses on one key render
        it once (the others wait for it): after a change or at a new minute every thread
        misses at once, and rendering the same page side by side only slows them all."""
        entry = self.get(key)
        if entry is not None:
            return entry
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        try:
            with flight:
                with self._lock:
                    entry = self._entries.get(key)  # rendered while we waited?
                if entry is None:
                    entry = render()
                    if entry is not None:
                        self.put(key, entry)
                return entry
        finally:
            with self._lock:
                self._flights.pop(key, None)

    def put(self, key: tuple, value: tuple) -> None:
        size = sum(len(part) for part in value if isinstance(part, bytes))
        with self._lock:
            self.bytes += size - self._sizes.get(key, 0)
            self._entries[key], self._sizes[key] = value, size
            self._entries.move_to_end(key)
            while self._entries and (len(self._entries) > self.max_entries or self.bytes > self.max_bytes):
                old_key, _ = self._entries.popitem(last=False)
                self.bytes -= self._sizes.pop(old_key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._sizes.clear()
            self.bytes = 0


def page_cache() -> PageCache:
    ext = current_app.extensions
    if "page_cache" not in ext:
        cfg = current_app.config
        ext["page_cache"] = PageCache(cfg["PAGE_CACHE_SIZE"], cfg["PAGE_CACHE_MAX_BYTES"])
    return ext["page_cache"]


# A seat pool's seats left and its version (bumped with every change to its seats), by pool id.
PoolSeats = Mapping[int, tuple[int, int]]


class KnownSeats:
    """Seats left per seat pool and the catalog version, as read from the database or brought by
    notifications: a schedule page rebuilt after a seat change then needs no query
    (events/catalog/seat_slots.py).

    Values read from the database are kept only if nothing was learnt between the moment before
    they were read and the moment they are kept (`generation`). Each pool's version orders its
    values: a value never replaces a newer one, and two different values at one version (a change
    that did not bump it) forget the pool."""

    MAX_POOLS = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.generation = 0
        self.catalog_version: int | None = None
        self.seats: dict[int, tuple[int, int]] = {}

    def learn(self, seats: PoolSeats | None, heard: bool = True) -> None:
        """Pools' values after a change. heard: from a notification (in commit order); else this
        process's own commit, counted before its notification and maybe after a later change's,
        so learnt only over a known older value. None: anything may have changed."""
        with self._lock:
            self.generation += 1
            if seats is None:
                self.catalog_version = None
                self.seats.clear()
                return
            for pool_id, (left, version) in seats.items():
                known = self.seats.get(pool_id)
                if known is None:
                    if heard:
                        self.seats[pool_id] = (left, version)
                elif version > known[1]:
                    self.seats[pool_id] = (left, version)
                elif version == known[1] and left != known[0]:
                    del self.seats[pool_id]

    def read(self, pool_ids: Iterable[int]) -> tuple[int, dict[int, int]] | None:
        """(catalog version, seats left of each pool) if all are known; else None."""
        with self._lock:
            if self.catalog_version is None:
                return None
            try:
                return self.catalog_version, {pool_id: self.seats[pool_id][0] for pool_id in pool_ids}
            except KeyError:
                return None

    def keep(self, generation: int, catalog_version: int, seats: PoolSeats) -> None:
        """Values read from the database after `generation` was taken, kept if nothing was
        learnt since."""
        with self._lock:
            if generation != self.generation:
                return
            if self.catalog_version != catalog_version:
                self.seats.clear()
            self.catalog_version = catalog_version
            if len(self.seats) + len(seats) > self.MAX_POOLS:
                self.seats.clear()
            self.seats.update(seats)


SEATS_PAYLOAD = "seats:"


def seats_notification(seats: PoolSeats) -> str:
    """The NOTIFY for a change to seats only, with each pool's seats left and version (a plain
    NOTIFY: a change to anything)."""
    payload = ",".join(
        f"{int(pool_id)}={int(left)}@{int(version)}" for pool_id, (left, version) in sorted(seats.items())
    )
    if not payload or len(payload) > 7000:  # PostgreSQL's payloads stop at 8000 bytes
        return f"NOTIFY {CatalogListener.CHANNEL}"
    return f"NOTIFY {CatalogListener.CHANNEL}, '{SEATS_PAYLOAD}{payload}'"


def seats_notification_sql(
    pool_id: sa.ColumnElement[int], seats_left: sa.ColumnElement[int], version: sa.ColumnElement[int]
) -> sa.ColumnElement[Any]:
    """seats_notification() as an SQL expression, for a statement that changes a pool's seats
    itself (events/registration/seats.py take_seat_and_register): pg_notify is delivered on
    commit, like NOTIFY, with the values the statement wrote."""
    payload = sa.func.format(f"{SEATS_PAYLOAD}%s=%s@%s", pool_id, seats_left, version)
    return sa.func.pg_notify(CatalogListener.CHANNEL, payload)


def note_seats_changed(session: OrmSession, seats: PoolSeats) -> None:
    """Record a change to seats written by a statement the flush does not see (with its
    notification sent by the statement, seats_notification_sql), as _bump_catalog_version
    records one it flushes: on commit this process counts it and the visitor gets fresh pages."""
    if not (session.info.get("catalog_changed") and session.info.get("seat_pools_changed") is None):
        session.info["seat_pools_changed"] = {**session.info.get("seat_pools_changed", {}), **seats}
    session.info["catalog_changed"] = True


def changed_seats(payload: str) -> dict[int, tuple[int, int]] | None:
    """The seats a notification brings; None when it may be about anything."""
    if not payload.startswith(SEATS_PAYLOAD):
        return None
    try:
        seats = {}
        for part in payload[len(SEATS_PAYLOAD) :].split(","):
            pool_id, rest = part.split("=")
            left, version = rest.split("@")
            seats[int(pool_id)] = (int(left), int(version))
        return seats
    except ValueError:
        return None


class CatalogListener:
    """Counts catalog_changed notifications in a daemon thread (one per process)."""

    CHANNEL = "catalog_changed"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.version = 0
        self.connected = False
        self.seats = KnownSeats()
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="catalog-listener", daemon=True).start()

    def bump(self, seats: PoolSeats | None = None, own: bool = False) -> None:
        """A change: to those seat pools' seats only, or (None) to anything. own: this
        process's change, counted at its commit, before the notification."""
        # First: a request that sees the new version must find the seats current, or none.
        self.seats.learn(seats, heard=not own)
        with self._lock:
            self.version += 1

    def _run(self) -> None:
        import psycopg

        while True:
            try:
                # Keepalives: a connection dropped without a word (a NAT, a failover) is noticed
                # in about 35 s and replaced, instead of waiting forever for notifications.
                with psycopg.connect(
                    self.dsn,
                    autocommit=True,
                    connect_timeout=5,
                    keepalives=1,
                    keepalives_idle=20,
                    keepalives_interval=5,
                    keepalives_count=3,
                ) as conn:
                    conn.execute(f"LISTEN {self.CHANNEL}")
                    self.bump()  # anything that changed while we were not listening
                    self.connected = True
                    for notification in conn.notifies():
                        self.bump(changed_seats(notification.payload))
            except Exception:  # noqa: S110 - the database is away; requests fall back to queries
                pass
            self.connected = False
            time.sleep(0.5)


_listeners: dict[str, CatalogListener] = {}
_listeners_lock = threading.Lock()


def catalog_listener() -> CatalogListener | None:
    """This process's listener for the app's PostgreSQL database (None on SQLite).

    Resolved once per app, not on every request (this sits on the cached-page path)."""
    ext = current_app.extensions
    if "catalog_listener" not in ext:
        ext["catalog_listener"] = _listener_for(db.engine.url)
    return ext["catalog_listener"]


def _listener_for(url: sa.URL) -> CatalogListener | None:
    if url.get_backend_name() != "postgresql" or not current_app.config["PAGE_CACHE_LISTEN"]:
        return None
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with _listeners_lock:
        if dsn not in _listeners:
            _listeners[dsn] = CatalogListener(dsn)
        return _listeners[dsn]


class SqliteChanges:
    """The embedded default's version check (SQLite has no NOTIFY): PRAGMA data_version, read
    on a connection of this process's own that never writes, changes whenever any other
    connection, of any process, commits to the database file. It reads SQLite's shared
    memory: no transaction, no lock, not even while another connection holds the write lock.

    The catalog fingerprint is read from the database (with the app's BEGIN IMMEDIATE) only
    when that number has moved, and kept with the number it was read at: a cached page's hit
    then takes no write lock and runs no query."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._pid = 0  # whose connection it is: a forked worker opens its own
        self._lock = threading.Lock()
        self._known: tuple[int, tuple] | None = None  # (data_version, fingerprint read at it)

    def data_version(self) -> int:
        with self._lock:
            if self._connection is None or self._pid != os.getpid():
                self._connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._pid = os.getpid()
            return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def known_fingerprint(self) -> tuple | None:
        """The fingerprint, if nothing was committed since it was read; else None."""
        known = self._known
        if known is None or known[0] != self.data_version():
            return None
        return known[1]

    def fingerprint(self) -> tuple:
        """The current fingerprint: the one kept, or read afresh if anything was committed."""
        known = self.known_fingerprint()
        if known is not None:
            return known
        # The number first: a commit between the two reads makes the number move again, so
        # the fingerprint read here is never kept for longer than it is true.
        version = self.data_version()
        fingerprint = ("sqlite", *_queried_fingerprint())
        self._known = (version, fingerprint)
        return fingerprint


def sqlite_changes() -> SqliteChanges | None:
    """This app's SqliteChanges (None on PostgreSQL, for an in-memory SQLite database, or with
    PAGE_CACHE_LISTEN off)."""
    ext = current_app.extensions
    if "sqlite_changes" not in ext:
        url = db.engine.url
        on_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        listen = current_app.config["PAGE_CACHE_LISTEN"]
        ext["sqlite_changes"] = SqliteChanges(str(url.database)) if on_file and listen else None
    return ext["sqlite_changes"]


def catalog_fingerprint() -> tuple:
    listener = catalog_listener()
    if listener is not None and listener.connected:
        return _notified_fingerprint(listener)
    changes = sqlite_changes()
    if changes is not None:
        return changes.fingerprint()
    return ("queried", *_queried_fingerprint())


def _notified_fingerprint(listener: CatalogListener) -> tuple:
    return ("notified", listener.version)


def _queried_fingerprint() -> tuple[int, int]:
    row = db.session.execute(
        sa.select(
            sa.select(CatalogState.version).where(CatalogState.id == 1).scalar_subquery(),
            sa.select(sa.func.coalesce(sa.func.sum(SeatPool.version), 0)).scalar_subquery(),
        )
    ).one()
    return (row[0] or 0, int(row[1] or 0))


def csrf_token_for_page() -> str:
    """The Jinja `csrf_token()`: a placeholder while rendering a page for the cache."""
    return CSRF_PLACEHOLDER if g.get("rendering_for_cache") else generate_csrf()


def field_placeholder(name: str) -> str:
    """What a page rendered for cached(fields=...) shows as the value of the form field `name`."""
    return FIELD_PLACEHOLDER.format(name)


def cached(
    render: Callable[[], Response | str],
    fields: Mapping[str, str] | None = None,
    variant: tuple = (),
) -> Response:
    """Serve this request's page from the cache, or render and store it.

    fields: a form's answers shown on the page (a POST's answer that is the same page for
    everyone but for them, say "that class has just filled up" with their name and email in
    the waitlist form): `render` writes field_placeholder(name) where each value goes, and each
    response gets the values, HTML-escaped as Jinja would, in their place. variant: whatever
    else the page depends on beyond the request's path, query and language (the date chosen)."""
    if not current_app.config["PAGE_CACHE_ENABLED"] or session.get("_flashes"):
        return current_app.make_response(render())
    minute = int(time.time() // 60)
    if request.cookies.get(FRESH_COOKIE):
        # This visitor just changed something: the database says what is current, even if
        # this process's listener has not heard of it yet.
        fingerprint = ("queried", *_queried_fingerprint())
    else:
        fingerprint = catalog_fingerprint()
    g.page_fingerprint = fingerprint  # (notified: the seats this process knows are current enough)
    language = current_language()
    key = (
        request.scheme,
        request.host,
        request.path,
        tuple(sorted(request.args.items(multi=True))),
        language,
        minute,
        fingerprint,
        variant,
        tuple(sorted(fields or ())),
    )
    not_cacheable = []

    def render_entry() -> tuple | None:
        g.rendering_for_cache = True
        try:
            response = current_app.make_response(render())
        finally:
            g.rendering_for_cache = False
        if response.status_code != 200:
            not_cacheable.append(response)
            return None
        headers = {k: v for k, v in response.headers.items() if k in ("Content-Disposition", "Cache-Control")}
        return (response.get_data(), response.mimetype, headers)

    entry = page_cache().get_or_render(key, render_entry)
    if entry is None:
        return not_cacheable[0]
    body, mimetype, headers = entry
    if CSRF_PLACEHOLDER.encode() in body:
        body = body.replace(CSRF_PLACEHOLDER.encode(), generate_csrf().encode())
    elif fingerprint[0] in ("notified", "sqlite") and request.method == "GET" and not fields:
        # Nothing per visitor in it: the middleware may replay this exact response.
        request.environ[REPLAYABLE_KEY] = replay_key(request.environ, language, minute, fingerprint)
    if fields:
        # The answers last, in one pass: one that happens to spell a placeholder stays as typed.
        values = {name.encode(): str(escape(value)).encode() for name, value in fields.items()}
        body = _FIELD_PLACEHOLDERS.sub(lambda m: values.get(m.group(1), m.group(0)), body)
    return Response(body, mimetype=mimetype, headers=headers)


def replay_key(environ: dict, language: str, minute: int, fingerprint: tuple) -> tuple:
    """Everything of the raw request that a public page depends on (the query string
    undecoded, so two requests share a key only if they are byte for byte the same), and the
    language it is written in (from the `lang` cookie or Accept-Language: a page in English
    is never replayed to someone reading Spanish)."""
    return (
        "replay",
        environ.get("wsgi.url_scheme"),
        environ.get("HTTP_HOST"),
        environ.get("SERVER_NAME"),
        environ.get("SERVER_PORT"),
        environ.get("SCRIPT_NAME", ""),
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING", ""),
        language,
        minute,
        fingerprint,
    )


class CachedPageMiddleware:
    """Replays complete cached responses before Flask.

    A visitor whose session holds flashed messages (or a session cookie we cannot read) goes
    through Flask, which shows them; everyone else gets the replay."""

    def __init__(self, wsgi_app: WSGIApplication, flask_app: Flask) -> None:
        self.wsgi_app = wsgi_app
        self.flask_app = flask_app
        self.session_cookie = flask_app.config["SESSION_COOKIE_NAME"]
        self.language_codes = tuple(languages_of(flask_app.config))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") != "GET"
            or not self.flask_app.config["PAGE_CACHE_ENABLED"]
            or f"{FRESH_COOKIE}=" in environ.get("HTTP_COOKIE", "")
            or not self._session_is_plain(environ)
        ):
            return self.wsgi_app(environ, start_response)
        cache = self.flask_app.extensions.get("page_cache")
        fingerprint = self._known_fingerprint()
        if cache is not None and fingerprint is not None:
            language = environ_language(environ, self.language_codes)
            key = replay_key(environ, language, int(time.time() // 60), fingerprint)
            entry = cache.get(key)
            if entry is not None:
                status, headers, body = entry
                start_response(status, list(headers))
                return [body]
        return self._call_and_keep(environ, start_response)

    def _known_fingerprint(self) -> tuple | None:
        """The fingerprint when it is known without asking the database (the listener's on
        PostgreSQL; SQLite's when nothing was committed since it was read); else None, and
        Flask serves the request."""
        listener = self.flask_app.extensions.get("catalog_listener")
        if listener is not None and listener.connected:
            return _notified_fingerprint(listener)
        changes = self.flask_app.extensions.get("sqlite_changes")
        return changes.known_fingerprint() if changes is not None else None

    def _session_is_plain(self, environ: WSGIEnvironment) -> bool:
        """No session, or one with nothing to show on a public page (read as Flask would).
        Anything odd (a cookie that doesn't verify, bytes that aren't UTF-8) is Flask's to handle."""
        if self.session_cookie not in environ.get("HTTP_COOKIE", ""):
            return True
        app = self.flask_app
        try:
            value = Request(environ).cookies.get(self.session_cookie)
            if not value:
                return True
            # (Flask's own cookie sessions; any other interface fails here and is Flask's to handle.)
            serializer = cast(SecureCookieSessionInterface, app.session_interface).get_signing_serializer(app)
            if serializer is None:  # no secret key: Flask cannot read it either (as the except below)
                return False
            data = serializer.loads(value, max_age=int(app.permanent_session_lifetime.total_seconds()))
        except Exception:  # noqa: BLE001 - whatever it is, Flask's own handling applies
            return False
        return isinstance(data, dict) and not data.get("_flashes")

    def _call_and_keep(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers]
            return start_response(status, headers, exc_info)

        chunks = self.wsgi_app(environ, capture)
        key = environ.get(REPLAYABLE_KEY)
        if key is None:
            return chunks
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status, headers = captured
        if status.startswith("200 ") and not any(name.lower() == "set-cookie" for name, _ in headers):
            self.flask_app.extensions["page_cache"].put(key, (status, tuple(headers), body))
        return [body]


@event.listens_for(OrmSession, "before_flush")
def _bump_catalog_version(session: OrmSession, _context: Any, _instances: Any) -> None:
    """Any change to what public pages show bumps catalog_state in the same transaction
    (seat pools carry their own version) and, on PostgreSQL, notifies every process on commit."""
    changed = (*session.new, *session.dirty, *session.deleted)
    catalog_changed = any(_shows_publicly(obj, session) for obj in changed)
    pools = [obj for obj in changed if isinstance(obj, SeatPool)]
    if not (catalog_changed or pools):
        return
    # The seats left of each pool changed, for processes that keep seats (None: anything may
    # have changed). Seats change only under the pool's row lock, so notifications, delivered in
    # commit order, bring each pool's values in the order they were committed.
    seats: dict[int, tuple[int, int]] | None = None if catalog_changed else _pool_seats(pools, session)
    if session.info.get("catalog_changed") and session.info.get("seat_pools_changed") is None:
        seats = None  # an earlier flush of this transaction changed more than seats
    elif seats is not None:
        seats = {**session.info.get("seat_pools_changed", {}), **seats}
    connection = session.connection()
    if catalog_changed:
        bumped = connection.execute(
            sa.update(CatalogState).where(CatalogState.id == 1).values(version=CatalogState.version + 1)
        )
        if bumped.rowcount == 0:  # the migration creates the row; recreate it if someone removed it
            connection.execute(sa.insert(CatalogState).values(id=1, version=1))
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(seats_notification(seats or {}))
    session.info["catalog_changed"] = True
    session.info["seat_pools_changed"] = seats


def _pool_seats(pools: list[SeatPool], session: OrmSession) -> dict[int, tuple[int, int]] | None:
    """Each pool's seats left and version as this flush writes them; None if any is not plain
    numbers (an SQL expression, say) or the pool is new or going."""
    seats = {}
    for pool in pools:
        values = pool.__dict__
        capacity, taken, version = values.get("capacity"), values.get("seats_taken"), values.get("version")
        if pool.id is None or pool in session.deleted:
            return None
        if not (isinstance(capacity, int) and isinstance(taken, int) and isinstance(version, int)):
            return None
        seats[pool.id] = (max(capacity - taken, 0), version)
    return seats


def _shows_publicly(obj: object, session: OrmSession) -> bool:
    if isinstance(obj, User) and obj in session.dirty:
        attrs = sa.inspect(obj).attrs
        return any(attrs[name].history.has_changes() for name in PUBLIC_USER_COLUMNS)
    return isinstance(obj, CATALOG_MODELS)


@event.listens_for(OrmSession, "after_commit")
def _count_own_change(session: OrmSession) -> None:
    # This process sees its own change at once, before the notification comes back.
    if session.info.pop("catalog_changed", False):
        seats = session.info.pop("seat_pools_changed", None)
        for listener in list(_listeners.values()):
            listener.bump(seats, own=True)
        if has_request_context():
            g.catalog_changed_by_visitor = True


def mark_changer_fresh(response: Response) -> Response:
    """After a request that changed the catalog or seats, the visitor's next pages (served by
    any process) are checked against the database, not a listener that may lag."""
    if g.get("catalog_changed_by_visitor"):
        cfg = current_app.config
        response.set_cookie(
            FRESH_COOKIE,
            "1",
            max_age=cfg["PAGE_CACHE_FRESH_SECONDS"],
            httponly=True,
            secure=cfg["SESSION_COOKIE_SECURE"],
            samesite="Lax",
        )
    return response


@event.listens_for(OrmSession, "after_rollback")
def _forget_rolled_back_change(session: OrmSession) -> None:
    session.info.pop("catalog_changed", None)
    session.info.pop("seat_pools_changed", None)
