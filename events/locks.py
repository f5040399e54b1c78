"""One holder at a time across every host: a PostgreSQL advisory lock, tried, never waited for.

Used by the periodic sweeps: two beats started by mistake (or a slow sweep overlapping the
next one) then do each sweep once, not twice. The lock is held by a connection of its own,
so the sweep's transactions can commit as they like, and PostgreSQL releases it by itself
if the holder dies (the connection closes). SQLite is the single-host embedded default
with one writer at a time: there the lock always succeeds and the database serialises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from events.extensions import db


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock name (advisory locks are keyed by bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def only_one(name: str) -> Iterator[bool]:
    """Yields True if this caller now holds the lock `name`, False if someone else does."""
    if db.engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(name)
    conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        held = conn.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        try:
            yield bool(held)
        finally:
            if held:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    except BaseException:
        # Never hand a connection that may still hold the lock back to the pool.
        conn.invalidate()
        raise
    finally:
        conn.close()
