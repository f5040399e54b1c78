"""Reading the public schedule: filters, the listing query, offerings and locations.

Every listing is a constant number of queries whatever the data size: one count, one
page of rows with everything the page shows joined in.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from typing import Any
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext, lazy_gettext
from sqlalchemy.orm import contains_eager, joinedload

from events.clinic import current_clinic
from events.errors import BadFilter
from events.extensions import db
from events.models import (
    Location,
    Offering,
    OfferingKind,
    Session,
    SessionStatus,
    utcnow,
)

MAX_PAGE_SIZE = 100
MAX_QUERY_LENGTH = 100
KEPT_LENGTH = 100  # the most of a visitor's bad value the filter form shows back


@dataclass(frozen=True)
class ScheduleFilter:
    location: str | None = None  # location slug
    kind: OfferingKind | None = None
    topic: str | None = None
    price: str | None = None  # "free" | "paid"
    date_from: date | None = None
    date_to: date | None = None
    q: str | None = None
    page: int = 1
    per_page: int = 20

    def as_args(self, **changes: Any) -> dict[str, str]:
        """Query-string arguments for this filter (for links such as the next page)."""
        values = replace(self, **changes) if changes else self
        args = {
            "location": values.location,
            "kind": values.kind.value if values.kind else None,
            "topic": values.topic,
            "price": values.price,
            "from": values.date_from.isoformat() if values.date_from else None,
            "to": values.date_to.isoformat() if values.date_to else None,
            "q": values.q,
            "page": str(values.page) if values.page != 1 else None,
        }
        return {k: v for k, v in args.items() if v}

    @property
    def is_filtered(self) -> bool:
        return any(self.as_args(page=1).values())


# Dates a visitor can ask for: wide enough for any real schedule, narrow enough that a day's
# start and end in any time zone stay inside what datetime and the databases can hold.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)
MAX_PAGE = 100_000

_DATE_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")
# Control characters (NUL above all: PostgreSQL text cannot hold it) are never in a real filter.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def _shown(raw: str, limit: int = 40) -> str:
    """A visitor's value, shortened for an error message."""
    return raw if len(raw) <= limit else raw[:limit] + "…"


def _parse_date(name: str, raw: str) -> date:
    try:
        if not _DATE_FORMAT.fullmatch(raw):
            raise ValueError(raw)
        value = date.fromisoformat(raw)
    except ValueError:
        raise BadFilter(
            f"'{name}' must be a date written as YYYY-MM-DD, like 2026-03-14; got '{_shown(raw)}'.",
            name=name,
            for_person=gettext("Enter a real date, written as YYYY-MM-DD (for example 2026-03-14)."),
            kept=raw[:KEPT_LENGTH],
        )
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        earliest, latest = EARLIEST_DATE.isoformat(), LATEST_DATE.isoformat()
        raise BadFilter(
            f"'{name}' must be between {earliest} and {latest}; got '{raw}'.",
            name=name,
            for_person=gettext(
                "Choose a date between the years %(earliest)s and %(latest)s.",
                earliest=EARLIEST_DATE.year,
                latest=LATEST_DATE.year,
            ),
            kept=raw,
        )
    return value


def _parse_positive_int(name: str, raw: str, maximum: int) -> int:
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise BadFilter(f"'{name}' must be a whole number; got '{_shown(raw)}'.", name=name)
    if len(raw.lstrip("-0")) > len(str(maximum)):  # far too big: don't even convert it
        raise BadFilter(f"'{name}' can be at most {maximum}; got '{_shown(raw)}'.", name=name)
    value = int(raw)
    if value < 1:
        raise BadFilter(f"'{name}' must be 1 or more; got {value}.", name=name)
    if value > maximum:
        raise BadFilter(f"'{name}' can be at most {maximum}; got {value}.", name=name)
    return value


def parse_schedule_filter(args: Mapping[str, str], default_per_page: int) -> ScheduleFilter:
    """Read filters from query arguments. Empty values mean "any"; bad ones raise BadFilter
    (the first problem found: for the API, which answers a 400)."""
    schedule_filter, problems = read_schedule_filter(args, default_per_page)
    if problems:
        raise problems[0]
    return schedule_filter


def read_schedule_filter(
    args: Mapping[str, str], default_per_page: int
) -> tuple[ScheduleFilter, list[BadFilter]]:
    """Read filters from query arguments, for a page with a filter form: every problem found
    (each naming its argument), and the filter of the arguments that were fine, so the page
    can show the form with its errors beside the sessions that match the rest."""
    problems: list[BadFilter] = []

    def get(name: str) -> str | None:
        value = (args.get(name) or "").strip()
        if _CONTROL_CHARS.search(value):
            problems.append(
                BadFilter(
                    f"'{name}' must not contain control characters.",
                    name=name,
                    for_person=gettext(
                        "This box held characters that can't be typed; they have been taken out."
                    ),
                    kept=_CONTROL_CHARS.sub("", value)[:KEPT_LENGTH],
                )
            )
            return None
        return value or None

    def parsed(name: str, parse: Callable[[str], Any]) -> Any:
        raw = get(name)
        if raw is None:
            return None
        try:
            return parse(raw)
        except BadFilter as problem:
            problems.append(problem)
            return None

    def parse_kind(raw: str) -> OfferingKind:
        try:
            return OfferingKind(raw)
        except ValueError:
            allowed = ", ".join(k.value for k in OfferingKind)
            raise BadFilter(
                f"'kind' must be one of {allowed}; got '{_shown(raw)}'.",
                name="kind",
                for_person=gettext("Choose one of the kinds in the list."),
            )

    def parse_price(raw: str) -> str:
        if raw not in ("free", "paid"):
            raise BadFilter(
                f"'price' must be 'free' or 'paid'; got '{_shown(raw)}'.",
                name="price",
                for_person=gettext("Choose one of the prices in the list."),
            )
        return raw

    def parse_q(raw: str) -> str:
        if len(raw) > MAX_QUERY_LENGTH:
            raise BadFilter(
                f"The search text ('q') can be at most {MAX_QUERY_LENGTH} characters; got {len(raw)}.",
                name="q",
                for_person=gettext("Search for at most %(count)s characters.", count=MAX_QUERY_LENGTH),
                kept=raw[:MAX_QUERY_LENGTH],
            )
        return raw

    kind = parsed("kind", parse_kind)
    price = parsed("price", parse_price)
    date_from = parsed("from", lambda raw: _parse_date("from", raw))
    date_to = parsed("to", lambda raw: _parse_date("to", raw))
    if date_from and date_to and date_to < date_from:
        problems.append(
            BadFilter(
                f"'to' must be on or after 'from'; "
                f"got from {date_from.isoformat()} to {date_to.isoformat()}.",
                name="to",
                for_person=gettext("The 'To' date must be the same as or later than the 'From' date."),
                kept=date_to.isoformat(),
            )
        )
        date_to = None
    q = parsed("q", parse_q)
    page = parsed("page", lambda raw: _parse_positive_int("page", raw, MAX_PAGE)) or 1
    per_page = (
        parsed("per_page", lambda raw: _parse_positive_int("per_page", raw, MAX_PAGE_SIZE))
        or default_per_page
    )

    schedule_filter = ScheduleFilter(
        location=get("location"),
        kind=kind,
        topic=get("topic"),
        price=price,
        date_from=date_from,
        date_to=date_to,
        q=q,
        page=page,
        per_page=per_page,
    )
    return schedule_filter, problems


KIND_CHIP_LABELS = {
    OfferingKind.WORKSHOP: lazy_gettext("Workshops"),
    OfferingKind.CLASS: lazy_gettext("Drop-in classes"),
    OfferingKind.COURSE: lazy_gettext("Courses"),
}


@dataclass(frozen=True)
class QuickFilter:
    """A one-tap filter chip: its label, the filter a tap leads to, and whether it is on now."""

    label: str
    target: ScheduleFilter
    on: bool


def quick_filters(f: ScheduleFilter, locations: list[Location], today: date) -> list[QuickFilter]:
    """This week, Free, each location and each kind: each tap turns one on (or off, when it is
    on) and keeps the rest of the filter, back on the first page."""
    base = replace(f, page=1)
    week_end = today + timedelta(days=6)
    this_week = f.date_from == today and f.date_to == week_end
    chips = [
        QuickFilter(
            gettext("This week"),
            replace(base, date_from=None, date_to=None)
            if this_week
            else replace(base, date_from=today, date_to=week_end),
            this_week,
        ),
        QuickFilter(
            gettext("Free"), replace(base, price=None if f.price == "free" else "free"), f.price == "free"
        ),
    ]
    for location in locations:
        on = f.location == location.slug
        chips.append(QuickFilter(location.name, replace(base, location=None if on else location.slug), on))
    for kind, label in KIND_CHIP_LABELS.items():
        on = f.kind == kind
        chips.append(QuickFilter(str(label), replace(base, kind=None if on else kind), on))
    return chips


def clinic_today(now: datetime | None = None) -> date:
    """Today's date where the clinic is."""
    return (now or utcnow()).astimezone(ZoneInfo(current_clinic().timezone)).date()


@dataclass
class SchedulePage:
    filter: ScheduleFilter
    sessions: list[Session]
    total: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        self.pages = max(1, math.ceil(self.total / self.filter.per_page))

    @property
    def has_next(self) -> bool:
        return self.filter.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.filter.page > 1

    def by_day(self) -> list[tuple[date, list[Session]]]:
        """Sessions grouped by their local calendar day, in order."""
        return [
            (day, list(items)) for day, items in groupby(self.sessions, key=lambda s: s.local_start.date())
        ]


def _day_start_utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def _schedule_conditions(f: ScheduleFilter, now: datetime, include_cancelled: bool = False) -> list:
    zone = ZoneInfo(current_clinic().timezone)
    conditions = [Offering.is_published.is_(True), Session.starts_at >= now]
    if not include_cancelled:
        conditions += [Offering.is_cancelled.is_(False), Session.status == SessionStatus.SCHEDULED]
    if f.location:
        conditions.append(Location.slug == f.location)
    if f.kind:
        conditions.append(Offering.kind == f.kind)
    if f.topic:
        conditions.append(sa.func.lower(Offering.topic) == f.topic.lower())
    if f.price == "free":
        conditions.append(Offering.price_cents == 0)
    elif f.price == "paid":
        conditions.append(Offering.price_cents > 0)
    if f.date_from:
        conditions.append(Session.starts_at >= _day_start_utc(f.date_from, zone))
    if f.date_to:
        conditions.append(Session.starts_at < _day_start_utc(f.date_to + timedelta(days=1), zone))
    if f.q:
        # autoescape: a search for "100%" means the text, not a LIKE pattern.
        text = f.q.lower()
        conditions.append(
            sa.or_(
                *(
                    sa.func.lower(column).contains(text, autoescape=True)
                    for column in (Offering.title, Offering.summary, Offering.topic, Offering.description)
                )
            )
        )
    return conditions


def list_schedule(
    f: ScheduleFilter,
    now: datetime | None = None,
    include_cancelled: bool = False,
    last_page_at_most: bool = False,
) -> SchedulePage:
    """A page of the schedule. With last_page_at_most (the public pages), a page number past
    the last shows the last page (the API answers such a page empty, as its clients expect)."""
    now = now or utcnow()
    conditions = _schedule_conditions(f, now, include_cancelled)
    base = (
        sa.select(Session)
        .join(Session.offering)
        .join(Session.location)
        .join(Session.seat_pool)
        .where(*conditions)
    )
    total = db.session.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0
    if last_page_at_most:
        f = replace(f, page=min(f.page, max(1, math.ceil(total / f.per_page))))
    rows = db.session.scalars(
        base.options(
            contains_eager(Session.offering),
            contains_eager(Session.location),
            contains_eager(Session.seat_pool),
            joinedload(Session.instructor),
            joinedload(Session.offering, Offering.instructor),
        )
        .order_by(Session.starts_at, Session.id)
        .limit(f.per_page)
        .offset((f.page - 1) * f.per_page)
    ).unique()
    return SchedulePage(filter=f, sessions=list(rows), total=total)


def _plausible_slug(slug: str) -> bool:
    """Slugs in a URL that no row can have (NUL bytes, absurd lengths) are simply not found."""
    return 0 < len(slug) <= 200 and not _CONTROL_CHARS.search(slug)


def get_offering(slug: str, for_page: bool = True) -> Offering | None:
    """The published offering named `slug`, with the consent document its booking asks for.
    for_page: with its location and instructor too, which its page shows (a registration
    reads neither unless it shows the page again)."""
    if not _plausible_slug(slug):
        return None
    return db.session.scalar(_offering_by_slug(for_page), {"slug": slug})


@functools.cache
def _offering_by_slug(for_page: bool) -> sa.Select[tuple[Offering]]:
    """get_offering()'s statement, built once: the slug is its parameter (building it, its
    loader options and its cache key again for each request cost more than running it)."""
    loads = [joinedload(Offering.consent_requirement)]
    if for_page:
        loads += [joinedload(Offering.location), joinedload(Offering.instructor)]
    return (
        sa.select(Offering)
        .where(Offering.slug == sa.bindparam("slug"), Offering.is_published.is_(True))
        .options(*loads)
    )


def offering_sessions(offering: Offering, now: datetime | None = None) -> tuple[list[Session], list[Session]]:
    """The offering's sessions, split into (upcoming, past), with seats and places loaded."""
    now = now or utcnow()
    sessions = db.session.scalars(
        sa.select(Session)
        .where(Session.offering_id == offering.id)
        .options(
            joinedload(Session.seat_pool),
            joinedload(Session.location),
            joinedload(Session.instructor),
        )
        .order_by(Session.starts_at)
    ).all()
    upcoming = [s for s in sessions if s.ends_at >= now]
    past = [s for s in sessions if s.ends_at < now]
    return upcoming, past


def open_sessions(upcoming: list[Session]) -> list[Session]:
    """The upcoming sessions one may still register for (not cancelled)."""
    return [s for s in upcoming if s.status == SessionStatus.SCHEDULED]


def chosen_date(
    offering: Offering, open_sessions: list[Session], chosen_session_id: int | None
) -> Session | None:
    """The date the offering page's form shows chosen: a schedule card's (?session=ID) or the
    one sent with the form, if it is open; for a class with one open date, that one."""
    chosen = None
    if chosen_session_id:
        chosen = next((s for s in open_sessions if s.id == chosen_session_id), None)
    if chosen is None and offering.kind.per_session and len(open_sessions) == 1:
        return open_sessions[0]
    return chosen


def published_session(session_id: int) -> Session | None:
    """A session of a published offering (cancelled ones too: the API says they are)."""
    session = db.session.get(Session, session_id)  # <int:> stops at the id column's range
    return session if session is not None and session.offering.is_published else None


def get_location(slug: str) -> Location | None:
    if not _plausible_slug(slug):
        return None
    return db.session.scalar(sa.select(Location).where(Location.slug == slug))


def active_locations() -> list[Location]:
    return list(
        db.session.scalars(sa.select(Location).where(Location.is_active.is_(True)).order_by(Location.name))
    )


def topics() -> list[str]:
    return list(
        db.session.scalars(
            sa.select(Offering.topic)
            .where(Offering.is_published.is_(True), Offering.is_cancelled.is_(False))
            .distinct()
            .order_by(Offering.topic)
        )
    )


def upcoming_sessions_for_feed(
    location_slug: str | None = None, now: datetime | None = None
) -> list[Session]:
    """Every upcoming session (optionally at one location) for the iCal feeds.

    Unlike the schedule, the feeds keep upcoming cancelled sessions (and those of cancelled
    offerings), marked cancelled: a subscribed calendar keeps an event that silently leaves the
    feed, and only an event it still sees can tell it the session was called off.
    """
    f = ScheduleFilter(location=location_slug, per_page=current_app.config["FEED_MAX_EVENTS"])
    return list_schedule(f, now=now, include_cancelled=True).sessions


def map_url(location: Location) -> str:
    return "https://www.google.com/maps/search/?api=1&query=" + quote_plus(location.full_address)
