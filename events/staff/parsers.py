"""What admins type, read into what is stored: slugs, reminder times, amounts."""

from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa

from events.extensions import db
from events.models import (
    Location,
    Offering,
)
from events.staff.errors import AdminError


def slugify(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:100] or "item"


def unique_slug(model: type[Offering] | type[Location], wanted: str, exclude_id: int | None = None) -> str:
    """`wanted`, or `wanted-2`, `wanted-3`... whichever is free in this table."""
    base = slugify(wanted)
    candidate, n = base, 1
    while True:
        query = sa.select(model.id).where(model.slug == candidate)
        if exclude_id is not None:
            query = query.where(model.id != exclude_id)
        if db.session.scalar(query) is None:
            return candidate
        n += 1
        candidate = f"{base}-{n}"


_OFFSET = re.compile(r"^(\d+)\s*(m|min|h|d)?$")
_UNIT_MINUTES = {None: 1, "m": 1, "min": 1, "h": 60, "d": 1440}


def parse_reminder_offsets(text: str) -> str:
    """ "24h, 2h" -> "1440,120" (largest first). Units: d, h, m; a bare number is minutes."""
    minutes = set()
    for part in (p.strip().lower() for p in (text or "").split(",")):
        if not part:
            continue
        match = _OFFSET.match(part)
        if not match:
            raise AdminError(f'"{part}" isn\'t a time before the session; write e.g. "24h, 2h".', "reminders")
        value = int(match.group(1)) * _UNIT_MINUTES[match.group(2)]
        if not 0 < value <= 60 * 24 * 30:
            raise AdminError("Reminders go out between 1 minute and 30 days before.", "reminders")
        minutes.add(value)
    return ",".join(str(m) for m in sorted(minutes, reverse=True))


def format_reminder_offsets(stored: str) -> str:
    """ "1440,120" -> "24h, 2h"; whole days from 48 hours up ("2880" -> "2d")."""
    out = []
    for part in (stored or "").split(","):
        if not part.strip().isdigit():
            continue
        m = int(part)
        if m % 1440 == 0 and m >= 2 * 1440:
            out.append(f"{m // 1440}d")
        elif m % 60 == 0:
            out.append(f"{m // 60}h")
        else:
            out.append(f"{m}m")
    return ", ".join(out)


def dollars_to_cents(amount: Decimal | str | float) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def page_before(value: str | None) -> int | None:
    """The `before` of a list's "Older" link: an id (the page holds the rows below it), or
    None for the newest page when it is missing or not a plain id (a hand-edited link)."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value) or None


def page_number(value: str | None, last: int = 100_000) -> int:
    """A list's ?page= (from 1), or 1 when it is missing or not a plain number; at most `last`."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 9:
        return 1
    return min(max(int(value), 1), last)
