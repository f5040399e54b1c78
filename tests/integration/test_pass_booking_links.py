"""Booking with a class pass through the web: "I have a class pass" on the registration form
(the same answer for every address), the emailed link's confirm page and its one button,
booking from the pass's page, and hostile input on each (tampered, expired, NUL bytes)."""

from __future__ import annotations

import re
from html import unescape

import pytest
import sqlalchemy as sa
from flask import g, render_template

from events.models import OutboxEmail, Registration, RegistrationStatus
from events.notifications import content
from events.notifications.outbox import EmailKind
from events.passes import booking, ledger
from events.registration import links
from events.registration.services import Person, register
from tests.factories import make_clinic, workshop
from tests.helpers import csrf_token
from tests.passbook_helpers import make_class, make_pass, make_product

ME = "pat.holder@example.com"


def token_of(client, path: str) -> str:
    g.pop("csrf_token", None)  # each browser its own token (the test's app context is shared)
    return csrf_token(client.get(path).get_data(as_text=True))


def ask_for_link(client, offering, session, email=ME, **fields):
    data = {
        "csrf_token": token_of(client, f"/offerings/{offering.slug}"),
        "session_id": str(session.id),
        "name": "Pat Holder",
        "email": email,
        "phone": "612 555 0100",
        **fields,
    }
    return client.post(f"/offerings/{offering.slug}/book-with-pass", data=data)


def link_email(email: str) -> OutboxEmail:
    row = booking.latest_link_email(email)
    assert row is not None, "no pass-booking email queued"
    return row


def built(row: OutboxEmail):
    with content.current_app.test_request_context():
        return content.build(row)


def link_path(row: OutboxEmail) -> str:
    found = built(row).context["link"]
    assert found
    return re.sub(r"^https?://[^/]+", "", found)


@pytest.fixture
def setup(db):
    make_clinic(name="Revival PT")
    cls = make_class(title="Strength Basics", days=5, dates=2)
    pass_ = make_pass(ME)
    db.session.commit()
    return cls, pass_


def test_asking_says_the_same_for_every_address_and_books_nothing(client, db, setup):
    cls, _pass = setup
    session = cls.sessions[0]
    holder = ask_for_link(client, cls, session)
    stranger = ask_for_link(client, cls, session, email="no.pass@example.com")
    assert holder.status_code == stranger.status_code == 200
    for response, address in ((holder, ME), (stranger, "no.pass@example.com")):
        body = response.get_data(as_text=True)
        assert f'We\'ve emailed <strong class="break-anywhere">{address}</strong> a link to confirm' in body
        assert body.replace(address, "ADDRESS") == holder.get_data(as_text=True).replace(ME, "ADDRESS")
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0
    assert session.seat_pool.seats_taken == 0

    holder_email = built(link_email(ME))
    assert holder_email.context["has_pass"] and "/pass-booking/" in holder_email.context["link"]
    assert holder_email.context["name"] == "Pat Holder"
    other = built(link_email("no.pass@example.com"))
    assert not other.context["has_pass"] and other.context["link"] == ""
    assert other.context["passes_url"].endswith("/passes")


def test_the_link_confirms_once_and_a_second_use_says_already_booked(client, db, setup):
    cls, pass_ = setup
    ask_for_link(client, cls, cls.sessions[0])
    path = link_path(link_email(ME))

    page = client.get(path).get_data(as_text=True)
    assert "Book with your class pass" in page and "Strength Basics" in page
    assert "With your 10-class pass: 1 credit." in page and "9 of 10 left after." in page
    token = token_of(client, path)
    booked = client.post(path, data={"csrf_token": token})
    assert booked.status_code == 302 and "/manage/" in booked.location
    manage = client.get(booked.location).get_data(as_text=True)
    assert "Class pass: 1 credit (9 of 10 left, expires " in manage

    again = client.post(path, data={"csrf_token": token})
    assert again.status_code == 302  # to the same booking (signed again: compare what it names)
    assert again.location.split(".")[0] == booked.location.split(".")[0]
    assert "You&#39;re already booked for this" in client.get(again.location).get_data(as_text=True)
    assert "<h1>You're already booked</h1>" in client.get(path).get_data(as_text=True)
    assert ledger.balance(pass_.id) == 9
    reg = db.session.scalar(sa.select(Registration))
    assert (reg.phone, reg.language, reg.pass_id) == ("612 555 0100", "en", pass_.id)


def test_the_confirmation_email_says_how_it_was_paid(client, db, setup):
    cls, pass_ = setup
    reg = booking.book_with_pass(cls, cls.sessions[0].id, Person("Pat Holder", ME)).registration
    row = db.session.scalar(
        sa.select(OutboxEmail).where(
            OutboxEmail.registration_id == reg.id, OutboxEmail.kind == EmailKind.REGISTRATION_CONFIRMED
        )
    )
    email = built(row)
    assert email.context["paid_with_pass"].startswith("Class pass: 1 credit (9 of 10 left, expires ")


def test_a_tampered_or_expired_link_is_refused_and_books_nothing(client, db, setup, app, monkeypatch):
    cls, pass_ = setup
    ask_for_link(client, cls, cls.sessions[0])
    path = link_path(link_email(ME))
    token = token_of(client, path)
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 404
    assert client.post(tampered, data={"csrf_token": token}).status_code == 404
    assert client.get("/pass-booking/" + "x" * 5000).status_code == 404
    assert client.get("/pass-booking/%00abc").status_code == 404
    # Another link kind's signature is not this one's.
    assert client.get("/pass-booking/" + links.sign(pass_.token, links.PASS_SALT)).status_code == 404
    monkeypatch.setitem(app.config, "PASS_BOOKING_LINK_MINUTES", -1)
    expired = client.post(path, data={"csrf_token": token})
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    monkeypatch.setitem(app.config, "PASS_BOOKING_LINK_MINUTES", 60)
    assert client.post(path, data={}).status_code == 400  # no CSRF token
    assert ledger.balance(pass_.id) == 10
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Pat\x00Holder"},
        {"email": "pat\x00@example.com"},
        {"phone": "612\x00555"},
        {"session_id": "99999999999999999999"},
        {"session_id": "\x00"},
        {"name": "x" * 1000},
        {"email": ""},
    ],
)
def test_hostile_form_input_is_a_form_error_and_queues_nothing(client, db, setup, fields):
    cls, _pass = setup
    response = ask_for_link(client, cls, cls.sessions[0], **fields)
    assert response.status_code == 400
    assert "There is a problem" in response.get_data(as_text=True) or "Error" in response.get_data(
        as_text=True
    )
    assert (
        db.session.scalar(
            sa.select(sa.func.count(OutboxEmail.id)).where(OutboxEmail.kind == EmailKind.PASS_BOOKING_LINK)
        )
        == 0
    )


def test_a_date_not_of_this_class_is_a_form_error(client, db, setup):
    cls, _pass = setup
    other = make_class()
    db.session.commit()
    response = ask_for_link(client, cls, other.sessions[0])
    assert response.status_code == 409
    assert "Please choose one of the listed dates." in response.get_data(as_text=True)


def pass_signed(pass_) -> str:
    with content.current_app.test_request_context():
        return links.sign(pass_.token, links.PASS_SALT)


def test_booking_from_the_pass_page(client, db, setup):
    cls, pass_ = setup
    signed = pass_signed(pass_)
    token = token_of(client, f"/offerings/{cls.slug}")
    response = client.post(
        f"/pass/{signed}/book", data={"csrf_token": token, "session_id": str(cls.sessions[1].id)}
    )
    assert response.status_code == 302 and "/manage/" in response.location
    reg = db.session.scalar(sa.select(Registration))
    assert (reg.session_id, reg.pass_id, reg.status) == (
        cls.sessions[1].id,
        pass_.id,
        RegistrationStatus.CONFIRMED,
    )
    assert ledger.balance(pass_.id) == 9
    again = client.post(
        f"/pass/{signed}/book", data={"csrf_token": token, "session_id": str(cls.sessions[1].id)}
    )
    assert again.status_code == 302 and ledger.balance(pass_.id) == 9

    workshop_pass_only = make_pass("w@example.com", make_product(kinds="workshop"))
    db.session.commit()
    refused = client.post(
        f"/pass/{pass_signed(workshop_pass_only)}/book",
        data={"csrf_token": token, "session_id": str(cls.sessions[0].id)},
    )
    assert refused.status_code == 409 and "can&#39;t pay for this" in refused.get_data(as_text=True)


@pytest.mark.parametrize("session_id", ["abc", "\x00", str(2**40), "-1", ""])
def test_hostile_pass_page_posts_are_4xx(client, db, setup, session_id):
    cls, pass_ = setup
    token = token_of(client, f"/offerings/{cls.slug}")
    response = client.post(
        f"/pass/{pass_signed(pass_)}/book", data={"csrf_token": token, "session_id": session_id}
    )
    assert response.status_code == 400
    assert (
        client.post(
            f"/pass/{pass_signed(pass_)}x/book", data={"csrf_token": token, "session_id": "1"}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/pass/{pass_signed(pass_)}/book", data={"csrf_token": token, "session_id": "2147483000"}
        ).status_code
        == 404
    )
    assert ledger.balance(pass_.id) == 10


def test_the_pass_page_partial_lists_what_it_can_book(client, db, setup, app):
    cls, pass_ = setup
    full = make_class(title="Full Mobility", capacity=1, days=3)
    workshop(title="Not For This Pass", days=2)  # a workshop: the 10-class pass is for classes
    db.session.commit()
    register(full, full.sessions[0].id, Person("Someone", "someone@example.com"))
    booking.book_with_pass(cls, cls.sessions[0].id, Person("Pat Holder", ME))
    with app.test_request_context():
        html = render_template("passes/_book_with_pass.html", class_pass=pass_, signed="SIGNED")
    assert html.count("<strong>Strength Basics</strong>") == 2 and "Full Mobility" in html
    assert "You're booked" in html  # its first date
    assert "10 seats left" in html  # its second date (the first is booked)
    assert "Full" in html
    assert "Not For This Pass" not in html
    # One "Book" button: the second date (the first is booked, Full Mobility is full).
    assert html.count('action="/pass/SIGNED/book"') == 1
    assert f'name="session_id" value="{cls.sessions[1].id}"' in html


def test_staff_see_how_a_pass_booking_was_paid(client, db, setup):
    from tests.integration.test_staff_admin import login

    cls, pass_ = setup
    reg = booking.book_with_pass(cls, cls.sessions[0].id, Person("Pat Holder", ME)).registration
    reg_id, session_id = reg.id, cls.sessions[0].id
    login(client, db)
    page = client.get(f"/staff/admin/registrations/{reg_id}").get_data(as_text=True)
    paid_with = r'id="paid-with-pass">Class pass: 1 credit \(9 of 10 left, expires \w{3} \d+\)<'
    assert re.search(paid_with, page)
    roster = client.get(f"/staff/sessions/{session_id}").get_data(as_text=True)
    assert "class pass (1 credit)" in roster


def test_a_seat_held_for_a_card_payment_is_not_booked_twice(client, db, setup):
    cls, pass_ = setup
    held = register(cls, cls.sessions[0].id, Person("Pat Holder", ME)).registration
    assert held.status is RegistrationStatus.HELD
    ask_for_link(client, cls, cls.sessions[0])
    path = link_path(link_email(ME))
    assert "A seat is held for you while you pay by card" in client.get(path).get_data(as_text=True)
    response = client.post(path, data={"csrf_token": token_of(client, f"/offerings/{cls.slug}")})
    assert response.status_code == 302 and "/manage/" in response.location
    page = client.get(response.location).get_data(as_text=True)
    assert "You already have a seat held for this while you pay by card." in page.replace("&#39;", "'")
    assert ledger.balance(pass_.id) == 10
    assert cls.sessions[0].seat_pool.seats_taken == 1


def test_the_staff_cancel_page_says_what_happens_to_the_credit(client, db, setup):
    from tests.integration.test_staff_admin import login

    cls, pass_ = setup
    reg = booking.book_with_pass(cls, cls.sessions[0].id, Person("Pat Holder", ME)).registration
    reg_id = reg.id
    login(client, db)
    page = client.get(f"/staff/admin/registrations/{reg_id}/cancel").get_data(as_text=True)
    assert 'id="pass-credits"' in page
    assert "gives it back now (before the cut-off)" in page


# --- A class that asks for consent: booking with a pass asks too, and records it ---


def consent_required(db, cls):
    from events.consent.services import create_document
    from events.models import Role, User

    admin = User(email="consent.admin@example.com", name="Ada Admin", role=Role.ADMIN)
    db.session.add(admin)
    db.session.flush()
    document = create_document("Class release", "Exercise carries some risk.", admin)
    cls.consent_document_id = document.id
    db.session.commit()
    return document.versions[0]


def acceptances(db) -> list[tuple[int, int]]:
    from events.models import ConsentAcceptance

    db.session.expire_all()
    return [
        (a.registration_id, a.consent_version_id) for a in db.session.scalars(sa.select(ConsentAcceptance))
    ]


def test_the_emailed_link_asks_for_consent_and_books_only_when_it_is_given(client, db, setup):
    cls, pass_ = setup
    version = consent_required(db, cls)
    ask_for_link(client, cls, cls.sessions[0])
    path = link_path(link_email(ME))
    page = client.get(path).get_data(as_text=True)
    assert "Class release" in page and f'name="consent_version_id" value="{version.id}"' in page

    unticked = client.post(
        path, data={"csrf_token": token_of(client, path), "consent_version_id": version.id}
    )
    assert unticked.status_code == 409 and 'id="consent-error"' in unticked.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0
    assert ledger.balance(pass_.id) == 10
    # A page that showed no document (an old tab, a hand-made post) is not a yes either.
    bare = client.post(path, data={"csrf_token": token_of(client, path)})
    assert bare.status_code == 409 and db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0

    ticked = client.post(
        path, data={"csrf_token": token_of(client, path), "consent_version_id": version.id, "consent": "y"}
    )
    assert ticked.status_code == 302
    reg = db.session.scalar(sa.select(Registration))
    assert acceptances(db) == [(reg.id, version.id)] and ledger.balance(pass_.id) == 9


def test_the_pass_page_book_button_asks_for_consent_first(client, db, setup):
    cls, pass_ = setup
    version = consent_required(db, cls)
    signed = pass_signed(pass_)
    session_id = str(cls.sessions[1].id)
    first = client.post(
        f"/pass/{signed}/book",
        data={"csrf_token": token_of(client, f"/offerings/{cls.slug}"), "session_id": session_id},
    )
    page = first.get_data(as_text=True)
    assert first.status_code == 200 and "Class release" in page and 'id="consent-error"' not in page
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0

    booked = client.post(
        f"/pass/{signed}/book",
        data={
            "csrf_token": csrf_token(page),
            "session_id": session_id,
            "consent_version_id": str(version.id),
            "consent": "y",
        },
    )
    assert booked.status_code == 302 and "/manage/" in booked.location
    reg = db.session.scalar(sa.select(Registration))
    assert acceptances(db) == [(reg.id, version.id)] and ledger.balance(pass_.id) == 9


def fill(db, session) -> None:
    """Every seat of the date taken by others."""
    for n in range(session.seat_pool.capacity - session.seat_pool.seats_taken):
        register(session.offering, session.id, Person(f"Other {n}", f"other{n}@example.com"))
    db.session.commit()


def test_a_full_date_on_the_link_tells_someone_waiting_their_place_and_offers_others_the_waitlist(
    client, db, setup
):
    cls, pass_ = setup
    session = cls.sessions[0]
    ask_for_link(client, cls, session)
    path = link_path(link_email(ME))
    fill(db, session)

    # Not on the waitlist: one tap joins it, their details from the link.
    page = unescape(client.get(path).get_data(as_text=True))
    assert "<h1>This is full</h1>" in page
    assert f'action="/offerings/{cls.slug}/waitlist"' in page and f'value="{ME}"' in page
    assert "You're on the waitlist for it" not in page

    # On it: told their number in line, and nothing to join again.
    from events.registration.services import join_waitlist

    join_waitlist(cls, session.id, Person("Someone First", "first@example.com"))
    join_waitlist(cls, session.id, Person("Pat Holder", ME))
    db.session.commit()
    page = unescape(client.get(path).get_data(as_text=True))
    assert "You're on the waitlist for it: number 2. We'll email you if a seat opens." in page
    assert f'action="/offerings/{cls.slug}/waitlist"' not in page

    # Booking anyway (an old page's button): nothing spent, the place kept and said.
    refused = client.post(path, data={"csrf_token": token_of(client, f"/offerings/{cls.slug}")})
    assert refused.status_code == 409
    body = unescape(refused.get_data(as_text=True))
    assert "Sorry, this has just filled up. Nothing was taken from your pass." in body
    assert "number 2" in body
    assert ledger.balance(pass_.id) == 10


def test_a_full_date_from_the_pass_page_keeps_the_waitlist_place_or_offers_it(client, db, setup):
    from events.registration.services import join_waitlist

    cls, pass_ = setup
    session = cls.sessions[1]
    fill(db, session)
    signed = pass_signed(pass_)
    token = token_of(client, f"/offerings/{cls.slug}")

    book = {"csrf_token": token, "session_id": str(session.id)}
    not_waiting = client.post(f"/pass/{signed}/book", data=book)
    body = unescape(not_waiting.get_data(as_text=True))
    assert not_waiting.status_code == 409 and "just filled up" in body
    assert f'action="/offerings/{cls.slug}/waitlist"' in body and f'value="{ME}"' in body

    join_waitlist(cls, session.id, Person("Pat Holder", ME))
    db.session.commit()
    waiting = client.post(f"/pass/{signed}/book", data=book)
    body = unescape(waiting.get_data(as_text=True))
    assert waiting.status_code == 409
    assert "You're on the waitlist for it: number 1. We'll email you if a seat opens." in body
    assert f'action="/offerings/{cls.slug}/waitlist"' not in body
    assert ledger.balance(pass_.id) == 10


def test_the_confirm_page_says_how_many_credits_go_back(client, db):
    make_clinic(name="Revival PT")
    cls = make_class(title="Long Mobility", days=5, credits=2)
    make_pass(ME)
    db.session.commit()
    ask_for_link(client, cls, cls.sessions[0])

    page = client.get(link_path(link_email(ME))).get_data(as_text=True)

    assert "With your 10-class pass: 2 credits." in page
    assert "before it starts and the 2 credits go back on your pass." in page


def test_booking_with_a_pass_in_spanish_shows_the_translation_and_records_its_language(client, db, setup):
    from events.consent.services import publish_translation
    from events.models import ConsentAcceptance

    cls, pass_ = setup
    version = consent_required(db, cls)
    admin = version.published_by
    publish_translation(
        version.document, version.id, "es", "Exoneración", "El ejercicio conlleva riesgo.", admin
    )
    client.set_cookie("lang", "es")
    signed = pass_signed(pass_)
    session_id = str(cls.sessions[1].id)
    first = client.post(
        f"/pass/{signed}/book",
        data={"csrf_token": token_of(client, f"/offerings/{cls.slug}"), "session_id": session_id},
    )
    page = first.get_data(as_text=True)
    assert "El ejercicio conlleva riesgo." in page and 'name="consent_language" value="es"' in page
    base = {"csrf_token": csrf_token(page), "session_id": session_id, "consent_version_id": str(version.id)}
    for forged in ("so", "es\x00", "x" * 5000):  # no such text: read again, nothing booked
        refused = client.post(
            f"/pass/{signed}/book", data={**base, "consent_language": forged, "consent": "y"}
        )
        assert refused.status_code == 409
        assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0

    booked = client.post(f"/pass/{signed}/book", data={**base, "consent_language": "es", "consent": "y"})
    assert booked.status_code == 302
    reg = db.session.scalar(sa.select(Registration))
    accepted = db.session.scalar(sa.select(ConsentAcceptance))
    assert (accepted.registration_id, accepted.consent_version_id, accepted.language) == (
        reg.id,
        version.id,
        "es",
    )
