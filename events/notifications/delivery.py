"""Sending what is due in the outbox: claim, send, mark. Safe with any number of workers.

Claiming: a batch of due rows moves from 'pending' to 'sending' with claimed_at stamped,
by a conditional UPDATE (WHERE status = 'pending') in the transaction that selected them
FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent claimers get disjoint batches without
waiting; on SQLite (one writer at a time) the conditional UPDATE alone decides. A row is
only ever sent by the worker whose claim moved it.

Crash safety: a claim is a lease (OUTBOX_CLAIM_LEASE_SECONDS, 20 s by default) that a
thread of the sending worker renews every third of its length while the batch is sent
(_Lease). A worker killed mid-batch stops renewing, and reclaim_stale() puts its rows back
to 'pending' once the lease has run out: the next delivery sweep (every 10 s) sends them,
so those people wait well under a minute. A live worker keeps its claim however slow a
message is. A worker that was cut off from the database, or frozen (suspended, paused),
for longer than its lease may have lost rows to another worker meanwhile, so it trusts
only what the database says: a renewal counts for the rows it actually updated (still
'sending' under this worker's claimed_at: RETURNING), only those rows may be sent, and the
batch stops when none is left. Before each message it also checks, on the wall clock
(utcnow(), which keeps counting while a process is suspended), that more than half of the
lease last written to the database is left; if not (renewals are failing), it hands the
rest of the batch back. Every mark (sent, retry, failed) must update exactly its one row
under this claim, or the batch stops there. (Leases are stamped with the workers' clocks,
which must agree to within a few seconds, as NTP keeps them.) The one case not covered: a
single SMTP exchange that starts with more than half a lease left and outlasts the rest
of it (SMTP_TIMEOUT is per command) while renewals are failing too - the database and the
mail server both stalled at once; that row can then be reclaimed and sent again.

The at-least-once window: the row is marked 'sent' right after the SMTP server accepts that one
message (not at the end of the batch), in a commit of its own that every other worker sees at
once; the next message's end of data is not sent before that commit is confirmed (see _Marks).
Its envelope (MAIL FROM, RCPT TO) and body go out while that commit is in flight, which takes
most of the SMTP exchange off the wait for the disk, but the server accepts nothing before the
end of data ("."): the transport holds it back and calls _ready_to_end first, which waits for
the mark and checks the lease again; if that raises (or the worker dies there), the connection
is dropped mid-DATA and the server discards the message. Messages are written (rendered) a
few at a time ahead of their sending (WRITE_AHEAD), which changes nothing here: a message
written, or sent but for its end of data, was not sent. So a WORKER that
dies mid-batch (killed, crashed, its machine gone) resends nothing the server accepted, but for
the one message whose 250 reply came in the few milliseconds before its mark reached
PostgreSQL: that row is left in 'sending' and sent again after its lease. The resend carries
the same Message-ID, which lets mail clients collapse it. Each mark is flushed to disk before
the next message goes out, so a crash of PostgreSQL itself resends nothing either.
SYNC_COMMIT_OFF (off by default) trades that for speed: marks are then committed without
waiting for the flush (synchronous_commit off, for the marks' connection only) and the end of
each batch waits for one flushed commit, which makes every earlier mark durable too (the
write-ahead log is flushed in order); a PostgreSQL crash can then lose at most the marks of the
batch being sent (BATCH_SIZE rows, never more than the WAL writer's ~0.6 s), which go out again
with their Message-IDs. Everything else (but the double stall above) is exactly once: the
dedupe key makes the row unique and the claim, checked against the database before every
message, makes its sender unique. (A flushed commit per mark cost 0.7-2.5 ms of fsync wait per
email here, the largest part of the sender's time beside SMTP; per batch it is one in 200.)

Speed: a batch (BATCH_SIZE rows) is read in a few queries (content.Prefetched), rendered in
one request context by one sender.Renderer, WRITE_AHEAD messages at a time, and marked over a
dedicated autocommit connection, one prepared UPDATE per email.
"""

from __future__ import annotations

import logging
import random
import select
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from flask import Flask, current_app
from psycopg import pq

from events.extensions import db
from events.languages import in_language
from events.models import EmailStatus, OutboxEmail, utcnow
from events.notifications import sender
from events.notifications.addresses import UndeliverableAddress
from events.notifications.content import Prefetched, build
from events.notifications.outbox import email_language

log = logging.getLogger(__name__)

# Claims written before leases existed (lease_expires_at NULL) return after this long.
CLAIM_TIMEOUT = timedelta(minutes=10)
BATCH_SIZE = 200
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


def claim_lease() -> timedelta:
    return timedelta(seconds=float(current_app.config["OUTBOX_CLAIM_LEASE_SECONDS"]))


def reclaim_stale(now: datetime) -> int:
    """Rows whose sender stopped renewing its claim go back to 'pending'."""
    # An UPDATE's result is a CursorResult, which has the row count (typed as a plain Result).
    result = cast(
        "sa.CursorResult[Any]",
        db.session.execute(
            sa.update(OutboxEmail)
            .where(
                OutboxEmail.status == EmailStatus.SENDING,
                sa.or_(
                    OutboxEmail.lease_expires_at < now,
                    sa.and_(
                        OutboxEmail.lease_expires_at.is_(None), OutboxEmail.claimed_at < now - CLAIM_TIMEOUT
                    ),
                ),
            )
            .values(status=EmailStatus.PENDING, claimed_at=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        ),
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
        .values(status=EmailStatus.SENDING, claimed_at=now, lease_expires_at=now + claim_lease())
        .returning(OutboxEmail.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(ids)


class _ClaimLost(Exception):
    """A mark matched no row: another worker has reclaimed it, so this batch stops."""

    def __init__(self, row_id: int) -> None:
        super().__init__(f"outbox {row_id}: the claim is no longer ours")
        self.row_id = row_id


class _Lease:
    """Keeps a batch's claim alive while its worker sends it, and says which rows are still its own.

    A thread of its own renews the lease every third of its length, so even one slow SMTP
    exchange cannot let it lapse while the worker lives; when the worker dies, renewals stop
    and the rows are reclaimable one lease later. A renewal only counts for the rows it
    really updated (RETURNING): rows another worker reclaimed meanwhile (this one lost the
    database, or was frozen, for longer than the lease) drop out of `held` and are never
    sent. Time is the wall clock (utcnow(): it counts a suspended process's lost time, which
    time.monotonic may not) compared with the lease as last written to the database, shifted
    by `skew` when deliver_due was given a `now` of its own (tests).
    """

    def __init__(self, row_ids: list[int], claimed_at: datetime, length: timedelta, skew: timedelta) -> None:
        self.row_ids, self.claimed_at, self.length, self.skew = row_ids, claimed_at, length, skew
        # (rows still ours, their lease_expires_at): as the claim wrote them, then each renewal.
        # One attribute, replaced whole, so the send loop never reads half of a renewal.
        self.standing: tuple[frozenset[int], datetime] = (frozenset(row_ids), claimed_at + length)
        self.engine = db.engine
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._renew_until_stopped, name="outbox-lease", daemon=True)

    def now(self) -> datetime:
        return utcnow() + self.skew

    def enough_left(self, until: datetime) -> bool:
        """Whether a message may still go out: more than half a lease is sure to be left."""
        return until - self.now() > self.length / 2

    def renew(self) -> None:
        until = self.now() + self.length
        with self.engine.begin() as conn:
            renewed = conn.scalars(
                sa.update(OutboxEmail)
                .where(
                    OutboxEmail.id.in_(self.row_ids),
                    OutboxEmail.status == EmailStatus.SENDING,
                    OutboxEmail.claimed_at == self.claimed_at,
                )
                .values(lease_expires_at=until)
                .returning(OutboxEmail.id)
            ).all()
        self.standing = (frozenset(renewed), until)

    def _renew_until_stopped(self) -> None:
        while not self.stopped.wait(self.length.total_seconds() / 3):
            try:
                self.renew()
            except Exception as error:  # the send loop sees the lease run down and stops
                log.warning("could not renew the claim on %s outbox rows: %s", len(self.row_ids), error)

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()


class _Marks:
    """Where the outcome of each send is written, each row in its own commit.

    SQLite: the session itself (every SQLite transaction takes the write lock, so a second
    connection would wait on the first), each mark committed at once as before.

    PostgreSQL: a connection of its own in autocommit mode, beside the session that read the
    batch, so a mark is one UPDATE in one round trip (no BEGIN/COMMIT, no ORM flush), committed
    and flushed when it returns (with SYNC_COMMIT_OFF: visible at once but flushed to disk by
    durable() at the end of the batch). The 'sent' mark is sent without waiting for its reply
    (libpq's asynchronous API): the sender goes on (writing the next few messages, when it is
    their turn, and sending the next one's envelope and body) while PostgreSQL commits it, and
    wait() collects the reply before the next end of data is sent over SMTP (_ready_to_end) or
    anything else is written. So at any moment at most one message has been accepted by the
    SMTP server without its 'sent' commit confirmed, and a mark that fails still raises before
    the next email goes out. (The module's docstring has the windows this leaves.)
    """

    def __init__(self, session: sa.orm.Session) -> None:
        self.session = session
        self.conn: sa.Connection | None = None
        self.raw: Any = None  # the psycopg connection under conn (PostgreSQL only)
        self.pending: int | None = None
        self.unflushed = False  # a mark committed since the last durable()
        if session.get_bind().dialect.name == "postgresql":
            self.conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.raw = self.conn.connection.driver_connection  # psycopg, autocommit
            if SYNC_COMMIT_OFF:
                self.raw.execute("SET synchronous_commit TO OFF")
            # The 'sent' UPDATE parsed and planned once per batch, not once per email: that was
            # half of PostgreSQL's CPU per mark (88 -> 36 us measured), on the cores the SMTP
            # server and this process share. Deallocated by close().
            prepared = self.raw.pgconn.prepare(_MARK_SENT_NAME, _MARK_SENT_SQL)
            if prepared.status != pq.ExecStatus.COMMAND_OK:
                error = (prepared.error_message or b"").decode(errors="replace")
                self.conn.invalidate()
                self.conn.close()
                raise psycopg.DatabaseError(f"cannot prepare the 'sent' mark: {error}")

    def sent(self, row_id: int, claim: datetime) -> None:
        if self.raw is None:
            _finish(self, row_id, claim, status=EmailStatus.SENT, sent_at=utcnow(), last_error="")
            return
        self.wait()
        # The same UPDATE as _finish() (only if our claim still stands); UTC stored naive.
        self.raw.pgconn.send_query_prepared(
            _MARK_SENT_NAME,
            [_naive(utcnow()), str(row_id).encode(), EmailStatus.SENDING.value.encode(), _naive(claim)],
        )
        self.pending = row_id
        self.unflushed = SYNC_COMMIT_OFF

    def wait(self) -> None:
        """Collect the reply to the 'sent' mark in flight, if any; raise if it failed or
        matched no row (_ClaimLost)."""
        if self.pending is None:
            return
        row_id, self.pending = self.pending, None
        pgconn = self.raw.pgconn
        while True:
            pgconn.consume_input()
            if not pgconn.is_busy():
                break
            if not select.select([pgconn.socket], [], [], MARK_TIMEOUT_SECONDS)[0]:
                raise TimeoutError(f"outbox {row_id}: no reply to the 'sent' mark")
        error, updated = None, 0
        while (result := pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.COMMAND_OK:
                error = (result.error_message or b"").decode(errors="replace")
            else:
                updated += result.command_tuples or 0
        if error:
            raise psycopg.DatabaseError(f"outbox {row_id}: marking sent failed: {error}")
        if updated != 1:
            raise _ClaimLost(row_id)

    def execute(self, statement: sa.Update) -> int:
        """Run and commit one UPDATE; how many rows it changed."""
        if self.conn is not None:
            self.wait()
            self.unflushed = SYNC_COMMIT_OFF
            return self.conn.execute(statement).rowcount  # autocommit: committed when this returns
        updated = cast("sa.CursorResult[Any]", self.session.execute(statement)).rowcount
        self.session.commit()
        return updated

    def durable(self, row_id: int) -> None:
        """Wait until every mark so far is on disk: one commit with synchronous_commit on, of a
        write that changes nothing (a commit that writes nothing flushes nothing). The write-
        ahead log is flushed in order, so this flushes all the asynchronous commits before it."""
        if self.raw is None or not self.unflushed:
            return
        self.wait()
        with self.raw.transaction():
            self.raw.execute("SET LOCAL synchronous_commit TO ON")
            self.raw.execute(_DURABLE_SQL, [row_id])
        self.unflushed = False

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.wait()
                if SYNC_COMMIT_OFF:
                    self.raw.execute("RESET synchronous_commit")
                # Back to the pool as it came: the connection's next user prepares it again.
                self.raw.execute(f"DEALLOCATE {_MARK_SENT_NAME.decode()}")
            except BaseException:
                self.conn.invalidate()  # never hand a connection in an unknown state back to the pool
                raise
            finally:
                self.conn.close()
                self.conn = self.raw = None


# _finish(status=SENT) written out for libpq (outbox_emails is OutboxEmail's table).
# Off: every mark is durable before the next email is sent (see the module docstring).
SYNC_COMMIT_OFF = False

_MARK_SENT_SQL = (
    b"UPDATE outbox_emails SET status = 'sent', sent_at = $1, last_error = '' "
    b"WHERE id = $2 AND status = $3 AND claimed_at = $4"
)
_MARK_SENT_NAME = b"outbox_mark_sent"  # _MARK_SENT_SQL prepared on the marks' connection
# durable()'s write: one of the batch's rows, rewritten as it is.
_DURABLE_SQL = "UPDATE outbox_emails SET sent_at = sent_at WHERE id = %s"
MARK_TIMEOUT_SECONDS = 60


def _naive(moment: datetime) -> bytes:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ").encode()


def _finish(marks: _Marks, row_id: int, claim: datetime, /, **values: Any) -> None:
    # Only if our claim still stands (it has not been reclaimed by someone else); if it does
    # not, the rest of the batch may be another worker's too: stop.
    updated = marks.execute(
        sa.update(OutboxEmail)
        .where(
            OutboxEmail.id == row_id,
            OutboxEmail.status == EmailStatus.SENDING,
            OutboxEmail.claimed_at == claim,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if updated != 1:
        raise _ClaimLost(row_id)


def _mark_sent(marks: _Marks, row_id: int, claimed_at: datetime) -> None:
    marks.sent(row_id, claimed_at)


def _mark_retry(marks: _Marks, row: OutboxEmail, claimed_at: datetime, error: str) -> bool:
    attempts = row.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        _finish(
            marks, row.id, claimed_at, status=EmailStatus.FAILED, attempts=attempts, last_error=error[:500]
        )
        return False
    _finish(
        marks,
        row.id,
        claimed_at,
        status=EmailStatus.PENDING,
        attempts=attempts,
        claimed_at=None,
        lease_expires_at=None,
        send_after=utcnow() + backoff(attempts),
        last_error=error[:500],
    )
    return True


def _mark_failed(marks: _Marks, row: OutboxEmail, claimed_at: datetime, error: str) -> None:
    _finish(
        marks,
        row.id,
        claimed_at,
        status=EmailStatus.FAILED,
        attempts=row.attempts + 1,
        last_error=error[:500],
    )


def _release(marks: _Marks, row_ids: list[int], claimed_at: datetime) -> None:
    marks.execute(
        sa.update(OutboxEmail)
        .where(
            OutboxEmail.id.in_(row_ids),
            OutboxEmail.status == EmailStatus.SENDING,
            OutboxEmail.claimed_at == claimed_at,
        )
        .values(status=EmailStatus.PENDING, claimed_at=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


def send_claimed(
    row_ids: list[int], claimed_at: datetime, transport: sender.Transport, skew: timedelta = timedelta(0)
) -> DeliveryStats:
    stats = DeliveryStats(claimed=len(row_ids))
    lease = _Lease(row_ids, claimed_at, claim_lease(), skew)
    base_url = current_app.config["PUBLIC_BASE_URL"]
    # Objects loaded for the batch stay usable across the marks' commits (on SQLite those go
    # through this session): no reload of every row, registration and session after each mark.
    session = db.session()
    marks = _Marks(session)  # (first: if it cannot be made, the session is left as it was)
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        lease.thread.start()
        rows = db.session.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.id.in_(row_ids)).order_by(OutboxEmail.id)
        ).all()
        # One request context for the batch (links are built from PUBLIC_BASE_URL), one
        # renderer (templates looked up once) and everything the rows refer to, read up front.
        with current_app.test_request_context("/", base_url=base_url):
            try:
                _send_rows(rows, lease, marks, transport, stats)
                marks.wait()  # the last 'sent' mark
            except _ClaimLost as lost:  # reclaimed by another worker: the rest is theirs to send
                log.warning("outbox %s was reclaimed by another worker; batch stopped", lost.row_id)
            marks.durable(row_ids[0])  # the batch's marks on disk before the next batch is claimed
    finally:
        lease.stop()
        marks.close()
        session.expire_on_commit = expire_on_commit
    db.session.commit()  # end the batch's read transaction
    db.session.expire_all()
    return stats


# Messages written in one go, ahead of their SMTP exchanges. Python code that runs right after
# a wait on the network or the database finds the CPU's caches cold: a message written between
# two exchanges cost two to three times the CPU of one written beside the others. Few enough
# that a message's Date header is at most this many exchanges old when it goes.
WRITE_AHEAD = 16


def _written(
    rows: Sequence[OutboxEmail], lease: _Lease, marks: _Marks, stats: DeliveryStats
) -> Iterator[tuple[int, OutboxEmail, bytes | EmailMessage, str]]:
    """The batch's messages in order, WRITE_AHEAD at a time (each with its row's index and its
    envelope recipient); a row that cannot be written is marked failed here and left out."""
    claimed_at = lease.claimed_at
    prefetched: Prefetched | None = None
    renderer: sender.Renderer | None = None
    for start in range(0, len(rows), WRITE_AHEAD):
        held, _ = lease.standing
        if not held:
            return  # every row left is sent or another worker's now
        ahead = []
        for index in range(start, min(start + WRITE_AHEAD, len(rows))):
            row = rows[index]
            row_id = row.id
            if row_id not in held:
                continue  # reclaimed by another worker (or already marked)
            try:
                if prefetched is None or renderer is None:  # (they are made together)
                    prefetched, renderer = Prefetched(rows, lease.now()), sender.Renderer()
                # In the language they booked in (or asked in), whatever language staff use.
                with in_language(email_language(row)):
                    message = renderer.render(row, build(row, prefetched))
                to_email = sender.envelope_recipient(row.to_email)  # the domain in IDNA form
            except UndeliverableAddress as error:
                # The address itself, not a bug: no traceback, whose message could quote the address
                # into the log. Staff see the reason on the failed emails page.
                log.warning("outbox %s: undeliverable address", row_id)
                db.session.rollback()
                prefetched = None
                _mark_failed(marks, row, claimed_at, f"address: {error}")
                stats.failed += 1
                continue
            except Exception as error:  # a template or data bug: keep it visible, never loop on it
                log.exception("outbox %s: cannot render", row_id)
                db.session.rollback()
                prefetched = None  # the rollback expired what was loaded: load it again
                _mark_failed(marks, row, claimed_at, f"render: {type(error).__name__}: {error}")
                stats.failed += 1
                continue
            ahead.append((index, row, message, to_email))
        yield from ahead


class _NotOurs(Exception):
    """The row dropped out of the lease (another worker reclaimed it): not handed over."""


class _LeaseRunningOut(Exception):
    """Less than half a lease is sure to be left (renewals are failing): nothing more goes out."""


def _ready_to_end(marks: _Marks, lease: _Lease, row_id: int) -> None:
    """The gate before a message's end of data, the moment the server would accept it (the
    transport calls it once the envelope and body are out): the previous email's 'sent' commit
    is confirmed, and the row is still ours with enough of the lease left. Raises if not, and
    the message is never accepted."""
    marks.wait()
    held, until = lease.standing  # the latest renewal: writing and sending may have taken long
    if row_id not in held:
        raise _NotOurs(row_id)
    if not lease.enough_left(until):
        raise _LeaseRunningOut()


def _send_rows(
    rows: Sequence[OutboxEmail],
    lease: _Lease,
    marks: _Marks,
    transport: sender.Transport,
    stats: DeliveryStats,
) -> None:
    claimed_at = lease.claimed_at
    for index, row, message, to_email in _written(rows, lease, marks, stats):
        row_id = row.id
        # Asked before the envelope goes too, so a row known lost costs no SMTP exchange; the
        # gate asks again before the end of data.
        held, until = lease.standing
        if row_id not in held:
            continue
        try:
            if not lease.enough_left(until):
                raise _LeaseRunningOut()
            # The envelope and body go out while the previous 'sent' mark commits; the end of
            # data waits for it (_ready_to_end).
            result = transport.send(
                message, to_email, row_id, before_end=partial(_ready_to_end, marks, lease, row_id)
            )
        except _NotOurs:
            continue
        except _LeaseRunningOut:  # the rows may soon be another's: hand back what is left
            held, _ = lease.standing
            _release(marks, [r.id for r in rows[index:] if r.id in held], claimed_at)
            return
        if result.outcome == sender.SENT:
            _mark_sent(marks, row_id, claimed_at)  # at once: the at-least-once window is this commit
            stats.sent += 1
        elif result.outcome == sender.FAILED:
            # The row's id, never the address (logs hold no personal data).
            log.warning("outbox %s failed permanently: %s", row_id, result.error)
            _mark_failed(marks, row, claimed_at, result.error)
            stats.failed += 1
        else:
            log.info("outbox %s will be retried: %s", row_id, result.error)
            if _mark_retry(marks, row, claimed_at, result.error):
                stats.retried += 1
            else:
                stats.failed += 1


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
            skew = timedelta(0) if now is None else now - utcnow()  # a test's clock
            row_ids = claim_due(claimed_at, batch_size)
            if not row_ids:
                break
            batches += 1
            batch = send_claimed(row_ids, claimed_at, transport, skew)
            stats.add(batch)
            if batch.sent == 0 and batch.retried + batch.failed == batch.claimed and batch.retried:
                break  # the server is refusing everything right now: stop hammering it
    finally:
        transport.close()
    return stats


def deliver_due_concurrently(threads: int | None = None, **kwargs: Any) -> DeliveryStats:
    """deliver_due on several threads of this process (EMAIL_DELIVERY_THREADS, default 3).

    Each thread claims its own batches (SKIP LOCKED: never the same row) over its own SMTP and
    database connections. Their waits overlap, and PostgreSQL writes their 'sent' commits
    together (group commit), so every mark stays a durable commit and throughput still rises.
    SQLite has one writer: it gets one thread.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy typed as Flask
    count = threads or int(app.config["EMAIL_DELIVERY_THREADS"])
    if count <= 1 or db.engine.dialect.name != "postgresql":
        return deliver_due(**kwargs)
    results: list[DeliveryStats] = []
    errors: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                results.append(deliver_due(**kwargs))
            except BaseException as error:  # re-raised below, so the task retries
                errors.append(error)

    workers = [threading.Thread(target=run, name=f"deliver-{i}") for i in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    total = DeliveryStats()
    for stats in results:
        total.add(stats)
    return total
