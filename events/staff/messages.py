"""Messages from staff to the people of a session (instructors, their own) or of a whole
offering (admins): plain text, through the outbox, one email per person, audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from events import audit
from events.extensions import db
from events.models import (
    SEAT_TAKING_STATUSES,
    WAITLIST_ACTIVE_STATUSES,
    Offering,
    Registration,
    SeatPool,
    Session,
    SessionStatus,
    StaffMessage,
    User,
    WaitlistEntry,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_email
from events.registration.services import normalize_email
from events.staff.errors import RosterRefusal
from events.staff.rosters import local_when, registrations_covering


@dataclass(frozen=True)
class Audience:
    """Who a message reaches: one entry per address (someone booked on several dates of an
    offering, or registered and waiting, is one person). People without an email are left out."""

    registrations: list[Registration]
    waitlist: list[WaitlistEntry]
    without_email: int  # walk-ins who gave no address: told in person

    @property
    def size(self) -> int:
        return len(self.registrations) + len(self.waitlist)


def audience(offering: Offering, session: Session | None, include_waitlist: bool, now: datetime) -> Audience:
    """The people of one session, or of every upcoming date of the offering, with their waitlist."""
    if session is not None:
        query = registrations_covering(session)
        pools = [session.seat_pool_id]
    else:
        upcoming = sa.select(Session.id).where(
            Session.offering_id == offering.id,
            Session.status == SessionStatus.SCHEDULED,
            Session.ends_at > now,
        )
        query = sa.select(Registration).where(
            Registration.offering_id == offering.id,
            sa.or_(Registration.session_id.is_(None), Registration.session_id.in_(upcoming)),
        )
        pools = list(db.session.scalars(sa.select(SeatPool.id).where(SeatPool.offering_id == offering.id)))
    registrations = db.session.scalars(
        query.where(Registration.status.in_(SEAT_TAKING_STATUSES)).order_by(Registration.id)
    ).all()
    seen: set[str] = set()
    chosen: list[Registration] = []
    without_email = 0
    for registration in registrations:
        address = normalize_email(registration.email)
        if not address:
            without_email += 1
        elif address not in seen:
            seen.add(address)
            chosen.append(registration)
    waiting: list[WaitlistEntry] = []
    if include_waitlist:
        for entry in db.session.scalars(
            sa.select(WaitlistEntry)
            .where(WaitlistEntry.seat_pool_id.in_(pools), WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES))
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        ):
            address = normalize_email(entry.email)
            if address and address not in seen:
                seen.add(address)
                waiting.append(entry)
    return Audience(chosen, waiting, without_email)


def send_message(
    actor: User,
    offering: Offering,
    session: Session | None,
    subject: str,
    body: str,
    include_waitlist: bool,
    request_key: str,
    now: datetime | None = None,
) -> tuple[StaffMessage, bool]:
    """Queue the message to everyone in its audience, once each. Returns the message and
    whether it was sent now (False: this confirmation was sent before, nothing more queued)."""
    now = now or utcnow()
    # The form refuses these too; a header can never be split, whoever calls this.
    if any(c in subject for c in "\r\n") or not subject.strip():
        raise RosterRefusal("Write the subject on one line.", "subject")
    if not body.strip():
        raise RosterRefusal("Write the message.", "body")
    earlier = db.session.scalar(sa.select(StaffMessage).where(StaffMessage.request_key == request_key))
    if earlier is not None:
        return earlier, False
    people = audience(offering, session, include_waitlist, now)
    if people.size == 0:
        raise RosterRefusal("Nobody with an email address is registered, so there is nobody to send it to.")
    message = StaffMessage(
        author_id=actor.id,
        offering_id=offering.id,
        session_id=session.id if session else None,
        subject=subject.strip(),
        body=body,
        include_waitlist=include_waitlist,
        request_key=request_key,
        created_at=now,
    )
    db.session.add(message)
    try:
        db.session.flush()
    except IntegrityError:  # the same confirmation, sent twice at once: the other one sends it
        db.session.rollback()
        return db.session.execute(
            sa.select(StaffMessage).where(StaffMessage.request_key == request_key)
        ).scalar_one(), False
    queued = 0
    # One row per person: the dedupe key names the message and the registration (or entry).
    for registration in people.registrations:
        queued += bool(
            queue_email(
                EmailKind.STAFF_MESSAGE,
                registration=registration,
                session_id=session.id if session else None,
                key_parts=(f"m{message.id}",),
                context={"message_id": message.id},
            )
        )
    for entry in people.waitlist:
        queued += bool(
            queue_email(
                EmailKind.STAFF_MESSAGE,
                waitlist_entry=entry,
                session_id=session.id if session else None,
                key_parts=(f"m{message.id}",),
                context={"message_id": message.id},
            )
        )
    message.recipients = queued
    audit.record(
        actor.id,
        "message.sent",
        "session" if session else "offering",
        session.id if session else offering.id,
        message_id=message.id,
        offering_id=offering.id,
        subject=message.subject,
        recipients=queued,
        include_waitlist=include_waitlist,
        offering_title=offering.title,
        session_start=local_when(session) if session else "",
    )
    db.session.commit()
    return message, True
