"""The audit trail as admins read it: filtered, a page at a time, each entry a sentence with
links to what changed. A page runs the same statements whatever the table's size: one for
the entries (keyset paging on the id) and one per kind of record they name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from events import audit
from events.extensions import db
from events.filters import staff_time
from events.models import (
    AuditEntry,
    Location,
    Offering,
    OutboxEmail,
    Registration,
    Role,
    SeatPool,
    Session,
    User,
)

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilter:
    actor_id: int | None = None
    action: str = ""
    offering_id: int | None = None
    date_from: date | None = None  # local dates, in the clinic's zone, both included
    date_to: date | None = None
    before: int | None = None  # the page: entries older than this id (newest first)
    after: int | None = None  # or newer than this id


@dataclass(frozen=True)
class Link:
    label: str
    endpoint: str
    args: dict[str, int]


@dataclass
class AuditLine:
    entry: AuditEntry
    sentence: str
    when: str
    links: list[Link] = field(default_factory=list)


@dataclass
class AuditPage:
    lines: list[AuditLine]
    older: int | None  # the id to page on from, if there are older entries
    newer: int | None  # likewise for newer ones


def actor_choices() -> list[tuple[int, str]]:
    """Staff accounts by name, for the person filter."""
    rows = db.session.execute(
        sa.select(User.id, User.name)
        .where(User.role.in_((Role.ADMIN, Role.INSTRUCTOR)))
        .order_by(sa.func.lower(User.name), User.id)
    )
    return [(user_id, name) for user_id, name in rows]


def action_choices() -> list[tuple[str, str]]:
    """Every action with a sentence, by its label, for the kind filter."""
    return sorted(((a, audit.action_label(a)) for a in audit.SENTENCES), key=lambda pair: pair[1])


def _about_offering(offering_id: int) -> sa.ColumnElement[bool]:
    """Entries about an offering: audit.record copies it out of the details (or the target)
    into an indexed column; migration 0012 did the same for entries recorded before, finding
    older ones' offering through what they are about (a registration, date or seat pool)."""
    return AuditEntry.offering_id == offering_id


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone)


def audit_page(f: AuditFilter, zone: ZoneInfo, page_size: int = PAGE_SIZE) -> AuditPage:
    """One page of entries matching the filter, newest first, each told as a sentence."""
    query = sa.select(AuditEntry).options(joinedload(AuditEntry.actor))
    if f.actor_id is not None:
        query = query.where(AuditEntry.actor_id == f.actor_id)
    if f.action:
        query = query.where(AuditEntry.action == f.action)
    if f.offering_id is not None:
        query = query.where(_about_offering(f.offering_id))
    if f.date_from is not None:
        query = query.where(AuditEntry.created_at >= _local_midnight(f.date_from, zone))
    if f.date_to is not None:
        query = query.where(AuditEntry.created_at < _local_midnight(f.date_to + timedelta(days=1), zone))
    if f.after is not None:  # a newer page: the oldest ones above `after`, then shown newest first
        query = query.where(AuditEntry.id > f.after).order_by(AuditEntry.id.asc())
    else:
        if f.before is not None:
            query = query.where(AuditEntry.id < f.before)
        query = query.order_by(AuditEntry.id.desc())
    entries = list(db.session.scalars(query.limit(page_size + 1)))
    more = len(entries) > page_size
    entries = entries[:page_size]
    if f.after is not None:
        entries.reverse()
        older = entries[-1].id if entries else None
        newer = entries[0].id if more and entries else None
    else:
        older = entries[-1].id if more else None
        newer = entries[0].id if f.before is not None and entries else None
    return AuditPage(_lines(entries, zone), older, newer)


def _ids(entries: Iterable[AuditEntry], target_type: str, detail: str) -> set[int]:
    """Ids of one kind of record named by entries: as their target, or in their details."""
    found = set()
    for e in entries:
        if e.target_type == target_type:
            found.add(e.target_id)
        value = (e.details or {}).get(detail)
        if isinstance(value, int) and not isinstance(value, bool):
            found.add(value)
    return found


def _by_id(model: Any, ids: set[int], *options: Any) -> dict[int, Any]:
    """Rows of one model by id, in one query (none when no entry names one)."""
    if not ids:
        return {}
    return {
        row.id: row for row in db.session.scalars(sa.select(model).where(model.id.in_(ids)).options(*options))
    }


def _lines(entries: list[AuditEntry], zone: ZoneInfo) -> list[AuditLine]:
    emails: dict[int, OutboxEmail] = _by_id(OutboxEmail, _ids(entries, "outbox_email", "email_id"))
    registration_ids = _ids(entries, "registration", "registration_id")
    registration_ids |= {e.registration_id for e in emails.values() if e.registration_id is not None}
    registrations: dict[int, Registration] = _by_id(Registration, registration_ids)
    sessions: dict[int, Session] = _by_id(
        Session, _ids(entries, "session", "session_id"), joinedload(Session.location)
    )
    pools: dict[int, SeatPool] = _by_id(SeatPool, _ids(entries, "seat_pool", "seat_pool_id"))
    offering_ids = _ids(entries, "offering", "offering_id")
    offering_ids |= {r.offering_id for r in registrations.values()}
    offering_ids |= {s.offering_id for s in sessions.values()}
    offering_ids |= {p.offering_id for p in pools.values()}
    offerings: dict[int, Offering] = _by_id(Offering, offering_ids)
    users: dict[int, User] = _by_id(User, _ids(entries, "user", "user_id"))
    locations: dict[int, Location] = _by_id(Location, _ids(entries, "location", "location_id"))

    lines = []
    for e in entries:
        details = e.details if isinstance(e.details, dict) else {}
        email = emails.get(e.target_id) if e.target_type == "outbox_email" else None
        registration_id: int | None = e.target_id
        if e.target_type != "registration":
            registration_id = _int(details.get("registration_id")) or (
                email.registration_id if email else None
            )
        registration = registrations.get(registration_id or 0)
        session_id = e.target_id if e.target_type == "session" else _int(details.get("session_id"))
        session = sessions.get(session_id or 0)
        pool = pools.get(e.target_id) if e.target_type == "seat_pool" else None
        offering_id = (
            _int(details.get("offering_id"))
            or (e.target_id if e.target_type == "offering" else None)
            or (registration.offering_id if registration else None)
            or (session.offering_id if session else None)
            or (pool.offering_id if pool else None)
        )
        offering = offerings.get(offering_id or 0)
        user = users.get(e.target_id) if e.target_type == "user" else None
        location = locations.get(e.target_id) if e.target_type == "location" else None
        facts = audit.Facts(
            action=e.action,
            actor=e.actor.name if e.actor else "The system",
            target_type=e.target_type,
            target_id=e.target_id,
            details=details,
            person=registration.name if registration else None,
            offering=offering.title if offering else None,
            session_when=staff_time(session.starts_at, session.location) if session else None,
            user=user.name if user else None,
            location=location.name if location else None,
        )
        links = []
        if registration is not None:
            links.append(
                Link(registration.name, "staff.admin_registration", {"registration_id": registration.id})
            )
        if session is not None:
            links.append(Link(f"Roster, {facts.session_when}", "staff.roster", {"session_id": session.id}))
        if offering is not None:
            links.append(Link(offering.title, "staff.admin_offering", {"offering_id": offering.id}))
        if user is not None and user.role == Role.INSTRUCTOR:
            links.append(Link(user.name, "staff.admin_instructor_edit", {"user_id": user.id}))
        if location is not None:
            links.append(Link(location.name, "staff.admin_location_edit", {"location_id": location.id}))
        if e.target_type == "pass":  # (no lookup: the pass's page names its holder)
            links.append(Link(f"Pass #{e.target_id}", "staff.admin_pass", {"pass_id": e.target_id}))
        elif e.target_type == "pass_product":
            links.append(
                Link(f"Pass product #{e.target_id}", "staff.admin_pass_product", {"product_id": e.target_id})
            )
        lines.append(AuditLine(e, audit.describe(facts), staff_time(e.created_at, zone), links))
    return lines


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- One registration's history, on its admin page ---

HISTORY_LIMIT = 200  # the newest; the audit trail has the rest


@dataclass
class RegistrationHistory:
    lines: list[AuditLine]  # newest first
    transferred_to: Link | None = None  # the booking this one became, after a transfer
    transferred_from: Link | None = None  # the booking this one was made from


def _about_registration(registration_id: int) -> sa.ColumnElement[bool]:
    """Entries about a registration: those targeting it, and those naming it in their details
    (an email resent, a refund retried, the transfer that made it)."""
    return sa.or_(
        sa.and_(AuditEntry.target_type == "registration", AuditEntry.target_id == registration_id),
        # Copied out of the details by audit.record (indexed): a transfer's new booking, an email's.
        AuditEntry.registration_id == registration_id,
    )


def _booking_label(value: object, other_id: int) -> str:
    return " ".join(str(value).split())[:200] if value else f"booking {other_id}"


def registration_history(registration_id: int, zone: ZoneInfo) -> RegistrationHistory:
    """The registration's audit entries as sentences, newest first, in the same few statements
    whatever their number; and the bookings a transfer links it to."""
    entries = list(
        db.session.scalars(
            sa.select(AuditEntry)
            .options(joinedload(AuditEntry.actor))
            .where(_about_registration(registration_id))
            .order_by(AuditEntry.id.desc())
            .limit(HISTORY_LIMIT)
        )
    )
    history = RegistrationHistory(_lines(entries, zone))
    for line in history.lines:
        # On its own page a link to the registration itself says nothing: drop it.
        line.links = [link for link in line.links if link.args.get("registration_id") != registration_id]
        e = line.entry
        if e.action != "registration.transferred":
            continue
        details = e.details if isinstance(e.details, dict) else {}
        new_id = _int(details.get("new_registration_id"))
        if e.target_id == registration_id and new_id is not None:
            line.links.insert(
                0, Link("The new booking", "staff.admin_registration", {"registration_id": new_id})
            )
            if history.transferred_to is None:  # the latest, should it ever be more than one
                label = f"Transferred to {_booking_label(details.get('new'), new_id)}"
                history.transferred_to = Link(label, "staff.admin_registration", {"registration_id": new_id})
        elif new_id == registration_id:
            old = Link("The booking before", "staff.admin_registration", {"registration_id": e.target_id})
            line.links = [old, *(link for link in line.links if link.endpoint != "staff.admin_registration")]
            if history.transferred_from is None:
                label = f"Transferred from {_booking_label(details.get('old'), e.target_id)}"
                history.transferred_from = Link(label, old.endpoint, old.args)
    return history
