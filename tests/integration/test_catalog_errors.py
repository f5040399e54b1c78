"""Bad input gets a friendly 404 or a 400 that names the problem, on HTML and JSON; never a 500."""

from __future__ import annotations

import html
import random
import re
from urllib.parse import quote, urlencode

import pytest

BAD_FILTERS = [
    # (query, words the message must contain)
    ("from=2026-13-45", ["'from'", "YYYY-MM-DD", "2026-13-45"]),
    ("to=tomorrow", ["'to'", "YYYY-MM-DD"]),
    ("from=2026-02-30", ["'from'", "2026-02-30"]),
    ("from=20261201", ["'from'", "YYYY-MM-DD"]),
    ("to=9999-12-31", ["'to'"]),
    ("from=0001-01-01", ["'from'"]),
    ("page=-1", ["'page'", "1 or more"]),
    ("page=0", ["'page'", "1 or more"]),
    ("page=abc", ["'page'", "whole number", "abc"]),
    ("page=1.5", ["'page'", "whole number"]),
    ("page=1_0", ["'page'", "whole number"]),
    ("page=" + "9" * 5000, ["'page'"]),
    ("page=100001", ["'page'"]),
    ("per_page=1000", ["'per_page'", "100"]),
    ("per_page=0", ["'per_page'", "1 or more"]),
    ("per_page=ten", ["'per_page'", "whole number"]),
    ("kind=yoga", ["'kind'", "workshop, class, course", "yoga"]),
    ("price=cheap", ["'price'", "free", "paid", "cheap"]),
    ("from=2027-01-10&to=2027-01-01", ["'to'", "'from'"]),
    ("q=" + "x" * 101, ["search", "100 characters"]),
    ("q=a%00b", ["'q'"]),
    ("location=north%00loop", ["'location'"]),
    ("topic=%1Bposture", ["'topic'"]),
]


# What the schedule's filter form says (in its own words), and what it keeps in the box.
PAGE_PROBLEMS = {
    "from=2026-13-45": ("f-from", "written as YYYY-MM-DD", "2026-13-45"),
    "to=tomorrow": ("f-to", "written as YYYY-MM-DD", "tomorrow"),
    "from=2026-02-30": ("f-from", "written as YYYY-MM-DD", "2026-02-30"),
    "from=20261201": ("f-from", "written as YYYY-MM-DD", "20261201"),
    "to=9999-12-31": ("f-to", "between the years 1900 and 2999", "9999-12-31"),
    "from=0001-01-01": ("f-from", "between the years 1900 and 2999", "0001-01-01"),
    "kind=yoga": ("f-kind", "Choose one of the kinds in the list.", None),
    "price=cheap": ("f-price", "Choose one of the prices in the list.", None),
    "from=2027-01-10&to=2027-01-01": ("f-to", "same as or later than the 'From' date", "2027-01-01"),
    "q=" + "x" * 101: ("f-q", "at most 100 characters", "x" * 100),
    "q=a%00b": ("f-q", "taken out", "ab"),
    "location=north%00loop": ("f-location", "taken out", None),
    "topic=%1Bposture": ("f-topic", "taken out", None),
}


@pytest.mark.parametrize(("query", "words"), BAD_FILTERS)
def test_bad_filter_on_the_schedule_page_is_a_400_that_names_it(client, query, words):
    """The schedule itself, with the filter form open: a summary at its top that links to the
    box at fault, the problem beside the box, the visitor's value kept (without control
    characters), and the schedule for the filters that were fine. Arguments the form has no
    box for (page, per_page) are named in the summary."""
    response = client.get(f"/?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    body = html.unescape(response.get_data(as_text=True))
    assert "<title>Error: Workshops and classes" in body
    assert "There is a problem" in body
    assert '<details class="filters" open>' in body
    assert "\x00" not in body and "\x1b" not in body
    if query in PAGE_PROBLEMS:
        field_id, message, kept = PAGE_PROBLEMS[query]
        assert f'<a href="#{field_id}">' in body
        assert message in body
        assert f'id="{field_id}-error"' in body
        assert re.search(rf'id="{field_id}"[^>]*aria-invalid="true"', body), field_id
        if kept is not None:
            assert re.search(rf'id="{field_id}"[^>]*value="{re.escape(kept)}"', body), (field_id, kept)
    else:
        for word in words:
            assert word in body


def test_a_filter_problem_keeps_the_other_filters(client, catalog):
    response = client.get("/?location=robbinsdale&kind=course&from=2027-01-10&to=2027-01-01")
    assert response.status_code == 400
    body = html.unescape(response.get_data(as_text=True))
    assert re.search(r'<option value="robbinsdale" selected>', body)
    assert re.search(r'<option value="course" selected>', body)
    assert re.search(r'id="f-from"[^>]*value="2027-01-10"', body)
    assert re.search(r'id="f-to"[^>]*value="2027-01-01"', body)


@pytest.mark.parametrize(("query", "words"), BAD_FILTERS)
def test_bad_filter_on_the_api_is_a_json_400_that_names_it(client, query, words):
    response = client.get(f"/api/v1/sessions?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == 400
    for word in words:
        assert word in error["message"]


def test_bad_filter_on_a_location_page_is_a_400(client, catalog):
    response = client.get("/locations/robbinsdale?page=abc")
    assert response.status_code == 400
    assert "'page'" in html.unescape(response.get_data(as_text=True))


def test_long_bad_values_are_not_echoed_in_full(client, catalog):
    response = client.get("/api/v1/sessions?kind=" + "y" * 3000)
    assert response.status_code == 400
    assert len(response.get_json()["error"]["message"]) < 300


@pytest.mark.parametrize(
    "path",
    [
        "/offerings/no-such-thing",
        "/offerings/draft",  # unpublished
        "/locations/nowhere",
        "/locations/nowhere/calendar.ics",
        "/offerings/a%00b",
        "/locations/a%00b",
        "/offerings/" + "x" * 500,
        "/no/such/page",
    ],
)
def test_unknown_pages_are_a_friendly_404(client, catalog, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    body = html.unescape(response.get_data(as_text=True))
    assert "We couldn't find that page" in body
    assert 'href="/"' in body  # a way back
    assert "Test Clinic" in body  # the site's own layout, not a bare server page


@pytest.mark.parametrize(
    "path", ["/api/v1/sessions/999999", "/api/v1/sessions/99999999999", "/api/v1/sessions/" + "9" * 40]
)
def test_unknown_session_is_a_json_404(client, catalog, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == 404
    assert error["title"]
    if path == "/api/v1/sessions/999999":  # beyond the id column, the route itself doesn't match
        assert "No session with id" in error["message"]


def test_unknown_api_path_and_method_are_json(client, catalog):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["status"] == 404
    response = client.post("/api/v1/sessions")
    assert response.status_code == 405
    assert response.get_json()["error"]["status"] == 405


# A short fuzz loop: odd query strings never crash a public page. -----------------------

KEYS = ["location", "kind", "topic", "price", "from", "to", "q", "page", "per_page", "x", ""]
ODD_VALUES = [
    "",
    " ",
    "%",
    "_",
    "\\",
    "'",
    '"',
    "%%",
    "\x00",
    "\x7f",
    "\u202e",
    "\ud800",
    "🙂",
    "ß",
    "İ",
    "-1",
    "0",
    "1",
    "2",
    "100",
    "101",
    "1e3",
    "0x10",
    "+5",
    " 7 ",
    "99999999999999999999",
    "NaN",
    "2026-11-23",
    "2027-03-14",
    "2026-13-45",
    "0000-00-00",
    "0001-01-01",
    "9999-12-31",
    "2026-1-1",
    "workshop",
    "class",
    "course",
    "free",
    "paid",
    "north-loop",
    "robbinsdale",
    "Posture",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "a" * 101,
    "a" * 2000,
    "%00",
    "null",
    "[]",
    "{}",
]


def fuzz_queries(seed: int, count: int):
    rng = random.Random(seed)
    for _ in range(count):
        pairs = [(rng.choice(KEYS), rng.choice(ODD_VALUES)) for _ in range(rng.randint(1, 4))]
        yield urlencode(pairs, errors="surrogatepass")


@pytest.mark.parametrize("path", ["/", "/api/v1/sessions", "/locations/north-loop"])
def test_fuzzed_query_strings_never_fail(client, catalog, path):
    seen = set()
    for query in fuzz_queries(seed=sum(map(ord, path)), count=120):
        response = client.get(f"{path}?{query}")
        assert response.status_code in (200, 400), (query, response.status_code)
        seen.add(response.status_code)
        if path.startswith("/api/"):
            assert response.mimetype == "application/json"
    assert seen == {200, 400}  # the loop exercised both outcomes


@pytest.mark.parametrize("path", ["/offerings/{}", "/locations/{}", "/locations/{}/calendar.ics"])
def test_fuzzed_slugs_never_fail(client, catalog, path):
    for value in ODD_VALUES:
        slug = quote(value or "-", safe="", errors="surrogatepass")
        response = client.get(path.format(slug))
        assert response.status_code in (200, 404), (value, response.status_code)


@pytest.mark.parametrize(("path", "mimetype"), [("/", "text/html"), ("/api/v1/sessions", "application/json")])
def test_an_unexpected_database_error_is_a_friendly_500(client, catalog, monkeypatch, path, mimetype):
    """Even when the failure left the transaction aborted, the error page still renders."""
    import sqlalchemy as sa

    from events.catalog import services
    from events.extensions import db

    def broken(_filter, now=None):
        db.session.execute(sa.text("SELECT 1 / 0"))

    monkeypatch.setattr(services, "list_schedule", broken)
    response = client.get(path)
    assert response.status_code == 500
    assert response.mimetype == mimetype
    text = response.get_data(as_text=True)
    assert "Something went wrong on our side" in text
    if mimetype == "text/html":
        assert "Test Clinic" in text  # the clinic's name was read after the failure


def test_the_error_page_renders_when_the_database_went_away_mid_request(client, catalog, monkeypatch, app):
    """A database restart: the clinic row was loaded, then every statement and connection
    fails. The error handler's rollback expires the clinic, so the page must not need it."""
    import sqlalchemy as sa

    from events.catalog import services
    from events.clinic import current_clinic
    from events.extensions import db

    def gone(*_args, **_kwargs):
        raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    def broken(_filter, now=None):
        current_clinic()  # loaded, as the page's layout does
        sa.event.listen(db.engine, "before_cursor_execute", gone)
        gone()

    monkeypatch.setattr(services, "list_schedule", broken)
    try:
        response = client.get("/?page=2")
    finally:
        with app.app_context():
            if sa.event.contains(db.engine, "before_cursor_execute", gone):
                sa.event.remove(db.engine, "before_cursor_execute", gone)
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.get_data(as_text=True)


def test_a_connection_cut_while_the_request_ends_keeps_the_response(app, monkeypatch):
    """The database restarts just as a request finishes: ending its session raises. The page
    already rendered must still go out (it was the server's bare 500)."""
    import sqlalchemy as sa

    from events.extensions import db

    calls = []
    real_remove = db.session.remove

    def remove_on_a_cut_connection():
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError("ROLLBACK", {}, Exception("terminating connection"))
        real_remove()

    monkeypatch.setattr(db.session, "remove", remove_on_a_cut_connection)
    response = app.test_client().get("/")  # no app context of the test's own around it
    assert response.status_code == 200 and "<html" in response.get_data(as_text=True)
    assert calls, "the session was not ended"
