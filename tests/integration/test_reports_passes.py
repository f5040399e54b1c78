"""The pass and code figures on PostgreSQL (hand-worked January: tests/report_passes_scenario.py)
and on SQLite; the page, the CSV files and the API agree; instructors' reports have none."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from flask_migrate import upgrade

from events.app import create_app
from events.extensions import db as _db
from events.reports.report import build_report
from tests import report_passes_scenario
from tests.factories import make_clinic, make_instructor
from tests.integration.test_reports import sign_in

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
JANUARY = {"preset": "custom", "date_from": "2026-01-01", "date_to": "2026-01-31", "by": "kind"}


def _figures(report) -> dict:
    return {item.figure.key: item.value for item in report.passes}


def _codes(report) -> list:
    return [(c.partner_tag, c.redemptions, c.discount_cents) for c in report.codes_by_partner]


@pytest.fixture
def admin(db):
    make_clinic()
    report_passes_scenario.build()
    from events.models import Role

    return make_instructor(role=Role.ADMIN)


def test_january_pass_and_code_figures_match_the_hand_worked_answers(admin):
    report = build_report(date(2026, 1, 1), date(2026, 1, 31), "kind", admin, NOW)
    assert _figures(report) == report_passes_scenario.EXPECTED
    assert _codes(report) == report_passes_scenario.EXPECTED_BY_PARTNER
    # Pass payments are not session money: they were not paid for a seat.
    assert report.value("card_payments") == 0 and report.value("desk_payments") == 0


def test_february_first_after_midnight_is_february(admin):
    report = build_report(date(2026, 2, 1), date(2026, 2, 28), "kind", admin, NOW)
    figures = _figures(report)
    assert (figures["credits_sold"], figures["credits_used"], figures["pass_revenue"]) == (5, 0, 5000)
    assert figures["revenue_per_credit_used"] is None
    assert _codes(report) == [("ymca", 1, 1000)]


def test_an_instructor_report_has_no_pass_figures(db):
    make_clinic()
    report_passes_scenario.build()
    teacher = make_instructor()
    report = build_report(date(2026, 1, 1), date(2026, 1, 31), "kind", teacher, NOW)
    assert report.passes == [] and report.codes_by_partner == []


def test_page_csv_and_api_agree(client, admin):
    sign_in(client, admin)
    page = client.get("/staff/reports", query_string=JANUARY).get_data(as_text=True)
    assert 'data-figure="credits_sold">10<' in page
    assert 'data-figure="revenue_per_credit_used">$10.80<' in page
    assert 'data-figure="pass_revenue">$88.00<' in page
    assert '<th scope="row">ymca</th><td>2</td><td>$20.00</td>' in page
    assert '<th scope="row">No partner</th><td>1</td><td>$7.00</td>' in page

    codes = client.get("/staff/reports/codes.csv", query_string=JANUARY)
    assert codes.status_code == 200
    assert list(csv.reader(io.StringIO(codes.get_data(as_text=True)))) == [
        ["partner tag", "redemptions", "discount (USD)"],
        ["No partner", "1", "7.00"],
        ["ymca", "2", "20.00"],
    ]
    figures = dict(
        (row[0], row[1])
        for row in csv.reader(
            io.StringIO(client.get("/staff/reports/figures.csv", query_string=JANUARY).get_data(as_text=True))
        )
    )
    assert figures["Pass credits used"] == "5" and figures["Revenue per credit used (USD)"] == "10.80"

    api = client.get("/api/v1/reports", query_string={"from": "2026-01-01", "to": "2026-01-31"}).get_json()[
        "data"
    ]
    assert api["passes"] == report_passes_scenario.EXPECTED
    assert api["codes_by_partner"] == [
        {"partner_tag": tag, "redemptions": n, "discount_cents": cents}
        for tag, n, cents in report_passes_scenario.EXPECTED_BY_PARTNER
    ]
    assert api["definitions"]["credits_used"]["unit"] == "count"

    from tests.integration.test_api_openapi import assert_valid

    payload = client.get(
        "/api/v1/reports", query_string={"from": "2026-01-01", "to": "2026-01-31"}
    ).get_json()
    assert_valid(client.get("/api/v1/openapi.json").get_json(), "/reports", "200", payload)


def test_january_on_sqlite(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'events.sqlite3'}",
            "SECRET_KEY": "t",
            "RATELIMIT_ENABLED": False,
        }
    )
    from events.models import Role

    with app.app_context():
        upgrade()
        assert _db.engine.dialect.name == "sqlite"
        make_clinic()
        report_passes_scenario.build()
        admin = make_instructor(role=Role.ADMIN)
        _db.session.commit()
        with app.test_request_context():
            report = build_report(date(2026, 1, 1), date(2026, 1, 31), "kind", admin, NOW)
            assert _figures(report) == report_passes_scenario.EXPECTED
            assert _codes(report) == report_passes_scenario.EXPECTED_BY_PARTNER
        _db.session.remove()
        _db.engine.dispose()
