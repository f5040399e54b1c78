"""Emails as staff see them: a registration's emails, the failed ones, sending one again."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from events import audit
from events.extensions import db
from events.models import (
    EmailStatus,
    OutboxEmail,
    Registration,
    User,
    utcnow,
)
from events.notifications.publish import mark_queued
from events.staff.errors import AdminError


def registration_emails(registration: Registration) -> list[OutboxEmail]:
    return list(
        db.session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.registration_id == registration.id)
            .order_by(OutboxEmail.id)
        )
    )


def resend_email(email: OutboxEmail, actor: User) -> OutboxEmail:
    """Send an outbox email again by putting the same row back in the queue.

    The dedupe key names one email and is unique, so re-queuing the row (rather than copying it
    under a new key) keeps "one row per email": the worker sends it again, the row's status
    always tells the latest outcome, and each resend is in the audit trail.
    """
    email = db.session.execute(
        sa.select(OutboxEmail).where(OutboxEmail.id == email.id).with_for_update()
    ).scalar_one()
    if email.status == EmailStatus.SENDING:
        db.session.commit()
        raise AdminError("That email is being sent right now.")
    previous = email.status.value
    email.status = EmailStatus.PENDING
    email.attempts = 0
    email.last_error = ""
    email.claimed_at = None
    email.sent_at = None
    email.send_after = utcnow()
    audit.record(
        actor.id, "email.resent", "outbox_email", email.id, kind=email.kind, previous_status=previous
    )
    mark_queued(db.session())
    db.session.commit()
    return email


FAILED_EMAILS_PER_PAGE = 100


@dataclass
class FailedEmailsPage:
    """One page of failed emails, newest first. older_than: the `before` of the next page."""

    emails: list[OutboxEmail]
    older_than: int | None


def failed_emails(before: int | None = None, per_page: int = FAILED_EMAILS_PER_PAGE) -> FailedEmailsPage:
    """Failed emails below the id `before` (keyset paging: any page costs what the first does)."""
    query = (
        sa.select(OutboxEmail)
        .where(OutboxEmail.status == EmailStatus.FAILED)
        .order_by(OutboxEmail.id.desc())
        .limit(per_page + 1)
    )
    if before:
        query = query.where(OutboxEmail.id < before)
    emails = list(db.session.scalars(query))
    older_than = emails[per_page - 1].id if len(emails) > per_page else None
    return FailedEmailsPage(emails[:per_page], older_than)


def failed_count() -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.status == EmailStatus.FAILED)
        )
        or 0
    )
