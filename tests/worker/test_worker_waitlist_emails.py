"""The waitlist emails, as the member receives them (read from the SMTP server): each says
when and where, and joining a waitlist you're already on emails the link to your place, to
that place's own address only, once per window."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from events.filters import format_short_day
from events.models import OfferingKind, WaitlistStatus, utcnow
from events.notifications.delivery import deliver_due
from events.notifications.outbox import EmailKind, queue_email
from events.registration.services import LINK_EMAIL_WINDOW, Person, WaitlistOutcome, join_waitlist, register
from tests.factories import make_location, make_offering, make_session, upcoming_day


def drop_in_class(db):
    location = make_location(
        name="North Loop", address_line1="800 N Washington Ave", city="Minneapolis", postal_code="55401"
    )
    offering = make_offering(location, OfferingKind.CLASS, title="Gentle Yoga", capacity=1)
    first = make_session(offering, upcoming_day(4))
    second = make_session(offering, upcoming_day(11))
    db.session.commit()
    return offering, first, second


def says_when_and_where(text: str, session) -> None:
    start = session.local_start
    for said in (f"{start:%A}, {start:%B} {start.day}", start.tzname(), "North Loop", "800 N Washington Ave"):
        assert said in text, (said, text)


def test_the_waitlist_emails_of_a_drop_in_class_say_its_date_and_place(db, smtp):
    offering, first, second = drop_in_class(db)
    register(offering, first.id, Person("Ana", "ana@example.com"))
    entry = join_waitlist(offering, first.id, Person("Wes", "wes@example.com")).entry
    queue_email(EmailKind.WAITLIST_OFFER_EXPIRED, waitlist_entry=entry)
    db.session.commit()

    deliver_due()

    messages = {m["Subject"]: m for m in smtp.to("wes@example.com")}
    day = format_short_day(first.local_start)  # neutral subjects: the date, not the class
    assert set(messages) == {f"You're on the waitlist for {day}", f"Your seat offer for {day} has expired"}
    for message in messages.values():
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        says_when_and_where(text, first)
        says_when_and_where(html, first)
        # Only the class waited for, not the class's other dates.
        later = second.local_start
        assert f"{later:%B} {later.day}," not in text


def test_joining_a_waitlist_again_emails_the_link_to_the_place_once_per_window(db, smtp, client):
    offering, first, _ = drop_in_class(db)
    register(offering, first.id, Person("Ana", "ana@example.com"))
    join_waitlist(offering, first.id, Person("Wes", "wes@example.com"))
    now = utcnow()
    for _ in range(3):  # typed again and again: one email
        again = join_waitlist(offering, first.id, Person("Eve", "WES@example.com"), now=now)
        assert again.outcome == WaitlistOutcome.ALREADY_WAITING
    later = join_waitlist(
        offering,
        first.id,
        Person("Wes", "wes@example.com"),
        now=now + LINK_EMAIL_WINDOW + timedelta(minutes=1),
    )
    assert later.outcome == WaitlistOutcome.ALREADY_WAITING

    deliver_due()

    assert smtp.to("eve@example.com") == []
    subjects = sorted(m["Subject"] for m in smtp.to("wes@example.com"))
    day = format_short_day(first.local_start)
    assert subjects == [
        f"You're on the waitlist for {day}",
        f"Your place on the waitlist for {day}",
        f"Your place on the waitlist for {day}",
    ]
    message = next(m for m in smtp.to("wes@example.com") if m["Subject"].startswith("Your place"))
    text = message.get_body(("plain",)).get_content()
    assert "You are still waiting: number 1 in line." in text
    says_when_and_where(text, first)
    link = re.search(r"See your place: (\S+)", text).group(1)
    page = client.get(urlsplit(link).path)
    assert page.status_code == 200 and "number 1" in page.get_data(as_text=True)


def test_the_link_sent_again_for_an_open_offer_says_claim_it_by_when(db, smtp):
    offering, first, _ = drop_in_class(db)
    register(offering, first.id, Person("Ana", "ana@example.com"))
    entry = join_waitlist(offering, first.id, Person("Wes", "wes@example.com")).entry
    entry.status = WaitlistStatus.OFFERED
    entry.offered_at = utcnow()
    entry.offer_expires_at = utcnow() + timedelta(hours=3)
    db.session.commit()
    join_waitlist(offering, first.id, Person("Wes", "wes@example.com"))

    deliver_due()

    [message] = [m for m in smtp.to("wes@example.com") if m["Subject"].startswith("Your place")]
    text = message.get_body(("plain",)).get_content()
    assert "A seat is open for you: we are holding it until" in text
    assert "Claim your seat: http" in text and "/waitlist/" in text
