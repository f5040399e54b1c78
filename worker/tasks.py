"""Thin tasks: ids (or nothing) in, one service call, a small summary out.

Every task is safe to run twice or concurrently: the services claim their work in the
database. Retries back off exponentially with jitter, capped.
"""

from __future__ import annotations

import logging

from celery import shared_task

from events.housekeeping import run_housekeeping, run_pass_expiry
from events.models import utcnow
from events.notifications.delivery import deliver_due_concurrently
from events.notifications.schedule import queue_due
from events.payments.refunds import execute_due_refunds
from events.privacy.retention import anonymise_expired as anonymise_expired_data
from events.reports.summaries import refresh as refresh_report_summaries_now

log = logging.getLogger(__name__)

RETRY = dict(
    autoretry_for=(Exception,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)


@shared_task(name="worker.tasks.deliver_outbox", **RETRY)
def deliver_outbox() -> dict:
    """Send everything due in the outbox (published after commit, and every minute by beat)."""
    stats = deliver_due_concurrently()
    return stats.__dict__


@shared_task(name="worker.tasks.queue_scheduled_emails", **RETRY)
def queue_scheduled_emails() -> dict:
    """Queue the reminders and follow-ups that are due, then send them."""
    queued = queue_due(utcnow())
    if queued is None:  # another beat's sweep is running (events/locks.py)
        return {"skipped": True}
    reminders, followups = queued
    stats = deliver_due_concurrently() if reminders or followups else None
    return {"reminders": reminders, "followups": followups, "sent": stats.sent if stats else 0}


@shared_task(name="worker.tasks.execute_refunds", **RETRY)
def execute_refunds() -> dict:
    """Send due pending refunds to Stripe (published after commit; housekeeping sweeps too)."""
    return {"refunds": execute_due_refunds()}


@shared_task(name="worker.tasks.housekeeping", **RETRY)
def housekeeping() -> dict:
    """What `flask sweep` does: open payments, lapsed holds and offers, pending refunds."""
    return run_housekeeping() or {"skipped": True}


@shared_task(name="worker.tasks.anonymise_expired", **RETRY)
def anonymise_expired() -> dict:
    """Nightly: anonymise the people whose last session is older than RETENTION_MONTHS."""
    run = anonymise_expired_data()
    return run.as_dict() if run is not None else {"skipped": True}


@shared_task(name="worker.tasks.expire_passes", **RETRY)
def expire_passes() -> dict:
    """Class passes past their expiry: an EXPIRY row for what is left (once per pass)."""
    return run_pass_expiry() or {"skipped": True}


@shared_task(name="worker.tasks.refresh_report_summaries", **RETRY)
def refresh_report_summaries(force: bool = False) -> dict:
    """Every sweep: the report summaries made equal to the live rows again (a fingerprint
    first; nothing changed, nothing rebuilt). Nightly with force: rebuilt whatever the
    fingerprint says, so a change it cannot see (an edit that moves no status, count or
    version) lasts a day at most."""
    return refresh_report_summaries_now(force=force) or {"skipped": True}
