"""Sending what is due in the outbox: claim, send, mark. Safe with any number of workers.

Claiming: a batch of due rows moves from 'pending' to 'sending' with claimed_at stamped,
by a conditional UPDATE (WHERE status = 'pending') in the transaction that selected them
FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent claimers get disjoint batches without
waiting; on SQLite (one writer at a time) the conditional UPDATE alone decides. A row is
only ever sent by the worker whose claim moved it.

Crash safety: a worker killed mid-batch leaves its rows in 'sending'. reclaim_stale() puts
rows claimed more than CLAIM_TIMEOUT (10 minutes) ago back to 'pending'. A batch stops
sending and releases what is left once it has run for half that timeout, so a live worker
never sends a row that may already have been reclaimed by another.

The at-least-once window: the row is marked 'sent' in its own commit right after the SMTP
server accepts that one message (not at the end of the batch). Only a crash (or a lost
database connection) between the server's 250 reply and that commit - a few milliseconds -
leaves a sent row in 'sending', and it will be sent again after CLAIM_TIMEOUT. The resend
carries the same Message-ID, which lets mail clients collapse it. Everything else is exactly
once: the dedupe key makes the row unique and the claim makes its sender unique.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from events.extensions import db
from events.models import EmailStatus, OutboxEmail, utcnow
from events.notifications import sender
from events.notifications.content import build

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = timedelta(minutes=10)
BATCH_SIZE = 50
MAX_ATTEMPTS = 10  # temporary failures over about a day, then 'failed'
BACKOFF_BASE_SECONDS = 60
BACKOFF_CAP_SECONDS = 3600


@dataclass
class DeliveryStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    reclaimed: int = 0

    def add(self, other: DeliveryStats) -> None:
        for name in ("claimed", "sent", "retried", "failed", "reclaimed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def backoff(attempts: int) -> timedelta:
    """Exponential with a cap and jitter: 1, 2, 4 ... 60 minutes, each up to 25% longer."""
    seconds = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)
    return timedelta(seconds=seconds * (1 + random.random() / 4))


def claim_timeout() -> timedelta:
    seconds = current_app.config.get("OUTBOX_CLAIM_TIMEOUT_SECONDS")
    return timedelta(seconds=int(seconds)) if seconds else CLAIM_TIMEOUT


def reclaim_stale(now: datetime) -> int:
    result = db.session.execute(
        sa.update(OutboxEmail)
        .where(OutboxEmail.status == EmailStatus.SENDING, OutboxEmail.claimed_at < now - claim_timeout())
        .values(status=EmailStatus.PENDING, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount or 0


def claim_due(now: datetime, limit: int = BATCH_SIZE) -> list[int]:
    # Two statements in one transaction. (A single UPDATE ... WHERE id IN (SELECT ... LIMIT n
    # FOR UPDATE SKIP LOCKED) can claim more than n rows on PostgreSQL: the planner may
    # re-run the locking subquery.) The UPDATE re-checks 'pending' and RETURNING says which
    # rows this claim really took, which also makes it correct on SQLite, where FOR UPDATE
    # is not emitted and the single-writer lock serialises claimers instead.
    candidates = db.session.scalars(
        sa.select(OutboxEmail.id)
        .where(OutboxEmail.status == EmailStatus.PENDING, OutboxEmail.send_after <= now)
        .order_by(OutboxEmail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not candidates:
        db.session.commit()
        return []
    ids = db.session.scalars(
        sa.update(OutboxEmail)
        .where(OutboxEmail.id.in_(candidates), OutboxEmail.status == EmailStatus.PENDING)
        .values(status=EmailStatus.SENDING, claimed_at=now)
        .returning(OutboxEmail.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(ids)


def _finish(conn, row_id: int, claim: datetime, /, **values) -> None:
    # Only if our claim still stands (it has not been reclaimed by someone else).
    conn.execute(
        sa.update(OutboxEmail)
        .where(
            OutboxEmail.id == row_id,
            OutboxEmail.status == EmailStatus.SENDING,
            OutboxEmail.claimed_at == claim,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    conn.commit()


def _mark_sent(conn, row_id: int, claimed_at: datetime) -> None:
    _finish(conn, row_id, claimed_at, status=EmailStatus.SENT, sent_at=utcnow(), last_error="")


def _mark_retry(conn, row: OutboxEmail, claimed_at: datetime, error: str) -> bool:
    attempts = row.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        _finish(
            conn, row.id, claimed_at, status=EmailStatus.FAILED, attempts=attempts, last_error=error[:500]
        )
        return False
    _finish(
        conn,
        row.id,
        claimed_at,
        status=EmailStatus.PENDING,
        attempts=attempts,
        claimed_at=None,
        send_after=utcnow() + backoff(attempts),
        last_error=error[:500],
    )
    return True


def _mark_failed(conn, row: OutboxEmail, claimed_at: datetime, error: str) -> None:
    _finish(
        conn, row.id, claimed_at, status=EmailStatus.FAILED, attempts=row.attempts + 1, last_error=error[:500]
    )


def _release(conn, row_ids: list[int], claimed_at: datetime) -> None:
    conn.execute(
        sa.update(OutboxEmail)
        .where(
            OutboxEmail.id.in_(row_ids),
            OutboxEmail.status == EmailStatus.SENDING,
            OutboxEmail.claimed_at == claimed_at,
        )
        .values(status=EmailStatus.PENDING, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    conn.commit()


def send_claimed(row_ids: list[int], claimed_at: datetime, transport) -> DeliveryStats:
    stats = DeliveryStats(claimed=len(row_ids))
    started = time.monotonic()
    budget = claim_timeout().total_seconds() / 2
    rows = db.session.scalars(
        sa.select(OutboxEmail).where(OutboxEmail.id.in_(row_ids)).order_by(OutboxEmail.id)
    ).all()
    base_url = current_app.config["PUBLIC_BASE_URL"]
    # Marks are committed one by one; objects loaded for the batch stay usable across those
    # commits (no reload of every row, registration and session after each mark). One
    # connection: on SQLite every transaction takes the write lock (BEGIN IMMEDIATE).
    session = db.session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    conn = session
    try:
        for index, row in enumerate(rows):
            if time.monotonic() - started > budget:
                _release(conn, [r.id for r in rows[index:]], claimed_at)
                break
            row_id, to_email = row.id, row.to_email
            try:
                with current_app.test_request_context("/", base_url=base_url):
                    message = sender.render_message(row, build(row))
            except Exception as error:  # a template or data bug: keep it visible, never loop on it
                log.exception("outbox %s: cannot render", row_id)
                db.session.rollback()
                _mark_failed(conn, row, claimed_at, f"render: {type(error).__name__}: {error}")
                stats.failed += 1
                continue
            result = transport.send(message, to_email, row_id)
            if result.outcome == sender.SENT:
                _mark_sent(conn, row_id, claimed_at)  # at once: the at-least-once window is this commit
                stats.sent += 1
            elif result.outcome == sender.FAILED:
                log.warning("outbox %s to %s failed permanently: %s", row_id, to_email, result.error)
                _mark_failed(conn, row, claimed_at, result.error)
                stats.failed += 1
            else:
                log.info("outbox %s to %s will be retried: %s", row_id, to_email, result.error)
                if _mark_retry(conn, row, claimed_at, result.error):
                    stats.retried += 1
                else:
                    stats.failed += 1
    finally:
        session.expire_on_commit = expire_on_commit
    db.session.commit()  # end the batch's read transaction
    db.session.expire_all()
    return stats


def deliver_due(
    now: datetime | None = None, batch_size: int = BATCH_SIZE, max_batches: int | None = None
) -> DeliveryStats:
    """Send every due email, batch by batch, over one transport. Returns what happened."""
    stats = DeliveryStats(reclaimed=reclaim_stale(now or utcnow()))
    transport = sender.open_transport()
    batches = 0
    try:
        while max_batches is None or batches < max_batches:
            claimed_at = utcnow() if now is None else now
            row_ids = claim_due(claimed_at, batch_size)
            if not row_ids:
                break
            batches += 1
            batch = send_claimed(row_ids, claimed_at, transport)
            stats.add(batch)
            if batch.sent == 0 and batch.retried + batch.failed == batch.claimed and batch.retried:
                break  # the server is refusing everything right now: stop hammering it
    finally:
        transport.close()
    return stats
