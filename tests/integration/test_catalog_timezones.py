"""Times are shown in the location's zone, right on the days daylight saving starts and ends."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest
from icalendar import Calendar

from tests.factories import make_clinic, make_location, make_offering, make_session
from tests.integration.conftest import CHICAGO, html_titles, today_in_clinic


def next_clock_change(forward: bool) -> date:
    """The next day (after today) on which Chicago's clocks go forward (or back).

    Seen from 2026-11-23 these are 2027-03-14 and 2027-11-07; computing them keeps the test
    about the future however long it lives.
    """
    d = today_in_clinic() + timedelta(days=1)
    while True:
        before = datetime.combine(d, time(0, 0), tzinfo=CHICAGO).utcoffset()
        after = datetime.combine(d, time(12, 0), tzinfo=CHICAGO).utcoffset()
        if (after > before) if forward else (after < before):
            return d
        d += timedelta(days=1)


DST_STARTS = next_clock_change(forward=True)  # CST -> CDT
DST_ENDS = next_clock_change(forward=False)  # CDT -> CST


@pytest.fixture
def dst_sessions(db):
    make_clinic()
    loc = make_location(slug="north-loop", name="North Loop")
    offering = make_offering(loc, slug="evening-mobility", title="Evening Mobility")
    spring = make_session(offering, DST_STARTS, time(18, 0))
    fall = make_session(offering, DST_ENDS, time(18, 0))
    db.session.commit()
    return {"spring": spring, "fall": fall}


@pytest.mark.parametrize(
    ("which", "the_day", "abbr", "other", "offset", "utc_hour"),
    [
        ("spring", DST_STARTS, "CDT", "CST", "-05:00", 23),
        ("fall", DST_ENDS, "CST", "CDT", "-06:00", 0),
    ],
)
def test_six_pm_on_a_daylight_saving_change(
    client, dst_sessions, which, the_day, abbr, other, offset, utc_hour
):
    session = dst_sessions[which]
    # Stored in UTC: 6 pm CDT is 23:00 UTC; 6 pm CST is midnight UTC the next day.
    assert session.starts_at.hour == utc_hour

    iso = the_day.isoformat()
    body = client.get(f"/?from={iso}&to={iso}").get_data(as_text=True)
    assert html_titles(body) == ["Evening Mobility"]
    assert f"{the_day:%A}, {the_day:%B} {the_day.day}" in body  # the day heading, local
    card = re.search(r'<div class="session-when">(.*?)</div>', body, re.S).group(1)
    assert "6 pm–7 pm" in card
    assert f">{abbr}</abbr>" in card
    assert other not in card
    assert f'datetime="{iso}T18:00:00{offset}"' in card

    item = client.get(f"/api/v1/sessions?from={iso}&to={iso}").get_json()["data"][0]
    assert item["starts_at"] == f"{iso}T18:00:00{offset}"
    assert item["ends_at"] == f"{iso}T19:00:00{offset}"
    assert item["timezone"] == "America/Chicago"
    assert (
        datetime.fromisoformat(item["starts_at"]).utcoffset()
        == datetime.fromisoformat(f"2000-01-01T00:00:00{offset}").utcoffset()
    )

    detail = client.get(f"/api/v1/sessions/{session.id}").get_json()["data"]
    assert detail["starts_at"] == f"{iso}T18:00:00{offset}"


def test_offering_page_shows_both_zones(client, dst_sessions):
    body = client.get("/offerings/evening-mobility").get_data(as_text=True)
    items = re.findall(r'<li class="date-item">(.*?)</li>', body, re.S)
    assert len(items) == 2
    by_zone = dict(zip(("CDT", "CST") if DST_STARTS < DST_ENDS else ("CST", "CDT"), items, strict=True))
    for abbr, the_day in (("CDT", DST_STARTS), ("CST", DST_ENDS)):
        assert f"{the_day:%A}, {the_day:%B} {the_day.day}" in by_zone[abbr]
        assert f">{abbr}</abbr>" in by_zone[abbr]
        assert "6 pm" in by_zone[abbr]


def test_ical_keeps_six_pm_local_on_both_days(client, dst_sessions):
    cal = Calendar.from_ical(client.get("/calendar.ics").data)
    starts = {e.decoded("dtstart").date(): e.decoded("dtstart") for e in cal.walk("VEVENT")}
    assert set(starts) == {DST_STARTS, DST_ENDS}
    for the_day, abbr in ((DST_STARTS, "CDT"), (DST_ENDS, "CST")):
        assert (starts[the_day].hour, starts[the_day].minute) == (18, 0)
        assert starts[the_day].tzname() == abbr
