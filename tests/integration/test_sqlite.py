"""The embedded default: the demo on a SQLite file, as `make run` starts it."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from icalendar import Calendar

from events.app import create_app
from events.demo import seed_demo
from events.extensions import db
from events.models import Location, Offering, Registration, Resource, Role, SeatPool, Session, User

COUNTED = (Location, User, Offering, Session, SeatPool, Registration, Resource)


def row_counts() -> dict[str, int]:
    return {m.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(m)) for m in COUNTED}


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "events.sqlite3"
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
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def seeded(sqlite_app):
    """The demo seeded twice; the row counts after each run."""
    with sqlite_app.app_context():
        first_summary = seed_demo()
        first = row_counts()
        second_summary = seed_demo()
        second = row_counts()
        db.session.remove()
    return {"first": first, "second": second, "summaries": (first_summary, second_summary)}


def test_the_database_is_sqlite(sqlite_app):
    with sqlite_app.app_context():
        assert db.engine.dialect.name == "sqlite"
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_seed_demo_is_idempotent(seeded):
    assert seeded["first"] == seeded["second"]
    assert seeded["first"]["locations"] == 2
    assert seeded["first"]["offerings"] >= 5
    assert seeded["first"]["sessions"] > seeded["first"]["offerings"]
    assert "0 new offerings" in seeded["summaries"][1]
    assert "0 new offerings" not in seeded["summaries"][0]


def test_the_public_pages_work_on_sqlite(sqlite_app, seeded):
    client = sqlite_app.test_client()
    home = client.get("/")
    assert home.status_code == 200
    body = home.get_data(as_text=True)
    assert "Revival Physical Therapy and Wellness" in body
    assert "Full - join waitlist" in body  # the demo's full workshop
    assert 'rel="next"' in body  # eight weeks of sessions do not fit on one page

    slug = re.search(r'href="/offerings/([^"]+)"', body).group(1)
    offering = client.get(f"/offerings/{slug}")
    assert offering.status_code == 200
    assert "Open in a map" in offering.get_data(as_text=True)

    location = client.get("/locations/robbinsdale")
    assert location.status_code == 200
    assert "4123 W Broadway" in location.get_data(as_text=True)

    api = client.get("/api/v1/sessions?location=north-loop&per_page=100")
    assert api.status_code == 200
    items = api.get_json()["data"]
    assert items and {i["location"]["slug"] for i in items} == {"north-loop"}
    assert all(re.search(r"[+-]0[56]:00$", i["starts_at"]) for i in items)

    feed = client.get("/calendar.ics")
    assert feed.status_code == 200
    events = list(Calendar.from_ical(feed.data).walk("VEVENT"))
    assert len(events) == client.get("/api/v1/sessions").get_json()["meta"]["total"]


def test_filters_and_search_work_on_sqlite(sqlite_app, seeded):
    client = sqlite_app.test_client()
    free = client.get("/api/v1/sessions?price=free&per_page=100").get_json()["data"]
    assert free and all(i["price_cents"] == 0 for i in free)
    courses = client.get("/api/v1/sessions?kind=course").get_json()["data"]
    assert {i["offering"]["title"] for i in courses} == {"Posture Reset"}
    spasm = client.get("/api/v1/sessions?q=SPASM").get_json()["data"]
    assert spasm and all("Spasm" in i["offering"]["title"] for i in spasm)
    assert client.get("/api/v1/sessions?q=100%25").get_json()["data"] == []
    assert client.get("/?page=abc").status_code == 400


def test_cli_seed_demo(sqlite_app, seeded):
    result = sqlite_app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "Demo clinic ready" in result.output and "admin@revival-pt.example" in result.output
    with sqlite_app.app_context():
        # The CLI also adds the demo admin account (its password printed, kept in instance/).
        assert row_counts() == {**seeded["first"], "users": seeded["first"]["users"] + 1}
        db.session.remove()


def test_cli_create_user(sqlite_app):
    runner = sqlite_app.test_cli_runner()
    result = runner.invoke(
        args=["create-user", "--email", "x@y.z", "--role", "admin", "--password", "longpassword"]
    )
    assert result.exit_code == 0, result.output
    assert "Created admin x@y.z" in result.output
    with sqlite_app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "x@y.z"))
        assert user.role is Role.ADMIN
        assert user.check_password("longpassword")
        assert not user.check_password("wrongpassword")
        db.session.remove()

    again = runner.invoke(
        args=["create-user", "--email", "X@Y.Z", "--role", "instructor", "--password", "another-pass"]
    )
    assert again.exit_code == 0, again.output
    assert "Updated instructor x@y.z" in again.output

    short = runner.invoke(args=["create-user", "--email", "a@b.c", "--role", "admin", "--password", "short"])
    assert short.exit_code != 0
    assert "at least 8 characters" in short.output
    with sqlite_app.app_context():
        assert (
            db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.email == "a@b.c")) == 0
        )
        db.session.remove()


def test_the_audit_trail_filters_by_offering_on_sqlite(sqlite_app, seeded):
    # The offering filter reads offering_id out of the JSON details (JSON_EXTRACT on SQLite).
    from zoneinfo import ZoneInfo

    from events import audit
    from events.models import Offering
    from events.staff.audit_trail import AuditFilter, audit_page

    with sqlite_app.app_context():
        offering = db.session.scalars(sa.select(Offering).order_by(Offering.id)).first()
        audit.record(
            None, "resource.deleted", "resource", 12345, offering_id=offering.id, title="Old handout"
        )
        db.session.commit()
        page = audit_page(AuditFilter(offering_id=offering.id), ZoneInfo("America/Chicago"))
        assert "The system removed “Old handout” from" in page.lines[0].sentence
        assert (
            audit_page(AuditFilter(offering_id=offering.id + 10_000), ZoneInfo("America/Chicago")).lines == []
        )
        db.session.rollback()
