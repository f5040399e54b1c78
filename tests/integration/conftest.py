"""Shared data and helpers for the public schedule's client-level tests."""

from __future__ import annotations

import contextlib
import html
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from events.models import Offering, OfferingKind, Session, SessionStatus
from tests.factories import make_clinic, make_instructor, make_location, make_offering, make_session
from tests.isolation import is_savepoint_statement

CHICAGO = ZoneInfo("America/Chicago")


def today_in_clinic() -> date:
    return datetime.now(CHICAGO).date()


def day(n: int) -> date:
    """n days from today, in the clinic's zone (n >= 1 is always in the future)."""
    return today_in_clinic() + timedelta(days=n)


_TITLE = re.compile(r'<h3 class="session-title"><a href="[^"]*">(.*?)</a></h3>')


def html_titles(body: str) -> list[str]:
    """Offering titles of the session cards on a schedule or location page, in order."""
    return [html.unescape(t) for t in _TITLE.findall(body)]


def api_titles(payload: dict) -> list[str]:
    return [item["offering"]["title"] for item in payload["data"]]


@dataclass
class Catalog:
    """A small, known schedule: what is visible, and what must stay hidden."""

    north: object = None
    robbinsdale: object = None
    offerings: dict[str, Offering] = field(default_factory=dict)
    visible: list[Session] = field(default_factory=list)  # soonest first
    # Upcoming but cancelled (a cancelled class, a session of a cancelled offering): hidden from
    # the schedule, kept in the iCal feeds marked cancelled.
    cancelled: list[Session] = field(default_factory=list)
    hidden_titles: tuple[str, ...] = ()

    def visible_titles(self) -> list[str]:
        return [s.offering.title for s in self.visible]


@pytest.fixture
def catalog(db) -> Catalog:
    """Two locations and eight visible upcoming sessions, plus past, cancelled and unpublished ones."""
    make_clinic(name="Test Clinic")
    north = make_location(
        slug="north-loop",
        name="North Loop",
        address_line1="800 N Washington Ave",
        city="Minneapolis",
        postal_code="55401",
    )
    robb = make_location(
        slug="robbinsdale",
        name="Robbinsdale",
        address_line1="4123 W Broadway",
        city="Robbinsdale",
        postal_code="55422",
    )
    maya = make_instructor(name="Maya Lindqvist")
    jordan = make_instructor(name="Jordan Okafor")
    o = {
        "spasm": make_offering(
            north,
            OfferingKind.WORKSHOP,
            slug="back-spasms",
            title="Back Spasms First Aid",
            topic="Back pain relief",
            price_cents=0,
            instructor=maya,
            summary="Calm a spasm fast.",
        ),
        "posture": make_offering(
            robb,
            OfferingKind.COURSE,
            slug="posture-reset",
            title="Posture Reset",
            topic="Posture",
            price_cents=12000,
            instructor=maya,
            summary="Four evenings on posture.",
        ),
        "core": make_offering(
            north,
            OfferingKind.CLASS,
            slug="core-strength",
            title="Core Strength",
            topic="Strength",
            price_cents=1500,
            instructor=jordan,
            summary="A weekly drop-in.",
        ),
        "percent": make_offering(
            robb,
            OfferingKind.WORKSHOP,
            slug="desk-check",
            title="100% Desk Check",
            topic="Ergonomics",
            price_cents=0,
            summary="Bring a photo of your desk.",
        ),
        "thousand": make_offering(
            north,
            OfferingKind.WORKSHOP,
            slug="steps-walk",
            title="1000 Steps Walk",
            topic="Walking",
            price_cents=0,
            summary="An easy group walk.",
        ),
        "draft": make_offering(
            north, OfferingKind.WORKSHOP, slug="draft", title="Hidden Draft", is_published=False
        ),
        "called-off": make_offering(
            robb, OfferingKind.WORKSHOP, slug="called-off", title="Called Off Workshop", is_cancelled=True
        ),
    }
    visible = [
        make_session(o["spasm"], day(2), time(10, 0)),
        make_session(o["posture"], day(3), time(18, 30)),
        make_session(o["core"], day(4), time(18, 0)),
        make_session(o["percent"], day(5), time(12, 0)),
        make_session(o["thousand"], day(6), time(9, 0)),
        make_session(o["posture"], day(10), time(18, 30)),
        make_session(o["core"], day(11), time(18, 0)),
        make_session(o["posture"], day(17), time(18, 30)),
    ]
    # Hidden: a past class, a cancelled class, an unpublished and a cancelled offering.
    make_session(o["core"], day(-3), time(18, 0))
    cancelled = make_session(o["core"], day(18), time(18, 0))
    cancelled.status = SessionStatus.CANCELLED
    make_session(o["draft"], day(3), time(9, 0))
    called_off = make_session(o["called-off"], day(4), time(9, 0))
    db.session.commit()
    return Catalog(
        north=north,
        robbinsdale=robb,
        offerings=o,
        visible=visible,
        cancelled=[cancelled, called_off],
        hidden_titles=("Hidden Draft", "Called Off Workshop"),
    )


@pytest.fixture
def count_queries(app):
    """A context manager collecting the SQL statements run inside it."""

    @contextlib.contextmanager
    def counting():
        from events.extensions import db

        statements: list[str] = []

        def before(conn, cursor, statement, parameters, context, executemany):
            if not is_savepoint_statement(statement):
                statements.append(statement)

        with app.app_context():
            engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", before)
        try:
            yield statements
        finally:
            sa.event.remove(engine, "before_cursor_execute", before)

    return counting
