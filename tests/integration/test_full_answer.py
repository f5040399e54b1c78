"""The answer to someone who finds a class full: rendered once per change to the class (the page
cache), with each person's own answers in the waitlist form, on PostgreSQL."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import g

from events.catalog import services as catalog
from events.catalog.cache import field_placeholder, page_cache
from events.extensions import db as _db
from events.models import OfferingKind, Registration, SeatPool, WaitlistEntry, WaitlistStatus, utcnow
from events.registration import services
from events.registration.seats import take_seat
from events.registration.services import Outcome, Person
from tests.factories import make_location, make_offering, make_session, upcoming_day, workshop
from tests.helpers import csrf_token


def post_register(client, slug, **fields):
    g.pop("csrf_token", None)  # each browser its own token (see test_registration.py)
    html = client.get(f"/offerings/{slug}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(html), "name": "Ana Reyes", "email": "ana@example.com", **fields}
    return client.post(f"/offerings/{slug}/register", data=data)


def full_workshop(db):
    offering = workshop(capacity=1)
    take_seat(offering.sessions[0].seat_pool)
    db.session.commit()
    return offering


def test_everyone_who_finds_it_full_gets_their_own_answers_from_one_render(app, db):
    offering = full_workshop(db)
    page_cache().clear()
    answers = [
        ("Ana Reyes", "ana@example.com", "612 555 0101"),
        ('Bo "the" <b>Lee</b> & co', "bo@example.com", ""),
        ("__field-email-placeholder__", "cy@example.com", "+1 (612) 555-0103"),
    ]
    pages = []
    for name, email, phone in answers:
        client = app.test_client()
        response = post_register(client, offering.slug, name=name, email=email, phone=phone)
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "just filled up" in html and f"/offerings/{offering.slug}/waitlist" in html
        pages.append(html)
        # Their own answers, escaped as Jinja escapes them, and nobody else's.
        assert 'value="' + email + '"' in html
        for _, other_email, _ in answers:
            if other_email != email:
                assert other_email not in html
        assert "__field-" not in html.replace(name, "") and "__csrf" not in html
        # The form posts with the visitor's own token: joining the waitlist works from it.
        joined = client.post(
            f"/offerings/{offering.slug}/waitlist",
            data={"csrf_token": csrf_token(html), "name": name, "email": email, "phone": phone},
        )
        assert joined.status_code == 302 and "/waitlist/" in joined.headers["Location"]

    assert 'value="Bo &#34;the&#34; &lt;b&gt;Lee&lt;/b&gt; &amp; co"' in pages[1]
    assert "<b>Lee</b>" not in pages[1]
    # An answer that spells a placeholder is shown as typed, not replaced by another answer.
    assert 'value="__field-email-placeholder__"' in pages[2]
    assert 'value="+1 (612) 555-0103"' in pages[2]
    # Nothing was registered, and each person's waitlist place is theirs.
    assert db.session.scalar(sa.select(sa.func.count(Registration.id))) == 0
    emails = set(db.session.scalars(sa.select(WaitlistEntry.email_normalized)))
    assert emails == {"ana@example.com", "bo@example.com", "cy@example.com"}
    # Rendered once: every later answer came from the cache entry (placeholders in it, not answers).
    full_entries = [key for key in page_cache()._entries if key[-2][:1] == ("full",)]
    assert len(full_entries) == 1
    body = page_cache()._entries[full_entries[0]][0].decode()
    assert field_placeholder("email") in body and "ana@example.com" not in body


def test_a_change_to_the_class_is_in_the_next_full_answer(app, db):
    offering = full_workshop(db)
    first = post_register(app.test_client(), offering.slug).get_data(as_text=True)
    assert "Wear comfortable clothes" not in first

    offering.what_to_bring = "Wear comfortable clothes"
    db.session.commit()

    again = post_register(app.test_client(), offering.slug, email="bo@example.com").get_data(as_text=True)
    assert "just filled up" in again and "Wear comfortable clothes" in again


def test_the_date_chosen_stays_chosen_in_the_full_answer(app, db):
    offering = make_offering(make_location(), OfferingKind.CLASS, capacity=1)
    first = make_session(offering, upcoming_day(3))
    second = make_session(offering, upcoming_day(10))
    take_seat(first.seat_pool)
    take_seat(second.seat_pool)
    db.session.commit()

    for chosen in (first, second):
        html = post_register(app.test_client(), offering.slug, session_id=str(chosen.id)).get_data(
            as_text=True
        )
        assert "just filled up" in html
        assert f'value="{chosen.id}" checked' in html
        other = second if chosen is first else first
        assert f'value="{other.id}" checked' not in html


def test_a_full_answer_with_a_message_to_show_is_rendered_for_them(app, db):
    offering = full_workshop(db)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "A message only this visitor should see.")]
    html = post_register(client, offering.slug).get_data(as_text=True)
    assert "just filled up" in html and 'value="ana@example.com"' in html


@pytest.fixture
def statements(db):
    sent: list[str] = []

    def on_execute(_conn, _cursor, statement, *_args):
        sent.append(statement)

    sa.event.listen(_db.engine, "before_cursor_execute", on_execute)
    yield sent
    sa.event.remove(_db.engine, "before_cursor_execute", on_execute)


def test_the_crowd_that_finds_it_full_costs_one_query_after_the_target_and_no_lock(db, statements):
    offering = full_workshop(db)
    offering = catalog.get_offering(offering.slug)  # as the view has it
    statements.clear()

    result = services.register(offering, None, Person("Bo", "bo@example.com"))

    assert result.outcome == Outcome.FULL
    sent = [s for s in statements if "SAVEPOINT" not in s]  # (the test's own transaction)
    assert not any("FOR UPDATE" in s or s.lstrip().startswith(("UPDATE", "INSERT")) for s in sent)
    assert len(sent) == 2, sent  # the date registered for, then the one look


def test_a_full_pool_still_answers_those_it_knows(app, db):
    """The one look sends everyone it concerns down the longer path, which answers as before."""
    offering = workshop(capacity=2)
    pool = offering.sessions[0].seat_pool
    db.session.commit()
    ana = services.register(offering, None, Person("Ana", "ana@example.com"), browser_key="ana-browser")
    assert ana.outcome == Outcome.CONFIRMED
    assert services.register(offering, None, Person("Bo", "bo@example.com")).outcome == Outcome.CONFIRMED
    assert db.session.get(SeatPool, pool.id).seats_taken == 2

    # Registered already: taken back to it from their browser, told neutrally from another.
    again = services.register(offering, None, Person("Ana", "ANA@example.com"), browser_key="ana-browser")
    assert again.outcome == Outcome.RESUME
    elsewhere = services.register(offering, None, Person("Ana", "ana@example.com"), browser_key="other")
    assert elsewhere.outcome == Outcome.ALREADY_REGISTERED

    # A seat offered to someone on the waitlist: registering directly claims it.
    cy = services.join_waitlist(offering, None, Person("Cy", "cy@example.com"))
    assert cy.outcome == services.WaitlistOutcome.JOINED
    services.cancel_registration(
        db.session.scalar(sa.select(Registration.id).where(Registration.name == "Bo"))
    )
    db.session.expire_all()
    assert db.session.get(WaitlistEntry, cy.entry.id).status == WaitlistStatus.OFFERED
    assert db.session.get(SeatPool, pool.id).seats_taken == 2
    assert services.register(offering, None, Person("Dee", "dee@example.com")).outcome == Outcome.FULL
    claimed = services.register(offering, None, Person("Cy", "cy@example.com"))
    assert claimed.outcome == Outcome.CONFIRMED
    db.session.expire_all()
    assert db.session.get(WaitlistEntry, cy.entry.id).status == WaitlistStatus.CLAIMED

    # An offer that ran out is released by the next registration, which takes its seat.
    dee = services.join_waitlist(offering, None, Person("Dee", "dee@example.com"))
    services.cancel_registration(ana.registration.id)
    db.session.expire_all()
    entry = db.session.get(WaitlistEntry, dee.entry.id)
    assert entry.status == WaitlistStatus.OFFERED
    entry.offer_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert services.register(offering, None, Person("Eve", "eve@example.com")).outcome == Outcome.CONFIRMED
    db.session.expire_all()
    assert db.session.get(WaitlistEntry, dee.entry.id).status == WaitlistStatus.EXPIRED
    assert db.session.get(SeatPool, pool.id).seats_taken == 2
