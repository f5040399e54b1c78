"""Filters, search, pagination and visibility on the schedule page and /api/v1/sessions."""

from __future__ import annotations

import html
import re
from datetime import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.factories import make_clinic, make_location, make_offering, make_session
from tests.integration.conftest import api_titles, day, html_titles


def titles_for(client, surface: str, query: str) -> list[str]:
    if surface == "html":
        response = client.get(f"/?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return html_titles(response.get_data(as_text=True))
    response = client.get(f"/api/v1/sessions?{query}")
    assert response.status_code == 200, response.get_json()
    return api_titles(response.get_json())


SURFACES = ["html", "api"]


@pytest.mark.parametrize("surface", SURFACES)
def test_unfiltered_lists_every_visible_session_soonest_first(client, catalog, surface):
    assert titles_for(client, surface, "") == catalog.visible_titles()


@pytest.mark.parametrize("surface", SURFACES)
def test_past_cancelled_and_unpublished_sessions_are_hidden(client, catalog, surface):
    titles = titles_for(client, surface, "per_page=100")
    assert len(titles) == 8
    for hidden in catalog.hidden_titles:
        assert hidden not in titles
    # Core Strength has a past and a cancelled session besides its two upcoming ones.
    assert titles.count("Core Strength") == 2


def test_hidden_sessions_appear_nowhere_in_the_page(client, catalog):
    body = client.get("/?per_page=100").get_data(as_text=True)
    assert "Hidden Draft" not in body
    assert "Called Off Workshop" not in body
    assert "8 upcoming sessions." in body


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("location=robbinsdale", ["Posture Reset", "100% Desk Check", "Posture Reset", "Posture Reset"]),
        (
            "location=north-loop",
            ["Back Spasms First Aid", "Core Strength", "1000 Steps Walk", "Core Strength"],
        ),
        ("location=nowhere", []),
        ("kind=class", ["Core Strength", "Core Strength"]),
        ("kind=course", ["Posture Reset"] * 3),
        ("kind=workshop", ["Back Spasms First Aid", "100% Desk Check", "1000 Steps Walk"]),
        ("topic=posture", ["Posture Reset"] * 3),  # topics match whatever the case
        ("topic=Back+pain+relief", ["Back Spasms First Aid"]),
        ("price=free", ["Back Spasms First Aid", "100% Desk Check", "1000 Steps Walk"]),
        ("price=paid", ["Posture Reset", "Core Strength", "Posture Reset", "Core Strength", "Posture Reset"]),
        ("location=north-loop&price=free", ["Back Spasms First Aid", "1000 Steps Walk"]),
        ("kind=class&location=robbinsdale", []),
        ("q=posture", ["Posture Reset"] * 3),
        ("q=PHOTO+of+your", ["100% Desk Check"]),  # the summary, case-insensitive
        ("q=walking", ["1000 Steps Walk"]),  # the topic
        # "%" and "_" are text, not wildcards: "100%" must not match "1000 Steps Walk".
        ("q=100%25", ["100% Desk Check"]),
        ("q=100", ["100% Desk Check", "1000 Steps Walk"]),
        ("q=_", []),
        ("q=%25", ["100% Desk Check"]),
        ("q=nothing-like-this", []),
        ("q=+++&kind=&location=", None),  # blank values mean "any"
    ],
)
def test_filters(client, catalog, surface, query, expected):
    if expected is None:
        expected = catalog.visible_titles()
    assert titles_for(client, surface, query + "&per_page=100") == expected


@pytest.mark.parametrize("surface", SURFACES)
def test_date_range_is_inclusive_days(client, catalog, surface):
    query = f"from={day(3).isoformat()}&to={day(5).isoformat()}"
    assert titles_for(client, surface, query) == ["Posture Reset", "Core Strength", "100% Desk Check"]
    assert titles_for(client, surface, f"from={day(11).isoformat()}") == ["Core Strength", "Posture Reset"]
    assert titles_for(client, surface, f"to={day(2).isoformat()}") == ["Back Spasms First Aid"]
    one_day = day(6).isoformat()
    assert titles_for(client, surface, f"from={one_day}&to={one_day}") == ["1000 Steps Walk"]


@pytest.mark.parametrize("surface", SURFACES)
def test_date_range_uses_the_clinics_zone(client, db, surface):
    """11:30 pm in Chicago is already the next day in UTC; the filter goes by the clinic's day."""
    make_clinic()
    loc = make_location(slug="late")
    late = make_offering(loc, title="Late Night Stretch")
    early = make_offering(loc, title="Early Bird Stretch")
    make_session(late, day(3), time(23, 30), minutes=20)
    make_session(early, day(4), time(0, 30), minutes=20)
    db.session.commit()

    assert titles_for(client, surface, f"to={day(3).isoformat()}") == ["Late Night Stretch"]
    assert titles_for(client, surface, f"from={day(4).isoformat()}") == ["Early Bird Stretch"]
    assert titles_for(client, surface, f"from={day(3).isoformat()}&to={day(3).isoformat()}") == [
        "Late Night Stretch"
    ]


def test_filter_form_keeps_the_chosen_values(client, catalog):
    body = client.get("/?location=robbinsdale&kind=course&price=paid&q=posture").get_data(as_text=True)
    assert '<option value="robbinsdale" selected>' in body
    assert '<option value="course" selected>' in body
    assert '<option value="paid" selected>' in body
    assert 'value="posture"' in body
    assert '<details class="filters" open>' in body
    assert "Clear filters" in body
    assert "3 upcoming sessions match your filters." in body


def test_unfiltered_page_has_closed_filters(client, catalog):
    body = client.get("/").get_data(as_text=True)
    assert '<details class="filters" >' in body
    assert "Clear filters" not in body


def test_topic_choices_list_only_public_topics(client, catalog):
    body = client.get("/").get_data(as_text=True)
    options = re.findall(r'<select id="f-topic" name="topic">(.*?)</select>', body, re.S)[0]
    for topic in ("Back pain relief", "Ergonomics", "Posture", "Strength", "Walking"):
        assert f'<option value="{topic}"' in options
    assert options.count("<option") == 6  # "All topics" and the five above


# Pagination ------------------------------------------------------------------------------


def _link_args(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(html.unescape(url)).query)


def test_html_pagination(client, catalog):
    titles = catalog.visible_titles()
    first = client.get("/?per_page=3").get_data(as_text=True)
    assert html_titles(first) == titles[:3]
    assert "Page 1 of 3" in first
    assert 'rel="prev"' not in first

    body = client.get("/?per_page=3&page=2").get_data(as_text=True)
    assert html_titles(body) == titles[3:6]
    assert "Page 2 of 3" in body
    prev_href = re.search(r'<a rel="prev" href="([^"]+)"', body).group(1)
    next_href = re.search(r'<a rel="next" href="([^"]+)"', body).group(1)
    # The links keep the page size, so "Later" really shows the next three.
    assert _link_args(next_href) == {"page": ["3"], "per_page": ["3"]}
    assert _link_args(prev_href) == {"per_page": ["3"]}

    last = client.get(html.unescape(next_href)).get_data(as_text=True)
    assert html_titles(last) == titles[6:]
    assert "Page 3 of 3" in last
    assert 'rel="next"' not in last


def test_html_pagination_links_keep_filters(client, catalog):
    body = client.get("/?location=robbinsdale&per_page=2").get_data(as_text=True)
    next_href = re.search(r'<a rel="next" href="([^"]+)"', body).group(1)
    assert _link_args(next_href) == {"location": ["robbinsdale"], "page": ["2"], "per_page": ["2"]}
    second = client.get(html.unescape(next_href)).get_data(as_text=True)
    assert html_titles(second) == ["Posture Reset", "Posture Reset"]


def test_default_page_size_is_twenty(client, db):
    make_clinic()
    loc = make_location()
    offering = make_offering(loc, title="Daily Stretch")
    for n in range(1, 23):
        make_session(offering, day(n))
    db.session.commit()
    body = client.get("/").get_data(as_text=True)
    assert len(html_titles(body)) == 20
    assert "Page 1 of 2" in body
    payload = client.get("/api/v1/sessions").get_json()
    assert len(payload["data"]) == 20
    assert payload["meta"] == {"page": 1, "per_page": 20, "total": 22, "pages": 2}


def test_api_pagination(client, catalog):
    titles = catalog.visible_titles()
    payload = client.get("/api/v1/sessions?per_page=3&page=2&price=").get_json()
    assert api_titles(payload) == titles[3:6]
    assert payload["meta"] == {"page": 2, "per_page": 3, "total": 8, "pages": 3}
    links = payload["links"]
    assert set(links) == {"self", "next", "prev"}
    assert _link_args(links["self"]) == {"page": ["2"], "per_page": ["3"]}
    assert _link_args(links["next"]) == {"page": ["3"], "per_page": ["3"]}
    assert _link_args(links["prev"]) == {"per_page": ["3"]}
    assert links["next"].startswith("http://localhost/api/v1/sessions?")

    last = client.get(links["next"]).get_json()
    assert api_titles(last) == titles[6:]
    assert "next" not in last["links"]
    assert "prev" in last["links"]
    first = client.get(links["prev"]).get_json()
    assert api_titles(first) == titles[:3]
    assert "prev" not in first["links"]


def test_api_pagination_links_keep_filters(client, catalog):
    payload = client.get("/api/v1/sessions?location=north-loop&kind=class&per_page=1").get_json()
    assert payload["meta"]["total"] == 2
    assert _link_args(payload["links"]["next"]) == {
        "location": ["north-loop"],
        "kind": ["class"],
        "page": ["2"],
        "per_page": ["1"],
    }


def test_page_past_the_end_is_empty_on_the_api_and_the_last_page_on_the_schedule(client, catalog):
    payload = client.get("/api/v1/sessions?page=9&per_page=3").get_json()
    assert payload["data"] == []
    assert payload["meta"]["total"] == 8
    # A person following an old link (or typing page=99) sees the last page, never "Page 9 of 3".
    response = client.get("/?page=9&per_page=3")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    last = client.get("/?page=3&per_page=3").get_data(as_text=True)
    assert html_titles(body) == html_titles(last) and len(html_titles(body)) == 2
    assert "Page 3 of 3" in body and "Page 9" not in body
    assert 'rel="prev" href="/?page=2&amp;per_page=3"' in body
    response = client.get("/locations/robbinsdale?page=99&per_page=3")
    assert response.status_code == 200
    assert "Page 2 of 2" in response.get_data(as_text=True)


# Location pages --------------------------------------------------------------------------


def test_location_page_lists_only_that_location(client, catalog):
    response = client.get("/locations/robbinsdale")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert html_titles(body) == ["Posture Reset", "100% Desk Check", "Posture Reset", "Posture Reset"]
    assert "<h1>Robbinsdale</h1>" in body
    assert "4123 W Broadway" in body
    assert "4 upcoming sessions at Robbinsdale." in body
    assert "/locations/robbinsdale/calendar.ics" in body
    assert "Called Off Workshop" not in body


def test_location_page_ignores_a_location_in_the_query(client, catalog):
    body = client.get("/locations/north-loop?location=robbinsdale&kind=workshop").get_data(as_text=True)
    assert html_titles(body) == ["Back Spasms First Aid", "1000 Steps Walk"]


def test_location_page_pagination_links_stay_on_the_location(client, catalog):
    body = client.get("/locations/robbinsdale?per_page=3").get_data(as_text=True)
    next_href = html.unescape(re.search(r'<a rel="next" href="([^"]+)"', body).group(1))
    assert urlsplit(next_href).path == "/locations/robbinsdale"
    assert _link_args(next_href) == {"page": ["2"], "per_page": ["3"]}
    assert html_titles(client.get(next_href).get_data(as_text=True)) == ["Posture Reset"]


def test_offering_page_shows_details_and_only_upcoming_dates(client, catalog):
    response = client.get("/offerings/core-strength")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<h1>Core Strength</h1>" in body
    assert "800 N Washington Ave" in body
    assert "https://www.google.com/maps/search/?api=1&amp;query=800+N+Washington+Ave" in body
    assert "Jordan Okafor" in body
    assert "$15" in body
    # Two upcoming dates and one cancelled one (struck through); the past one is not listed.
    assert body.count('class="date-item') == 3
    assert body.count("date-item is-cancelled") == 1
    assert f"{day(-3):%B} {day(-3).day}<" not in body


def test_schedule_shows_price_seats_and_instructor(client, catalog):
    body = client.get("/").get_data(as_text=True)
    assert "$120" in body  # Posture Reset
    assert "Free" in body
    assert "10 seats left" in body
    assert "Maya Lindqvist" in body
