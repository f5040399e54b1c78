"""The report summaries (events/reports/summaries.py) give every figure the live rows give.

Random clinics (two time zones, classes and workshops, cancellations, attendance on half the
sessions, waitlists, payments and refunds, people without an address) are reported live, then
the summaries are refreshed and the same reports read from them: every figure of every
breakdown row, for admins and each instructor, over ranges of a day to the whole history,
must be equal. Then a change (a cancellation, a check-in) is seen by the next refresh and
only then; a refresh with nothing changed rebuilds nothing. On PostgreSQL and SQLite."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from events.app import create_app
from events.extensions import db as _db
from events.models import (
    Registration,
    RegistrationStatus,
    ReportSessionFacts,
    ReportSummaryState,
    ReportVisit,
    Role,
    User,
)
from events.reports import summaries
from events.reports.figures import SESSION_FIGURES, Ratio
from events.reports.report import build_report
from tests.integration.test_reports import _random_clinic

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RANGES = [
    (date(2026, 1, 1), date(2026, 1, 31)),
    (date(2026, 1, 10), date(2026, 1, 10)),
    (date(2025, 12, 1), date(2026, 12, 31)),
    (date(2026, 2, 1), date(2026, 3, 15)),
    # Spanning years (whole months and weeks inside, days at the edges, cut in the data's middle),
    # ending far from NOW (the people counted from the range's visits) and near it (from the days).
    (date(2016, 11, 30), date(2026, 11, 30)),
    (date(2016, 1, 1), date(2026, 2, 11)),
    (date(2025, 6, 15), date(2026, 2, 11)),
    (date(2025, 12, 17), date(2026, 3, 4)),
]
# A refresh in the data's middle: the sessions after it are read one by one beside the rollups,
# and ranges ending near it count the people after their end.
MIDDLE = datetime(2026, 2, 20, 15, 30, tzinfo=UTC)
MIDDLE_RANGES = [
    (date(2025, 12, 1), date(2026, 1, 20)),
    (date(2016, 1, 1), date(2026, 1, 14)),
    (date(2025, 12, 29), date(2026, 2, 19)),
    (date(2016, 1, 1), date(2026, 12, 31)),
    (date(2026, 2, 16), date(2026, 3, 31)),
]


def _snapshot(report) -> dict:
    def plain(value):
        return (value.part, value.whole) if isinstance(value, Ratio) else value

    return {
        "summary": {v.figure.key: plain(v.value) for v in report.summary},
        "people": {v.figure.key: plain(v.value) for v in report.people},
        "rows": [(row.label, [plain(v.value) for v in row.values]) for row in report.rows],
        "trend": [(r.label, r.value) for r in report.trend],
        "fill": [(r.label, r.value) for r in report.fill_by_offering],
        "attendance": [(r.label, r.value) for r in report.attendance_by_location],
    }


def _reports(users: list[User], now: datetime = NOW, ranges: list = RANGES) -> dict:
    return {
        (user.id, first, last, by): _snapshot(build_report(first, last, by, user, now))
        for user in users
        for first, last in ranges
        for by in ("offering", "week", "instructor", "month")
    }


ONE_ZONE = ("America/Chicago", "America/Chicago")  # two locations, one time zone
DAYS_TO_FILL = [f.key for f in SESSION_FIGURES].index("days_filled_before_start")


def _compare_live_and_summary(
    seed: int, zones: tuple[str, ...] = ("America/Chicago", "America/New_York")
) -> None:
    rng = random.Random(seed)
    admin = _random_clinic(rng, zones)
    users = [admin, *_db.session.scalars(sa.select(User).where(User.role == Role.INSTRUCTOR))]
    assert summaries.usable_state(NOW) is None
    live = _reports(users)
    assert summaries.refresh(NOW) == {"rebuilt": True}
    assert summaries.usable_state(NOW) is not None
    assert build_report(*RANGES[0], "offering", admin, NOW).as_of == NOW  # read from the summary
    assert _reports(users) == live
    people = live[(admin.id, *RANGES[2], "offering")]["people"]
    assert people["unique_attendees"] > 5 and people["return_rate"][1] > 0  # the data was not empty
    # The median of days to fill, read from the rollups only for the breakdown's groups (and
    # the summary from them), was compared where there was one: in the summary and in rows.
    ten_years = live[(admin.id, *RANGES[4], "month")]
    assert ten_years["summary"]["days_filled_before_start"] is not None
    filled_rows = [values for _, values in ten_years["rows"] if values[DAYS_TO_FILL] is not None]
    assert len(filled_rows) >= 2

    # Nothing changed: the next refresh rebuilds nothing, and still agrees.
    assert summaries.refresh(NOW) == {"rebuilt": False}
    # A booking cancelled: the summary keeps its figures until the next refresh, then agrees.
    reg = _db.session.scalars(
        sa.select(Registration)
        .where(Registration.status == RegistrationStatus.CONFIRMED)
        .order_by(Registration.id)
    ).first()
    reg.status, reg.cancelled_at = RegistrationStatus.CANCELLED, NOW
    _db.session.commit()
    assert summaries.refresh(NOW) == {"rebuilt": True}
    after = _reports(users)
    _db.session.execute(sa.delete(ReportSummaryState))
    _db.session.commit()
    assert after == _reports(users)  # live again, the same
    assert after != live

    # Refreshed in the data's middle: sessions ahead of it and ranges ending near it.
    live = _reports(users, MIDDLE, MIDDLE_RANGES)
    assert summaries.refresh(MIDDLE) == {"rebuilt": True}
    assert build_report(*MIDDLE_RANGES[0], "offering", admin, MIDDLE).as_of == MIDDLE
    assert _reports(users, MIDDLE, MIDDLE_RANGES) == live


@pytest.mark.parametrize(
    ("seed", "zones"),
    [(11, ("America/Chicago", "America/New_York")), (12, ONE_ZONE), (16, ONE_ZONE), (17, ONE_ZONE)],
)
def test_summaries_equal_the_live_figures_on_postgresql(db, seed, zones):
    """Two time zones: the people are grouped per person. One: counted without grouping."""
    _compare_live_and_summary(seed, zones)
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(ReportVisit)) > 0
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(ReportSessionFacts)) > 0


@pytest.mark.parametrize(("seed", "zones"), [(13, ("America/Chicago", "America/New_York")), (18, ONE_ZONE)])
def test_summaries_equal_the_live_figures_on_sqlite(tmp_path, seed, zones):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'events.sqlite3'}",
            "SECRET_KEY": "t",
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade()
        assert _db.engine.dialect.name == "sqlite"
        with app.test_request_context():
            _compare_live_and_summary(seed, zones)
        _db.session.remove()
        _db.engine.dispose()


def test_a_summary_from_the_future_is_not_read(db):
    """A report asked about an earlier moment than the summary's reads the live rows."""
    rng = random.Random(14)
    admin = _random_clinic(rng)
    summaries.refresh(NOW)
    earlier = datetime(2026, 1, 20, tzinfo=UTC)
    assert build_report(*RANGES[0], "offering", admin, earlier).as_of is None


def test_the_worker_task_refreshes_and_the_beat_runs_it_every_sweep_and_nightly(db):
    from worker.tasks import refresh_report_summaries

    rng = random.Random(15)
    _random_clinic(rng)
    assert refresh_report_summaries.run() == {"rebuilt": True}
    assert refresh_report_summaries.run() == {"rebuilt": False}
    assert refresh_report_summaries.run(force=True) == {"rebuilt": True}
    assert _db.session.get(ReportSummaryState, summaries.STATE_ID) is not None

    from worker.app import celery_app

    beat = celery_app.conf.beat_schedule
    assert beat["refresh-report-summaries"]["task"] == "worker.tasks.refresh_report_summaries"
    assert beat["rebuild-report-summaries"]["kwargs"] == {"force": True}
