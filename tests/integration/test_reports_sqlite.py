"""The reports on SQLite (the embedded default): the same hand-worked January, and the class at
11:30 pm on January 31 in January, as on PostgreSQL (tests/integration/test_reports.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from flask_migrate import upgrade

from events.app import create_app
from events.extensions import db
from events.reports.figures import Ratio
from events.reports.report import build_report
from tests import report_scenario

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sqlite_scenario(tmp_path_factory):
    path = tmp_path_factory.mktemp("reports-sqlite") / "events.sqlite3"
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SECRET_KEY": "t",
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade()
        assert db.engine.dialect.name == "sqlite"
        scenario = report_scenario.build()
        yield app, scenario
        db.session.remove()
        db.engine.dispose()


def value_of(report, key):
    value = report.value(key)
    return (value.part, value.whole) if isinstance(value, Ratio) else value


def test_january_on_sqlite_matches_the_hand_worked_answers(sqlite_scenario):
    _, scenario = sqlite_scenario
    report = build_report(date(2026, 1, 1), date(2026, 1, 31), "offering", scenario.admin, NOW)
    assert {
        key: value_of(report, key) for key in report_scenario.EXPECTED_JANUARY
    } == report_scenario.EXPECTED_JANUARY


def test_the_1130_pm_class_is_january_on_sqlite(sqlite_scenario):
    _, scenario = sqlite_scenario
    report = build_report(date(2026, 1, 1), date(2026, 2, 28), "month", scenario.admin, NOW)
    held = {
        row.label: next(v.value for v in row.values if v.figure.key == "sessions_held") for row in report.rows
    }
    assert held == {"January 2026": 4, "February 2026": 1}
    instructor = build_report(date(2026, 1, 1), date(2026, 1, 31), "offering", scenario.teacher_b, NOW)
    assert (instructor.value("sessions_held"), instructor.value("first_timers")) == (3, 3)


def test_people_counted_in_sql_equal_the_definitions_on_sqlite(sqlite_scenario):
    """SQLite's date arithmetic (julianday) for the 60-day return window, and its untyped union
    columns, give the same people counts as the definitions over records."""
    from events.reports import facts
    from events.reports.figures import PeopleCounts

    _, scenario = sqlite_scenario
    locations = facts.active_locations_for_reports()
    for scope in (facts.Scope(), facts.Scope(scenario.teacher_b.id)):
        for first_day, last_day in (
            (date(2026, 1, 1), date(2026, 1, 31)),
            (date(2025, 1, 1), date(2026, 12, 31)),
        ):
            records = facts.people_histories(first_day, last_day, scope, NOW, locations)
            counted = facts.people_counts(first_day, last_day, scope, NOW, locations)
            assert counted == PeopleCounts.of(records)
            assert counted.people > 0
