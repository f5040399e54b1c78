"""The staff registration search and the paged staff lists (issue 17, goal 1).

The search finds any part of a name, an email or an offering's title, case-insensitively, with
% and _ taken literally; it gives the same answers on PostgreSQL (ILIKE, served by trigram
indexes) and SQLite (lower() LIKE). The lists page by id, newest first, and following the
"Older" links visits every row once.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from events.app import create_app
from events.extensions import db
from events.models import EmailStatus, OfferingKind, OutboxEmail, Registration, RegistrationStatus
from events.staff import emails, registrations
from events.staff.parsers import page_before, page_number
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.integration.test_staff_admin import login

PEOPLE = [
    ("Ana López", "ana.lopez@example.com"),
    ("ANNA KARENINA", "anna@example.org"),
    ("Bo 100% Sure", "bo_sure@example.com"),
    ("Cy Young", "cy@lopezfamily.net"),
    ("Dee Under", "dee@example.com"),
]

# (search, names it must find)
EXPECTED = [
    ("ana", {"Ana López"}),  # (not in "anna karenina")
    ("ANN", {"ANNA KARENINA"}),
    ("lopez", {"Ana López", "Cy Young"}),  # an email part; López's name has an accent
    ("100%", {"Bo 100% Sure"}),
    ("%", {"Bo 100% Sure"}),  # literal, not "anything"
    ("_", {"Bo 100% Sure"}),  # bo_sure: literal, not "any one character"
    ("back pain", {"Dee Under"}),  # the offering's title
    ("nobody", set()),
]


def add_people() -> None:
    location = make_location()
    posture = make_offering(location, OfferingKind.WORKSHOP, title="Posture Basics")
    back = make_offering(location, OfferingKind.WORKSHOP, title="Back Pain First Aid")
    for offering in (posture, back):
        make_session(offering, upcoming_day(3))
    for n, (name, email) in enumerate(PEOPLE):
        offering = back if name == "Dee Under" else posture
        db.session.add(
            Registration(
                seat_pool_id=offering.sessions[0].seat_pool_id,
                offering_id=offering.id,
                name=name,
                email=email,
                email_normalized=email.lower(),
                status=RegistrationStatus.CONFIRMED,
                token=f"search-{n}",
            )
        )
    db.session.commit()


def found(q: str) -> set[str]:
    return {line.registration.name for line in registrations.search_registrations(q).lines}


@pytest.mark.parametrize(("q", "names"), EXPECTED)
def test_the_search_finds_a_part_of_a_name_email_or_title_on_postgresql(db, q, names):
    add_people()
    assert found(q) == names


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "events.sqlite3"
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SECRET_KEY": "test",
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade()
        add_people()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_the_search_gives_the_same_answers_on_sqlite(sqlite_app):
    with sqlite_app.app_context():
        assert {q: found(q) for q, _ in EXPECTED} == dict(EXPECTED)
        db.session.remove()


def test_a_search_on_postgresql_is_served_by_the_trigram_indexes(db):
    """With sequential and plain index scans ruled out (a test table is too small for the
    planner to prefer an index), the search's own statement reads the trigram indexes."""
    add_people()
    statements: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "FROM registrations" in statement and "ILIKE" in statement:
            statements.append((statement, parameters))

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        registrations.search_registrations("lopez")
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)
    (statement, parameters) = statements[0]
    connection = db.session.connection()
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
    plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
    assert "ix_registrations_name_trgm" in plan and "ix_registrations_email_trgm" in plan, plan


def test_the_registrations_list_pages_through_every_row_once(client, db):
    location = make_location()
    offering = make_offering(location, OfferingKind.WORKSHOP, capacity=500)
    session = make_session(offering, upcoming_day(3))
    db.session.execute(
        sa.insert(Registration),
        [
            dict(
                seat_pool_id=session.seat_pool_id,
                offering_id=offering.id,
                name=f"Pat {n:03d}",
                email=f"pat{n}@example.com",
                email_normalized=f"pat{n}@example.com",
                status="confirmed",
                token=f"page-{n}",
            )
            for n in range(230)
        ],
    )
    db.session.commit()
    login(client, db)
    url = "/staff/admin/registrations?q=pat&status=confirmed"
    seen: list[str] = []
    pages = 0
    while url:
        body = client.get(url).get_data(as_text=True)
        seen += re.findall(r">(Pat \d{3})</a>", body)
        pages += 1
        older = re.search(r'<a rel="next" href="([^"]+)">Older', body)
        url = older.group(1).replace("&amp;", "&") if older else ""
        if older:
            assert "q=pat" in url and "status=confirmed" in url  # the search goes with the link
    assert pages == 3
    assert seen == [f"Pat {n:03d}" for n in reversed(range(230))]  # newest first, each once
    assert "← Newest" in body


def test_the_failed_emails_list_pages_by_id(db):
    db.session.add_all(
        OutboxEmail(
            dedupe_key=f"failed-{n}", kind="reminder", to_email=f"x{n}@example.com", status=EmailStatus.FAILED
        )
        for n in range(7)
    )
    db.session.commit()
    first = emails.failed_emails(per_page=3)
    second = emails.failed_emails(first.older_than, per_page=3)
    third = emails.failed_emails(second.older_than, per_page=3)
    keys = [e.dedupe_key for page in (first, second, third) for e in page.emails]
    assert keys == [f"failed-{n}" for n in reversed(range(7))]
    assert third.older_than is None


@pytest.mark.parametrize("value", ["", "abc", "-5", "0", "1e5", "١٢", "9" * 19, "12\x00", None])
def test_a_hand_edited_page_link_shows_the_newest_page(value):
    assert page_before(value) is None


def test_a_page_link_names_an_id():
    assert page_before("123") == 123


def test_the_offerings_list_pages_live_before_cancelled_newest_first(db):
    from events.staff import offerings

    location = make_location()
    made = [make_offering(location, title=f"Offering {n}") for n in range(5)]
    made[1].is_cancelled = True
    db.session.commit()
    first = offerings.list_offerings(1, per_page=2)
    second = offerings.list_offerings(2, per_page=2)
    third = offerings.list_offerings(3, per_page=2)
    titles = [line.offering.title for page in (first, second, third) for line in page.lines]
    assert titles == ["Offering 4", "Offering 3", "Offering 2", "Offering 0", "Offering 1"]
    assert (first.has_next, second.has_next, third.has_next) == (True, True, False)
    assert third.lines[-1].status == "cancelled"


@pytest.mark.parametrize(
    ("value", "page"),
    [(None, 1), ("", 1), ("0", 1), ("-2", 1), ("x", 1), ("3", 3), ("9" * 40, 1), ("500000", 100_000)],
)
def test_a_page_number_is_a_plain_number_from_1(value, page):
    assert page_number(value) == page
