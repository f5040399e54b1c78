"""Nudging the worker after a commit that queued emails. Best effort by design.

The outbox row is already committed when this runs; if the broker (Redis) is down the
nudge is lost and nothing else is: the worker's every-minute sweep sends the row anyway.
Off under TESTING unless OUTBOX_PUBLISH is set; the registration never waits on a broker.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import uuid
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
    if client is not None:
        return client
    broker_url = app.config["CELERY_BROKER_URL"]
    if broker_url.startswith(("redis://", "rediss://")):
        client = RedisTaskPublisher(broker_url)
    else:  # the embedded default's SQLite broker
        from celery import Celery

        client = Celery(f"{app.name}-publisher", set_as_current=False)
        # One attempt, at most a second: with the broker down a registration must not wait
        # on kombu's connection retries (about 2 s by default); the sweep sends the email.
        client.conf.update(
            broker_url=broker_url,
            broker_connection_timeout=2,
            broker_connection_retry=False,
            broker_connection_max_retries=0,
            broker_transport_options={"max_retries": 0},
            task_ignore_result=True,
        )
    app.extensions["celery_publisher"] = client
    return client


# The queue the worker consumes: Celery's default (worker/app.py names no other).
DEFAULT_QUEUE = "celery"
# A task's arguments (none) and its canvas (none), as Celery encodes them.
_NO_ARGUMENTS = base64.b64encode(
    json.dumps([[], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()
).decode()


class RedisTaskPublisher:
    """Sends a task without arguments to the worker over Redis in one LPUSH, the message
    written as Celery's own client writes it (Celery's task message protocol 2 in JSON, on
    kombu's Redis transport). Celery's send_task costs about ten times the CPU (a producer from
    its pool, a new Redis client, routing), and every registration pays for a nudge after its
    commit. A real worker runs what this sends in tests/worker/ and tests/faults/.

    Like the Celery client it replaces: one attempt, at most a second to connect and two to
    answer (a registration must not wait on a broker that is down; the sweep sends the email)."""

    def __init__(self, broker_url: str) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._redis = redis.Redis.from_url(
            broker_url, socket_connect_timeout=1, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        self._origin = f"gen{os.getpid()}@{socket.gethostname()}"

    def send_task(self, name: str, **_options: Any) -> None:
        """Queue task `name` (result ignored, no retry: the options Celery's send_task is given)."""
        task_id = str(uuid.uuid4())
        message = {
            "body": _NO_ARGUMENTS,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": name,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": "()",
                "kwargsrepr": "{}",
                "origin": self._origin,
                "ignore_result": True,
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": DEFAULT_QUEUE},
                "priority": 0,
                "body_encoding": "base64",
                # kombu's key for the message while a worker holds it unacknowledged
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        self._redis.lpush(DEFAULT_QUEUE, json.dumps(message))

    def close(self) -> None:
        self._redis.close()


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
