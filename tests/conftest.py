"""Real-service fixtures: a PostgreSQL database per run, the app on a real port, Chromium.

Integration tests run against PostgreSQL (the production database), each in a transaction
rolled back at the end, or, when other processes or threads must see its writes, with the
tables emptied after it (tests/isolation.py). The embedded SQLite default has its own tests
(tests/integration/test_sqlite.py).
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from pathlib import Path

# Before the app is imported: keep test files out of the developer's instance/ folder.
_TMP = Path(tempfile.mkdtemp(prefix="events-tests-"))
os.environ.setdefault("INSTANCE_PATH", str(_TMP / "instance"))

import subprocess  # noqa: E402
import sys  # noqa: E402

import psycopg  # noqa: E402
import pytest  # noqa: E402
import redis  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from events.app import create_app  # noqa: E402
from events.extensions import db as _db  # noqa: E402
from tests.helpers import wait_until  # noqa: E402
from tests.isolation import (  # noqa: E402
    FreshGlobalsClient,
    needs_real_commits,
    rolled_back,
    truncate_tables,
)

ROOT = Path(__file__).resolve().parent.parent
STRIPE_PORT = None  # chosen per run, see stripe_api_base
WEBHOOK_SECRET = "whsec_test_secret"
TEST_REDIS_URL = f"redis://127.0.0.1:6379/{int(os.environ.get('TEST_WORKER_REDIS_DB', '13'))}"
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# The compiled catalogues (.mo) are built from the .po files, never committed (`make
# translations`): built here too, so a fresh clone's first pytest reads the current ones.
subprocess.run(
    [sys.executable, str(ROOT / "scripts" / "translations.py"), "compile"], check=True, capture_output=True
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_database_url():
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    name = f"events_test_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_test_app(database_url: str, **overrides):
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        # Limits on, as in production, but generous: the rate-limit tests tighten them.
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOGIN_RATE_LIMIT": "100000 per minute",
        "PASSWORD_RESET_RATE_LIMIT": "100000 per minute",
        "REGISTER_RATE_LIMIT": "100000 per minute",
        "PAY_RATE_LIMIT": "100000 per minute",
        "FIND_REGISTRATIONS_RATE_LIMIT": "100000 per minute",
        "FIND_REGISTRATIONS_ADDRESS_RATE_LIMIT": "100000 per minute",
        "SERVER_NAME": None,
    }
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = FreshGlobalsClient
    return app


@pytest.fixture(scope="session")
def stripe_api_base():
    """Where the Stripe emulator listens for this run (started by the `localstripe` fixture)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def app(pg_database_url, stripe_api_base):
    """The app on PostgreSQL, its schema built by the real migrations."""
    from flask_migrate import upgrade

    app = make_test_app(
        pg_database_url,
        STRIPE_API_BASE=stripe_api_base,
        STRIPE_SECRET_KEY="sk_test_emulator",
        STRIPE_PUBLISHABLE_KEY="pk_test_emulator",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture(autouse=True)
def _database(request):
    """Undo what a test that used the PostgreSQL app wrote (see tests/isolation.py): a rolled-back
    transaction, or, for a test whose processes or threads need real commits, a TRUNCATE after it."""
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    if needs_real_commits(request.node):
        yield
        # What the test set going still reaches the database (localstripe sends each webhook a
        # second after its event; the worker may be finishing a task): not the next test's
        # business, which may run in a transaction with nobody emptying the tables after it.
        if "localstripe" in request.fixturenames:
            deliver_webhooks(request.getfixturevalue("localstripe"))
        if "celery_worker" in request.fixturenames:
            request.getfixturevalue("celery_worker").work_through_queue(TEST_REDIS_URL)
        truncate_tables(app)
    else:
        with rolled_back(app):
            yield


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app
        _db.session.remove()


@pytest.fixture
def db(app_ctx):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def rate_limits_enforced(app):
    """Rate limits counted from zero, and on. The Limiter is one object shared by every app a
    test run creates, so an app made with RATELIMIT_ENABLED=False (the SQLite and migration
    tests) turns it off for all of them."""
    from events.extensions import limiter

    saved = limiter.enabled
    limiter.enabled = True
    with app.app_context():
        limiter.reset()
    yield limiter
    limiter.enabled = saved
    with app.app_context():
        limiter.reset()


class LiveServer:
    def __init__(self, app):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._server.shutdown()


@pytest.fixture(scope="session")
def live_server(app):
    """The app served on a real port (threaded), for the browser and concurrency tests."""
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


def webhooks_pending(stripe_api_base: str) -> int:
    """How many webhooks the emulator has still to deliver (each counts until the app answers)."""
    import requests

    return requests.get(f"{stripe_api_base}/_config/webhooks/pending", timeout=5).json()["pending"]


def deliver_webhooks(stripe_api_base: str) -> None:
    """Wait until the emulator has delivered every webhook it has scheduled (and had the answer)."""
    wait_until(
        lambda: webhooks_pending(stripe_api_base) == 0,
        timeout=30,
        what="the Stripe emulator's webhooks to be delivered",
    )


def listening(url: str) -> bool:
    host, port = url.split("//")[1].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(url: str, timeout: float = 15.0) -> None:
    try:
        wait_until(lambda: listening(url), timeout, every=0.1)
    except AssertionError:
        raise RuntimeError(f"nothing listening at {url}") from None


@pytest.fixture(scope="session")
def localstripe(stripe_api_base, live_server):
    """The Stripe emulator as a real process, delivering signed webhooks to the live app."""
    port = stripe_api_base.rsplit(":", 1)[1]
    log = open(_TMP / "localstripe.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "localstripe_server.py"),
            "--port",
            port,
            "--from-scratch",
            "--webhook-url",
            f"{live_server.url}/stripe/webhook",
            "--webhook-secret",
            WEBHOOK_SECRET,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(stripe_api_base)
        yield stripe_api_base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make chromium` (apt-get install chromium)")
    pw = sync_playwright().start()
    browser = pw.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
    yield browser
    browser.close()
    pw.stop()


def _watched_page(context):
    """A page whose Content-Security-Policy violations fail the test (checked at teardown)."""
    page = context.new_page()
    page.csp_violations = []
    page.on(
        "console",
        lambda message: page.csp_violations.append(message.text)
        if "Content Security Policy" in message.text
        else None,
    )
    return page


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = _watched_page(context)
    yield page
    context.close()
    assert not page.csp_violations, page.csp_violations


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = _watched_page(context)
    yield page
    context.close()
    assert not page.csp_violations, page.csp_violations


# --- The broker the test Celery worker listens on ---------------------------------------------


@pytest.fixture(scope="session")
def redis_test_db():
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def publish(app, redis_test_db, monkeypatch):
    """The app publishes the after-commit nudge to the test worker's Redis."""
    monkeypatch.setitem(app.config, "OUTBOX_PUBLISH", True)
    monkeypatch.setitem(app.config, "CELERY_BROKER_URL", redis_test_db)
    app.extensions.pop("celery_publisher", None)
    yield
    from events.notifications.publish import wait_until_sent

    wait_until_sent()  # the nudges are sent by a thread: none may be on its way to this client
    client = app.extensions.pop("celery_publisher", None)
    if client is not None:
        client.close()
