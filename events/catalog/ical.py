"""iCalendar files: the public feeds, and one registration's invite."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask import url_for
from icalendar import Calendar, Event, vText

from events.models import Clinic, Session, utcnow


def _calendar(clinic: Clinic, name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", f"-//{clinic.name}//Workshops and classes//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", clinic.timezone)
    return cal


def session_event(session: Session, host: str, stamp: datetime) -> Event:
    offering = session.offering
    location = session.location
    event = Event()
    event.add("uid", f"session-{session.id}@{host}")
    event.add("dtstamp", stamp)
    # Local time with its TZID, so calendars show it right across daylight-saving changes.
    event.add("dtstart", session.local_start)
    event.add("dtend", session.local_end)
    event.add("summary", offering.title)
    event["location"] = vText(f"{location.name}, {location.full_address}")
    url = url_for("catalog.offering", slug=offering.slug, _external=True)
    event.add("url", url)
    event.add("description", f"{offering.summary}\n\n{url}".strip())
    if session.status.value == "cancelled":
        event.add("status", "CANCELLED")
    return event


def build_calendar(clinic: Clinic, name: str, sessions: Iterable[Session], host: str) -> bytes:
    cal = _calendar(clinic, name)
    stamp = utcnow()
    for session in sessions:
        cal.add_component(session_event(session, host, stamp))
    # VTIMEZONE blocks for every zone used, as RFC 5545 asks of TZID references.
    cal.add_missing_timezones()
    return cal.to_ical()
