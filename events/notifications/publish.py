"""Nudging the worker after a commit that queued emails. Best effort by design.

The outbox row is already committed when this runs; if the broker (Redis) is down the
nudge is lost and nothing else is: the worker's every-minute sweep sends the row anyway.
Off under TESTING unless OUTBOX_PUBLISH is set; the registration never waits on a broker.

A nudge carries no ids (the task delivers whatever is due), so the commits of one process
share nudges: each commit asks a thread of the process to send one, and every ask made
while a nudge is being sent, or in the short pause after it, is answered by the next one.
Each commit is still followed by a nudge sent after it, and a burst of registrations costs
a few broker messages a second instead of one each (kombu's publish was an eighth of a
registration's CPU). The request never waits for the broker at all.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

FLAG = "outbox_queued"
TASK = "worker.tasks.deliver_outbox"


def mark_queued(session: Session) -> None:
    session.info[FLAG] = True


# Celery is imported on first use (start-up stays quick), and its lazy modules are not safe to
# import from several threads at once: the first publishers of a burst of registrations failed
# with "cannot import name 'Celery'" (a 500 after the registration had committed).
_client_lock = threading.Lock()


def _client(app: Flask) -> Any:
    with _client_lock:
        return _make_client(app)


def _make_client(app: Flask) -> Any:
    client = app.extensions.get("celery") or app.extensions.get("celery_publisher")
    if client is None:
        from celery import Celery

        client = Celery(f"{app.name}-publisher", set_as_current=False)
        broker_url = app.config["CELERY_BROKER_URL"]
        # One attempt, at most a second: with the broker down a registration must not wait
        # on kombu's connection retries (about 2 s by default); the sweep sends the email.
        transport_options: dict = {"max_retries": 0}
        if broker_url.startswith(("redis://", "rediss://")):
            # Socket timeouts are Redis options; the embedded SQLite broker refuses them.
            transport_options |= {"socket_connect_timeout": 1, "socket_timeout": 2}
        client.conf.update(
            broker_url=broker_url,
            broker_connection_timeout=2,
            broker_connection_retry=False,
            broker_connection_max_retries=0,
            broker_transport_options=transport_options,
            task_ignore_result=True,
        )
        app.extensions["celery_publisher"] = client
    return client


def publish_delivery() -> bool:
    return publish_task(TASK)


def publish_task(task: str) -> bool:
    """Ask for one task by name to be sent soon, best effort (also used for refunds:
    events/payments/refunds.py). False when publishing is off."""
    if not has_app_context():
        return False
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy typed as Flask
    publish = app.config["OUTBOX_PUBLISH"]
    if publish is None:  # unset: on, except in tests
        publish = not app.testing
    if not publish:
        return False
    _nudger.ask(app, task)
    return True


def send_now(app: Flask, task: str) -> bool:
    """Send one task message to the broker; a broker outage is logged, never raised."""
    try:
        client = app.extensions.get("celery") or app.extensions.get("celery_publisher") or _client(app)
        client.send_task(task, retry=False, ignore_result=True)
    except Exception as error:  # a broker outage must never fail the request that caused it
        log.warning("could not nudge the worker (the sweep will send it): %s", error)
        return False
    return True


class _Nudger:
    """The thread of this process that sends the nudges its commits ask for (see the module's
    docstring). Started on the first ask in each process: a thread does not survive a fork,
    so a forked web or Celery worker starts its own."""

    # After a nudge, asks gather this long before the next: the worker is already busy with
    # the first, and it reads everything due when it gets to the next.
    PAUSE_SECONDS = 0.05

    def __init__(self) -> None:
        self._reset()
        # A fork copies the lock as it was (possibly held by this thread) and not the thread.
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        global _client_lock
        # The parent's thread may have held it, making the publisher: nobody here would release it.
        _client_lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._asked: set[tuple[Flask, str]] = set()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._sending = False
        self._thread: threading.Thread | None = None

    def ask(self, app: Flask, task: str) -> None:
        with self._lock:
            self._asked.add((app, task))
            if self._thread is None or not self._thread.is_alive():
                self._sending = False
                self._thread = threading.Thread(target=self._run, name="worker-nudges", daemon=True)
                self._thread.start()
            self._wake.notify()

    def wait_until_sent(self, timeout: float = 5.0) -> bool:
        """Block until every nudge asked for so far has been sent (or failed): for tests and
        for a process about to exit. False if that took longer than `timeout`."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._asked and not self._sending, timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._wake.wait_for(lambda: bool(self._asked))
                asked, self._asked = self._asked, set()
                self._sending = True
            for app, task in asked:
                send_now(app, task)
            with self._lock:
                self._sending = False
                self._idle.notify_all()
            time.sleep(self.PAUSE_SECONDS)


_nudger = _Nudger()
wait_until_sent = _nudger.wait_until_sent
# A process ending normally (a web worker restarted) first sends what its last commits asked for.
atexit.register(wait_until_sent, 2.0)


@sa.event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(FLAG, False):
        publish_delivery()


@sa.event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(FLAG, None)
