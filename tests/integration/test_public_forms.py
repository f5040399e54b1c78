"""The public pages' forms and links, as HTML: the date a link chooses, the error summary, the
waitlist page's dates, the filter chips, the favicon. (What a phone shows: tests/browser.)"""

from __future__ import annotations

import html
import re

import pytest

from events.models import OfferingKind
from events.registration import links
from events.registration.services import Person, join_waitlist
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token


@pytest.fixture
def weekly_class(db):
    make_clinic()
    location = make_location(slug="north-loop", name="North Loop")
    offering = make_offering(location, OfferingKind.CLASS, slug="core", title="Core", price_cents=1500)
    sessions = [make_session(offering, upcoming_day(n)) for n in (1, 8, 15, 22, 29, 36, 43)]
    db.session.commit()
    return offering, sessions


def checked_ids(body: str) -> list[str]:
    return re.findall(r'id="session-(\d+)" name="session_id" value="\d+" checked', body)


def test_a_link_with_a_session_opens_the_offering_with_that_date_chosen(client, weekly_class):
    _, sessions = weekly_class
    sixth = sessions[5]
    body = client.get(f"/offerings/core?session={sixth.id}").get_data(as_text=True)
    assert checked_ids(body) == [str(sixth.id)]
    # Shown alone at the top of the card; the other six behind one tap.
    first_list = body.split('<ul class="choice-list">')[1].split("</ul>")[0]
    assert f'id="session-{sixth.id}"' in first_list and first_list.count('type="radio"') == 1
    assert "Choose a different date (6 more)" in body


def test_without_a_session_no_date_is_guessed_and_the_rest_are_behind_one_tap(client, weekly_class):
    _, sessions = weekly_class
    body = client.get("/offerings/core").get_data(as_text=True)
    assert checked_ids(body) == []
    assert body.count('name="session_id"') == 7
    assert "Show 3 more dates" in body
    # The dates list below offers each date too, as a link that chooses it.
    assert f'href="/offerings/core?session={sessions[2].id}#register"' in body


@pytest.mark.parametrize("value", ["abc", "0", "-1", "99999999999", "2147483648", "١٢", "", "1.5", "%00"])
def test_a_session_value_that_names_no_date_of_this_offering_chooses_none(client, weekly_class, value):
    response = client.get(f"/offerings/core?session={value}")
    assert response.status_code == 200
    assert checked_ids(response.get_data(as_text=True)) == []


def test_another_offerings_session_chooses_none(client, db, weekly_class):
    other = make_offering(make_location(), OfferingKind.CLASS, slug="other")
    session = make_session(other, upcoming_day(3))
    db.session.commit()
    assert checked_ids(client.get(f"/offerings/core?session={session.id}").get_data(as_text=True)) == []


def test_schedule_cards_of_classes_link_to_their_date(client, db, weekly_class):
    _, sessions = weekly_class
    workshop = make_offering(make_location(), OfferingKind.WORKSHOP, slug="one-off")
    make_session(workshop, upcoming_day(2))
    db.session.commit()
    body = client.get("/").get_data(as_text=True)
    for session in sessions:
        assert f'href="/offerings/core?session={session.id}"' in body
    assert 'href="/offerings/one-off"' in body  # one registration covers a workshop: no date to choose


def test_a_class_registration_without_a_date_asks_for_it_with_the_rest(client, weekly_class):
    _, sessions = weekly_class
    page = client.get("/offerings/core").get_data(as_text=True)
    response = client.post("/offerings/core/register", data={"csrf_token": csrf_token(page), "email": "x"})
    assert response.status_code == 400
    body = html.unescape(response.get_data(as_text=True))
    assert "<title>Error: Core" in body
    summary = body.split('class="error-summary"')[1].split("</ul>")[0]
    assert re.findall(r'<a href="#([\w-]+)">', summary) == [f"session-{sessions[0].id}", "name", "email"]
    assert re.search(r'class="error-summary"[^>]*autofocus', body)  # focused without JavaScript
    assert 'id="session_id-error"' in body and 'aria-describedby="session_id-error"' in body
    assert re.search(r'id="email"[^>]*aria-invalid="true"', body)
    assert re.search(r'aria-describedby="email-hint email-error"', body)


def test_a_date_that_is_not_this_offerings_is_shown_beside_the_dates(client, db, weekly_class):
    other = make_offering(make_location(), OfferingKind.CLASS, slug="other")
    session = make_session(other, upcoming_day(3))
    db.session.commit()
    page = client.get("/offerings/core").get_data(as_text=True)
    data = {
        "csrf_token": csrf_token(page),
        "name": "Ana",
        "email": "ana@example.com",
        "session_id": session.id,
    }
    response = client.post("/offerings/core/register", data=data)
    assert response.status_code == 409
    body = html.unescape(response.get_data(as_text=True))
    assert re.search(r'<a href="#session-\d+">Please choose one of the listed dates.</a>', body)
    assert 'id="session_id-error"' in body


def test_a_full_date_chosen_by_its_link_offers_the_waitlist(client, db, weekly_class):
    _, sessions = weekly_class
    sessions[3].seat_pool.seats_taken = sessions[3].seat_pool.capacity
    db.session.commit()
    body = client.get(f"/offerings/core?session={sessions[3].id}").get_data(as_text=True)
    assert 'action="/offerings/core/waitlist"' in body
    assert "This date is full." in body
    body = client.get(f"/offerings/core?session={sessions[2].id}").get_data(as_text=True)
    assert 'action="/offerings/core/register"' in body


def test_a_closed_offering_says_why_and_where_to_go(client, db):
    make_clinic()
    offering = make_offering(make_location(), slug="gone", topic="Posture", is_cancelled=True)
    make_session(offering, upcoming_day(3))
    db.session.commit()
    body = html.unescape(client.get("/offerings/gone").get_data(as_text=True))
    assert "Registration is closed: this workshop has been cancelled." in body
    assert '<a href="/?topic=Posture">See other posture sessions</a>' in body
    assert 'name="session_id"' not in body and "data-book-bar" not in body


def test_the_waitlist_page_shows_the_dates_and_the_place(app, client, db):
    make_clinic()
    location = make_location(name="Robbinsdale", address_line1="4123 W Broadway")
    course = make_offering(location, OfferingKind.COURSE, slug="posture", title="Posture Reset", capacity=1)
    sessions = [make_session(course, upcoming_day(n)) for n in (2, 9, 16)]
    sessions[0].seat_pool.seats_taken = 1
    db.session.commit()
    entry = join_waitlist(course, None, Person(name="Dee", email="dee@example.com")).entry
    with app.test_request_context():
        url = links.waitlist_url(entry, external=False)
    body = html.unescape(client.get(url).get_data(as_text=True))
    for session in sessions:
        start = session.local_start
        assert f"{start:%A}, {start:%B} {start.day}" in body
    assert "One place covers all 3 sessions." in body
    assert "Robbinsdale, 4123 W Broadway" in body
    assert 'href="/offerings/posture"' in body


def test_the_schedule_shows_chips_that_combine_with_the_filters(client, weekly_class):
    body = html.unescape(client.get("/?price=free&q=core").get_data(as_text=True))
    chips = dict(re.findall(r'<a class="chip[^"]*" href="([^"]*)">([^<]+)<', body))
    by_label = {label: href for href, label in chips.items()}
    assert by_label["Free"] == "/?q=core"  # on: a tap turns it off
    assert by_label["North Loop"] == "/?location=north-loop&price=free&q=core"
    assert by_label["Courses"] == "/?kind=course&price=free&q=core"
    assert (
        '<a class="chip chip-on" href="/?q=core">Free<span class="visually-hidden"> (on: select to turn off)'
        in body
    )


def test_staff_sign_in_errors_use_the_summary_too(client, db):
    make_clinic()
    db.session.commit()
    page = client.get("/staff/login").get_data(as_text=True)
    response = client.post("/staff/login", data={"csrf_token": csrf_token(page), "email": "", "password": ""})
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'class="error-summary"' in body and '<a href="#email">' in body
    assert "<title>Error: Staff sign-in" in body


def test_the_favicon_is_served_and_linked(client):
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200
        assert response.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
        assert response.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    body = client.get("/").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in body
    assert '<link rel="icon" href="/favicon.ico"' in body
    for path in ("/static/favicon.svg", "/static/apple-touch-icon.png"):
        with client.get(path) as response:
            assert response.status_code == 200, path
