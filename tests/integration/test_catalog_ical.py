"""The iCal feeds: every upcoming public session, with its local time and address."""

from __future__ import annotations

from datetime import time

import pytest
from icalendar import Calendar

from tests.factories import make_clinic, make_location, make_offering, make_session
from tests.integration.conftest import day


def parse(response) -> Calendar:
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    return Calendar.from_ical(response.data)


def events_by_uid(cal: Calendar) -> dict[str, object]:
    return {str(e["uid"]): e for e in cal.walk("VEVENT")}


def test_clinic_feed_has_exactly_the_visible_sessions(client, catalog):
    cal = parse(client.get("/calendar.ics"))
    events = events_by_uid(cal)
    assert set(events) == {f"session-{s.id}@localhost" for s in catalog.visible}
    summaries = sorted(str(e["summary"]) for e in events.values())
    assert summaries == sorted(catalog.visible_titles())
    assert str(cal["x-wr-calname"]) == "Test Clinic"


def test_events_carry_local_time_zone_and_address(client, catalog):
    events = events_by_uid(parse(client.get("/calendar.ics")))
    for session in catalog.visible:
        event = events[f"session-{session.id}@localhost"]
        assert event["dtstart"].params["TZID"] == "America/Chicago"
        start = event.decoded("dtstart")
        assert start == session.local_start
        assert (start.hour, start.minute) == (session.local_start.hour, session.local_start.minute)
        assert event.decoded("dtend") == session.local_end
        assert session.location.full_address in str(event["location"])
        assert str(event["location"]).startswith(session.location.name)
        assert str(event["url"]) == f"http://localhost/offerings/{session.offering.slug}"
    # A 6:30 pm course session is 18:30 in the feed, not a UTC time.
    posture = events[f"session-{catalog.visible[1].id}@localhost"]
    assert "800 N Washington Ave" not in str(posture["location"])
    assert "4123 W Broadway" in str(posture["location"])
    assert posture.decoded("dtstart").time() == time(18, 30)


def test_feed_defines_the_time_zone_it_uses(client, catalog):
    cal = parse(client.get("/calendar.ics"))
    zones = [str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")]
    assert zones == ["America/Chicago"]


@pytest.mark.parametrize(
    ("slug", "location_name"), [("robbinsdale", "Robbinsdale"), ("north-loop", "North Loop")]
)
def test_location_feed_has_only_that_location(client, catalog, slug, location_name):
    response = client.get(f"/locations/{slug}/calendar.ics")
    cal = parse(response)
    expected = {f"session-{s.id}@localhost" for s in catalog.visible if s.location.slug == slug}
    assert expected  # the fixture has sessions at both places
    events = events_by_uid(cal)
    assert set(events) == expected
    assert all(str(e["location"]).startswith(location_name) for e in events.values())
    assert str(cal["x-wr-calname"]) == f"Test Clinic - {location_name}"
    assert f'filename="{slug}.ics"' in response.headers["Content-Disposition"]


def test_unknown_location_feed_is_404(client, catalog):
    response = client.get("/locations/nowhere/calendar.ics")
    assert response.status_code == 404
    assert "couldn" in response.get_data(as_text=True)


def test_empty_feed_is_still_a_valid_calendar(client, db):
    make_clinic(name="Quiet Clinic")
    loc = make_location(slug="quiet")
    make_session(make_offering(loc), day(-1))  # only a past session
    db.session.commit()
    cal = parse(client.get("/locations/quiet/calendar.ics"))
    assert list(cal.walk("VEVENT")) == []
    assert str(cal["version"]) == "2.0"
