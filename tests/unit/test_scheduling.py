"""Local wall-clock times become the right UTC instants, across daylight-saving changes."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from events.catalog.scheduling import local_to_utc, weekly_dates

CHICAGO = ZoneInfo("America/Chicago")


def test_six_pm_before_and_after_the_clocks_change():
    assert local_to_utc(date(2027, 3, 13), time(18, 0), CHICAGO) == datetime(2027, 3, 14, 0, 0, tzinfo=UTC)
    assert local_to_utc(date(2027, 3, 14), time(18, 0), CHICAGO) == datetime(2027, 3, 14, 23, 0, tzinfo=UTC)
    assert local_to_utc(date(2027, 11, 6), time(18, 0), CHICAGO) == datetime(2027, 11, 6, 23, 0, tzinfo=UTC)
    assert local_to_utc(date(2027, 11, 7), time(18, 0), CHICAGO) == datetime(2027, 11, 8, 0, 0, tzinfo=UTC)


def test_the_repeated_hour_means_the_first_one():
    # 1:30 am happens twice on 2027-11-07; the first is still daylight time (UTC-5).
    assert local_to_utc(date(2027, 11, 7), time(1, 30), CHICAGO) == datetime(2027, 11, 7, 6, 30, tzinfo=UTC)


def test_a_weekly_series_stays_at_six_pm_local():
    days = weekly_dates(date(2027, 10, 24), 4)
    assert days == [date(2027, 10, 24) + timedelta(weeks=i) for i in range(4)]
    local = [local_to_utc(d, time(18, 0), CHICAGO).astimezone(CHICAGO) for d in days]
    assert {(t.hour, t.minute) for t in local} == {(18, 0)}
    assert [t.tzname() for t in local] == ["CDT", "CDT", "CST", "CST"]
