"""Nudging the worker after a commit that queued emails. Best effort by design.

The outbox row is already committed when this runs; if the broker (Redis) is down the
nudge is lost and nothing else is: the worker's every-minute sweep sends the row anyway.
Off under TESTING unless OUTBOX_PUBLISH is set; the registration never waits on a broker.
"""

from __future__ import annotations

import logging
import threading
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
    """Send one task by name, best effort (also used for refunds: events/payments/refunds.py)."""
    if not has_app_context():
        return False
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy typed as Flask
    publish = app.config["OUTBOX_PUBLISH"]
    if publish is None:  # unset: on, except in tests
        publish = not app.testing
    if not publish:
        return False
    try:
        client = app.extensions.get("celery") or app.extensions.get("celery_publisher") or _client(app)
        client.send_task(task, retry=False, ignore_result=True)
    except Exception as error:  # a broker outage must never fail the request that caused it
        log.warning("could not nudge the worker (the sweep will send it): %s", error)
        return False
    return True


@sa.event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(FLAG, False):
        publish_delivery()


@sa.event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(FLAG, None)
