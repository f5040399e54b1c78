"""Fixtures for the worker: a recording SMTP server, a real Celery worker on Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from events.extensions import db as _db

ROOT = Path(__file__).resolve().parents[2]
_TMP = Path(os.environ["INSTANCE_PATH"]).parent  # the per-run folder tests/conftest.py made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


from tests.conftest import TEST_REDIS_URL  # noqa: E402


class RecordingHandler:
    """Records every message; answers 4xx/5xx for chosen recipients or for everyone."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.envelopes = []  # (rcpt, raw bytes, MAIL FROM options such as SMTPUTF8), as received
        self.reject: dict[str, str] = {}  # address -> "550 5.1.1 No such user"
        self.reject_all: str | None = None
        self.delay = 0.0  # seconds before answering DATA (a slow server)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.reject_all or self.reject.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        msg["X-Envelope-From"] = envelope.mail_from  # (as received: for tests of the sender)
        if self.delay:
            await asyncio.sleep(self.delay)
            if server.transport is None or server.transport.is_closing():
                return "451 4.4.2 Connection lost before the message was accepted"  # never delivered
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((rcpt, msg))
                self.envelopes.append((rcpt, envelope.original_content, list(envelope.mail_options)))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, **smtp_options):
        self.port = free_port()
        self.handler = RecordingHandler()
        self.controller = None
        self.smtp_options = smtp_options  # e.g. enable_SMTPUTF8=True (aiosmtpd offers it only then)
        self.start()

    def start(self):
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **self.smtp_options)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        with self.handler.lock:
            return list(self.handler.messages)

    def to(self, address: str):
        return [m for rcpt, m in self.messages if rcpt.lower() == address.lower()]

    def clear(self):
        with self.handler.lock:
            self.handler.messages.clear()
            self.handler.envelopes.clear()
        self.handler.reject.clear()
        self.handler.reject_all = None
        self.handler.delay = 0.0

    def wait_for(self, count: int, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")


@pytest.fixture(scope="session")
def smtp_server():
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server, app, monkeypatch):
    """The recording server, emptied, with the app configured to send to it."""
    smtp_server.clear()
    if smtp_server.controller is None:
        smtp_server.start()
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", smtp_server.port)
    monkeypatch.setitem(app.config, "MAIL_USE_TLS", False)
    monkeypatch.setitem(app.config, "MAIL_DEFAULT_SENDER", "Test Clinic <hello@clinic.test>")
    yield smtp_server
    if smtp_server.controller is None:
        smtp_server.start()
    smtp_server.clear()


def worker_env(app, smtp_server, redis_url: str = TEST_REDIS_URL) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=redis_url,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp_server.port),
        MAIL_USE_TLS="0",
        MAIL_DEFAULT_SENDER="Test Clinic <hello@clinic.test>",
        SECRET_KEY=app.config["SECRET_KEY"],
        PUBLIC_BASE_URL="http://clinic.test",
        INSTANCE_PATH=str(_TMP / "worker-instance"),
        RATELIMIT_ENABLED="0",
        PYTHONPATH=str(ROOT),
        # The run's Stripe emulator (the worker sends refunds), when a test starts it.
        STRIPE_API_BASE=app.config["STRIPE_API_BASE"],
        STRIPE_SECRET_KEY=app.config["STRIPE_SECRET_KEY"],
        STRIPE_WEBHOOK_SECRET=app.config["STRIPE_WEBHOOK_SECRET"],
    )
    return env


class WorkerProcess:
    """`celery -A worker.app worker` (or, with beat=True, `celery beat`) as a real process."""

    def __init__(self, env: dict, name: str, beat: bool = False):
        self.env = env
        self.log_path = _TMP / f"{name}.log"
        self.process = None
        if beat:
            self.argv = ["beat", "--loglevel=info", "-s", str(_TMP / f"{name}-schedule")]
            self.ready = "beat: Starting"
        else:
            self.argv = [
                "worker",
                "--loglevel=info",
                "--concurrency=2",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{name}-{os.getpid()}@%h",
            ]
            self.ready = " ready."

    def start(self, timeout: float = 30.0):
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.app", *self.argv],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready in Path(self.log_path).read_text():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"celery worker did not start:\n{Path(self.log_path).read_text()[-3000:]}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.log.close()


@pytest.fixture(scope="session")
def celery_worker(app, smtp_server, redis_test_db):
    """A real `celery -A worker.app worker` process on Redis, the test database and the SMTP recorder."""
    worker = WorkerProcess(worker_env(app, smtp_server), "celery-worker").start()
    yield worker
    worker.stop()


@pytest.fixture
def session_db(db):
    yield db
    _db.session.rollback()


@pytest.fixture
def book(db):
    """book(offering, email, session=None, created_at=None) -> a confirmed registration (committed)."""
    from events.registration.services import Person, register

    def _book(offering, email, session=None, created_at=None, now=None):
        result = register(
            offering, session.id if session else None, Person(email.split("@")[0].title(), email), now=now
        )
        registration = result.registration
        assert registration is not None and registration.status.value == "confirmed", result
        if created_at is not None:
            registration.created_at = created_at
            db.session.commit()
        return registration

    return _book
