"""The periodic safety net, run by beat (worker.tasks.housekeeping) and by `flask sweep`."""

from __future__ import annotations

from events.locks import only_one
from events.models import utcnow
from events.passes.admin import expire_due
from events.passes.purchase import void_lapsed_holds
from events.payments.refunds import execute_due_refunds
from events.payments.services import reconcile_pending_payments
from events.privacy import requests as privacy_requests
from events.registration.seats import sweep_lapsed


def run_housekeeping() -> dict[str, int] | None:
    """Re-read open payments, release lapsed holds and offers, send due refunds, forget the
    addresses privacy links no longer need. None if
    another host's housekeeping is running (one pass at a time across hosts)."""
    with only_one("housekeeping") as held:
        if not held:
            return None
        # Open payments first: a charge whose answer was lost confirms its hold before the
        # hold is released for running out.
        payments = reconcile_pending_payments()
        pools = sweep_lapsed(utcnow())
        passes_voided = void_lapsed_holds(utcnow())  # class passes bought by card, never paid
        refunds = execute_due_refunds()  # the safety net for a lost nudge, and backoff retries
        # Addresses kept only while needed: privacy links used or expired, erasure confirmations sent.
        forgotten = privacy_requests.tidy()
    return {
        "pools": pools,
        "passes_voided": passes_voided,
        "refunds": refunds,
        "payments": payments,
        "addresses_forgotten": forgotten,
    }


def run_pass_expiry() -> dict[str, int] | None:
    """Expire what is left on passes past their expiry (once per pass). None if another
    host's run is going."""
    with only_one("pass-expiry") as held:
        if not held:
            return None
        return {"expired": expire_due(utcnow())}
