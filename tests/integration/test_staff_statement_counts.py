"""Every staff page runs as many SQL statements with a little data as with more (issue 17, goal 1).

The counts are taken at a small size (a few sessions, about 10 registrations) and again after
growing it (ten times the sessions, 200 registrations): a page that loads something per row
(an N+1) shows up as more statements. Each request runs in an app context of its own, as in
production, so nothing one request loaded (the clinic, the signed-in user) is still in a
shared session for the next one to find without asking the database.

What grows is spread over as many rows as a page could load one by one: each new offering
has its own instructor, every third its own location, every other session a substitute;
payments, refunds, failed emails, audit entries by different people, attendance, waitlist.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import time, timedelta

import pytest

from events.extensions import db
from events.models import (
    Attendance,
    AttendanceStatus,
    AuditEntry,
    EmailStatus,
    OfferingKind,
    OutboxEmail,
    Payment,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
    Role,
    Session,
    User,
    WaitlistEntry,
    utcnow,
)
from tests.factories import (
    make_clinic,
    make_instructor,
    make_location,
    make_offering,
    make_session,
    upcoming_day,
)
from tests.helpers import csrf_token

PASSWORD = "correct horse battery"
_n = itertools.count(1)


@dataclass
class Place:
    """The ids the pages are asked about: the same at both sizes (their rows grow)."""

    offering_id: int = 0
    session_id: int = 0
    registration_id: int = 0
    instructor_email: str = ""


def _registration(session: Session, status: RegistrationStatus, price_cents: int) -> Registration:
    n = next(_n)
    registration = Registration(
        seat_pool_id=session.seat_pool_id,
        offering_id=session.offering_id,
        session_id=session.id,
        name=f"Person {n}",
        email=f"person{n}@example.com",
        email_normalized=f"person{n}@example.com",
        phone=f"612-555-{n:04d}",
        status=status,
        price_cents=price_cents,
        token=f"token-{n}",
        cancelled_at=utcnow() if status is RegistrationStatus.CANCELLED else None,
    )
    db.session.add(registration)
    db.session.flush()
    return registration


def _money_emails_and_audit(registration: Registration, actor: User, paid: bool, refunded: bool) -> None:
    if paid:
        payment = Payment(
            registration_id=registration.id,
            stripe_payment_intent_id=f"pi_{registration.id}_{next(_n)}",
            amount_cents=1500,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
            amount_refunded_cents=500 if refunded else 0,
            card_brand="visa",
            card_last4="4242",
            paid_at=utcnow(),
        )
        db.session.add(payment)
        db.session.flush()
        if refunded:
            db.session.add(
                Refund(
                    payment_id=payment.id,
                    amount_cents=500,
                    status=RefundStatus.SUCCEEDED,
                    kind=RefundKind.MANUAL,
                    idempotency_key=f"refund-{payment.id}",
                    created_by_id=actor.id,
                )
            )
    for kind in ("confirmation", "reminder"):
        db.session.add(
            OutboxEmail(
                dedupe_key=f"{kind}-{registration.id}-{next(_n)}",
                kind=kind,
                registration_id=registration.id,
                session_id=registration.session_id,
                to_email=registration.email,
                status=EmailStatus.FAILED if kind == "reminder" else EmailStatus.SENT,
                attempts=3 if kind == "reminder" else 1,
                last_error="550 mailbox unavailable" if kind == "reminder" else "",
            )
        )
    db.session.add(
        AuditEntry(
            actor_id=actor.id,
            action="registration.created_by_staff",
            target_type="registration",
            target_id=registration.id,
            details={"outcome": "confirmed"},
        )
    )


def grow(app, place: Place, sessions: int, registrations: int) -> Place:
    """Add `sessions` offerings of a session each, a few more dates of the watched offering, and
    `registrations` registrations: half on the watched session, half spread over the new ones."""
    with app.app_context():
        first = not place.session_id
        if first:
            make_clinic()
            watched_instructor = make_instructor()
            watched = make_offering(
                make_location(),
                OfferingKind.CLASS,
                price_cents=1500,
                capacity=1000,
                instructor=watched_instructor,
            )
            watched_session = make_session(watched, upcoming_day(2))
            place = Place(watched.id, watched_session.id, 0, watched_instructor.email)
        watched_session = db.session.get(Session, place.session_id)
        watched = watched_session.offering
        # More dates of the watched offering, each at a place and with a teacher of its own.
        for n in range(max(1, sessions // 3)):
            make_session(
                watched,
                upcoming_day(3 + next(_n) % 300),
                time(8 + n % 10, 0),
                location=make_location(),
                instructor=make_instructor(),
            )
        new_sessions = []
        location = make_location()
        for n in range(sessions):
            if n % 3 == 0:
                location = make_location()
            offering = make_offering(
                location,
                OfferingKind.CLASS if n % 2 else OfferingKind.WORKSHOP,
                price_cents=(n % 2) * 1500,
                capacity=1000,
                instructor=make_instructor(),
                is_published=n % 5 != 4,
            )
            new_sessions.append(
                make_session(
                    offering,
                    upcoming_day(1 + n % 20),
                    time(7 + n % 12, 0),
                    instructor=make_instructor() if n % 2 else None,
                )
            )
        actors = [make_instructor(role=Role.ADMIN) for _ in range(max(2, sessions // 3))]
        db.session.flush()
        statuses = [RegistrationStatus.CONFIRMED] * 3 + [
            RegistrationStatus.HELD,
            RegistrationStatus.CANCELLED,
        ]
        for n in range(registrations):
            session = watched_session if n % 2 == 0 else new_sessions[n % len(new_sessions)]
            status = statuses[n % len(statuses)]
            registration = _registration(session, status, session.offering.price_cents)
            paid = session.offering.price_cents > 0 and status is not RegistrationStatus.HELD
            _money_emails_and_audit(registration, actors[n % len(actors)], paid, refunded=paid and n % 4 == 0)
            if session is watched_session and status is RegistrationStatus.CONFIRMED:
                db.session.add(
                    Attendance(
                        registration_id=registration.id,
                        session_id=session.id,
                        status=AttendanceStatus.PRESENT if n % 3 else AttendanceStatus.ABSENT,
                        marked_by_id=actors[0].id,
                    )
                )
            if first and n == 0:
                place.registration_id = registration.id
        watched_registration = db.session.get(Registration, place.registration_id)
        # The watched registration's own page grows too: more emails, more payments.
        _money_emails_and_audit(watched_registration, actors[-1], paid=True, refunded=True)
        for _ in range(max(1, registrations // 10)):
            n = next(_n)
            db.session.add(
                WaitlistEntry(
                    seat_pool_id=watched_session.seat_pool_id,
                    name=f"Waiting {n}",
                    email=f"waiting{n}@example.com",
                    email_normalized=f"waiting{n}@example.com",
                    token=f"wait-{n}",
                    created_at=utcnow() - timedelta(minutes=n),
                )
            )
        db.session.commit()
        db.session.remove()
    return place


def signed_in(app, role: Role, email: str = ""):
    """A test client signed in as a new admin, or as the instructor with this email."""
    client = app.test_client()
    with app.app_context():
        if email:
            user = db.session.query(User).filter_by(email=email).one()
        else:
            user = User(email=f"admin{next(_n)}@clinic.example", name="Sam Admin", role=role)
            db.session.add(user)
        user.set_password(PASSWORD)
        user_email = user.email
        db.session.commit()
        db.session.remove()
    page = client.get("/staff/login").get_data(as_text=True)
    response = client.post(
        "/staff/login", data={"email": user_email, "password": PASSWORD, "csrf_token": csrf_token(page)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def admin_pages(place: Place) -> list[str]:
    return [
        "/staff/",
        "/staff/admin/",
        "/staff/admin/offerings",
        f"/staff/admin/offerings/{place.offering_id}",
        "/staff/admin/registrations",
        "/staff/admin/registrations?q=person",
        "/staff/admin/registrations?q=example.com&status=confirmed",
        f"/staff/admin/registrations?offering_id={place.offering_id}",
        f"/staff/admin/registrations/{place.registration_id}",
        f"/staff/sessions/{place.session_id}",
        f"/staff/sessions/{place.session_id}/roster.csv",
        f"/staff/sessions/{place.session_id}/print",
        "/staff/admin/emails/failed",
        "/staff/audit",
        "/staff/admin/locations",
        "/staff/admin/instructors",
        # Changing a booking, a date, and writing to the room (issue 13's pages).
        f"/staff/admin/registrations/{place.registration_id}/cancel",
        f"/staff/admin/registrations/{place.registration_id}/transfer",
        f"/staff/admin/registrations/{place.registration_id}/details",
        f"/staff/admin/sessions/{place.session_id}/move",
        f"/staff/admin/sessions/{place.session_id}/substitute",
        f"/staff/admin/sessions/{place.session_id}/cancel",
        f"/staff/admin/offerings/{place.offering_id}/message",
        f"/staff/sessions/{place.session_id}/message",
        f"/staff/sessions/{place.session_id}/walk-in",
        *REPORT_PAGES,
    ]


# The reports (issue 16) over ranges that hold the grown data, for every breakdown.
REPORT_PAGES = [
    "/staff/reports?preset=custom&date_from=2020-01-01&date_to=2030-12-31&by=offering",
    "/staff/reports?preset=this_year&by=instructor",
    "/staff/reports?preset=last_4_weeks&by=week",
    "/staff/reports?preset=custom&date_from=2020-01-01&date_to=2030-12-31&by=month",
    "/staff/reports/breakdown.csv?preset=custom&date_from=2020-01-01&date_to=2030-12-31&by=location",
    "/api/v1/reports?from=2020-01-01&to=2030-12-31&by=topic",
]


def instructor_pages(place: Place) -> list[str]:
    return [
        "/staff/",
        f"/staff/sessions/{place.session_id}",
        f"/staff/sessions/{place.session_id}/roster.csv",
        f"/staff/sessions/{place.session_id}/message",
        f"/staff/sessions/{place.session_id}/walk-in",
        *REPORT_PAGES[:4],
    ]


def statements_per_page(client, count_queries, urls: list[str]) -> dict[str, int]:
    counts = {}
    for url in urls:
        with count_queries() as statements:
            response = client.get(url)
        assert response.status_code == 200, url
        counts[url] = len(statements)
    return counts


def test_every_staff_page_runs_the_same_sql_at_two_sizes(app, count_queries):
    place = grow(app, Place(), sessions=3, registrations=10)
    admin = signed_in(app, Role.ADMIN)
    instructor = signed_in(app, Role.INSTRUCTOR, place.instructor_email)
    small = statements_per_page(admin, count_queries, admin_pages(place))
    small_instructor = statements_per_page(instructor, count_queries, instructor_pages(place))

    grow(app, place, sessions=30, registrations=200)
    large = statements_per_page(admin, count_queries, admin_pages(place))
    large_instructor = statements_per_page(instructor, count_queries, instructor_pages(place))

    grown = {url: (small[url], large[url]) for url in small if small[url] != large[url]}
    assert grown == {}, "statements (small, large) per page that grew with the data"
    assert small_instructor == large_instructor
    # And few: a page's own reads, nothing per row.
    # (A registration's own page is the most: its payments and their refunds, emails, history,
    # consent acceptances and any balance still owed, each read once.)
    assert max(large.values()) <= 21, large


@pytest.fixture
def grown_place(app) -> Place:
    place = grow(app, Place(), sessions=3, registrations=10)
    return grow(app, place, sessions=30, registrations=200)


def test_the_counted_pages_did_show_the_larger_data(app, grown_place):
    """The control for the test above: the pages counted at the larger size listed its rows."""
    place = grown_place
    admin = signed_in(app, Role.ADMIN)
    roster = admin.get(f"/staff/sessions/{place.session_id}").get_data(as_text=True)
    assert roster.count('class="roster-row') == 105  # 5 + 100 on the watched session, every status shown
    csv = admin.get(f"/staff/sessions/{place.session_id}/roster.csv").get_data(as_text=True)
    assert csv.count("@example.com") == 105 + 21  # and the waitlist (1 + 20)
    home = admin.get("/staff/").get_data(as_text=True)
    assert home.count('class="session-card staff-session"') == 1 + 1 + 10 + 3 + 30
    failed = admin.get("/staff/admin/emails/failed").get_data(as_text=True)
    assert failed.count("550 mailbox unavailable") >= 100
