"""Staff sign-in, rosters, check-in, CSV, cancellation and the authorization matrix."""

import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from events import reset_links
from events.models import (
    Attendance,
    AuditEntry,
    OfferingKind,
    OutboxEmail,
    Payment,
    PaymentStatus,
    Registration,
    RegistrationStatus,
    Role,
    User,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.registration import services as registration
from events.registration.services import Person
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import charge_card, csrf_token

PASSWORD = "correct horse battery"


def make_user(db, email, role=Role.INSTRUCTOR, name=None):
    user = User(email=email, name=name or email.split("@")[0].title(), role=role)
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.flush()
    return user


def sign_in(client, email, password=PASSWORD, next_url=None):
    page = client.get("/staff/login").get_data(as_text=True)
    url = "/staff/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"csrf_token": csrf_token(page), "email": email, "password": password})


@pytest.fixture
def world(db):
    """Instructors A and B with a class each, an admin, and registrations on A's class."""
    location = make_location(name="North Loop")
    a = make_user(db, "a@clinic.example")
    b = make_user(db, "b@clinic.example")
    admin = make_user(db, "admin@clinic.example", Role.ADMIN)
    class_a = make_offering(location, OfferingKind.CLASS, title="Core A", instructor=a, capacity=3)
    class_b = make_offering(location, OfferingKind.CLASS, title="Core B", instructor=b)
    session_a = make_session(class_a, upcoming_day(2))
    session_b = make_session(class_b, upcoming_day(2))
    db.session.commit()
    people = [
        registration.register(
            class_a, session_a.id, Person(n, f"{n.lower()}@example.com", "612-555-0100")
        ).registration
        for n in ("Ana", "Ben")
    ]
    return {
        "a": a,
        "b": b,
        "admin": admin,
        "session_a": session_a,
        "session_b": session_b,
        "people": people,
        "class_a": class_a,
    }


def test_sign_in_and_out(client, world):
    assert sign_in(client, "a@clinic.example", "wrong password").status_code == 400
    response = sign_in(client, "A@Clinic.example")
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/")
    home = client.get("/staff/").get_data(as_text=True)
    assert "Core A" in home and "Core B" not in home
    client.post("/staff/logout", data={"csrf_token": csrf_token(home)})
    assert client.get("/staff/").status_code == 302


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_sign_in_next_never_leaves_the_site(client, world, target):
    response = sign_in(client, "a@clinic.example", next_url=target)
    assert response.headers["Location"].endswith("/staff/")


def test_sign_in_follows_a_local_next(client, world):
    target = f"/staff/sessions/{world['session_a'].id}"
    assert sign_in(client, "a@clinic.example", next_url=target).headers["Location"].endswith(target)


def test_password_reset_link_works_once(client, world, db):
    page = client.get("/staff/password-reset").get_data(as_text=True)
    client.post("/staff/password-reset", data={"csrf_token": csrf_token(page), "email": "a@clinic.example"})
    client.post(
        "/staff/password-reset", data={"csrf_token": csrf_token(page), "email": "nobody@clinic.example"}
    )
    rows = db.session.scalars(
        sa.select(OutboxEmail).where(OutboxEmail.kind == EmailKind.PASSWORD_RESET)
    ).all()
    assert [r.user_id for r in rows] == [world["a"].id]

    token = reset_links.reset_token(world["a"])
    form = client.get(f"/staff/password-reset/{token}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(form), "password": "a brand new secret", "confirm": "a brand new secret"}
    assert client.post(f"/staff/password-reset/{token}", data=data).status_code == 302
    assert sign_in(client, "a@clinic.example", "a brand new secret").status_code == 302
    # The same link again: refused (the password it was made for is gone).
    assert client.get(f"/staff/password-reset/{token}").status_code == 410
    assert client.get("/staff/password-reset/not-a-token").status_code == 410


@pytest.fixture
def rate_limits_on(app, rate_limits_enforced):
    saved = {
        k: app.config[k]
        for k in ("LOGIN_RATE_LIMIT", "PASSWORD_RESET_RATE_LIMIT", "REGISTER_RATE_LIMIT", "PAY_RATE_LIMIT")
    }
    app.config.update(
        LOGIN_RATE_LIMIT="10 per minute",
        PASSWORD_RESET_RATE_LIMIT="5 per minute",
        REGISTER_RATE_LIMIT="3 per minute",
        PAY_RATE_LIMIT="2 per minute",
    )
    yield
    app.config.update(saved)


def test_rate_limits_on_sign_in_reset_and_registration_answer_429(client, db, world, rate_limits_on):
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    codes = [
        client.post(
            "/staff/login", data={"csrf_token": token, "email": "x@example.com", "password": "no"}
        ).status_code
        for _ in range(12)
    ]
    assert codes[:10] == [400] * 10 and codes[10:] == [429, 429]
    # Registration and password reset are limited too.
    page = client.get("/staff/password-reset").get_data(as_text=True)
    reset_codes = [
        client.post(
            "/staff/password-reset", data={"csrf_token": csrf_token(page), "email": "x@example.com"}
        ).status_code
        for _ in range(6)
    ]
    assert reset_codes[-1] == 429
    # And public registration.
    from tests.factories import workshop

    offering = workshop()
    db.session.commit()
    form = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    register_codes = [
        client.post(
            f"/offerings/{offering.slug}/register",
            data={"csrf_token": csrf_token(form), "name": "R", "email": f"r{i}@example.com"},
        ).status_code
        for i in range(4)
    ]
    assert register_codes == [302, 302, 302, 429]
    # And card submissions (where stolen cards would be tried in bulk).
    from events.registration import links
    from events.registration.services import Person
    from events.registration.services import register as register_person

    paid = workshop(price_cents=2500)
    db.session.commit()
    held = register_person(paid, None, Person("Pay Er", "payer@example.com")).registration
    signed = links.sign(held.token, links.MANAGE_SALT)
    pay_page = client.get(f"/manage/{signed}/pay").get_data(as_text=True)
    pay_codes = [
        client.post(
            f"/manage/{signed}/pay",
            json={"token": "not-a-token"},
            headers={"X-CSRFToken": csrf_token(pay_page)},
        ).status_code
        for _ in range(3)
    ]
    assert pay_codes == [400, 400, 429]


def test_roster_shows_people_and_waitlist_to_their_instructor_only(client, world, db):
    class_a = world["class_a"]
    registration.register(class_a, world["session_a"].id, Person("Cy", "cy@example.com"))
    registration.join_waitlist(class_a, world["session_a"].id, Person("Wes", "wes@example.com"))
    sign_in(client, "a@clinic.example")

    page = client.get(f"/staff/sessions/{world['session_a'].id}").get_data(as_text=True)
    for text in ("Ana", "ana@example.com", "612-555-0100", "Ben", "Cy", "Waitlist (1)", "Wes"):
        assert text in page
    assert client.get(f"/staff/sessions/{world['session_b'].id}").status_code == 404
    assert client.get("/staff/sessions/999999").status_code == 404


def test_payment_labels_say_who_owes_and_who_paid_nothing():
    """One label for rosters, the CSV and the admin's list (they had drifted: an unpaid hold in a
    paid class said "free" on the roster)."""
    from events.staff.rosters import payment_label

    def labelled(price_cents, status, paid=0, refunded=0):
        return payment_label(Registration(price_cents=price_cents, status=status), paid, refunded)

    assert labelled(0, RegistrationStatus.CONFIRMED) == "free"
    assert labelled(1500, RegistrationStatus.HELD) == "unpaid"
    assert labelled(1500, RegistrationStatus.CANCELLED) == "no payment"
    assert labelled(1500, RegistrationStatus.EXPIRED) == "no payment"
    assert labelled(1500, RegistrationStatus.CONFIRMED, paid=1500) == "paid"
    assert labelled(1500, RegistrationStatus.CONFIRMED, paid=1500, refunded=500) == "partly refunded"
    assert labelled(1500, RegistrationStatus.CANCELLED, paid=1500, refunded=1500) == "refunded"


def test_roster_labels_an_unpaid_hold_unpaid_not_free(client, world, db):
    paid_class = make_offering(
        world["class_a"].location, OfferingKind.CLASS, title="Paid A", instructor=world["a"], price_cents=1500
    )
    session = make_session(paid_class, upcoming_day(3))
    db.session.commit()
    held = registration.register(paid_class, session.id, Person("Hana Held", "hana@example.com"))
    assert held.registration.status == RegistrationStatus.HELD
    sign_in(client, "a@clinic.example")
    page = client.get(f"/staff/sessions/{session.id}").get_data(as_text=True)
    assert "Hana Held" in page
    # Held, with when the hold runs out, and owing: never "free".
    assert re.search(r"held until \d{1,2}(:\d\d)? [ap]m · unpaid", page), page
    assert "free" not in page.split("Hana Held", 1)[1].split("</li>", 1)[0]


def starting_soon(db, session):
    """Move a session to start in 30 minutes: its check-in is open."""
    session.starts_at = utcnow() + timedelta(minutes=30)
    session.ends_at = session.starts_at + timedelta(hours=1)
    db.session.commit()


def test_check_in_with_and_without_javascript(client, world, db):
    starting_soon(db, world["session_a"])
    sign_in(client, "a@clinic.example")
    session_id = world["session_a"].id
    ana, ben = world["people"]
    page = client.get(f"/staff/sessions/{session_id}").get_data(as_text=True)
    token = csrf_token(page)

    as_json = client.post(
        f"/staff/sessions/{session_id}/attendance/{ana.id}",
        data={"csrf_token": token, "status": "present"},
        headers={"Accept": "application/json"},
    )
    assert as_json.status_code == 200
    assert as_json.json == {
        "registration_id": ana.id,
        "status": "present",
        "present": 1,
        "expected": 2,
        "count_text": "1 of 2 here",
    }
    as_form = client.post(
        f"/staff/sessions/{session_id}/attendance/{ben.id}", data={"csrf_token": token, "status": "absent"}
    )
    assert as_form.status_code == 302
    marks = dict(db.session.execute(sa.select(Attendance.registration_id, Attendance.status)).all())
    assert {k: v.value for k, v in marks.items()} == {ana.id: "present", ben.id: "absent"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 2
    # Someone from another session's roster cannot be marked here.
    other = registration.register(
        db.session.get(type(world["class_a"]), world["session_b"].offering_id),
        world["session_b"].id,
        Person("Zed", "zed@example.com"),
    ).registration
    response = client.post(
        f"/staff/sessions/{session_id}/attendance/{other.id}",
        data={"csrf_token": token, "status": "present"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 404
    bad = client.post(
        f"/staff/sessions/{session_id}/attendance/{ana.id}",
        data={"csrf_token": token, "status": "maybe"},
        headers={"Accept": "application/json"},
    )
    assert bad.status_code == 400


def test_csv_export_opens_cleanly_and_defuses_formulas(client, world, db):
    registration.register(
        world["class_a"],
        world["session_a"].id,
        Person('=HYPERLINK("http://evil.example","x")', "eve@example.com", "+1 612 555 0100"),
    )
    sign_in(client, "a@clinic.example")
    response = client.get(f"/staff/sessions/{world['session_a'].id}/roster.csv")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["Name", "Email", "Phone"]
    cells = [cell for row in rows for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert '\'=HYPERLINK("http://evil.example","x")' in cells and "'+1 612 555 0100" in cells


def test_printable_roster(client, world):
    sign_in(client, "a@clinic.example")
    page = client.get(f"/staff/sessions/{world['session_a'].id}/print").get_data(as_text=True)
    assert "print.css" in page and "Ana" in page and "<table>" in page


def test_staff_forms_without_csrf_change_nothing(client, world, db):
    sign_in(client, "admin@clinic.example")
    session_id = world["session_a"].id
    ana = world["people"][0]
    assert (
        client.post(
            f"/staff/sessions/{session_id}/attendance/{ana.id}", data={"status": "present"}
        ).status_code
        == 400
    )
    assert client.post(f"/staff/sessions/{session_id}/cancel", data={"reason": "x"}).status_code in (302, 400)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attendance)) == 0
    assert world["session_a"].status.value == "scheduled"


@pytest.mark.usefixtures("localstripe")
def test_cancelling_a_session_refunds_paid_tells_everyone_and_clears_the_waitlist(client, db, localstripe):
    import stripe

    from events.payments.refunds import execute_due_refunds
    from events.payments.services import apply_intent

    admin = make_user(db, "boss@clinic.example", Role.ADMIN)
    location = make_location()
    paid_class = make_offering(location, OfferingKind.CLASS, title="Strength", price_cents=1500, capacity=5)
    session = make_session(paid_class, upcoming_day(3))
    db.session.commit()
    stripe_client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})
    people = []
    for i in range(3):  # three paid
        reg = registration.register(
            paid_class, session.id, Person(f"Paid {i}", f"paid{i}@example.com")
        ).registration
        token = stripe_client.v1.tokens.create(
            params={"card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2032, "cvc": "123"}}
        ).id
        apply_intent(
            charge_card(
                registration_id=reg.id, card_token=token, amount=1500, currency="usd", description="t"
            )
        )
        people.append(reg)
    for i in range(2):  # two free places given by staff (comped)
        comp = registration.register(
            paid_class, session.id, Person(f"Comp {i}", f"comp{i}@example.com")
        ).registration
        comp.status, comp.price_cents, comp.hold_expires_at = RegistrationStatus.CONFIRMED, 0, None
        people.append(comp)
    db.session.commit()
    waiting = registration.join_waitlist(paid_class, session.id, Person("Wait", "wait@example.com")).entry
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Payment).where(Payment.status == PaymentStatus.SUCCEEDED)
        )
        == 3
    )

    sign_in(client, "boss@clinic.example")
    page = client.get(f"/staff/sessions/{session.id}").get_data(as_text=True)
    for _ in range(2):  # the second run does nothing more
        client.post(
            f"/staff/sessions/{session.id}/cancel",
            data={"csrf_token": csrf_token(page), "reason": "Flooded", "confirmed": "yes"},
        )
    db.session.expire_all()
    assert [p.amount_refunded_cents for p in db.session.scalars(sa.select(Payment))] == [0, 0, 0]  # queued
    execute_due_refunds()  # what the worker does after the commit

    db.session.expire_all()
    payments = db.session.scalars(sa.select(Payment)).all()
    assert [p.amount_refunded_cents for p in payments] == [1500, 1500, 1500]
    assert {r.status for r in db.session.scalars(sa.select(Registration))} == {RegistrationStatus.CANCELLED}
    cancelled_emails = db.session.scalars(
        sa.select(OutboxEmail).where(OutboxEmail.kind == EmailKind.SESSION_CANCELLED)
    ).all()
    assert len(cancelled_emails) == 5
    assert db.session.get(WaitlistEntry, waiting.id).status == WaitlistStatus.LEFT
    actions = db.session.scalars(sa.select(AuditEntry.action)).all()
    assert actions.count("session.cancelled") == 1 and actions.count("registration.cancelled") == 5
    assert "waitlist.cleared" in actions
    assert db.session.get(type(session), session.id).seat_pool.seats_taken == 0
    assert all(a.actor_id == admin.id for a in db.session.scalars(sa.select(AuditEntry)))


# --- The authorization matrix ---
# Every /staff endpoint must be listed here with who may use it; a new route that is not
# listed fails test_every_staff_route_is_in_the_matrix.
PUBLIC, STAFF, OWN_SESSION, ADMIN = "public", "staff", "own session", "admin"
ACCESS = {
    "staff.login": PUBLIC,
    "staff.password_reset_request": PUBLIC,
    "staff.password_reset": PUBLIC,
    "staff.logout": STAFF,
    "staff.home": STAFF,
    "staff.roster": OWN_SESSION,
    "staff.mark_attendance": OWN_SESSION,
    "staff.undo_attendance": OWN_SESSION,
    "staff.add_walk_in": OWN_SESSION,
    "staff.message_session": OWN_SESSION,
    "staff.roster_csv": OWN_SESSION,
    "staff.roster_print": OWN_SESSION,
    "staff.accept_consent": OWN_SESSION,  # a person accepts a consent document on the phone
    "staff.cancel_session": ADMIN,
    "staff.audit_log": ADMIN,
    # Reports: every staff member, each seeing only the sessions they teach (an admin all).
    "staff.reports": STAFF,
    "staff.reports_csv": STAFF,
    # Changing a booking and desk payments: money and moves, admins only.
    "staff.admin_booking_cancel": ADMIN,
    "staff.admin_booking_transfer": ADMIN,
    "staff.admin_booking_details": ADMIN,
    "staff.admin_desk_payment": ADMIN,
    "staff.admin_balance_link": ADMIN,
}


def staff_rules(app):
    return [r for r in app.url_map.iter_rules() if r.rule.startswith("/staff")]


def test_every_staff_route_is_in_the_matrix(app):
    missing = {r.endpoint for r in staff_rules(app)} - set(ACCESS) - set(ADMIN_ENDPOINTS(app))
    assert not missing, f"add these routes to the authorization matrix: {sorted(missing)}"


def ADMIN_ENDPOINTS(app):  # noqa: N802 - admin pages (/staff/admin/...) are all admin-only
    return {r.endpoint for r in staff_rules(app) if r.rule.startswith("/staff/admin")}


def _url(rule, world):
    values = {}
    for arg in rule.arguments:
        values[arg] = {
            "session_id": world["session_a"].id,
            "registration_id": world["people"][0].id,
            "token": "x",
            "table": "breakdown",
        }.get(arg, 1)
    return rule.build(values)[1]


def _calls(rule, who):
    """The methods to try: a form page's POST as well as its GET, except for the admin, whose
    POSTs would change the shared world mid-matrix (the admin pages' own tests post as admin)."""
    methods = sorted(rule.methods & {"GET", "POST"})
    return methods if who != "admin" else methods[:1]


@pytest.mark.parametrize("who", ["anonymous", "instructor A", "instructor B", "admin"])
def test_authorization_matrix(app, client, world, who):
    emails = {
        "instructor A": "a@clinic.example",
        "instructor B": "b@clinic.example",
        "admin": "admin@clinic.example",
    }
    if who != "anonymous":
        assert sign_in(client, emails[who]).status_code == 302
    app.config["WTF_CSRF_ENABLED"] = False  # this test is about who may enter, not about forms
    try:
        for rule in staff_rules(app):
            if rule.endpoint == "staff.logout":
                continue  # would end this client's session mid-matrix; covered in test_sign_in_and_out
            access = ADMIN if rule.rule.startswith("/staff/admin") else ACCESS[rule.endpoint]
            for method in _calls(rule, who):
                _check_access(client, rule, method, _url(rule, world), access, who)
    finally:
        app.config["WTF_CSRF_ENABLED"] = True


def _check_access(client, rule, method, url, access, who):
    response = client.open(url, method=method, data={})
    code = response.status_code
    where = f"{who}: {method} {rule.rule} -> {code}"
    if access == PUBLIC:
        assert code < 500, where
    elif who == "anonymous":
        assert code == 302 and "/staff/login" in response.headers["Location"], where
    elif access == ADMIN and who != "admin":
        assert code == 403, where
    elif access == OWN_SESSION and who == "instructor B":
        assert code == 404, where
    else:
        # (409: check-in refused outside its window, for the instructor who may do it)
        assert code in (200, 302, 400, 404, 409) and code != 403, where
        if method == "GET" and rule.endpoint in (
            "staff.roster",
            "staff.roster_csv",
            "staff.roster_print",
            "staff.home",
            "staff.add_walk_in",
            "staff.message_session",
            "staff.reports",
            "staff.reports_csv",
        ):
            assert code == 200, where
