""" "Find my registrations": a person who lost their emails asks, by address, for one email
listing every upcoming place booked with it (confirmed, held while they pay, or on a waitlist),
each with its private link.

Nobody may learn from the page whether an address has registered: the request does the same
work for every address (one read by key, one insert, one commit) and the answer is the same.
The email is always sent, also when nothing is found ("we found nothing for this address":
the person may have used another one), and what it lists is read when it is built, by the
worker. The address is never written to a log, nor into the dedupe key (a keyed digest of it
is): at most one such email per address per FIND_REGISTRATIONS_EMAIL_MINUTES, so a flood of
requests sends a handful, not hundreds; the pages' rate limits (per client and per address)
stop the flood itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from events.extensions import db
from events.models import (
    Offering,
    OutboxEmail,
    Registration,
    RegistrationStatus,
    Session,
    SessionStatus,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind, dedupe_key, queue_email
from events.offering_text import offering_text
from events.registration import links
from events.registration.seats import waitlist_position
from events.registration.services import address_digest, hold_is_live, normalize_email, registration_sessions

# The most places one email lists (an address shared by a whole family still fits).
MAX_PLACES = 60


def _window(now: datetime) -> int:
    return int(now.timestamp() // (60 * current_app.config["FIND_REGISTRATIONS_EMAIL_MINUTES"]))


def request_lookup(email: str, now: datetime | None = None, language: str = "en") -> bool:
    """Queue the email listing this address's upcoming places, unless one was queued for it in
    the last FIND_REGISTRATIONS_EMAIL_MINUTES. Returns whether one was queued (for tests: the
    page says the same either way)."""
    now = now or utcnow()
    minutes = current_app.config["FIND_REGISTRATIONS_EMAIL_MINUTES"]
    owner = f"a{address_digest(email)}"
    window = _window(now)
    # One email per window of N minutes (the dedupe key), and none in the window after one that
    # was queued less than N minutes ago: at most one per N minutes (two requests racing across a
    # window's boundary in the same instant could both be queued).
    previous = db.session.scalar(
        sa.select(OutboxEmail.created_at).where(
            OutboxEmail.dedupe_key == dedupe_key(EmailKind.FIND_REGISTRATIONS, owner, f"t{window - 1}")
        )
    )
    queued = False
    if previous is None or previous <= now - timedelta(minutes=minutes):
        queued = bool(
            queue_email(
                EmailKind.FIND_REGISTRATIONS,
                to_email=email.strip(),
                owner=owner,
                key_parts=(f"t{window}",),
                send_after=now,
                language=language,  # the page's: the email is in the language it was asked in
            )
        )
    db.session.commit()
    return queued


@dataclass(frozen=True)
class Place:
    """One upcoming place, as the email lists it."""

    title: str
    name: str  # whom it is for (one address may book for several people)
    sessions: list[Session]  # the ones still to come
    status: str  # "confirmed", "held", "waiting", "offered"
    url: str  # the manage or waitlist link
    position: int | None = None  # on a waitlist
    until: datetime | None = None  # a hold's or an offer's end, in the place's zone

    @property
    def starts_at(self) -> datetime:
        return self.sessions[0].starts_at


def _upcoming(sessions: list[Session], now: datetime) -> list[Session]:
    return [s for s in sessions if s.status == SessionStatus.SCHEDULED and s.ends_at > now]


def upcoming_places(email: str, now: datetime | None = None) -> list[Place]:
    """Every registration (confirmed, or held while they pay) and waitlist place booked with this
    address that still has a session to come, soonest first. Needs a request context (links)."""
    now = now or utcnow()
    normalized = normalize_email(email)
    places: list[Place] = []
    registrations = db.session.scalars(
        sa.select(Registration)
        .join(Offering, Registration.offering_id == Offering.id)
        .where(
            Registration.email_normalized == normalized,
            Registration.status.in_((RegistrationStatus.CONFIRMED.value, RegistrationStatus.HELD.value)),
            Offering.is_cancelled.is_(False),
        )
        .order_by(Registration.id.desc())
        .limit(MAX_PLACES * 2)
    ).all()
    for registration in registrations:
        held = registration.status == RegistrationStatus.HELD
        if held and not hold_is_live(registration, now):
            continue  # a lapsed hold is no place: the seat is no longer theirs
        sessions = _upcoming(registration_sessions(registration), now)
        if not sessions:
            continue
        zone = sessions[0].location.zone
        places.append(
            Place(
                title=offering_text(registration.offering).title,
                name=registration.name,
                sessions=sessions,
                status="held" if held else "confirmed",
                url=links.manage_url(registration),
                until=registration.hold_expires_at.astimezone(zone)
                if held and registration.hold_expires_at
                else None,
            )
        )
    entries = db.session.scalars(
        sa.select(WaitlistEntry)
        .where(
            WaitlistEntry.email_normalized == normalized,
            WaitlistEntry.status.in_((WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value)),
        )
        .order_by(WaitlistEntry.id.desc())
        .limit(MAX_PLACES * 2)
    ).all()
    for entry in entries:
        offering = entry.seat_pool.offering
        if offering.is_cancelled:
            continue
        scheduled = [
            s
            for s in db.session.scalars(
                sa.select(Session)
                .where(Session.seat_pool_id == entry.seat_pool_id)
                .order_by(Session.starts_at)
            )
            if s.status == SessionStatus.SCHEDULED
        ]
        if not scheduled or scheduled[0].starts_at <= now:
            continue  # begun (or called off): no seat will be offered any more
        sessions = scheduled
        offered = entry.status == WaitlistStatus.OFFERED
        zone = sessions[0].location.zone
        places.append(
            Place(
                title=offering_text(offering).title,
                name=entry.name,
                sessions=sessions,
                status="offered" if offered else "waiting",
                url=links.waitlist_url(entry),
                position=None if offered else waitlist_position(entry),
                until=entry.offer_expires_at.astimezone(zone) if offered and entry.offer_expires_at else None,
            )
        )
    places.sort(key=lambda place: place.starts_at)
    return places[:MAX_PLACES]
