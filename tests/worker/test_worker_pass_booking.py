"""Booking with a class pass through the emailed link, end to end: the form, the email read
from the real SMTP server, its link, the one button, the confirmation email that says how it
was paid, cancelling in time through the manage link and the email saying the credit is back.
An address without a pass gets an email saying so (and the page looked the same)."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import g

from events.models import LedgerKind, Registration, RegistrationStatus
from events.notifications.delivery import deliver_due
from events.passes import ledger
from tests.factories import make_clinic
from tests.helpers import cancel_form, csrf_token
from tests.passbook_helpers import ledger_kinds, make_class, make_pass

ME = "pat.holder@example.com"


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def page(client, path: str) -> str:
    g.pop("csrf_token", None)
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_the_emailed_link_books_with_the_pass_and_an_on_time_cancel_gives_it_back(app, db, smtp, client):
    make_clinic(name="Revival PT")
    cls = make_class(title="Strength Basics", days=5)
    pass_ = make_pass(ME)
    db.session.commit()
    session = cls.sessions[0]

    for email in (ME, "no.pass@example.com"):
        form = page(client, f"/offerings/{cls.slug}")
        assert "I have a class pass" in form
        answer = client.post(
            f"/offerings/{cls.slug}/book-with-pass",
            data={
                "csrf_token": csrf_token(form),
                "session_id": str(session.id),
                "name": "Pat Holder",
                "email": email,
            },
        )
        assert answer.status_code == 200 and "a link to confirm your booking" in answer.get_data(as_text=True)
    deliver_due()

    [invite] = smtp.to(ME)
    body = text_of(invite)
    assert invite["Subject"] == "Your booking with a class pass at Revival PT"
    assert "You asked to book Strength Basics with your class pass." in body
    assert "The link works for 60 minutes." in body
    [link] = re.findall(r"https?://[^/\s]+(/pass-booking/\S+)", body)
    [nothing] = smtp.to("no.pass@example.com")
    assert "couldn't find a class pass" in text_of(nothing) and "/passes" in text_of(nothing)
    assert "/pass-booking/" not in text_of(nothing)
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0

    confirm = page(client, link)
    assert "1 credit." in confirm and "9 of 10 left after." in confirm
    booked = client.post(link, data={"csrf_token": csrf_token(confirm)})
    assert booked.status_code == 302
    manage_path = booked.location
    assert "You&#39;re booked!" in page(client, manage_path)
    db.session.expire_all()
    assert ledger.balance(pass_.id) == 9
    deliver_due()
    [confirmation] = [m for m in smtp.to(ME) if m["Subject"] != invite["Subject"]]
    confirmation_text = text_of(confirmation)
    assert "Class pass: 1 credit (9 of 10 left, expires " in confirmation_text
    assert "invite.ics" in confirmation_text

    cancel = page(client, manage_path + "/cancel")
    assert "Your 1 credit goes back on your class pass" in re.sub(r"</?strong>", "", cancel)
    done = client.post(manage_path + "/cancel", data=cancel_form(cancel))
    assert done.status_code == 302
    assert "Your 1 credit is back on your pass." in page(client, manage_path)
    deliver_due()
    cancelled = [m for m in smtp.to(ME) if "cancelled" in m["Subject"]]
    assert len(cancelled) == 1
    assert "Your 1 credit is back on your class pass." in text_of(cancelled[0])
    db.session.expire_all()
    assert ledger.balance(pass_.id) == 10
    assert ledger_kinds(pass_.id) == [LedgerKind.PURCHASE, LedgerKind.SPEND, LedgerKind.RETURN]
    reg = db.session.scalar(sa.select(Registration))
    assert reg.status is RegistrationStatus.CANCELLED and session.seat_pool.seats_taken == 0
    # The link again, after cancelling: a new booking (the credit is back), never a double spend.
    again = page(client, link)
    assert "Book with your class pass" in again
