"""The schedule page rebuilt from its kept parts after a seat change is byte for byte the page a
full render gives, for any filter and page, and never shows seats as they were."""

from __future__ import annotations

import re
import time as time_module
from datetime import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from events.catalog import cache as page_cache
from events.catalog import services as catalog_services
from events.catalog.cache import KnownSeats, changed_seats, seats_notification
from events.catalog.seat_slots import PageParts, SchedulePages
from events.models import OfferingKind, SeatPool
from events.registration import services
from events.registration.services import Person
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.integration.test_page_cache import listening

URLS = [
    "/",
    "/?kind=workshop",
    "/?per_page=3&page=2",
    "/?location=north&per_page=2",
    "/?q=posture",
    "/?price=free",
    "/?q=nothing-matches-this",
]
SEATS = re.compile(r"(\d+ seats left|\d+ left|Full - join waitlist)")


@pytest.fixture
def schedule(db, app):
    """Two locations, three kinds, sessions over several days: pages 1 and 2 at 3 a page."""
    listening(app)
    make_clinic()
    north, south = make_location(slug="north", name="North"), make_location(slug="south", name="South")
    offerings = [
        make_offering(north, OfferingKind.WORKSHOP, title="Posture Basics", capacity=5),
        make_offering(south, OfferingKind.CLASS, title="Strong Knees", capacity=12, price_cents=0),
        make_offering(north, OfferingKind.COURSE, title="Back Care Course", capacity=4),
    ]
    sessions = [
        make_session(offering, upcoming_day(day), time(hour, 0))
        for day in (2, 3, 5)
        for hour, offering in zip((9, 12, 17), offerings, strict=True)
    ]
    db.session.commit()
    return offerings, sessions


@pytest.fixture
def full_renders(monkeypatch):
    """Counts the schedule's full renders (the listing query runs only in one)."""
    calls = []
    real = catalog_services.list_schedule
    monkeypatch.setattr(catalog_services, "list_schedule", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


def rendered_in_full(client, app, monkeypatch, url: str) -> bytes:
    with monkeypatch.context() as m:
        m.setitem(app.config, "PAGE_CACHE_ENABLED", False)
        response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data()


def set_seats_taken(db, session, taken: int) -> None:
    """A seat change as the registration code makes it: seats and the pool's version."""
    session.seat_pool.seats_taken = taken
    session.seat_pool.version += 1
    db.session.commit()


def test_assembled_pages_equal_full_renders_after_seat_changes(
    client, db, app, monkeypatch, schedule, full_renders
):
    # Pages are kept per minute: a test crossing a minute's end would render them again (a
    # flake under a loaded CI), so the page cache's clock stands still here.
    frozen = time_module.time()
    monkeypatch.setattr(page_cache, "time", SimpleNamespace(time=lambda: frozen, sleep=time_module.sleep))
    offerings, sessions = schedule
    for url in URLS:
        assert client.get(url).get_data() == rendered_in_full(client, app, monkeypatch, url), url
    # Every badge: plenty of seats, a few left, full; by registering and by the pool directly.
    services.register(offerings[0], sessions[0].id, Person("Ana Lopez", "ana@example.com"))
    set_seats_taken(db, sessions[1], 10)  # 2 left
    set_seats_taken(db, sessions[2], 4)  # full
    full_renders.clear()
    for url in URLS:
        assembled = client.get(url)
        assert assembled.status_code == 200
        assert assembled.get_data() == rendered_in_full(client, app, monkeypatch, url), url
    assert full_renders == [1] * len(URLS), "the assembled pages ran no listing query"
    page = client.get("/").get_data(as_text=True)
    assert SEATS.findall(page)[:3] == [
        "4 seats left",
        "2 left",
        "Full - join waitlist",
    ]


def test_a_catalog_change_renders_the_page_in_full(client, db, app, monkeypatch, schedule, full_renders):
    offerings, sessions = schedule
    client.get("/")
    offerings[0].title = "Posture Basics, Renamed"
    set_seats_taken(db, sessions[0], 1)
    full_renders.clear()
    page = client.get("/")
    assert full_renders == [1]
    assert "Posture Basics, Renamed" in page.get_data(as_text=True)
    assert page.get_data() == rendered_in_full(client, app, monkeypatch, "/")
    # And the parts kept from that render serve the next seat change.
    set_seats_taken(db, sessions[0], 2)
    full_renders.clear()
    assert client.get("/").get_data() == rendered_in_full(client, app, monkeypatch, "/")
    assert full_renders == [1]  # (the full render's own)


def test_a_filter_with_problems_is_rendered_in_full_every_time(client, db, app, schedule, full_renders):
    _, sessions = schedule
    first = client.get("/?kind=bogus&from=2026-13-01")
    assert first.status_code == 400
    set_seats_taken(db, sessions[0], 3)
    full_renders.clear()
    second = client.get("/?kind=bogus&from=2026-13-01")
    assert second.status_code == 400
    assert full_renders == [1]
    assert "2 left" in second.get_data(as_text=True)


def test_the_person_who_changed_seats_sees_them_on_the_assembled_page(client, db, schedule, full_renders):
    offerings, sessions = schedule
    assert "5 seats left" in client.get("/").get_data(as_text=True)
    # Registering through the site: the response marks this visitor as a changer.
    services.register(offerings[0], sessions[0].id, Person("Ana Lopez", "ana@example.com"))
    full_renders.clear()
    page = client.get("/", headers={"Cookie": "catalog_fresh=1"}).get_data(as_text=True)
    assert full_renders == []
    assert re.search(r"Posture Basics.*?(\d+ seats left|\d+ left)", page, re.S).group(1) == "4 seats left"


def test_a_seat_change_elsewhere_needs_no_query(client, db, app, monkeypatch, schedule, count_queries):
    """What this process read of the seats is kept, and a notification brings a pool's new seats
    left and version (NOTIFY ... 'seats:ID=LEFT@VERSION' from another process): the page is
    rebuilt without a statement, with the new seats."""
    _, sessions = schedule
    listener = listening(app)
    client.get("/")  # rendered in full: its parts and the seats it showed are kept
    # Another process fills the first card's session: its row, then its notification.
    pool = sessions[0].seat_pool
    db.session.execute(
        sa.update(SeatPool).where(SeatPool.id == pool.id).values(seats_taken=5, version=pool.version + 1)
    )
    db.session.commit()  # (no ORM flush: this process hears of it only by the bump below)
    listener.bump(changed_seats(f"seats:{pool.id}=0@{pool.version + 1}"))
    with count_queries() as statements:
        page = client.get("/")
    assert statements == []
    assert SEATS.findall(page.get_data(as_text=True))[0] == "Full - join waitlist"
    assert page.get_data() == rendered_in_full(client, app, monkeypatch, "/")
    # A notification without seats (a catalog change, or a reconnect) forgets everything: the
    # next page reads the database.
    listener.bump()
    assert listener.seats.read([sessions[1].seat_pool_id]) is None
    with count_queries() as statements:
        again = client.get("/")
    assert len(statements) == 1
    assert again.get_data() == page.get_data()


def test_flushes_carry_the_seats_they_write(db, schedule):
    offerings, sessions = schedule
    first, second = sessions[0].seat_pool, sessions[1].seat_pool
    v1, v2 = first.version, second.version
    first.seats_taken, first.version = 1, v1 + 1
    second.seats_taken, second.version = 12, v2 + 1
    db.session.flush()
    assert db.session.info["seat_pools_changed"] == {first.id: (4, v1 + 1), second.id: (0, v2 + 1)}
    first.seats_taken, first.version = 2, v1 + 2
    db.session.flush()
    assert db.session.info["seat_pools_changed"] == {first.id: (3, v1 + 2), second.id: (0, v2 + 1)}
    offerings[0].title = "Renamed"  # the catalog too: no longer only seats
    db.session.flush()
    assert db.session.info["seat_pools_changed"] is None
    sessions[2].seat_pool.seats_taken = 1
    db.session.flush()
    assert db.session.info["seat_pools_changed"] is None  # (still: the transaction changed more)
    db.session.commit()
    assert "seat_pools_changed" not in db.session.info


def test_notifications_carry_seats_or_mean_anything():
    assert seats_notification({3: (0, 7), 1: (12, 2)}) == "NOTIFY catalog_changed, 'seats:1=12@2,3=0@7'"
    assert seats_notification({}) == "NOTIFY catalog_changed"
    assert seats_notification(dict.fromkeys(range(2000), (5, 1))) == "NOTIFY catalog_changed"  # too long
    assert changed_seats("seats:1=12@2,3=0@7") == {1: (12, 2), 3: (0, 7)}
    assert changed_seats("") is None
    assert changed_seats("seats:1=x@2") is None
    assert changed_seats("seats:1=2") is None


def test_seats_are_learnt_in_order_and_never_replace_newer_ones():
    known = KnownSeats()
    generation = known.generation
    known.learn({7: (1, 3)})  # a change heard of while the seats were being read
    known.keep(generation, 3, {7: (2, 2), 8: (4, 1)})  # read before it: not kept
    assert known.read([7]) is None  # (no catalog version known yet)
    known.keep(known.generation, 3, {7: (1, 3), 8: (4, 1)})
    assert known.read([7, 8]) == (3, {7: 1, 8: 4})
    known.learn({7: (0, 4)})
    assert known.read([7, 8]) == (3, {7: 0, 8: 4})
    known.learn({7: (1, 3)})  # older than what is known: changes nothing
    assert known.read([7]) == (3, {7: 0})
    known.learn({7: (2, 4)})  # a different value at the same version: forgotten
    assert known.read([7]) is None
    known.keep(known.generation, 4, {7: (0, 5)})  # a new catalog version: the rest is forgotten
    assert known.read([8]) is None
    assert known.read([7]) == (4, {7: 0})
    known.learn(None)
    assert known.read([7]) is None


def test_this_process_learns_its_own_change_only_over_an_older_value(db, app, schedule):
    """Its own commit is counted at once, before its notification, and maybe after another
    process's later change was heard of: its values replace only an older known value."""
    _, sessions = schedule
    listener = listening(app)
    pool = sessions[0].seat_pool
    listener.seats.keep(listener.seats.generation, 1, {pool.id: (5, pool.version)})
    pool.seats_taken, pool.version = 1, pool.version + 1
    db.session.commit()
    assert listener.seats.seats[pool.id] == (4, pool.version)  # learnt at once
    listener.bump({pool.id: (0, pool.version + 2)})  # heard: a later change elsewhere
    pool.seats_taken, pool.version = 2, pool.version + 1  # (stands for one committed before it)
    db.session.commit()
    assert listener.seats.seats[pool.id][1] == pool.version + 1  # the later one stays
    listener.seats.learn(None)
    pool.seats_taken, pool.version = 3, pool.version + 3
    db.session.commit()
    assert pool.id not in listener.seats.seats  # nothing known to be older: not learnt


def test_kept_parts_are_bounded_in_number_and_size():
    pages = SchedulePages(max_entries=3, max_chars=100)
    for n in range(5):
        pages.put(("page", n), PageParts(1, ("x" * 10, "y" * 10), (n,)))
    assert [pages.get(("page", n)) is not None for n in range(5)] == [False, False, True, True, True]
    pages.put(("big", 0), PageParts(1, ("z" * 90,), ()))
    assert pages.get(("page", 4)) is None and pages.get(("big", 0)) is not None
    assert pages.chars == 90
