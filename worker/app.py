"""The Celery app, bound to the Flask app: every task runs inside an app context.

Start it with `celery -A worker.app worker` and `celery -A worker.app beat`. The broker is
CELERY_BROKER_URL: Redis in production, SQLite through SQLAlchemy when nothing is set.
Nothing depends on the broker for correctness: emails live in the database outbox and the
beat sweep finds whatever a lost message would have triggered.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task, signals
from celery.schedules import crontab
from flask import Flask

from events import redaction
from events.app import create_app
from events.notifications.publish import wait_until_sent
from events.privacy.retention import NIGHTLY_RUN_UTC

# The worker's records too (create_app installs it as well; this says so where it matters).
redaction.install()


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    # Delivery runs more often (WORKER_DELIVER_SWEEP_SECONDS, events/config.py).
    sweep_seconds = app.config["WORKER_SWEEP_SECONDS"]
    deliver_seconds = app.config["WORKER_DELIVER_SWEEP_SECONDS"]
    celery.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"],
        task_ignore_result=True,
        result_backend=None,
        # A task is acknowledged when it finishes; a worker lost mid-task means redelivery.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=900,
        task_soft_time_limit=600,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        enable_utc=True,
        imports=("worker.tasks",),
        beat_schedule={
            "deliver-outbox": {"task": "worker.tasks.deliver_outbox", "schedule": deliver_seconds},
            "queue-scheduled-emails": {
                "task": "worker.tasks.queue_scheduled_emails",
                "schedule": sweep_seconds,
            },
            "housekeeping": {"task": "worker.tasks.housekeeping", "schedule": sweep_seconds},
            # Class passes past their expiry (one indexed query when none is due).
            "expire-passes": {"task": "worker.tasks.expire_passes", "schedule": sweep_seconds},
            # What the reports read at ten-year size (events/reports/summaries.py).
            "refresh-report-summaries": {
                "task": "worker.tasks.refresh_report_summaries",
                "schedule": sweep_seconds,
            },
            "rebuild-report-summaries": {
                "task": "worker.tasks.refresh_report_summaries",
                "schedule": crontab(hour=NIGHTLY_RUN_UTC.hour, minute=NIGHTLY_RUN_UTC.minute),
                "kwargs": {"force": True},
            },
            # Nightly: personal data past RETENTION_MONTHS becomes placeholders.
            "anonymise-expired": {
                "task": "worker.tasks.anonymise_expired",
                "schedule": crontab(hour=NIGHTLY_RUN_UTC.hour, minute=NIGHTLY_RUN_UTC.minute),
            },
        },
    )
    if celery.conf.broker_url.startswith(("redis://", "rediss://")):
        # Longer than any task runs: Redis redelivers unacknowledged tasks after this.
        celery.conf.broker_transport_options = {"visibility_timeout": 3600}
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


@signals.worker_process_shutdown.connect
def _send_last_nudges(**_: Any) -> None:
    """A pool process ends with os._exit (billiard), so atexit never runs there: the nudges its
    last task's commits asked for are sent first (at most 2 s), as a process exiting normally
    does (events/notifications/publish.py)."""
    wait_until_sent(2.0)


flask_app = create_app()
celery_app = celery_init_app(flask_app)
app = celery_app  # `celery -A worker.app` finds it
