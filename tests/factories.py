"""Building test data through the same services the app uses."""

from __future__ import annotations

import itertools
from datetime import date, time, timedelta

from events.catalog.scheduling import add_session
from events.extensions import db
from events.models import Clinic, Location, Offering, OfferingKind, Role, Session, User

_seq = itertools.count(1)


def make_clinic(**kw) -> Clinic:
    clinic = Clinic(**{"name": "Test Clinic", "timezone": "America/Chicago", "currency": "usd", **kw})
    db.session.add(clinic)
    return clinic


def make_location(slug: str | None = None, **kw) -> Location:
    n = next(_seq)
    values = dict(
        slug=slug or f"loc-{n}",
        name=kw.pop("name", f"Location {n}"),
        address_line1="1 Main St",
        city="Minneapolis",
        region="MN",
        postal_code="55401",
        timezone="America/Chicago",
    )
    values.update(kw)
    location = Location(**values)
    db.session.add(location)
    return location


def make_instructor(**kw) -> User:
    n = next(_seq)
    user = User(
        email=kw.pop("email", f"instructor{n}@example.com"),
        name=kw.pop("name", f"Instructor {n}"),
        role=kw.pop("role", Role.INSTRUCTOR),
        **kw,
    )
    db.session.add(user)
    return user


def make_offering(location: Location, kind=OfferingKind.WORKSHOP, **kw) -> Offering:
    n = next(_seq)
    values = dict(
        slug=kw.pop("slug", f"offering-{n}"),
        kind=kind,
        topic=kw.pop("topic", "Posture"),
        title=kw.pop("title", f"Offering {n}"),
        summary=kw.pop("summary", "A summary"),
        description=kw.pop("description", "A description"),
        location=location,
        price_cents=kw.pop("price_cents", 0),
        capacity=kw.pop("capacity", 10),
    )
    values.update(kw)
    offering = Offering(**values)
    db.session.add(offering)
    db.session.flush()
    return offering


def make_session(
    offering: Offering, day: date, start: time = time(18, 0), minutes: int = 60, **kw
) -> Session:
    session = add_session(offering, day, start, timedelta(minutes=minutes), **kw)
    db.session.flush()
    return session


def upcoming_day(days: int = 7) -> date:
    return date.today() + timedelta(days=days)


def workshop(price_cents: int = 0, capacity: int = 10, days: int = 7, **kw) -> Offering:
    """A committed-ready workshop with one session `days` from now, at a new location."""
    location = make_location()
    offering = make_offering(
        location, OfferingKind.WORKSHOP, price_cents=price_cents, capacity=capacity, **kw
    )
    make_session(offering, upcoming_day(days))
    return offering
