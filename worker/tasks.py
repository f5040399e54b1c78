"""Thin tasks: ids (or nothing) in, one service call, a small summary out.

Every task is safe to run twice or concurrently: the services claim their work in the
database. Retries back off exponentially with jitter, capped.
"""

from __future__ import annotations

import logging

from celery import shared_task

from events.models import utcnow

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
    from events.notifications.delivery import deliver_due_concurrently

    stats = deliver_due_concurrently()
    return stats.__dict__


@shared_task(name="worker.tasks.queue_scheduled_emails", **RETRY)
def queue_scheduled_emails() -> dict:
    """Queue the reminders and follow-ups that are due, then send them."""
    from events.notifications.delivery import deliver_due_concurrently
    from events.notifications.schedule import queue_due

    queued = queue_due(utcnow())
    if queued is None:  # another beat's sweep is running (events/locks.py)
        return {"skipped": True}
    reminders, followups = queued
    stats = deliver_due_concurrently() if reminders or followups else None
    return {"reminders": reminders, "followups": followups, "sent": stats.sent if stats else 0}


@shared_task(name="worker.tasks.execute_refunds", **RETRY)
def execute_refunds() -> dict:
    """Send due pending refunds to Stripe (published after commit; housekeeping sweeps too)."""
    from events.payments.refunds import execute_due_refunds

    return {"refunds": execute_due_refunds()}


@shared_task(name="worker.tasks.housekeeping", **RETRY)
def housekeeping() -> dict:
    """What `flask sweep` does: lapsed holds and offers, pending refunds, open payments."""
    from events.locks import only_one
    from events.payments.refunds import execute_due_refunds
    from events.payments.services import reconcile_pending_payments
    from events.registration.seats import sweep_lapsed

    with only_one("housekeeping") as held:
        if not held:  # another beat's housekeeping is running: one pass at a time across hosts
            return {"skipped": True}
        # Open payments first: a charge whose answer was lost confirms its hold before the
        # hold is released for running out.
        payments = reconcile_pending_payments()
        pools = sweep_lapsed(utcnow())
        refunds = execute_due_refunds()  # the safety net for a lost nudge, and backoff retries
    return {"pools": pools, "refunds": refunds, "payments": payments}
