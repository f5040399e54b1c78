"""The audit trail: who did what, and when."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from events.extensions import db
from events.models import AuditEntry


def record(actor_id: int | None, action: str, target_type: str, target_id: int, **details: Any) -> AuditEntry:
    """Add an audit row in the caller's transaction."""
    entry = AuditEntry(
        actor_id=actor_id, action=action, target_type=target_type, target_id=target_id, details=details
    )
    db.session.add(entry)
    return entry


def latest(limit: int) -> list[AuditEntry]:
    """The most recent entries, newest first, each with its actor (joined: not a query per person)."""
    return list(
        db.session.scalars(
            sa.select(AuditEntry)
            .options(joinedload(AuditEntry.actor))
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )
