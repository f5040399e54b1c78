"""Cached public pages are never stale: every change that shows on a page changes its key."""

import re

import pytest

from events.catalog.cache import page_cache
from events.models import OfferingKind
from events.registration import services
from events.registration.services import Person
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import wait_until


def seats_shown(html: str) -> str:
    return re.search(r"(\d+ seats left|\d+ left|Full - join waitlist)", html).group(1)


def listening(app):
    """Wait until this process's catalog listener is connected (it starts on first use)."""
    from events.catalog.cache import catalog_listener

    with app.app_context():
        listener = catalog_listener()
    wait_until(lambda: listener.connected, what="the catalog listener to connect")
    return listener


def test_seats_titles_and_sessions_update_at_once(client, db, app):
    listening(app)
    location = make_location()
    offering = make_offering(location, OfferingKind.WORKSHOP, title="Posture Basics", capacity=5)
    make_session(offering, upcoming_day(3))
    db.session.commit()

    first = client.get("/").get_data(as_text=True)
    assert seats_shown(first) == "5 seats left"
    # Served from the cache. (A change elsewhere - say a late webhook of an earlier test - or a
    # new minute legitimately invalidates it, so allow a few tries.)
    with app.app_context():
        hits_before = page_cache().hits
        for _ in range(5):
            assert client.get("/").get_data(as_text=True) == first
            if page_cache().hits > hits_before:
                break
        assert page_cache().hits > hits_before

    services.register(offering, None, Person("A", "a@example.com"))
    assert seats_shown(client.get("/").get_data(as_text=True)) == "4 seats left"
    assert seats_shown(client.get(f"/offerings/{offering.slug}").get_data(as_text=True)) == "4 seats left"
    api = client.get("/api/v1/sessions").json
    assert api["data"][0]["seats_left"] == 4

    offering.title = "Posture Basics, Renamed"
    db.session.commit()
    assert "Posture Basics, Renamed" in client.get("/").get_data(as_text=True)

    make_session(offering, upcoming_day(10))
    db.session.commit()
    assert client.get("/api/v1/sessions").json["meta"]["total"] == 2


def test_cached_pages_carry_each_visitors_own_csrf_token(live_server, db):
    import requests

    location = make_location()
    offering = make_offering(location, OfferingKind.WORKSHOP, capacity=5)
    make_session(offering, upcoming_day(3))
    db.session.commit()
    tokens = set()
    for i in range(3):
        with requests.Session() as http:
            page = http.get(f"{live_server.url}/offerings/{offering.slug}").text
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
            tokens.add(token)
            response = http.post(
                f"{live_server.url}/offerings/{offering.slug}/register",
                data={"csrf_token": token, "name": "V", "email": f"v{i}@example.com"},
                allow_redirects=False,
            )
            assert response.status_code == 302
    assert len(tokens) == 3 and "__csrf" not in "".join(tokens)


@pytest.mark.real_commits  # the other process must see the offering, and its NOTIFY must be sent
def test_a_change_committed_by_another_process_reaches_the_cache(client, db, app):
    """Another process (a worker, another web worker) changes seats: NOTIFY tells this one."""
    import subprocess
    import sys

    listener = listening(app)
    location = make_location()
    offering = make_offering(location, OfferingKind.WORKSHOP, title="Elsewhere", capacity=5)
    make_session(offering, upcoming_day(3))
    db.session.commit()
    assert seats_shown(client.get("/").get_data(as_text=True)) == "5 seats left"
    version = listener.version

    code = (
        "from events.app import create_app\n"
        "from events.models import Offering\n"
        "from events.extensions import db\n"
        "from events.registration.services import Person, register\n"
        f"app = create_app({{'SQLALCHEMY_DATABASE_URI': {app.config['SQLALCHEMY_DATABASE_URI']!r}}})\n"
        "with app.app_context():\n"
        f"    register(db.session.get(Offering, {offering.id}), None, Person('P', 'p@example.com'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    wait_until(lambda: listener.version != version, timeout=5, what="the NOTIFY of the other process")
    assert seats_shown(client.get("/").get_data(as_text=True)) == "4 seats left"


class CountingApp:
    """Wraps the Flask app behind the replay middleware, to see which requests reach Flask."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.wsgi_app(environ, start_response)


def replay_middleware(app):
    from events.catalog.cache import CachedPageMiddleware

    middleware = app.wsgi_app
    assert isinstance(middleware, CachedPageMiddleware)
    return middleware


def test_cookieless_repeat_requests_are_replayed_before_flask(client, db, app, monkeypatch):
    listening(app)
    location = make_location()
    offering = make_offering(location, OfferingKind.WORKSHOP, title="Replayed", capacity=5)
    make_session(offering, upcoming_day(3))
    db.session.commit()
    middleware = replay_middleware(app)
    flask_calls = CountingApp(middleware.wsgi_app)
    monkeypatch.setattr(middleware, "wsgi_app", flask_calls)

    for path in ("/?location=&kind=workshop", "/api/v1/sessions?per_page=5"):
        for _ in range(5):  # a concurrent change or a new minute may invalidate once; allow retries
            first = client.get(path)
            calls = flask_calls.calls
            second = client.get(path)
            if flask_calls.calls == calls:
                break
        assert flask_calls.calls == calls, f"{path} was not replayed"
        assert second.status_code == 200 and second.get_data() == first.get_data()
        assert sorted(second.headers.items()) == sorted(first.headers.items())
        for header in (
            "Content-Security-Policy",
            "X-Content-Type-Options",
            "X-Frame-Options",
            "Referrer-Policy",
        ):
            assert second.headers[header]

    # Exact invalidation holds for replayed pages too.
    services.register(offering, None, Person("A", "a@example.com"))
    calls = flask_calls.calls
    assert seats_shown(client.get("/?location=&kind=workshop").get_data(as_text=True)) == "4 seats left"
    assert flask_calls.calls == calls + 1


def test_pages_with_a_form_token_or_flashed_messages_are_not_replayed(client, db, app, monkeypatch):
    listening(app)
    location = make_location()
    offering = make_offering(location, OfferingKind.WORKSHOP, capacity=5)
    make_session(offering, upcoming_day(3))
    db.session.commit()
    middleware = replay_middleware(app)
    flask_calls = CountingApp(middleware.wsgi_app)
    monkeypatch.setattr(middleware, "wsgi_app", flask_calls)

    def reaches_flask(path="/"):
        for _ in range(3):  # a concurrent change may invalidate the first try
            client.get(path)
            calls = flask_calls.calls
            client.get(path)
            if flask_calls.calls == calls:
                return False
        return True

    # The offering page carries the visitor's CSRF token (and sets their session cookie).
    assert reaches_flask(f"/offerings/{offering.slug}")
    assert client.get_cookie(app.config["SESSION_COOKIE_NAME"]) is not None
    # Their session holds nothing a public page shows: the schedule is replayed.
    assert not reaches_flask("/")
    # Flashed messages waiting: Flask renders the page with them, every time.
    with client.session_transaction() as session:
        session["_flashes"] = [("message", "Your place is cancelled.")]
    calls = flask_calls.calls
    assert "Your place is cancelled." in client.get("/").get_data(as_text=True)
    assert flask_calls.calls == calls + 1
    assert "Your place is cancelled." not in client.get("/").get_data(as_text=True)  # shown once
    # A session cookie that doesn't verify is Flask's to deal with.
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], "forged.value.signature")
    assert reaches_flask("/")


def test_scheme_and_host_are_part_of_the_replayed_page(client, db, app):
    listening(app)
    make_session(make_offering(make_location(), OfferingKind.WORKSHOP), upcoming_day(3))
    db.session.commit()
    for _ in range(2):
        assert "Strict-Transport-Security" in client.get("/", base_url="https://clinic.example:8443").headers
        assert (
            "Strict-Transport-Security" not in client.get("/", base_url="http://clinic.example:8443").headers
        )
    # Feeds carry absolute links: each host gets its own.
    for _ in range(2):
        assert "clinic.example" in client.get("/calendar.ics", base_url="http://clinic.example").get_data(
            as_text=True
        )
        other = client.get("/calendar.ics", base_url="http://other.example").get_data(as_text=True)
        assert "other.example" in other and "clinic.example" not in other


def test_a_cookie_header_that_is_not_utf8_gets_flasks_page_not_a_server_error(client, db, app):
    """Servers hand the Cookie header over as latin-1 bytes; one byte that isn't UTF-8 must not
    break the middleware (it falls through, and Flask serves the page as it would anyway)."""
    from werkzeug.test import EnvironBuilder

    listening(app)
    make_session(make_offering(make_location(), OfferingKind.WORKSHOP), upcoming_day(3))
    db.session.commit()
    client.get("/")  # cached and replayable
    for cookie in ("session=\xff", "session=ok; other=\xe9\xff", "session=" + "A" * 5000):
        environ = EnvironBuilder(path="/", headers={"Cookie": "x"}).get_environ()
        environ["HTTP_COOKIE"] = cookie
        started = []

        def start_response(status, headers, exc_info=None, started=started):
            started.append(status)

        body = b"".join(app.wsgi_app(environ, start_response))
        assert started == ["200 OK"] and b"<html" in body, cookie


def test_switching_the_cache_off_stops_replays(client, db, app, monkeypatch):
    listening(app)
    make_session(make_offering(make_location(), OfferingKind.WORKSHOP), upcoming_day(3))
    db.session.commit()
    client.get("/")
    middleware = replay_middleware(app)
    flask_calls = CountingApp(middleware.wsgi_app)
    monkeypatch.setattr(middleware, "wsgi_app", flask_calls)
    monkeypatch.setitem(app.config, "PAGE_CACHE_ENABLED", False)
    client.get("/")
    client.get("/")
    assert flask_calls.calls == 2
