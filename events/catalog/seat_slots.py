"""The schedule page after a seat change: rebuilt from its kept parts, only the seats rendered.

A seat change (a registration, a cancellation) changes the page cache's fingerprint, so the next
visitor misses the cache (events/catalog/cache.py). Yet of the whole schedule page only the seat
badges can differ: which sessions it lists, their cards, the filters and the page count depend on
the catalog (catalog_state.version, bumped in the transaction of any change that shows publicly)
and the minute, never on seats.

So the first render of a schedule page, at a catalog version and minute, renders it with a slot
in place of each seat badge and keeps the HTML around the slots, with the seat pool of each slot
(`SchedulePages`, a bounded LRU in process memory). A later miss on the same address in the same
minute takes the catalog version and those pools' seats left as they are now, and joins the kept
HTML with each pool's badge. "As they are now": what this process's catalog listener knows
(KnownSeats in events/catalog/cache.py: seats read earlier, and those a seat-only change's
notification brings), when the request's fingerprint is the listener's and it knows them all;
else one statement reads them (and they are kept). A badge is the `seats_badge` macro's output for its
number of seats left, rendered once per number: the page is byte for byte what a full render
would give. If the catalog version moved, the page is rendered in full (and its parts kept anew).

Never stale for the person who changed the seats: their pages have a fingerprint read from the
database (FRESH_COOKIE), so their seats and version are read from the database too, whichever
process serves them; and the process that made a change forgets that pool's seats at its commit.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, get_template_attribute, request
from markupsafe import Markup

from events.catalog.cache import catalog_listener
from events.extensions import db
from events.languages import current_language
from events.models import CatalogState

# Stands for a seat badge while a page is rendered for its parts: random per process, so no
# text typed by staff can contain it.
SLOT = f"<!--seats-{secrets.token_hex(16)}-->"


@dataclass(frozen=True)
class PageParts:
    catalog_version: int
    pieces: tuple[str, ...]  # the HTML around the slots: one more piece than slots
    pool_ids: tuple[int, ...]  # each slot's seat pool, in order


class SchedulePages:
    """Kept page parts by address and minute, and each seats-left number's badge."""

    def __init__(self, max_entries: int = 256, max_chars: int = 32 * 1024 * 1024) -> None:
        self._parts: OrderedDict[tuple, PageParts] = OrderedDict()
        self._sizes: dict[tuple, int] = {}
        self._badges: dict[tuple[str, int], str] = {}  # by language and seats left
        self._lock = threading.Lock()
        self.max_entries = max_entries
        # Bounded in size too, as the page cache is: any query string makes a new entry.
        self.max_chars = max_chars
        self.chars = 0

    def get(self, key: tuple) -> PageParts | None:
        with self._lock:
            parts = self._parts.get(key)
            if parts is not None:
                self._parts.move_to_end(key)
            return parts

    def put(self, key: tuple, parts: PageParts) -> None:
        size = sum(len(piece) for piece in parts.pieces)
        with self._lock:
            self.chars += size - self._sizes.get(key, 0)
            self._parts[key], self._sizes[key] = parts, size
            self._parts.move_to_end(key)
            while self._parts and (len(self._parts) > self.max_entries or self.chars > self.max_chars):
                old_key, _ = self._parts.popitem(last=False)
                self.chars -= self._sizes.pop(old_key)

    def badge(self, seats_left: int) -> str:
        language = current_language()
        html = self._badges.get((language, seats_left))
        if html is None:
            seats_badge = get_template_attribute("macros.html", "seats_badge")
            html = str(seats_badge(SimpleNamespace(seats_left=seats_left)))
            with self._lock:
                if len(self._badges) > 4096:  # capacities are small numbers; this is a backstop
                    self._badges.clear()
                self._badges[(language, seats_left)] = html
        return html

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._sizes.clear()
            self._badges.clear()
            self.chars = 0


def schedule_pages() -> SchedulePages:
    ext = current_app.extensions
    if "schedule_pages" not in ext:
        cfg = current_app.config
        ext["schedule_pages"] = SchedulePages(cfg["PAGE_CACHE_SIZE"], cfg["PAGE_CACHE_MAX_BYTES"])
    return ext["schedule_pages"]


def seat_slot(pool: Any) -> Markup | None:
    """The Jinja `seat_slot(pool)`: while a page is rendered for its parts, a slot standing for
    the pool's badge (and the pool noted); otherwise None, and the template renders the badge."""
    slots = g.get("seat_slots")
    if slots is None:
        return None
    slots.append((pool.id, pool.seats_left, pool.version))
    return Markup(SLOT)  # noqa: S704 - our own constant, no visitor text in it


# Written out once (built per request, the statement cost more than the database's answer).
SEATS_NOW = sa.text(
    "SELECT catalog_state.version, seat_pools.id, seat_pools.capacity, seat_pools.seats_taken, "
    "seat_pools.version FROM catalog_state LEFT JOIN seat_pools ON seat_pools.id IN :pool_ids "
    "WHERE catalog_state.id = 1"
).bindparams(sa.bindparam("pool_ids", expanding=True))


def _seats_now(pool_ids: tuple[int, ...]) -> tuple[int | None, dict[int, tuple[int, int]]]:
    """The catalog version and each pool's (seats left, version), in one statement."""
    rows = db.session.execute(SEATS_NOW, {"pool_ids": sorted(set(pool_ids))}).all()
    if not rows:  # no catalog_state row (the next change recreates it): render in full
        return None, {}
    return rows[0][0], {row[1]: (max(row[2] - row[3], 0), row[4]) for row in rows if row[1] is not None}


def _catalog_version() -> int | None:
    return db.session.scalar(sa.select(CatalogState.version).where(CatalogState.id == 1))


def assembled_page(render: Callable[[], tuple[str, int]]) -> tuple[str, int]:
    """This request's schedule page (HTML, status): from its kept parts when the catalog has not
    changed since they were rendered, else rendered in full by `render` with seat slots."""
    if not g.get("rendering_for_cache"):
        # A page for this visitor alone (flashed messages, or the page cache turned off): parts
        # kept for everyone must neither come from it nor stand in for it.
        return render()
    pages = schedule_pages()
    key = (
        request.scheme,
        request.host,
        request.path,
        tuple(sorted(request.args.items(multi=True))),
        current_language(),
        int(time.time() // 60),
    )
    parts = pages.get(key)
    listener = catalog_listener()
    known = listener.seats if listener is not None else None
    # Taken before anything is read: what is read after may be kept (KnownSeats.keep).
    generation = known.generation if known is not None else 0
    if parts is not None:
        seats: tuple[int | None, dict[int, int]] | None = None
        if known is not None and g.get("page_fingerprint", ("",))[0] == "notified":
            # Every change this process has heard of is in the fingerprint: what it knows of
            # these seats is as current as the page asked for. (A visitor who just changed
            # something has a queried fingerprint: the database answers.)
            seats = known.read(parts.pool_ids)
        if seats is None:
            read_version, pool_seats = _seats_now(parts.pool_ids)
            if known is not None and read_version is not None:
                known.keep(generation, read_version, pool_seats)
            seats = read_version, {pool: left for pool, (left, _) in pool_seats.items()}
        version, seats_left = seats
        if version == parts.catalog_version and all(pool in seats_left for pool in parts.pool_ids):
            return _join(pages, parts.pieces, [seats_left[pool] for pool in parts.pool_ids]), 200
    else:
        version = _catalog_version()
    # The version is read before rendering: a change committed in between leaves parts newer
    # than the version they are kept under, so the next miss renders again (never the reverse).
    slots: list[tuple[int, int, int]] = []
    g.seat_slots = slots
    try:
        html, status = render()
    finally:
        g.seat_slots = None
    pieces = tuple(html.split(SLOT))
    if len(pieces) != len(slots) + 1:  # cannot happen (SLOT is random); stay correct if it does
        return render()
    if status == 200 and version is not None:
        pages.put(key, PageParts(version, pieces, tuple(pool for pool, _, _ in slots)))
        if known is not None:
            known.keep(
                generation, version, {pool: (left, pool_version) for pool, left, pool_version in slots}
            )
    return _join(pages, pieces, [left for _, left, _ in slots]), status


def _join(pages: SchedulePages, pieces: tuple[str, ...], seats_left: list[int]) -> str:
    out = [pieces[0]]
    for left, piece in zip(seats_left, pieces[1:], strict=True):
        out.append(pages.badge(left))
        out.append(piece)
    return "".join(out)
