"""Emails as staff see them: a registration's emails, the failed ones, sending one again."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from events import audit
from events.extensions import db
from events.models import (
    EmailStatus,
    Offering,
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
    registration = db.session.get(Registration, email.registration_id) if email.registration_id else None
    if registration is not None and registration.email != email.to_email:
        db.session.commit()
        # Corrected since (bookings.correct_details sent the confirmation to the new address).
        raise AdminError(
            f"{registration.name}'s address was corrected since this email was written: "
            "it is not sent again to the old one."
        )
    previous = email.status.value
    registration = db.session.get(Registration, email.registration_id) if email.registration_id else None
    email.status = EmailStatus.PENDING
    email.attempts = 0
    email.last_error = ""
    email.claimed_at = None
    email.sent_at = None
    email.send_after = utcnow()
    audit.record(
        actor.id,
        "email.resent",
        "outbox_email",
        email.id,
        kind=email.kind,
        previous_status=previous,
        # No address: the registration (linked) says whose; the trail keeps no contact details.
        name=registration.name if registration else "",
        registration_id=email.registration_id,
        offering_id=registration.offering_id if registration else None,
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


def registrations_of(emails: list[OutboxEmail]) -> dict[int, Registration]:
    """The registrations these emails were for, by id, in one query (to name the person)."""
    ids = {e.registration_id for e in emails if e.registration_id is not None}
    if not ids:
        return {}
    rows = db.session.scalars(
        sa.select(Registration)
        .where(Registration.id.in_(ids))
        .options(joinedload(Registration.offering).joinedload(Offering.location))
    )
    return {r.id: r for r in rows}


def failed_count() -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.status == EmailStatus.FAILED)
        )
        or 0
    )
