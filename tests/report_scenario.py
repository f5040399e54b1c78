"""A small clinic's January, built row by row, whose report figures are worked out by hand
(in EXPECTED_JANUARY below, each with its reasoning). Used on PostgreSQL and on SQLite.

Times are in America/Chicago. The class on January 31 at 11:30 pm is February 1 05:30 UTC:
it belongs to January where it meets."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from events.extensions import db
from events.models import (
    Attendance,
    AttendanceStatus,
    OfferingKind,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
    Role,
    Session,
    SessionStatus,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from tests.factories import make_clinic, make_location, make_offering, make_session

CHICAGO = ZoneInfo("America/Chicago")
YEAR = 2026
_n = itertools.count(1)


def local(month: int, day: int, hour: int, minute: int = 0, year: int = YEAR) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHICAGO).astimezone(UTC)


@dataclass
class Scenario:
    admin: User
    teacher_a: User  # teaches the Core class
    teacher_b: User  # teaches the workshop, and substitutes on the Jan 31 class
    s1: Session  # Jan 10, attendance taken
    s2: Session  # Jan 31 23:30 (Feb 1 UTC), no attendance taken, taught by B
    s3: Session  # Feb 1 00:30: February
    s4: Session  # Jan 20, cancelled by the clinic
    w1: Session  # the workshop's two dates, one seat pool
    w2: Session


def registration(
    session: Session,
    email: str,
    status: RegistrationStatus = RegistrationStatus.CONFIRMED,
    confirmed_at: datetime | None = None,
    cancelled_at: datetime | None = None,
    per_session: bool = True,
    price_cents: int = 0,
) -> Registration:
    n = next(_n)
    row = Registration(
        seat_pool_id=session.seat_pool_id,
        offering_id=session.offering_id,
        session_id=session.id if per_session else None,
        name=f"Person {n}",
        email=email,
        email_normalized=email.lower(),
        status=status,
        price_cents=price_cents,
        token=f"report-token-{n}-{session.id}",
        created_at=confirmed_at or session.starts_at - timedelta(days=3),
        confirmed_at=confirmed_at or session.starts_at - timedelta(days=3),
        cancelled_at=cancelled_at,
    )
    db.session.add(row)
    db.session.flush()
    return row


def mark(reg: Registration, session: Session, present: bool) -> None:
    db.session.add(
        Attendance(
            registration_id=reg.id,
            session_id=session.id,
            status=AttendanceStatus.PRESENT if present else AttendanceStatus.ABSENT,
            marked_at=session.starts_at,
        )
    )


def pay(reg: Registration, cents: int, method: PaymentMethod = PaymentMethod.CARD, refunded: int = 0) -> None:
    payment = Payment(
        registration_id=reg.id,
        stripe_payment_intent_id=f"pi_report_{reg.id}" if method is PaymentMethod.CARD else None,
        method=method,
        amount_cents=cents,
        currency="usd",
        status=PaymentStatus.SUCCEEDED,
        amount_refunded_cents=refunded,
        paid_at=reg.confirmed_at,
    )
    db.session.add(payment)
    db.session.flush()
    if refunded:
        db.session.add(
            Refund(
                payment_id=payment.id,
                amount_cents=refunded,
                status=RefundStatus.SUCCEEDED,
                kind=RefundKind.MANUAL,
                idempotency_key=f"report-refund-{payment.id}",
            )
        )


def build() -> Scenario:
    make_clinic()
    studio = make_location(name="North Loop", timezone="America/Chicago")
    admin = User(email="boss@clinic.example", name="Boss", role=Role.ADMIN)
    teacher_a = User(email="ada@clinic.example", name="Ada Teacher", role=Role.INSTRUCTOR)
    teacher_b = User(email="bo@clinic.example", name="Bo Teacher", role=Role.INSTRUCTOR)
    db.session.add_all([admin, teacher_a, teacher_b])
    core = make_offering(
        studio, OfferingKind.CLASS, title="Core", topic="Strength", capacity=4, price_cents=1500,
        instructor=teacher_a, cancellation_cutoff_hours=24,
    )  # fmt: skip
    spasms = make_offering(
        studio,
        OfferingKind.WORKSHOP,
        title="Back Spasms",
        topic="Back pain",
        capacity=2,
        instructor=teacher_b,
    )
    s0 = make_session(core, date(YEAR - 1, 12, 5), time(18, 0))
    s1 = make_session(core, date(YEAR, 1, 10), time(18, 0))
    s2 = make_session(core, date(YEAR, 1, 31), time(23, 30), minutes=20, instructor=teacher_b)
    s3 = make_session(core, date(YEAR, 2, 1), time(0, 30))
    s4 = make_session(core, date(YEAR, 1, 20), time(18, 0))
    w1 = make_session(spasms, date(YEAR, 1, 15), time(18, 0))
    w2 = make_session(spasms, date(YEAR, 1, 22), time(18, 0))
    s4.status = SessionStatus.CANCELLED
    db.session.flush()
    assert w1.seat_pool_id == w2.seat_pool_id and s1.seat_pool_id != s2.seat_pool_id

    # December: Ben's first visit (nobody marked, so booked counts as came).
    registration(s0, "ben@example.com")

    # Jan 10: four booked of four seats, then Dan cancels late; a walk-in with no email.
    ann = registration(s1, "ann@example.com")
    ben = registration(s1, "ben@example.com")
    cat = registration(s1, "cat@example.com")
    dan = registration(
        s1, "dan@example.com", RegistrationStatus.CANCELLED, cancelled_at=s1.starts_at - timedelta(hours=2)
    )
    walk_in = registration(s1, "", confirmed_at=s1.starts_at + timedelta(minutes=10))
    for person, present in ((ann, True), (ben, True), (cat, False), (walk_in, True)):
        mark(person, s1, present)
    pay(ann, 1500)
    pay(ben, 1500, PaymentMethod.CASH)
    pay(cat, 1500, refunded=500)
    pay(dan, 1500)
    pay(walk_in, 0, PaymentMethod.COMP)

    # Jan 31, 11:30 pm: nobody marked.
    registration(s2, "ann@example.com")
    registration(s2, "eve@example.com")

    # Feb 1, 00:30: Fay goes on from the workshop to a class.
    registration(s3, "fay@example.com")

    # Jan 20, cancelled by the clinic: its cancellation is not a member's late one.
    registration(
        s4, "gil@example.com", RegistrationStatus.CANCELLED, cancelled_at=s4.starts_at - timedelta(hours=1)
    )

    # The workshop: two seats, both taken (the last on Jan 3 at 6 pm), then a waitlist.
    fay = registration(w1, "fay@example.com", confirmed_at=local(1, 2, 18), per_session=False)
    gus = registration(w1, "gus@example.com", confirmed_at=local(1, 3, 18), per_session=False)
    mark(fay, w1, True)
    mark(gus, w1, True)
    mark(fay, w2, True)
    mark(gus, w2, False)
    for n, (email, status) in enumerate(
        (("hal@example.com", WaitlistStatus.EXPIRED), ("ivy@example.com", WaitlistStatus.WAITING))
    ):
        db.session.add(
            WaitlistEntry(
                seat_pool_id=w1.seat_pool_id,
                name=email,
                email=email,
                email_normalized=email,
                status=status,
                token=f"report-wait-{n}-{w1.id}",
                created_at=local(1, 5 + n, 12),
                offered_at=local(1, 8, 12) if status is WaitlistStatus.EXPIRED else None,
            )
        )
    db.session.commit()
    return Scenario(admin, teacher_a, teacher_b, s1, s2, s3, s4, w1, w2)


# The answers for January (Jan 1 to 31), everyone's sessions, worked out by hand:
EXPECTED_JANUARY = {
    # Jan 10, Jan 31, and the workshop's two dates; Jan 20 was cancelled.
    "sessions_held": 4,
    "sessions_cancelled": 1,
    "seats_offered": 4 + 4 + 2 + 2,
    # Booked at the start: Jan 10 three (Dan cancelled before it, the walk-in came after it),
    # Jan 31 two, the workshop two at each date: 9 of 12.
    "fill_rate_at_start": (9, 12),
    # Marked at Jan 10 (3 present of 4 confirmed, walk-in included) and both workshop dates
    # (2 of 2, then 1 of 2); Jan 31 had no marks and is left out: 6 of 8.
    "attendance_rate": (6, 8),
    "no_shows": 1 + 0 + 1,
    # 3 checked in on Jan 10, 2 booked on Jan 31 (no marks), 2 + 1 at the workshop.
    "visits": 8,
    "late_cancellations": 1,  # Dan; Gil's date was cancelled by the clinic
    "waitlist_joined": 2,
    "offers_made": 1,
    "offers_claimed": 0,
    "offers_expired": 1,
    "sessions_filled": 1,  # the workshop
    # Its last seat went on Jan 3 at 6 pm (before the waitlist opened on Jan 5), 12 days
    # before Jan 15 at 6 pm.
    "days_filled_before_start": 12.0,
    "card_payments": 1500 + 1500 + 1500,  # Ann, Cat, Dan
    "desk_payments": 1500,  # Ben's cash (the comp is nothing)
    "refunds": 500,
    "net_income": 4500 + 1500 - 500,
    # Ann, Ben, the walk-in, Eve, Fay, Gus (Cat was absent).
    "unique_attendees": 6,
    "first_timers": 5,  # all but Ben, who came in December
    # Ann (Jan 10, then Jan 31) and Fay (Jan 15, then Jan 22) of the five.
    "return_rate": (2, 5),
    "workshop_to_class": (1, 2),  # Fay went on to the Feb 1 class; Gus did not
}
