"""Staff sessions end for real: a copied session cookie replayed after sign-out, a password reset
or a deactivation is sent to the sign-in page, on the test client and on a real port with a real
cookie jar. Also: deactivating an instructor, and no form depending on DNS.

The test-client tests here hold no app context while they make requests (no `db` fixture), so
each request runs in an app context of its own, with its own database session, as in production.
"""

from __future__ import annotations

import re
import socket
from contextlib import contextmanager
from urllib.parse import urlsplit

import dns.resolver
import pytest
import requests
import sqlalchemy as sa
from flask_login.utils import encode_cookie
from flask_wtf import FlaskForm
from wtforms.fields.core import UnboundField
from wtforms.validators import Email

from events import reset_links
from events.extensions import db
from events.models import AuditEntry, CatalogState, Offering, OfferingKind, OutboxEmail, Role, User
from events.notifications.content import build
from events.notifications.outbox import EmailKind
from events.staff import accounts
from events.staff.accounts import save_instructor, set_staff_active
from events.staff.errors import AdminError
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new secret"
GENERIC_SIGN_IN_ERROR = "That email and password don&#39;t match an active staff account."
GENERIC_RESET_ANSWER = "If that email belongs to a staff account, a reset link is on its way."


def make_user(email, role=Role.INSTRUCTOR) -> User:
    user = User(email=email, name=email.split("@")[0].title(), role=role)
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    return user


@contextmanager
def database(app):
    """The database, in an app context of its own, closed before the next request."""
    with app.app_context():
        yield db
        db.session.remove()


@pytest.fixture
def staff(app):
    """Ids of an instructor teaching a class, and of an admin."""
    with database(app):
        maya = make_user("maya@clinic.example")
        admin = make_user("admin@clinic.example", Role.ADMIN)
        offering = make_offering(make_location(), OfferingKind.CLASS, title="Core Strength", instructor=maya)
        session = make_session(offering, upcoming_day(2))
        db.session.commit()
        return {"maya": maya.id, "admin": admin.id, "offering": offering.id, "session": session.id}


# --- Helpers for the Flask test client ---


def sign_in(client, email, password=PASSWORD):
    page = client.get("/staff/login").get_data(as_text=True)
    return client.post(
        "/staff/login", data={"csrf_token": csrf_token(page), "email": email, "password": password}
    )


def signed_in(app, email):
    client = app.test_client()
    assert sign_in(client, email).status_code == 302
    return client


def replay(app, cookie_value: str):
    """A second browser holding a copy of someone's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie_value)
    return thief


def sign_out(client):
    home = client.get("/staff/").get_data(as_text=True)
    assert client.post("/staff/logout", data={"csrf_token": csrf_token(home)}).status_code == 302


def is_sent_to_sign_in(response) -> bool:
    return response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/staff/login"


def emailed_reset_link(app, user_id: int) -> str:
    """The path of the link in the newest reset email queued for this account."""
    with app.test_request_context(base_url="http://127.0.0.1:5000"):
        row = db.session.scalar(
            sa.select(OutboxEmail)
            .where(OutboxEmail.kind == EmailKind.PASSWORD_RESET, OutboxEmail.user_id == user_id)
            .order_by(OutboxEmail.id.desc())
        )
        assert row is not None, "no reset email was queued"
        link = urlsplit(build(row).context["reset_url"]).path
        db.session.remove()
        return link


def request_reset(client, email):
    page = client.get("/staff/password-reset").get_data(as_text=True)
    return client.post(
        "/staff/password-reset", data={"csrf_token": csrf_token(page), "email": email}, follow_redirects=True
    )


def choose_password(client, link, password=NEW_PASSWORD):
    form = client.get(link)
    assert form.status_code == 200
    token = csrf_token(form.get_data(as_text=True))
    return client.post(link, data={"csrf_token": token, "password": password, "confirm": password})


# --- Replaying a copied cookie (test client) ---


def test_a_copied_cookie_stops_working_after_sign_out(app, staff):
    maya = signed_in(app, "maya@clinic.example")
    other_device = signed_in(app, "maya@clinic.example")
    copied = maya.get_cookie("session").value
    # Control: the copy works while Maya is signed in, so the refusal below is the sign-out's doing.
    assert replay(app, copied).get("/staff/").status_code == 200

    sign_out(maya)

    assert is_sent_to_sign_in(replay(app, copied).get("/staff/"))
    # Signing out ends every session of the account, the one on her other device too.
    assert is_sent_to_sign_in(other_device.get("/staff/"))
    # Signing in again works, and a fresh copy of the new cookie works.
    assert sign_in(maya, "maya@clinic.example").status_code == 302
    assert replay(app, maya.get_cookie("session").value).get("/staff/").status_code == 200


def test_a_copied_cookie_stops_working_after_a_password_reset(app, staff):
    maya = signed_in(app, "maya@clinic.example")
    copied = maya.get_cookie("session").value
    assert replay(app, copied).get("/staff/").status_code == 200

    elsewhere = app.test_client()
    assert GENERIC_RESET_ANSWER in request_reset(elsewhere, "maya@clinic.example").get_data(as_text=True)
    response = choose_password(elsewhere, emailed_reset_link(app, staff["maya"]))
    assert is_sent_to_sign_in(response)

    assert is_sent_to_sign_in(replay(app, copied).get("/staff/"))
    assert is_sent_to_sign_in(maya.get("/staff/"))
    assert sign_in(app.test_client(), "maya@clinic.example", NEW_PASSWORD).status_code == 302


def test_a_password_set_from_the_command_line_ends_sessions_too(app, staff):
    """Any password change ends the account's sessions (User.set_password), not only the reset page."""
    maya = signed_in(app, "maya@clinic.example")
    assert maya.get("/staff/").status_code == 200
    command = ["create-user", "--email", "maya@clinic.example", "--role", "instructor"]
    result = app.test_cli_runner().invoke(args=[*command, "--password", NEW_PASSWORD])
    assert result.exit_code == 0, result.output
    assert is_sent_to_sign_in(maya.get("/staff/"))


def test_a_copied_cookie_stops_working_after_deactivation_even_once_reactivated(app, staff):
    maya = signed_in(app, "maya@clinic.example")
    copied = maya.get_cookie("session").value
    assert replay(app, copied).get("/staff/").status_code == 200
    admin = signed_in(app, "admin@clinic.example")

    change_status(admin, staff["maya"], "deactivate")
    assert is_sent_to_sign_in(replay(app, copied).get("/staff/"))
    assert is_sent_to_sign_in(maya.get("/staff/"))

    change_status(admin, staff["maya"], "reactivate")
    # Reactivating doesn't bring the sessions the deactivation ended back to life.
    assert is_sent_to_sign_in(replay(app, copied).get("/staff/"))
    assert signed_in(app, "maya@clinic.example").get("/staff/").status_code == 200


def test_a_remember_cookie_stops_working_after_sign_out(app, staff):
    """The app doesn't offer "remember me" today; if it ever does, the cookie (which Flask-Login
    fills from get_id(), like the session) carries the version and ends with the sessions."""
    with database(app):
        remembered = encode_cookie(db.session.get(User, staff["maya"]).get_id())

    def with_remember_cookie():
        client = app.test_client()
        client.set_cookie("remember_token", remembered)
        return client

    assert with_remember_cookie().get("/staff/").status_code == 200
    sign_out(signed_in(app, "maya@clinic.example"))
    assert is_sent_to_sign_in(with_remember_cookie().get("/staff/"))


def test_a_session_from_before_session_versions_or_a_forged_id_is_refused(app_ctx, staff):
    maya = db.session.get(User, staff["maya"])
    assert accounts.load_user(maya.get_id()) == maya
    for stale in (str(maya.id), f"{maya.id}:{maya.session_version + 1}", f"{maya.id}:-1", "x:0", "٣:0", ""):
        assert accounts.load_user(stale) is None, stale


# --- Replaying a copied cookie against the app on a real port (requests, a real cookie jar) ---


def browser_signed_in(live_server, email, password=PASSWORD) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{live_server.url}/staff/login")
    response = browser.post(
        f"{live_server.url}/staff/login",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": password},
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text
    return browser


def replay_over_http(live_server, browser: requests.Session) -> requests.Response:
    """Another client (same address and user agent, so nothing but the cookie tells them apart)
    holding a copy of the browser's cookie jar."""
    thief = requests.Session()
    thief.cookies.update(browser.cookies)
    with thief:
        return thief.get(f"{live_server.url}/staff/", allow_redirects=False)


def test_replayed_cookies_are_refused_on_a_real_port(app, live_server, staff):
    maya = browser_signed_in(live_server, "maya@clinic.example")
    saved_jar = maya.cookies.copy()
    assert replay_over_http(live_server, maya).status_code == 200

    # Sign-out.
    home = maya.get(f"{live_server.url}/staff/")
    maya.post(f"{live_server.url}/staff/logout", data={"csrf_token": csrf_token(home.text)})
    maya.cookies = saved_jar
    assert is_sent_to_sign_in(replay_over_http(live_server, maya))

    # A password reset through the emailed link.
    maya = browser_signed_in(live_server, "maya@clinic.example")
    assert replay_over_http(live_server, maya).status_code == 200
    with requests.Session() as elsewhere:
        page = elsewhere.get(f"{live_server.url}/staff/password-reset")
        elsewhere.post(
            f"{live_server.url}/staff/password-reset",
            data={"csrf_token": csrf_token(page.text), "email": "maya@clinic.example"},
        )
        link = f"{live_server.url}{emailed_reset_link(app, staff['maya'])}"
        form = elsewhere.get(link)
        data = {"csrf_token": csrf_token(form.text), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        assert is_sent_to_sign_in(elsewhere.post(link, data=data, allow_redirects=False))
    assert is_sent_to_sign_in(replay_over_http(live_server, maya))

    # A deactivation by an admin.
    maya = browser_signed_in(live_server, "maya@clinic.example", NEW_PASSWORD)
    assert replay_over_http(live_server, maya).status_code == 200
    admin = browser_signed_in(live_server, "admin@clinic.example")
    url = f"{live_server.url}/staff/admin/instructors/{staff['maya']}/deactivate"
    response = admin.post(url, data={"csrf_token": csrf_token(admin.get(url).text)}, allow_redirects=False)
    assert response.status_code == 302
    assert is_sent_to_sign_in(replay_over_http(live_server, maya))
    assert is_sent_to_sign_in(maya.get(f"{live_server.url}/staff/", allow_redirects=False))
    for browser in (maya, admin):
        browser.close()


# --- Deactivating an instructor ---


def change_status(admin_client, user_id: int, action: str, csrf: bool = True):
    url = f"/staff/admin/instructors/{user_id}/{action}"
    page = admin_client.get(url)
    assert page.status_code == 200
    data = {"csrf_token": csrf_token(page.get_data(as_text=True))} if csrf else {}
    return admin_client.post(url, data=data)


def without_values(response) -> str:
    """The page minus its inputs' values (the CSRF token, the email typed)."""
    return re.sub(r'value="[^"]*"', "", response.get_data(as_text=True))


def test_deactivating_an_instructor(app, staff):
    maya_id = staff["maya"]
    admin = signed_in(app, "admin@clinic.example")
    with database(app):
        outstanding_link = reset_links.reset_token(db.session.get(User, maya_id))

    # The confirmation page says what will happen; the list shows the status and the action.
    page = admin.get(f"/staff/admin/instructors/{maya_id}/deactivate").get_data(as_text=True)
    assert "signed out everywhere" in page and "offerings and rosters stay" in page
    listing = admin.get("/staff/admin/instructors").get_data(as_text=True)
    assert f"/staff/admin/instructors/{maya_id}/deactivate" in listing and ">active<" in listing

    # Without its CSRF token the button changes nothing.
    assert change_status(admin, maya_id, "deactivate", csrf=False).status_code == 400
    with database(app):
        assert db.session.get(User, maya_id).is_active

    response = change_status(admin, maya_id, "deactivate")
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/admin/instructors")
    with database(app):
        assert not db.session.get(User, maya_id).is_active
    listing = admin.get("/staff/admin/instructors").get_data(as_text=True)
    assert ">deactivated<" in listing and f"/staff/admin/instructors/{maya_id}/reactivate" in listing

    # She can't sign in (told exactly what a wrong password is told), nor use a reset link, nor get one.
    refused = sign_in(app.test_client(), "maya@clinic.example")
    wrong_password = sign_in(app.test_client(), "admin@clinic.example", "not the password")
    assert refused.status_code == wrong_password.status_code == 400
    assert GENERIC_SIGN_IN_ERROR in refused.get_data(as_text=True)
    assert without_values(refused) == without_values(wrong_password)
    assert app.test_client().get(f"/staff/password-reset/{outstanding_link}").status_code == 410
    answer = request_reset(app.test_client(), "maya@clinic.example").get_data(as_text=True)
    assert GENERIC_RESET_ANSWER in answer
    with database(app):
        assert not db.session.scalars(sa.select(OutboxEmail).where(OutboxEmail.user_id == maya_id)).all()
        # Her class and its roster stay with the offering, under her name.
        assert db.session.get(Offering, staff["offering"]).instructor_id == maya_id
    roster = admin.get(f"/staff/sessions/{staff['session']}").get_data(as_text=True)
    assert "Core Strength" in roster

    # Reactivated, she signs in again with her password.
    assert change_status(admin, maya_id, "reactivate").status_code == 302
    assert signed_in(app, "maya@clinic.example").get("/staff/").status_code == 200

    with database(app):
        entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.action, e.target_id, e.actor_id) for e in entries] == [
            ("user.deactivated", maya_id, staff["admin"]),
            ("user.reactivated", maya_id, staff["admin"]),
        ]


def test_only_an_admin_may_deactivate_and_only_instructors_here(app, staff):
    url = f"/staff/admin/instructors/{staff['maya']}/deactivate"
    maya = signed_in(app, "maya@clinic.example")
    token = csrf_token(maya.get("/staff/").get_data(as_text=True))
    assert maya.get(url).status_code == 403
    assert maya.post(url, data={"csrf_token": token}).status_code == 403
    stranger = app.test_client()
    token = csrf_token(stranger.get("/staff/login").get_data(as_text=True))
    assert is_sent_to_sign_in(stranger.post(url, data={"csrf_token": token}))
    admin = signed_in(app, "admin@clinic.example")
    # Admin accounts aren't instructors: not deactivated from the instructors pages.
    assert admin.get(f"/staff/admin/instructors/{staff['admin']}/deactivate").status_code == 404
    with database(app):
        assert db.session.get(User, staff["maya"]).is_active
        assert db.session.get(User, staff["admin"]).is_active


def test_no_admin_can_lock_the_clinic_out(app_ctx, staff):
    admin = db.session.get(User, staff["admin"])
    with pytest.raises(AdminError, match="your own account"):
        set_staff_active(admin, False, admin)
    db.session.rollback()
    other = make_user("other-admin@clinic.example", Role.ADMIN)
    assert set_staff_active(other, False, admin)
    # With `other` gone, `admin` is the last one: nobody (not even a second actor) may remove them.
    with pytest.raises(AdminError, match="last active admin"):
        set_staff_active(admin, False, other)
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(User, admin.id).is_active
    # Deactivating twice is a no-op, not a second audit row.
    assert not set_staff_active(other, False, admin)
    assert db.session.scalars(sa.select(AuditEntry.action)).all() == ["user.deactivated"]


def users_locked_now(app, user_ids) -> list[bool]:
    """Which of these accounts another connection finds locked right now."""
    import psycopg

    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    locked = []
    with psycopg.connect(url, autocommit=True) as other:
        for user_id in user_ids:
            try:
                other.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE NOWAIT", (user_id,))
                locked.append(False)
            except psycopg.errors.LockNotAvailable:
                locked.append(True)
    return locked


@pytest.mark.real_commits  # the locks are looked at from a connection of its own
def test_deactivating_an_admin_holds_every_active_admin_until_it_commits(app_ctx, staff, monkeypatch):
    """Two admins deactivating each other at the same moment: the second waits for the first to
    commit and then finds itself the last admin. Without the lock both would count two admins
    and the clinic would be left with none."""
    first = db.session.get(User, staff["admin"])
    second = make_user("second-admin@clinic.example", Role.ADMIN)
    third = make_user("third-admin@clinic.example", Role.ADMIN)
    admin_ids = [first.id, second.id, third.id]
    seen = []
    real_end_sessions = User.end_sessions

    def look_then_end(user):
        seen.extend(users_locked_now(app_ctx, admin_ids))
        real_end_sessions(user)

    monkeypatch.setattr(User, "end_sessions", look_then_end)
    assert set_staff_active(second, False, first)
    assert seen == [True, True, True]


# --- No form depends on DNS ---


@pytest.fixture
def no_dns(monkeypatch):
    """Any name lookup fails, as on a machine with no DNS server configured, and is recorded."""
    lookups = []

    def refuse(name):
        def lookup(*args, **kwargs):
            lookups.append((name, repr(args)[:120]))
            if name.startswith("dns"):
                raise dns.resolver.NoResolverConfiguration("no nameservers")
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

        return lookup

    for target, attr in (
        (socket, "getaddrinfo"),
        (socket, "gethostbyname"),
        (socket, "gethostbyname_ex"),
        (dns.resolver.Resolver, "resolve"),
        (dns.resolver, "resolve"),
    ):
        name = f"{target.__name__}.{attr}"
        monkeypatch.setattr(target, attr, refuse(name))
    return lookups


def test_the_reset_form_works_without_dns(app, no_dns):
    with database(app):
        user_id = make_user("someone@clinic-staff.example").id
    client = app.test_client()

    page = request_reset(client, "someone@clinic-staff.example").get_data(as_text=True)
    assert GENERIC_RESET_ANSWER in page and "isn&#39;t an email address" not in page
    assert emailed_reset_link(app, user_id).startswith("/staff/password-reset/")

    page = request_reset(client, "nobody@clinic-staff.example").get_data(as_text=True)
    assert GENERIC_RESET_ANSWER in page
    with database(app):
        assert [r.user_id for r in db.session.scalars(sa.select(OutboxEmail))] == [user_id]
    assert no_dns == [], f"a form looked up DNS: {no_dns}"


def test_the_no_dns_fixture_catches_a_deliverability_check(no_dns):
    """The control for the test above: a validator that does look the domain up is caught."""
    import email_validator

    with pytest.raises(email_validator.EmailNotValidError):
        email_validator.validate_email("someone@clinic-staff.example", check_deliverability=True)
    assert no_dns, "the lookup went unnoticed"


def _all_form_classes(cls=FlaskForm):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_form_classes(sub)


def test_no_email_validator_asks_dns(app):
    forms_with_email = {}
    for form in _all_form_classes():
        for name, field in vars(form).items():
            if isinstance(field, UnboundField):
                for validator in field.kwargs.get("validators", []):
                    if isinstance(validator, Email):
                        forms_with_email[f"{form.__qualname__}.{name}"] = validator.check_deliverability
    assert {"ResetRequestForm.email", "InstructorForm.email"} <= set(forms_with_email)
    assert not any(forms_with_email.values()), forms_with_email


# --- Public page cache ---


def catalog_version(app) -> int:
    with database(app):
        return db.session.scalar(sa.select(CatalogState.version).where(CatalogState.id == 1))


def test_signing_out_or_deactivating_leaves_the_public_page_cache_alone_but_renaming_does_not(app, staff):
    """Public pages show an instructor's name and bio, not their sessions or status: a staff
    sign-out must not empty every process's page cache, a new name must."""
    maya = signed_in(app, "maya@clinic.example")
    admin = signed_in(app, "admin@clinic.example")
    before = catalog_version(app)

    sign_out(maya)
    assert change_status(admin, staff["maya"], "deactivate").status_code == 302
    assert change_status(admin, staff["maya"], "reactivate").status_code == 302
    with database(app):
        assert db.session.get(User, staff["maya"]).session_version >= 2  # both did end sessions
    assert catalog_version(app) == before

    with database(app):
        user = db.session.get(User, staff["maya"])
        save_instructor(
            user,
            {"email": user.email, "name": "Maya Ortiz", "bio": user.bio},
            db.session.get(User, staff["admin"]),
        )
    assert catalog_version(app) == before + 1
