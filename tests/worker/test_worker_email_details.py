"""What every email carries, read from the real SMTP server: a Reply-To of the clinic's contact
address (and the invite organized by it), "Add to Google Calendar" and "Outlook" links beside
the invite with each session's UTC times, the site's own type, and "today" or "tomorrow" only
where it is true in the session's zone when the email is built."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import icalendar

from events.models import OfferingKind
from events.notifications.delivery import deliver_due
from events.notifications.outbox import EmailKind, queue_email
from events.registration.services import Person, join_waitlist, register
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

CHICAGO = ZoneInfo("America/Chicago")
ROOT = Path(__file__).resolve().parents[2]


def _confirmation(smtp, address):
    [message] = [m for m in smtp.to(address) if m["Subject"].startswith("You're registered")]
    return message


def test_replies_go_to_the_clinics_contact_address_which_also_organizes_the_invite(db, smtp, book):
    make_clinic(name="Revival Physical Therapy", email="hello@revival.example")
    offering = make_offering(make_location(), title="Desk Set-up")
    make_session(offering, upcoming_day(4))
    db.session.commit()
    book(offering, "ana@example.com")
    deliver_due()

    message = _confirmation(smtp, "ana@example.com")
    [reply_to] = message["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == (
        "Revival Physical Therapy",
        "hello@revival.example",
    )
    assert message["From"].addresses[0].addr_spec == "hello@clinic.test"  # still sent from the sender
    [invite] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    [event] = icalendar.Calendar.from_ical(invite.get_payload(decode=True)).walk("VEVENT")
    assert str(event["organizer"]) == "mailto:hello@revival.example"
    assert event["organizer"].params["cn"] == "Revival Physical Therapy"


def test_without_a_contact_address_there_is_no_reply_to_and_the_sender_organizes(db, smtp, book):
    make_clinic(name="Revival Physical Therapy", email="")
    offering = make_offering(make_location(), title="Desk Set-up")
    make_session(offering, upcoming_day(4))
    db.session.commit()
    book(offering, "bo@example.com")
    deliver_due()
    message = _confirmation(smtp, "bo@example.com")
    assert message["Reply-To"] is None
    [invite] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    [event] = icalendar.Calendar.from_ical(invite.get_payload(decode=True)).walk("VEVENT")
    assert str(event["organizer"]) == "mailto:hello@clinic.test"


def test_add_to_calendar_links_per_session_with_utc_times_and_encoded_text(db, smtp, book):
    make_clinic(name="Revival PT")
    location = make_location(name="North Loop & Co", address_line1="800 N Washington Ave #2")
    course = make_offering(
        location, OfferingKind.COURSE, title="Back & Neck: “Care” 100% + more", summary="Gentle, slow"
    )
    first = make_session(course, upcoming_day(5), time(18, 0), minutes=90)
    second = make_session(course, upcoming_day(12), time(9, 30))
    db.session.commit()
    book(course, "cal@example.com")
    deliver_due()

    message = _confirmation(smtp, "cal@example.com")
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    google = re.findall(r'href="(https://calendar\.google\.com/[^"]+)"', html)
    outlook = re.findall(r'href="(https://outlook\.live\.com/[^"]+)"', html)
    assert len(google) == len(outlook) == 2
    assert ">Add to Google Calendar</a>" in html and ">Add to Outlook</a>" in html
    for session, g, o in zip((first, second), google, outlook, strict=True):
        g_query = parse_qs(urlsplit(g.replace("&amp;", "&")).query, strict_parsing=True)
        o_query = parse_qs(urlsplit(o.replace("&amp;", "&")).query, strict_parsing=True)
        start, end = session.starts_at.astimezone(UTC), session.ends_at.astimezone(UTC)
        assert g_query["dates"] == [f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}"]
        assert o_query["startdt"] == [f"{start:%Y-%m-%dT%H:%M:%SZ}"]
        assert o_query["enddt"] == [f"{end:%Y-%m-%dT%H:%M:%SZ}"]
        for query, title_key in ((g_query, "text"), (o_query, "subject")):
            assert query[title_key] == ["Back & Neck: “Care” 100% + more"]
            assert query["location"] == ["North Loop & Co, 800 N Washington Ave #2, Minneapolis, MN 55401"]
        assert g_query["action"] == ["TEMPLATE"] and o_query["rru"] == ["addevent"]
        # Encoded, so nothing in the title breaks the URL: no raw space, '+', '&' or '#'.
        raw_query = urlsplit(g.replace("&amp;", "&")).query
        assert " " not in raw_query and "+" not in raw_query and "#" not in raw_query
    # Local times in the text part stay as before; the links sit beside the invite.
    assert (
        "Google Calendar: https://calendar.google.com/" in text
        and "Outlook: https://outlook.live.com/" in text
    )
    assert text.index("invite.ics") < text.index("Google Calendar:")


def test_emails_use_the_sites_font_stack_not_a_serif(db, smtp, book):
    site_font = re.search(
        r"body \{[^}]*font: [^/]+/[\d.]+ ([^;]+);", (ROOT / "events/static/app.css").read_text()
    )
    stack = site_font.group(1).replace('"', "'").replace(", ", ",")
    offering = make_offering(make_location(), title="Desk Set-up")
    make_session(offering, upcoming_day(4))
    db.session.commit()
    book(offering, "font@example.com")
    deliver_due()
    html = _confirmation(smtp, "font@example.com").get_body(("html",)).get_content()
    families = set(re.findall(r"font-family:([^;\"]+)", html))
    assert families == {stack}, families
    assert "serif" not in stack.replace("sans-serif", "")


def _local(day, hour, minute=0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=CHICAGO)


def test_a_reminder_says_today_or_tomorrow_only_where_true_in_the_sessions_zone(db, smtp, book):
    location = make_location()
    day = upcoming_day(10)
    offering = make_offering(location, OfferingKind.CLASS, title="Early Stretch")
    early = make_session(offering, day, time(4, 6))
    # 7 pm in Chicago is 1 am UTC the next day: in UTC, "tomorrow" from 5 pm would be wrong.
    evening = make_session(offering, day, time(19, 0))
    next_week = make_session(offering, day + timedelta(days=7), time(4, 6))
    db.session.commit()
    regs = {s.id: book(offering, f"r{s.id}@example.com", session=s) for s in (early, evening, next_week)}

    cases = [
        (early, _local(day, 2, 6), "Reminder: your session today at 4:06 am"),
        (early, _local(day - timedelta(days=1), 4, 6), "Reminder: your session tomorrow at 4:06 am"),
        (evening, _local(day, 17, 0), "Reminder: your session today at 7 pm"),
        (evening, _local(day - timedelta(days=1), 23, 30), "Reminder: your session tomorrow at 7 pm"),
        (
            next_week,
            _local(day, 4, 6),
            f"Reminder: your session on {next_week.local_start:%A, %B} "
            f"{next_week.local_start.day} at 4:06 am",
        ),
    ]
    assert _local(day, 17, 0).astimezone(UTC).date() != evening.starts_at.astimezone(UTC).date()
    for n, (session, built_at, subject) in enumerate(cases):
        smtp.clear()
        registration = regs[session.id]
        queue_email(
            EmailKind.REMINDER, registration=registration, session_id=session.id, key_parts=(f"t{n}",)
        )
        db.session.commit()
        deliver_due(now=built_at.astimezone(UTC))
        [message] = [m for m in smtp.to(registration.email) if m["Subject"].startswith("Reminder")]
        assert message["Subject"] == subject
        text = message.get_body(("plain",)).get_content()
        assert subject.removeprefix("Reminder: your session ") in text
        # The date is in the body whatever the subject says.
        assert f"{session.local_start:%B} {session.local_start.day}" in text


def test_a_waitlist_offer_says_today_when_its_deadline_is_today(db, smtp):
    offering = make_offering(make_location(), title="Balance", capacity=1)
    make_session(offering, upcoming_day(6))
    db.session.commit()
    register(offering, None, Person("First", "first@example.com"))
    entry = join_waitlist(offering, None, Person("Wes", "wes@example.com")).entry
    built_at = _local(upcoming_day(2), 9, 0)
    entry.offer_expires_at = _local(upcoming_day(2), 21, 30).astimezone(UTC)
    queue_email(EmailKind.WAITLIST_OFFER, waitlist_entry=entry)
    db.session.commit()
    deliver_due(now=built_at.astimezone(UTC))
    [offer] = [m for m in smtp.to("wes@example.com") if m["Subject"].startswith("A seat is open")]
    text = offer.get_body(("plain",)).get_content()
    deadline = entry.offer_expires_at.astimezone(CHICAGO)
    assert f"until today ({deadline:%A, %B} {deadline.day}) at 9:30 pm" in text
