"""Security: headers on every response, hostile input escaped everywhere, links refused when
tampered, expired or reused."""

import pytest
import sqlalchemy as sa

from events.catalog.cache import page_cache
from events.models import Registration, Role, User, WaitlistEntry, utcnow
from events.registration import links, services
from events.registration.services import Person
from tests.factories import make_location, make_offering, make_session, upcoming_day, workshop
from tests.helpers import csrf_token

SCRIPT = "<script>alert('x')</script>"


def manage_path(registration) -> str:
    return "/manage/" + links.sign(registration.token, links.MANAGE_SALT)


def waitlist_path(entry) -> str:
    return "/waitlist/" + links.sign(entry.token, links.WAITLIST_SALT)


IMG = '<img src=x onerror="alert(1)">'


def test_security_headers_on_pages_api_errors_and_files(client, db):
    offering = workshop()
    db.session.commit()
    for path in (
        "/",
        f"/offerings/{offering.slug}",
        "/api/v1/sessions",
        "/calendar.ics",
        "/nope",
        "/?page=-1",
        "/staff/login",
    ):
        response = client.get(path)
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, path
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path
        assert "Strict-Transport-Security" not in headers, path  # plain HTTP here
    https = client.get("/", base_url="https://clinic.example")
    assert https.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.fixture
def restore_stripe_base(app):
    saved = app.config["STRIPE_API_BASE"]
    yield
    app.config["STRIPE_API_BASE"] = saved


def test_csp_allows_stripe_js_where_it_comes_from(client, app, restore_stripe_base):
    csp = client.get("/").headers["Content-Security-Policy"]
    assert app.config["STRIPE_API_BASE"] in csp  # the emulator in tests
    app.config["STRIPE_API_BASE"] = ""  # production: Stripe itself
    with app.app_context():
        page_cache().clear()  # cached responses carry their headers; config changes on restart
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self' https://js.stripe.com" in csp and "https://api.stripe.com" in csp


def test_private_pages_are_not_cached(client, db):
    offering = workshop()
    db.session.commit()
    registration = services.register(offering, None, Person("A", "a@example.com")).registration
    response = client.get(manage_path(registration))
    assert response.headers["Cache-Control"] == "no-store"


def test_hostile_text_is_escaped_on_every_page(client, db):
    location = make_location(name=f"Loc {SCRIPT}", directions=IMG)
    instructor = User(email="i@clinic.example", name=f"Ins {IMG}", role=Role.INSTRUCTOR, bio=SCRIPT)
    instructor.set_password("a long password")
    db.session.add(instructor)
    offering = make_offering(
        location,
        title=f"Title {SCRIPT}",
        summary=IMG,
        description=SCRIPT,
        what_to_bring=IMG,
        topic=f"Topic {IMG}",
        instructor=instructor,
    )
    session = make_session(offering, upcoming_day(3))
    db.session.commit()
    registration = services.register(
        offering, None, Person(f"Name {SCRIPT}", "x@example.com", "")
    ).registration

    pages = ["/", f"/offerings/{offering.slug}", f"/locations/{location.slug}", manage_path(registration)]
    page = client.get("/staff/login").get_data(as_text=True)
    client.post(
        "/staff/login",
        data={"csrf_token": csrf_token(page), "email": "i@clinic.example", "password": "a long password"},
    )
    pages += ["/staff/", f"/staff/sessions/{session.id}", f"/staff/sessions/{session.id}/print"]
    for path in pages:
        html = client.get(path).get_data(as_text=True)
        assert SCRIPT not in html and IMG not in html, path
        assert "&lt;script&gt;" in html or "&lt;img" in html, path

    api = client.get("/api/v1/sessions")
    assert api.mimetype == "application/json" and "Title <script>" in api.json["data"][0]["offering"]["title"]
    ics = client.get("/calendar.ics")
    assert ics.mimetype == "text/calendar"


def test_hostile_email_html_is_escaped(db, app_ctx):
    from events.notifications.content import build
    from events.notifications.outbox import EmailKind, queue_email
    from events.notifications.sender import render_message

    offering = workshop(title=f"T {SCRIPT}")
    db.session.commit()
    registration = services.register(offering, None, Person(f"N {IMG}", "x@example.com")).registration
    queue_email(EmailKind.REGISTRATION_CANCELLED, registration=registration, context={"refund_cents": 0})
    db.session.commit()
    from events.models import OutboxEmail

    row = db.session.scalar(
        sa.select(OutboxEmail).where(OutboxEmail.kind == EmailKind.REGISTRATION_CANCELLED)
    )
    with app_ctx.test_request_context(base_url="http://127.0.0.1:5000"):
        message = render_message(row, build(row))
    html = message.get_body(("html",)).get_content()
    assert SCRIPT not in html and IMG not in html and "&lt;script&gt;" in html


def test_a_claim_link_works_once(client, db):
    offering = workshop(capacity=1)
    db.session.commit()
    now = utcnow()
    taken = services.register(offering, None, Person("A", "a@example.com"), now).registration
    entry = services.join_waitlist(offering, None, Person("B", "b@example.com"), now).entry
    services.cancel_registration(taken.id, now)
    url = waitlist_path(entry)
    token = csrf_token(client.get(url).get_data(as_text=True))

    first = client.post(url + "/claim", data={"csrf_token": token})
    assert first.status_code == 302 and "/manage/" in first.headers["Location"]
    # Pressed again: no second registration; back to the one it made (its manage page).
    again = client.post(url + "/claim", data={"csrf_token": token})
    assert again.status_code == 302 and again.headers["Location"] == first.headers["Location"]
    assert "See your registration" in client.get(url).get_data(as_text=True)
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Registration)
            .where(Registration.email_normalized == "b@example.com")
        )
        == 1
    )
    # Tampered or foreign waitlist links are refused.
    assert client.get(url[:-3] + "xyz").status_code == 404
    claimed = db.session.get(WaitlistEntry, entry.id).registration
    assert client.get(manage_path(claimed).replace("/manage/", "/waitlist/")).status_code == 404


@pytest.mark.parametrize("proxy_count", [0, 1])
def test_forwarded_headers_are_trusted_only_behind_a_configured_proxy(
    app, db, proxy_count, monkeypatch, rate_limits_enforced
):
    """Behind a proxy (PROXY_COUNT=1) each client is limited on its own address and HTTPS is
    seen (HSTS); with no proxy configured the same headers are ignored, so sending a made-up
    X-Forwarded-For cannot dodge a rate limit."""
    from events.security import behind_proxies

    monkeypatch.setattr(app, "wsgi_app", behind_proxies(app.wsgi_app, proxy_count))
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "2 per minute")

    def attempt(client, address):
        # (Over HTTPS, Flask-WTF also checks that the form was posted from our own pages.)
        headers = {
            "X-Forwarded-For": address,
            "X-Forwarded-Proto": "https",
            "Referer": "https://localhost/staff/login",
        }
        page = client.get("/staff/login", headers=headers)
        form = {
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "email": "x@example.com",
            "password": "no",
        }
        return page, client.post("/staff/login", data=form, headers=headers).status_code

    with app.test_client() as client:
        page, _ = attempt(client, "203.0.113.1")
        assert ("Strict-Transport-Security" in page.headers) is bool(proxy_count)
        addresses = ["203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.3"]
        codes = [attempt(client, address)[1] for address in addresses]
    # The first address uses its 2 attempts; the others are new clients only behind a proxy.
    assert codes == ([400, 429, 400, 400] if proxy_count else [400, 429, 429, 429])


def test_create_app_trusts_as_many_proxies_as_configured():
    from werkzeug.middleware.proxy_fix import ProxyFix

    from events.security import behind_proxies

    assert behind_proxies(object, 0) is object
    fixed = behind_proxies(object, 2)
    assert isinstance(fixed, ProxyFix) and fixed.x_for == fixed.x_proto == fixed.x_host == 2
