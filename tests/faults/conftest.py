"""Fault-injection fixtures: a private PostgreSQL cluster, a private Stripe emulator that can be
killed and restarted, a delaying proxy in front of it, a recording SMTP server, and the
consistency checks every fault test ends with.

Nothing here touches the shared services the rest of the suite uses (PostgreSQL on :5432, the
session's localstripe): other test runs may be using them at the same time.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import psycopg
import pytest
import requests
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from events.extensions import db as _db
from tests.conftest import free_port, listening, wait_for_port
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PG_BIN = Path(os.environ.get("TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


# --- A private PostgreSQL cluster -------------------------------------------------------------


def _as_postgres(args: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a PostgreSQL server binary as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


class PrivatePostgres:
    """A throwaway cluster in a temporary folder, on its own port: ours to restart."""

    def __init__(self):
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
        self.dir = Path(tempfile.mkdtemp(prefix="events-faults-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N"])
        self.start()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "events"')

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/events?connect_timeout=5"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *args],
            timeout=60,
        )

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        """Stop (disconnecting every client, rolling back what is in flight) and start again."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        try:
            self._ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def started_at(self):
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            return conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]


@pytest.fixture(scope="module")
def private_pg():
    cluster = PrivatePostgres()
    yield cluster
    cluster.stop()


# --- A private Stripe emulator ----------------------------------------------------------------


class PrivateLocalstripe:
    """scripts/localstripe_server.py as our own process, its state in our own file (--state),
    so a restart comes back with the tokens and intents it had, like Stripe after an outage."""

    def __init__(self, webhook_url: str | None = None, webhook_secret: str = "whsec_test_secret"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="events-faults-stripe-"))
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        script = HERE.parents[1] / "scripts" / "localstripe_server.py"
        args = [
            sys.executable,
            str(script),
            "--port",
            str(self.port),
            "--state",
            str(self.dir / "state.pickle"),
        ]
        if self.starts == 0:
            args.append("--from-scratch")
        if self.webhook_url:
            args += ["--webhook-url", self.webhook_url, "--webhook-secret", self.webhook_secret]
        log = open(self.dir / f"run-{self.starts}.log", "w")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.starts += 1
        wait_for_port(self.url)

    def kill(self) -> None:
        """Gone at once, as a crashed or unreachable Stripe: connections are refused."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None
        wait_until(lambda: not listening(self.url), timeout=5, what="the killed emulator to stop answering")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_stripe():
    emulator = PrivateLocalstripe()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def use_stripe(app):
    """Point the app's gateway at another Stripe base (or gateway) for one test, then restore."""
    saved_base = app.config.get("STRIPE_API_BASE")
    saved_gateway = app.extensions.pop("stripe_gateway", None)

    def point(base: str, gateway=None):
        app.config["STRIPE_API_BASE"] = base
        app.extensions.pop("stripe_gateway", None)
        if gateway is not None:
            app.extensions["stripe_gateway"] = gateway

    yield point
    app.config["STRIPE_API_BASE"] = saved_base
    app.extensions.pop("stripe_gateway", None)
    if saved_gateway is not None:
        app.extensions["stripe_gateway"] = saved_gateway


# --- A proxy that makes the emulator slow -----------------------------------------------------


class DelayProxy:
    """HTTP/1.1 forwarder to `upstream`; requests whose path starts with one of `slow_paths`
    are forwarded at once but answered only after `delay` seconds (so the work is done on the
    far side while the caller times out: the worst case for charging twice)."""

    def __init__(self, upstream: str):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        proxy = self
        self.upstream = upstream
        self.delay = 0.0
        self.slow_paths: tuple[str, ...] = ("/",)
        self.is_slow = lambda method, path: path.startswith(self.slow_paths)  # or set your own
        self.forwarded: list[tuple[str, str, int]] = []  # (method, path, upstream status)
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream = requests.request(
                    self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=30
                )
                with proxy._lock:
                    proxy.forwarded.append((self.command, self.path, upstream.status_code))
                if proxy.delay and proxy.is_slow(self.command, self.path):
                    time.sleep(proxy.delay)  # the slowness under test, not a wait
                try:
                    self.send_response(upstream.status_code)
                    for name in ("Content-Type", "Idempotent-Replayed", "Request-Id"):
                        if name in upstream.headers:
                            self.send_header(name, upstream.headers[name])
                    self.send_header("Content-Length", str(len(upstream.content)))
                    self.end_headers()
                    self.wfile.write(upstream.content)
                except OSError:
                    pass  # the caller gave up waiting: exactly the point

            do_GET = do_POST = do_DELETE = _forward

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


# --- A recording SMTP server (as tests/worker/conftest.py, trimmed) ---------------------------


class _Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages: list[tuple[str, object]] = []

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((rcpt, msg))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_recorder(app, monkeypatch):
    handler = _Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", controller.port)
    monkeypatch.setitem(app.config, "MAIL_USE_TLS", False)
    monkeypatch.setitem(app.config, "MAIL_DEFAULT_SENDER", "Test Clinic <hello@clinic.test>")
    yield handler
    controller.stop()


# --- Talking to the app over HTTP, as a browser would -----------------------------------------

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
_CSRF_DATA = re.compile(r'data-csrf-token="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html) or _CSRF_DATA.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@dataclass
class Registered:
    status: int
    location: str = ""  # where the app sent the person: /manage/<signed> or .../pay


def register_over_http(http: requests.Session, base: str, slug: str, name: str, email: str, timeout=10):
    page = http.get(f"{base}/offerings/{slug}", timeout=timeout)
    if page.status_code != 200:
        return Registered(page.status_code)
    response = http.post(
        f"{base}/offerings/{slug}/register",
        data={"csrf_token": csrf_from(page.text), "name": name, "email": email},
        allow_redirects=False,
        timeout=timeout,
    )
    return Registered(response.status_code, response.headers.get("Location", ""))


# --- The invariants every fault test ends with ------------------------------------------------

SEAT_MISMATCHES = sa.text(
    """
    SELECT p.id, p.capacity, p.seats_taken,
           (SELECT count(*) FROM registrations r
             WHERE r.seat_pool_id = p.id AND r.status IN ('confirmed', 'held')) AS registered,
           (SELECT count(*) FROM waitlist_entries w
             WHERE w.seat_pool_id = p.id AND w.status = 'offered') AS offered
      FROM seat_pools p
    """
)


def seat_mismatches(conn) -> list[tuple]:
    """Pools whose seats_taken is not confirmed + held registrations + offered waitlist seats,
    or that are over capacity."""
    rows = conn.execute(SEAT_MISMATCHES).all()
    return [r for r in rows if r.seats_taken != r.registered + r.offered or r.seats_taken > r.capacity]


def confirmation_mismatches(conn) -> list[tuple]:
    """Confirmed registrations without exactly one registration_confirmed email row."""
    return conn.execute(
        sa.text(
            """
            SELECT r.id, count(o.id) AS emails
              FROM registrations r
              LEFT JOIN outbox_emails o
                ON o.registration_id = r.id AND o.kind = 'registration_confirmed'
             WHERE r.status = 'confirmed'
             GROUP BY r.id
            HAVING count(o.id) <> 1
            """
        )
    ).all()


def orphan_payments(conn) -> list[tuple]:
    """Succeeded payments not tied to a registration."""
    return conn.execute(
        sa.text(
            """
            SELECT p.id FROM payments p
              LEFT JOIN registrations r ON r.id = p.registration_id
             WHERE p.status = 'succeeded' AND r.id IS NULL
            """
        )
    ).all()


def engine_of(app):
    with app.app_context():
        return _db.engine


def over_refunded_payments(conn) -> list[tuple]:
    """Payments whose refunds pending + issued exceed what was paid, or whose issued refunds
    differ from the amount the payment says is refunded."""
    return conn.execute(
        sa.text(
            """
            SELECT p.id, p.amount_cents, p.amount_refunded_cents
              FROM payments p
              LEFT JOIN refunds f ON f.payment_id = p.id
             GROUP BY p.id
            HAVING coalesce(sum(f.amount_cents) FILTER (WHERE f.status IN ('pending', 'succeeded')), 0)
                       > p.amount_cents
                OR coalesce(sum(f.amount_cents) FILTER (WHERE f.status = 'succeeded'), 0)
                       <> p.amount_refunded_cents
            """
        )
    ).all()
