"""What each email says: the subject, the template context and any attachments.

Pure reading: nothing here sends or writes. The sender turns this into a MIME message.
Needs a request context for links (the delivery code pushes one built from PUBLIC_BASE_URL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from events.extensions import db
from events.models import (
    OutboxEmail,
    Registration,
    Session,
    SessionStatus,
    WaitlistEntry,
    utcnow,
)
from events.notifications.outbox import EmailKind

SUBJECTS = {
    EmailKind.REGISTRATION_CONFIRMED: "You're registered: {title}",
    EmailKind.PAYMENT_RECEIVED: "Payment received: {title}",
    EmailKind.PAYMENT_FAILED: "Your payment did not go through: {title}",
    EmailKind.WAITLIST_JOINED: "You're on the waitlist: {title}",
    EmailKind.WAITLIST_OFFER: "A seat is open for you: {title}",
    EmailKind.WAITLIST_OFFER_EXPIRED: "Your seat offer has expired: {title}",
    EmailKind.REGISTRATION_CANCELLED: "Registration cancelled: {title}",
    EmailKind.REFUND_ISSUED: "Refund issued: {title}",
    EmailKind.LATE_PAYMENT_REFUNDED: "Your payment was refunded: {title}",
    EmailKind.SESSION_CANCELLED: "Session cancelled: {title}",
    EmailKind.REMINDER: "Reminder: {title} {when}",
    EmailKind.FOLLOW_UP: "Thank you for coming: {title}",
}
MISSED_SUBJECT = "Sorry we missed you: {title}"


@dataclass
class Attachment:
    filename: str
    content_type: str  # "text/calendar"
    data: bytes


@dataclass
class EmailContent:
    kind: str
    subject: str
    context: dict
    attachments: list[Attachment] = field(default_factory=list)


def public_host() -> str:
    return urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "localhost"


def _pool_sessions(seat_pool_id: int) -> list[Session]:
    return list(
        db.session.scalars(
            sa.select(Session).where(Session.seat_pool_id == seat_pool_id).order_by(Session.starts_at)
        )
    )


def next_dates(offering, after: datetime, limit: int = 3) -> list[Session]:
    """Upcoming sessions of the same offering, else of offerings on the same topic."""
    from events.models import Offering

    base = (
        sa.select(Session)
        .join(Offering, Session.offering_id == Offering.id)
        .where(
            Session.starts_at > after,
            Session.status == SessionStatus.SCHEDULED,
            Offering.is_published.is_(True),
            Offering.is_cancelled.is_(False),
        )
        .order_by(Session.starts_at)
        .limit(limit)
    )
    same = list(db.session.scalars(base.where(Session.offering_id == offering.id)))
    return same or list(db.session.scalars(base.where(Offering.topic == offering.topic)))


def build(row: OutboxEmail) -> EmailContent:
    from events.catalog.ical import build_calendar
    from events.catalog.services import current_clinic
    from events.registration.links import manage_url, waitlist_url
    from events.registration.seats import waitlist_position
    from events.registration.services import registration_sessions

    clinic = current_clinic()
    if row.user_id:
        return _staff_email(row, clinic)
    extra = dict(row.context or {})
    registration = db.session.get(Registration, row.registration_id) if row.registration_id else None
    entry = db.session.get(WaitlistEntry, row.waitlist_entry_id) if row.waitlist_entry_id else None
    session = db.session.get(Session, row.session_id) if row.session_id else None

    if registration is not None:
        offering = registration.offering
        name = registration.name
        sessions = registration_sessions(registration)
    elif entry is not None:
        offering = entry.seat_pool.offering
        name = entry.name
        sessions = _pool_sessions(entry.seat_pool_id)
    else:  # pragma: no cover - queue_email refuses these
        raise ValueError(f"outbox row {row.id} names no recipient")

    ctx = {
        "kind": row.kind,
        "clinic": clinic,
        "name": name,
        "offering": offering,
        "sessions": [s for s in sessions if s.status == SessionStatus.SCHEDULED]
        if row.kind != EmailKind.SESSION_CANCELLED
        else sessions,
        "session": session,
        "location": (session or (sessions[0] if sessions else None) or offering).location,
        "registration": registration,
        "entry": entry,
        "extra": extra,
        "manage_url": manage_url(registration) if registration is not None else None,
        "waitlist_url": waitlist_url(entry) if entry is not None else None,
        "schedule_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/",
    }
    attachments: list[Attachment] = []
    subject_template = SUBJECTS.get(row.kind, "{title}")
    when = ""

    if row.kind == EmailKind.WAITLIST_JOINED and entry is not None:
        ctx["position"] = waitlist_position(entry) if entry.status.value == "waiting" else None
    if row.kind == EmailKind.WAITLIST_OFFER and entry is not None and entry.offer_expires_at:
        ctx["deadline"] = entry.offer_expires_at.astimezone(ctx["location"].zone)
    if row.kind == EmailKind.REGISTRATION_CONFIRMED and ctx["sessions"]:
        ics = build_calendar(clinic, offering.title, ctx["sessions"], public_host())
        attachments.append(Attachment("invite.ics", "text/calendar", ics))
    if row.kind == EmailKind.REMINDER and session is not None:
        from events.filters import format_day, format_time

        # Absolute, never "tomorrow": a delayed email must not say the wrong day.
        when = f"on {format_day(session.local_start)} at {format_time(session.local_start)}"
        ctx["when_text"] = when
    if row.kind == EmailKind.FOLLOW_UP:
        ctx["attended"] = extra.get("variant") != "missed"
        ctx["resources"] = list(offering.resources)
        if not ctx["attended"]:
            subject_template = MISSED_SUBJECT
            ctx["next_sessions"] = next_dates(offering, utcnow())
    subject = subject_template.format(title=offering.title, when=when).strip()
    ctx["subject"] = subject
    return EmailContent(row.kind, subject, ctx, attachments)


def _staff_email(row: OutboxEmail, clinic) -> EmailContent:
    """Emails to staff accounts: the password reset link, signed when the email is built."""
    from flask import url_for

    from events.models import User
    from events.staff.auth import RESET_MAX_AGE_SECONDS, reset_token

    user = db.session.get(User, row.user_id)
    subject = f"Reset your password for {clinic.name}"
    ctx = {
        "kind": row.kind,
        "clinic": clinic,
        "name": user.name,
        "subject": subject,
        "reset_url": url_for("staff.password_reset", token=reset_token(user), _external=True),
        "valid_minutes": RESET_MAX_AGE_SECONDS // 60,
        "schedule_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/",
    }
    return EmailContent(row.kind, subject, ctx, [])
