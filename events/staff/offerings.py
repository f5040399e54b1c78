"""Offerings and their sessions: create, edit, add dates, and what an admin sees of them.

Plain functions, no request objects: views parse forms and call these. Every change an admin
makes is written to the audit trail in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from events import audit
from events.catalog.scheduling import add_session, add_weekly_series, local_to_utc
from events.extensions import db
from events.filters import staff_time
from events.models import (
    ConsentDocument,
    Location,
    Offering,
    OfferingTranslation,
    PriceTierTranslation,
    Role,
    SeatPool,
    Session,
    User,
    utcnow,
)
from events.registration import seats
from events.registration.services import (
    CapacityError,
    resize_locked_pool,
)
from events.staff.errors import AdminError
from events.staff.moves import local_when
from events.staff.parsers import slugify, unique_slug

OFFERING_FIELDS = (
    "kind",
    "title",
    "topic",
    "summary",
    "description",
    "what_to_bring",
    "location_id",
    "instructor_id",
    "price_cents",
    "credits_per_booking",
    "cancellation_cutoff_hours",
    "late_cancel_refund_percent",
    "reminder_offsets",
    "followup_delay_minutes",
    "is_published",
    "consent_document_id",
    "community_seats",
    "community_price_cents",
    "community_release_hours",
)


def _status(offering: Offering, last_start: datetime | None, now: datetime) -> str:
    """What an admin sees of an offering: cancelled, draft, no dates, past or published."""
    if offering.is_cancelled:
        return "cancelled"
    if not offering.is_published:
        return "draft"
    if last_start is None:
        return "no dates"
    if last_start < now:
        return "past"
    return "published"


def offering_status(offering: Offering) -> str:
    last_start = db.session.scalar(
        sa.select(sa.func.max(Session.starts_at)).where(Session.offering_id == offering.id)
    )
    return _status(offering, last_start, utcnow())


@dataclass(frozen=True)
class OfferingLine:
    offering: Offering
    status: str


OFFERINGS_PER_PAGE = 100


@dataclass(frozen=True)
class OfferingsPage:
    lines: list[OfferingLine]
    number: int  # from 1
    has_next: bool


def list_offerings(page: int = 1, per_page: int = OFFERINGS_PER_PAGE) -> OfferingsPage:
    """One page of offerings (live before cancelled, newest first), each with its status, in
    one query however many there are: the status needs each offering's last date, read from
    the sessions index for the page's offerings only (not a load of its sessions per offering,
    nor a max over every session the clinic ever ran)."""
    last_start = (
        sa.select(sa.func.max(Session.starts_at)).where(Session.offering_id == Offering.id).scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(Offering, last_start)
        .options(joinedload(Offering.location), joinedload(Offering.instructor))
        .order_by(Offering.is_cancelled, Offering.created_at.desc(), Offering.id.desc())
        .limit(per_page + 1)
        .offset((page - 1) * per_page)
    ).all()
    now = utcnow()
    lines = [OfferingLine(offering, _status(offering, last, now)) for offering, last in rows[:per_page]]
    return OfferingsPage(lines, page, len(rows) > per_page)


def _check_references(data: dict) -> None:
    if db.session.get(Location, data["location_id"]) is None:
        raise AdminError("Choose a location.", "location_id")
    if data.get("instructor_id"):
        user = db.session.get(User, data["instructor_id"])
        if user is None or user.role is not Role.INSTRUCTOR:
            raise AdminError("Choose an instructor.", "instructor_id")
    if (
        data.get("consent_document_id")
        and db.session.get(ConsentDocument, data["consent_document_id"]) is None
    ):
        raise AdminError("Choose a consent document.", "consent_document_id")
    if data.get("community_seats", 0) and not data["price_cents"]:
        raise AdminError("A free offering needs no community seats: every seat is free.", "community_seats")
    if data.get("community_seats", 0) > data["capacity"]:
        raise AdminError("Community seats can't be more than the capacity.", "community_seats")
    if data.get("community_seats", 0) and data.get("community_price_cents", 0) > data["price_cents"]:
        raise AdminError("The community price can't be more than the price.", "community_price")


def create_offering(data: dict, actor: User) -> Offering:
    """data: OFFERING_FIELDS plus slug (optional) and capacity, already typed."""
    _check_references(data)
    offering = Offering(
        slug=unique_slug(Offering, data.get("slug") or data["title"]),
        capacity=data["capacity"],
        **{k: data[k] for k in OFFERING_FIELDS},
    )
    db.session.add(offering)
    db.session.flush()
    audit.record(
        actor.id, "offering.created", "offering", offering.id, title=offering.title, offering_id=offering.id
    )
    db.session.commit()
    return offering


def update_offering(offering: Offering, data: dict, actor: User) -> Offering:
    """Edit an offering in one transaction. A new capacity applies to every seat pool, all of
    them locked until the commit (so no registration slips in between the check and the
    change); if any pool has more seats taken than the new capacity, nothing at all changes."""
    _check_references(data)
    if data["kind"] != offering.kind and offering.sessions:
        raise AdminError(
            "The kind can't change once the offering has dates (seats are counted differently).", "kind"
        )
    new_capacity = data["capacity"]
    if new_capacity != offering.capacity:
        now = utcnow()
        pools = seats.lock_offering_pools(offering.id)
        for pool in pools:
            try:
                resize_locked_pool(pool, new_capacity, now)
            except CapacityError as error:
                db.session.rollback()
                raise AdminError(str(error), "capacity") from error
            audit.record(
                actor.id,
                "seat_pool.capacity_changed",
                "seat_pool",
                pool.id,
                capacity=new_capacity,
                offering_id=offering.id,
                offering_title=offering.title,
            )
    slug = data.get("slug") or ""
    changes: dict[str, list[Any]] = {}  # field: [old, new], for the audit trail
    if slug and slugify(slug) != offering.slug:
        changes["slug"] = [offering.slug, unique_slug(Offering, slug, exclude_id=offering.id)]
        offering.slug = changes["slug"][1]
    for key in OFFERING_FIELDS:
        old, new = getattr(offering, key), data[key]
        if old != new:
            changes[key] = [str(old), str(new)]
            setattr(offering, key, new)
    if new_capacity != offering.capacity:
        changes["capacity"] = [offering.capacity, new_capacity]
        offering.capacity = new_capacity
    audit.record(
        actor.id,
        "offering.updated",
        "offering",
        offering.id,
        changes=changes,
        offering_id=offering.id,
        offering_title=offering.title,
    )
    db.session.commit()
    return offering


def translations_of(offering: Offering) -> dict[str, OfferingTranslation]:
    """The offering's translations, by language."""
    rows = db.session.scalars(
        sa.select(OfferingTranslation).where(OfferingTranslation.offering_id == offering.id)
    )
    return {row.language: row for row in rows}


def tier_translations_of(offering: Offering, language: str) -> dict[int, PriceTierTranslation]:
    """The offering's tiers' translations into `language`, by tier id."""
    tier_ids = [tier.id for tier in offering.price_tiers]
    if not tier_ids:
        return {}
    rows = db.session.scalars(
        sa.select(PriceTierTranslation).where(
            PriceTierTranslation.price_tier_id.in_(tier_ids), PriceTierTranslation.language == language
        )
    )
    return {row.price_tier_id: row for row in rows}


def _save_tier_texts(offering: Offering, language: str, tier_texts: dict[int, tuple[str, str]]) -> list[str]:
    """Write the tiers' names and descriptions in `language` (an empty name removes one's
    translation: it shows in English). Returns the English names of the tiers changed."""
    saved = tier_translations_of(offering, language)
    changed = []
    for tier in offering.price_tiers:
        if tier.id not in tier_texts:
            continue
        name, description = tier_texts[tier.id]
        row = saved.get(tier.id)
        if not name:
            if row is not None:
                db.session.delete(row)
                changed.append(tier.name)
            continue
        if row is None:
            row = PriceTierTranslation(price_tier_id=tier.id, language=language, name=name)
            db.session.add(row)
        if (row.name, row.description) != (name, description):
            row.name, row.description = name, description
            changed.append(tier.name)
    return changed


def save_translation(
    offering: Offering,
    language: str,
    data: dict,
    actor: User,
    tier_texts: dict[int, tuple[str, str]] | None = None,
) -> OfferingTranslation | None:
    """Add, change or (an empty title) remove the offering's text in `language`, and its tiers'
    names (`tier_texts`: tier id -> name, description; an empty name removes that one). Members
    reading that language see it at once (the page cache's fingerprint moves with the change)."""
    tiers_changed = _save_tier_texts(offering, language, tier_texts or {})
    row = translations_of(offering).get(language)
    if not data["title"]:
        if row is not None:
            db.session.delete(row)
            audit.record(
                actor.id,
                "offering.translation_removed",
                "offering",
                offering.id,
                language=language,
                offering_id=offering.id,
                offering_title=offering.title,
            )
        if tiers_changed:
            _record_saved(offering, language, [f"tier {name}" for name in tiers_changed], actor)
        db.session.commit()
        return None
    if row is None:
        row = OfferingTranslation(offering_id=offering.id, language=language, title=data["title"])
        db.session.add(row)
    changed = [key for key in TRANSLATED_FIELDS if getattr(row, key, None) != data[key]]
    for key in TRANSLATED_FIELDS:
        setattr(row, key, data[key])
    _record_saved(offering, language, changed + [f"tier {name}" for name in tiers_changed], actor)
    db.session.commit()
    return row


def _record_saved(offering: Offering, language: str, changed: list[str], actor: User) -> None:
    audit.record(
        actor.id,
        "offering.translation_saved",
        "offering",
        offering.id,
        language=language,
        changed=changed,
        offering_id=offering.id,
        offering_title=offering.title,
    )


TRANSLATED_FIELDS = ("title", "summary", "description", "what_to_bring")


def seat_pools(offering: Offering) -> list[SeatPool]:
    return list(
        db.session.scalars(
            sa.select(SeatPool).where(SeatPool.offering_id == offering.id).order_by(SeatPool.id)
        )
    )


def add_sessions(
    offering: Offering,
    first_day: date,
    start: time,
    duration_minutes: int,
    weeks: int,
    location: Location | None,
    actor: User,
) -> list[Session]:
    """One session (weeks=1) or a weekly series, at local wall-clock time in the location's zone."""
    if offering.is_cancelled:
        raise AdminError("This offering is cancelled; it can't get new dates.")
    location = location or offering.location
    if local_to_utc(first_day, start, location.zone) <= utcnow():
        raise AdminError("The first date is in the past.", "first_day")
    duration = timedelta(minutes=duration_minutes)
    if weeks == 1:
        created = [add_session(offering, first_day, start, duration, location)]
    else:
        created = add_weekly_series(offering, first_day, start, duration, weeks, location)
    db.session.flush()
    for session in created:
        audit.record(
            actor.id,
            "session.created",
            "session",
            session.id,
            offering_id=offering.id,
            offering_title=offering.title,
            starts_at=session.starts_at.isoformat(),
            starts_local=staff_time(session.starts_at, session.location),
            when=local_when(session.starts_at, session.ends_at, location),
            location=location.name,
        )
    db.session.commit()
    return created


def load_dates(offering: Offering) -> None:
    """Load the offering's dates (offering.sessions) with the location, seat pool and
    instructor of each, in one query: a weekly class's dates table grows every week, and each
    row shows them (not a query per row)."""
    db.session.execute(
        sa.select(Offering)
        .where(Offering.id == offering.id)
        .options(
            selectinload(Offering.sessions).options(
                joinedload(Session.location), joinedload(Session.seat_pool), joinedload(Session.instructor)
            )
        )
    ).one()


def upcoming_sessions(offering: Offering) -> list[Session]:
    now = utcnow()
    return [s for s in offering.sessions if s.starts_at > now and s.status.value == "scheduled"]


def offering_choices() -> list[tuple[int, str]]:
    """(id, title) of every offering, by title: for a filter's drop-down."""
    return [
        tuple(row)
        for row in db.session.execute(sa.select(Offering.id, Offering.title).order_by(Offering.title))
    ]
