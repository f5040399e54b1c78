"""Fixtures for the worker: a recording SMTP server, a real Celery worker on Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from celery import Celery

from events.extensions import db as _db
from tests.helpers import wait_until

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
        self.data_started = 0  # messages whose DATA has begun (accepted or not)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.reject_all or self.reject.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.data_started += 1
        msg = message_from_bytes(envelope.content, policy=policy.default)
        msg["X-Envelope-From"] = envelope.mail_from  # (as received: for tests of the sender)
        if self.delay:
            await asyncio.sleep(self.delay)  # the slow server under test, not a wait
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
        self.handler.data_started = 0

    def wait_for(self, count: int, timeout: float = 20.0):
        try:
            return wait_until(lambda: len(self.messages) >= count and self.messages, timeout)
        except AssertionError:
            raise AssertionError(f"expected {count} messages, got {len(self.messages)}") from None


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
        with contextlib.suppress(AssertionError):  # (not ready: said below, with its log)
            wait_until(lambda: self.ready in self.output() or self.process.poll() is not None, timeout)
        if self.ready not in self.output():
            raise RuntimeError(f"celery worker did not start:\n{self.output()[-3000:]}")
        return self

    def output(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def finished(self, task_name: str) -> int:
        """How many `task_name` tasks this worker has finished (as its log says)."""
        return len(
            re.findall(rf"Task {re.escape(task_name)}\[[^\]]+\] (?:succeeded|raised|retry)", self.output())
        )

    def work_through_queue(self, broker_url: str, timeout: float = 30.0) -> None:
        """Wait until the worker has finished every task sent to it so far: a marker task (a
        refund sweep, a no-op when no refund is due) sent after them is done, and so is every
        task it received."""
        marker = send_task(broker_url, "worker.tasks.execute_refunds")

        def done() -> bool:
            log = self.output()
            received = re.findall(r"Task \S+\[([^\]]+)\] received", log)
            finished = re.findall(r"Task \S+\[([^\]]+)\] (?:succeeded|raised|retry)", log)
            return marker in finished and not Counter(received) - Counter(finished)

        wait_until(done, timeout, "the worker to work through its queue")

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


def send_task(broker_url: str, name: str = "worker.tasks.deliver_outbox") -> str:
    """Send one task by name, as beat or the app would; returns its id."""
    client = Celery("test-client", broker=broker_url, set_as_current=False)
    try:
        return client.send_task(name).id
    finally:
        client.close()


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
