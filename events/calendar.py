"""iCalendar files: the public feeds, one registration's download, and emailed invites.

UIDs never change and never depend on the host a request came in on. The feeds name each
session (`session-12@host`). A person's invite and download name their own place at it
(`registration-7-session-12@host`): that event is theirs to take back when they cancel, and a
new registration later is a new event, not an old one a calendar would refuse to revive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

from flask import current_app, url_for
from flask_babel import gettext

from events.models import Clinic, Registration, RegistrationStatus, Session, SessionStatus, utcnow
from events.offering_text import offering_text

if TYPE_CHECKING:  # imported where a calendar is built: not needed to start the app (issue 17)
    from icalendar import Calendar, Event, vCalAddress

# Emailed invites are iTIP messages (RFC 5546); feeds and downloads carry no METHOD, as RFC 5545
# asks of a plain snapshot of calendar data.
PUBLISH = "PUBLISH"
CANCEL = "CANCEL"


def public_host() -> str:
    """The public site's host (from PUBLIC_BASE_URL), whichever host a request came in on."""
    return urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "localhost"


def session_uid(session: Session, registration: Registration | None = None) -> str:
    if registration is not None:
        return f"registration-{registration.id}-session-{session.id}@{public_host()}"
    return f"session-{session.id}@{public_host()}"


def is_cancelled(session: Session, registration: Registration | None = None) -> bool:
    if registration is not None and registration.status == RegistrationStatus.CANCELLED:
        return True
    return session.status == SessionStatus.CANCELLED or session.offering.is_cancelled


def sequence(session: Session, registration: Registration | None = None) -> int:
    """Calendars apply an update (or a CANCEL) only if its SEQUENCE is higher than the one they
    hold. Each move counts one (session.sequence) and cancelling, which is final, one more: a
    cancel after a move is higher than the moved invite, and a move higher than the first."""
    return session.sequence + (1 if is_cancelled(session, registration) else 0)


def _calendar(clinic: Clinic, name: str, method: str | None) -> Calendar:
    from icalendar import Calendar

    cal = Calendar()
    cal.add("prodid", f"-//{clinic.name}//Workshops and classes//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", method)
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", clinic.timezone)
    return cal


def _organizer(clinic: Clinic, address: str) -> vCalAddress:
    """The clinic, as the sender of emailed invites (RFC 5546 asks for an ORGANIZER in them)."""
    from icalendar import vCalAddress, vText

    organizer = vCalAddress(f"mailto:{address}")
    organizer.params["cn"] = vText(clinic.name)
    return organizer


def session_event(session: Session, stamp: datetime, registration: Registration | None = None) -> Event:
    from icalendar import Event, vText

    offering = session.offering
    location = session.location
    cancelled = is_cancelled(session, registration)
    event = Event()
    event.add("uid", session_uid(session, registration))
    event.add("sequence", sequence(session, registration))
    event.add("dtstamp", stamp)
    # Local time with its TZID, so calendars show it right across daylight-saving changes.
    event.add("dtstart", session.local_start)
    event.add("dtend", session.local_end)
    text = offering_text(offering)  # in the language of the page or the email it belongs to
    event.add("summary", gettext("Cancelled: %(title)s", title=text.title) if cancelled else text.title)
    event["location"] = vText(f"{location.name}, {location.full_address}")
    url = url_for("catalog.offering", slug=offering.slug, _external=True)
    event.add("url", url)
    event.add("description", f"{text.summary}\n\n{url}".strip())
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return event


def build_calendar(
    clinic: Clinic,
    name: str,
    sessions: Iterable[Session],
    method: str | None = None,
    registration: Registration | None = None,
    organizer: str | None = None,
) -> bytes:
    """A calendar of these sessions (as one person's places, given their registration); method
    (PUBLISH or CANCEL) and the organizer's address only for emailed invites."""
    cal = _calendar(clinic, name, method)
    stamp = utcnow()
    for session in sessions:
        event = session_event(session, stamp, registration)
        if method:
            event.add("organizer", _organizer(clinic, organizer or ""))
        cal.add_component(event)
    # VTIMEZONE blocks for every zone used, as RFC 5545 asks of TZID references.
    cal.add_missing_timezones()
    return cal.to_ical()


# --- "Add to calendar" links, beside an emailed invite ---------------------------------------

GOOGLE_CALENDAR = "https://calendar.google.com/calendar/render"
OUTLOOK_CALENDAR = "https://outlook.live.com/calendar/0/deeplink/compose"


@dataclass(frozen=True)
class CalendarLinks:
    """One session's "Add to Google Calendar" and "Outlook" links (web calendars that do not
    read an attached invite, or people who never open attachments)."""

    session: Session
    google: str
    outlook: str


def _query(params: dict[str, str]) -> str:
    # %20 for spaces, never '+': Outlook shows a '+' as it is.
    return urlencode(params, quote_via=quote, safe="")


def calendar_links(session: Session, title: str) -> CalendarLinks:
    """Links that open each calendar's new-event form filled in: times in UTC (so no calendar
    guesses the zone), the place, and the offering's page."""
    location = session.location
    place = f"{location.name}, {location.full_address}"
    url = url_for("catalog.offering", slug=session.offering.slug, _external=True)
    details = f"{session.offering.summary}\n\n{url}".strip()
    start, end = session.starts_at.astimezone(UTC), session.ends_at.astimezone(UTC)
    google = _query(
        {
            "action": "TEMPLATE",
            "text": title,
            "dates": f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}",
            "details": details,
            "location": place,
        }
    )
    outlook = _query(
        {
            "path": "/calendar/action/compose",
            "rru": "addevent",
            "subject": title,
            "startdt": f"{start:%Y-%m-%dT%H:%M:%SZ}",
            "enddt": f"{end:%Y-%m-%dT%H:%M:%SZ}",
            "body": details,
            "location": place,
        }
    )
    return CalendarLinks(session, f"{GOOGLE_CALENDAR}?{google}", f"{OUTLOOK_CALENDAR}?{outlook}")
