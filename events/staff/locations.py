"""The clinic's locations: where offerings meet, in which time zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from events import audit
from events.extensions import db
from events.models import (
    Location,
    User,
)
from events.staff.errors import AdminError
from events.staff.parsers import slugify, unique_slug

LOCATION_FIELDS = (
    "name",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "timezone",
    "phone",
    "directions",
    "is_active",
)


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise AdminError(
            f'"{name}" isn\'t a time zone; use a name like America/Chicago.', "timezone"
        ) from error


def save_location(location: Location | None, data: dict, actor: User) -> Location:
    _check_timezone(data["timezone"])
    created = location is None
    if location is None:
        location = Location(slug=unique_slug(Location, data.get("slug") or data["name"]))
        db.session.add(location)
    elif data.get("slug") and slugify(data["slug"]) != location.slug:
        location.slug = unique_slug(Location, data["slug"], exclude_id=location.id)
    for key in LOCATION_FIELDS:
        setattr(location, key, data[key])
    db.session.flush()
    audit.record(
        actor.id,
        "location.created" if created else "location.updated",
        "location",
        location.id,
        name=location.name,
    )
    db.session.commit()
    return location


def find_location(location_id: int) -> Location | None:
    return db.session.get(Location, location_id)


def all_locations() -> list[Location]:
    """Every location by name, inactive ones too (an offering may still meet at one)."""
    return list(db.session.scalars(sa.select(Location).order_by(Location.name)))


def locations_for_admin() -> list[Location]:
    """Active ones first, then by name."""
    return list(db.session.scalars(sa.select(Location).order_by(Location.is_active.desc(), Location.name)))


def other_active_locations(location_id: int) -> list[Location]:
    """Where else a date of an offering that usually meets at this location could be."""
    return list(
        db.session.scalars(
            sa.select(Location)
            .where(Location.is_active.is_(True), Location.id != location_id)
            .order_by(Location.name)
        )
    )
