""" "Find my registrations": the one email, read from the real SMTP server, lists every upcoming
place booked with the address (confirmed, held while paying, waiting, offered) with a link
that opens it, and nothing else: not other people's, not past, cancelled or lapsed ones."""

from __future__ import annotations

import re
from datetime import timedelta

from events.models import OfferingKind, RegistrationStatus, WaitlistStatus, utcnow
from events.notifications.delivery import deliver_due
from events.registration.lookup import request_lookup
from events.registration.services import Person, cancel_registration, join_waitlist, register
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day


def _places_email(smtp, address):
    [message] = [m for m in smtp.to(address) if m["Subject"].startswith("Your registrations")]
    return message


def test_the_email_lists_every_upcoming_place_with_a_working_link(app, db, smtp, client):
    make_clinic(name="Revival PT", email="hello@revival.example")
    north = make_location(name="North Loop")
    confirmed = make_offering(north, title="Back Care Basics")
    make_session(confirmed, upcoming_day(3))
    paid = make_offering(north, title="Knee Strength", price_cents=2500)
    make_session(paid, upcoming_day(5))
    full = make_offering(north, title="Balance Class", kind=OfferingKind.CLASS, capacity=1)
    full_session = make_session(full, upcoming_day(4))
    course = make_offering(north, kind=OfferingKind.COURSE, title="Six-Week Posture Course")
    for week in range(5):
        make_session(course, upcoming_day(6 + 7 * week))
    cancelled = make_offering(north, title="Cancelled One")
    make_session(cancelled, upcoming_day(8))
    past = make_offering(north, title="Already Happened")
    make_session(past, upcoming_day(1))
    db.session.commit()

    me = "Zoe.Smith@Example.com"
    register(confirmed, None, Person("Zoe Smith", me))
    held = register(paid, None, Person("Zoe Smith", me)).registration
    register(full, full_session.id, Person("Someone Else", "else@example.com"))
    join_waitlist(full, full_session.id, Person("Zoe Smith", me))
    register(course, None, Person("Sam Smith", "zoe.smith@example.com"))  # the same address, lower case
    gone = register(cancelled, None, Person("Zoe Smith", me)).registration
    cancel_registration(gone.id)
    register(past, None, Person("Zoe Smith", me))
    # Built after that one has happened: not listed. Three days on, so it has ended whatever the
    # hour: tomorrow 6 pm in Chicago is the day after tomorrow in UTC.
    now = utcnow() + timedelta(days=3)
    held.hold_expires_at = now + timedelta(minutes=10)
    db.session.commit()

    with app.test_request_context():
        assert request_lookup("zoe.smith@example.com", now=now)
    deliver_due(now=now)
    message = _places_email(smtp, "zoe.smith@example.com")
    assert message["Subject"] == "Your registrations at Revival PT"
    assert message["Reply-To"].addresses[0].addr_spec == "hello@revival.example"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content()
    titles = ["Back Care Basics", "Balance Class", "Knee Strength", "Six-Week Posture Course"]
    assert [t for t in re.findall(r"^\* (.+?)(?: \(for .*\))?$", text, re.M)] == titles  # soonest first
    for absent in ("Cancelled One", "Already Happened", "Someone Else"):
        assert absent not in text and absent not in html
    assert "(for Sam Smith)" in text and "(for Zoe Smith)" in text  # two people, one address
    assert "You're on the waitlist (number 1 in line)." in text
    assert "A seat is held for you until" in text and "Complete payment:" in text
    assert "and 2 more dates" in text  # the course's five dates, three shown
    assert "Hello," in text  # several names: greeted by none

    links = re.findall(r"https?://[^/\s]+(/(?:manage|waitlist)/\S+)", text)
    assert len(links) == 4
    for path in links:
        page = client.get(path)
        assert page.status_code == 200, path
    assert sorted(p.split("/")[1] for p in links) == ["manage", "manage", "manage", "waitlist"]


def test_an_address_with_nothing_booked_gets_an_email_that_says_so(app, db, smtp):
    make_clinic(name="Revival PT")
    offering = make_offering(make_location(), title="Back Care Basics")
    make_session(offering, upcoming_day(3))
    db.session.commit()
    register(offering, None, Person("Ana", "ana@example.com"))
    lapsed = register(offering, None, Person("Lapsed", "lapsed@example.com")).registration
    lapsed.status = RegistrationStatus.EXPIRED
    entry_owner = join_waitlist(offering, None, Person("Left", "left@example.com")).entry
    if entry_owner is not None:
        entry_owner.status = WaitlistStatus.LEFT
    db.session.commit()

    with app.test_request_context():
        for address in ("nobody@example.com", "lapsed@example.com", "left@example.com"):
            assert request_lookup(address)
    deliver_due()
    for address in ("nobody@example.com", "lapsed@example.com", "left@example.com"):
        message = _places_email(smtp, address)
        text = message.get_body(("plain",)).get_content()
        assert "We found no upcoming registrations or waitlist places booked with this email address." in text
        assert "/find-my-registrations" in text and "Back Care Basics" not in text
        assert "/manage/" not in text and "/waitlist/" not in text


def test_the_email_also_sends_the_links_of_the_address_s_live_passes(app, db, smtp, client):
    from events.models import PassProduct, PaymentMethod, Role, User
    from events.passes import admin as pass_admin

    make_clinic(name="Revival PT")
    product = PassProduct(name="10-class pass", credits=10, price_cents=12000, validity_days=90)
    desk = User(email="desk@revival.example", name="Desk", role=Role.ADMIN)
    db.session.add_all([product, desk])
    db.session.commit()
    mine = pass_admin.sell_at_desk(product.id, "Zoe", "zoe@example.com", PaymentMethod.CASH, "", desk)
    pass_admin.adjust(mine.id, -3, "used", desk)
    refunded = pass_admin.sell_at_desk(product.id, "Zoe", "zoe@example.com", PaymentMethod.COMP, "", desk)
    pass_admin.refund_unused(refunded.id, "closed", desk)
    pass_admin.sell_at_desk(product.id, "Other", "other@example.com", PaymentMethod.COMP, "", desk)

    with app.test_request_context():
        assert request_lookup("Zoe@Example.com")
    deliver_due()
    text = _places_email(smtp, "zoe@example.com").get_body(("plain",)).get_content()
    assert "We found no upcoming registrations" in text  # no bookings...
    assert "Your class pass:" in text and "7 of 10 credits left" in text  # ...but the live pass
    [link] = re.findall(r"https?://[^/\s]+(/pass/\S+)", text)
    assert "7 of 10 credits left" in client.get(link).get_data(as_text=True)
