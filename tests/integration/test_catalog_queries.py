"""A constant number of SQL statements per page, whatever the number of sessions."""

from __future__ import annotations

from datetime import time

from events.models import OfferingKind
from tests.factories import make_clinic, make_instructor, make_location, make_offering, make_session
from tests.integration.conftest import day
from tests.integration.test_page_cache import listening

KINDS = [OfferingKind.WORKSHOP, OfferingKind.CLASS, OfferingKind.COURSE]


def add_sessions(db, count: int, start: int = 0) -> None:
    """count sessions, each of its own offering, instructor and (every third) location.

    Everything a page shows comes from a different row per session, so one lazy load per
    item would show up as more statements.
    """
    locations = [make_location(slug=f"place-{start}-{i}") for i in range(3)]
    for n in range(start, start + count):
        offering = make_offering(
            locations[n % 3],
            KINDS[n % 3],
            title=f"Offering number {n}",
            topic=f"Topic {n % 7}",
            instructor=make_instructor(),
            price_cents=(n % 2) * 1500,
        )
        make_session(
            offering, day(1 + n % 50), time(8 + n % 10, 0), instructor=make_instructor() if n % 2 else None
        )
    db.session.commit()


URLS = [
    "/",
    "/?per_page=100",
    "/?price=paid&per_page=100",
    "/api/v1/sessions",
    "/api/v1/sessions?per_page=100",
    "/calendar.ics",
    "/locations/place-0-0?per_page=100",
]


def statements_per_url(client, count_queries) -> dict[str, int]:
    counts = {}
    for url in URLS:
        with count_queries() as statements:
            response = client.get(url)
        assert response.status_code == 200, url
        counts[url] = len(statements)
    return counts


def test_statement_count_does_not_grow_with_sessions(client, db, app, count_queries):
    # The catalog listener connected first: until it is, each page also reads the fingerprint
    # from the database, one statement more (a run starting with this test counted 6, then 5).
    listening(app)
    make_clinic()
    add_sessions(db, 5)
    with_5 = statements_per_url(client, count_queries)
    add_sessions(db, 55, start=5)
    # Each size's pages rendered in full, as the first time: the schedule's parts kept from the
    # first round (events/catalog/seat_slots.py) would otherwise spare some of the second's reads.
    app.extensions["schedule_pages"].clear()
    with_60 = statements_per_url(client, count_queries)

    assert with_60 == with_5
    # And small: the page's own reads (clinic, count, rows, locations, topics), nothing per item.
    assert with_5["/"] <= 6
    assert with_5["/api/v1/sessions"] <= 4


def test_the_listing_really_shows_the_sixty_sessions(client, db):
    """The control for the test above: the pages did render every item they were counted on."""
    make_clinic()
    add_sessions(db, 60)
    body = client.get("/?per_page=100").get_data(as_text=True)
    assert body.count('class="session-card"') == 60
    assert len(client.get("/api/v1/sessions?per_page=100").get_json()["data"]) == 60


def test_offering_page_statement_count_does_not_grow_with_sessions(client, db, app, count_queries):
    listening(app)
    make_clinic()
    loc = make_location(slug="only")
    other = make_location(slug="elsewhere")
    offering = make_offering(loc, OfferingKind.CLASS, slug="weekly", instructor=make_instructor())

    def add(first: int, count: int) -> int:
        for n in range(first, first + count):
            make_session(
                offering, day(1 + n), location=other if n % 2 else None, instructor=make_instructor()
            )
        db.session.commit()
        with count_queries() as statements:
            response = client.get("/offerings/weekly")
        assert response.status_code == 200
        assert response.get_data(as_text=True).count('class="date-item') == first + count
        return len(statements)

    assert add(0, 2) == add(2, 28)
