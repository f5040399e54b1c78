"""The demo clinic's past year, so the reports have something to show: weekly classes with
realistic attendance and no-shows, monthly workshops (some full, with waitlists), card and desk
payments, refunds for cancellations in time, late cancellations, walk-ins, and people who come
back, some from a workshop on to a class.

Made with a fixed random seed, in bulk (a few INSERTs of many rows, not an object per row), and
once: the past workshops' offerings ("past-..." slugs) mark it as done.
"""

from __future__ import annotations

import random
import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from events.extensions import Base, db
from events.models import (
    Attendance,
    AttendanceStatus,
    Offering,
    OfferingKind,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
    SeatPool,
    Session,
    WaitlistEntry,
    WaitlistStatus,
)

PAST_PREFIX = "past-"
SURNAMES = [
    "Lopez", "Nguyen", "Okafor", "Lindqvist", "Haddad", "Tanaka", "Silva", "Patel", "Murphy",
    "Rossi", "Novak", "Cohen", "Kim", "Olsen", "Baker", "Ibrahim", "Yang", "Warsame", "Vang", "Her",
]  # fmt: skip
FIRST_NAMES = [
    "Ana", "Ben", "Chloe", "Dev", "Elena", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena",
    "Mai", "Nora", "Omar", "Pia", "Quinn", "Rosa", "Sven", "Tou", "Uma", "Vic", "Wes", "Xiong",
]  # fmt: skip


def history_exists() -> bool:
    return (
        db.session.scalar(sa.select(Offering.id).where(Offering.slug.like(PAST_PREFIX + "%")).limit(1))
        is not None
    )


def seed_past_year(offerings: list[Offering], today: date, zone: ZoneInfo) -> int:
    """A year of past sessions for these demo offerings; returns how many were added."""
    if history_exists():
        return 0
    rng = random.Random(2026)
    people = [
        (f"{first} {last}", f"{first.lower()}.{last.lower()}@attendee.example")
        for first in FIRST_NAMES
        for last in SURNAMES[: 10 if first < "M" else 8]
    ]
    rng.shuffle(people)
    # Some come every week, most now and then: a weight per person.
    keen = {email: rng.choice([0.3, 1, 1, 2, 4, 8]) for _, email in people}
    workshop_goers: list[tuple[str, str]] = []

    sessions: list[tuple[Session, Offering]] = []
    for offering in offerings:
        if offering.kind is OfferingKind.CLASS:
            first = offering.sessions[0].starts_at.astimezone(zone) if offering.sessions else None
            start = first.timetz().replace(tzinfo=None) if first else time(18, 0)
            weekday = first.weekday() if first else 0
            day = today - timedelta(days=(today.weekday() - weekday) % 7 or 7)
            for week in range(52):
                session = _session(offering, day - timedelta(weeks=week), start, 50, zone, None)
                sessions.append((session, offering))
        else:
            # A copy of the workshop (or course) each month, unpublished: past dates only.
            for month in range(1, 13):
                copy = Offering(
                    slug=f"{PAST_PREFIX}{offering.slug}-{month}",
                    kind=offering.kind,
                    topic=offering.topic,
                    title=offering.title,
                    summary=offering.summary,
                    location=offering.location,
                    instructor=offering.instructor,
                    price_cents=offering.price_cents,
                    currency=offering.currency,
                    capacity=offering.capacity,
                    is_published=False,
                )
                db.session.add(copy)
                day = today - timedelta(days=30 * month + rng.randint(0, 6))
                meetings = 4 if offering.kind is OfferingKind.COURSE else 1
                pool = SeatPool(offering=copy, capacity=copy.capacity, seats_taken=0)
                for week in range(meetings):
                    session = _session(copy, day + timedelta(weeks=week), time(18, 30), 75, zone, pool)
                    if week == 0:
                        sessions.append((session, copy))
    db.session.flush()

    registrations: list[dict[str, Any]] = []
    marks: list[tuple[int, Session, bool]] = []  # (registration index, session, present)
    waitlist: list[dict[str, Any]] = []
    pool_taken: dict[int, int] = {}
    for session, offering in sorted(sessions, key=lambda pair: pair[0].starts_at):
        demand = rng.uniform(0.45, 1.35) * (1.3 if offering.kind is not OfferingKind.CLASS else 1)
        wanted = int(offering.capacity * demand)
        if offering.kind is OfferingKind.CLASS:
            # Classes draw their regulars, and people who came to a workshop.
            drawn = rng.choices(people, weights=[keen[e] for _, e in people], k=wanted * 2)
            drawn = [p for p in dict.fromkeys(workshop_goers[-30:] + drawn) if rng.random() < 0.8]
        else:
            drawn = rng.sample(people, min(wanted, len(people)))
            workshop_goers.extend(drawn[:8])
        chosen = list(dict.fromkeys(drawn))[:wanted]
        seats, confirmed = offering.capacity, 0
        begins = session.starts_at
        for name, email in chosen:
            if confirmed >= seats:
                waitlist.append(_wait_entry(rng, session, name, email))
                continue
            booked = begins - timedelta(hours=rng.randint(3, 24 * 14))
            cancelled_at = None
            if rng.random() < 0.1:
                # Cancelled: in time, or within the 24-hour cut-off (late).
                cancelled_at = begins - timedelta(hours=rng.choice([2, 6, 30, 72]))
                cancelled_at = max(cancelled_at, booked + timedelta(hours=1))
            registrations.append(
                _registration(
                    session,
                    offering,
                    name,
                    email,
                    booked,
                    cancelled_at,
                    per_session=offering.kind.per_session,
                )
            )
            if cancelled_at is None:
                confirmed += 1
                if rng.random() < 0.88:  # attendance is usually taken
                    marks.append((len(registrations) - 1, session, rng.random() < 0.87))
        if offering.kind is OfferingKind.CLASS and confirmed < seats and rng.random() < 0.25:
            registrations.append(
                _registration(session, offering, "Walk-in", "", begins + timedelta(minutes=5), None, True)
            )
            marks.append((len(registrations) - 1, session, True))
            confirmed += 1
        pool_taken[session.seat_pool_id] = confirmed

    cutoffs = [row.pop("cutoff") for row in registrations]
    # Plain bulk INSERTs (RETURNING many rows is slow on SQLite), then the ids by token.
    db.session.execute(_table(Registration).insert(), registrations)
    offering_ids = {row["offering_id"] for row in registrations}
    by_token = {
        token: id_
        for token, id_ in db.session.execute(
            sa.select(Registration.token, Registration.id).where(Registration.offering_id.in_(offering_ids))
        )
    }
    ids = [by_token[row["token"]] for row in registrations]
    db.session.execute(
        _table(Attendance).insert(),
        [
            {
                "registration_id": ids[n],
                "session_id": session.id,
                "status": AttendanceStatus.PRESENT if present else AttendanceStatus.ABSENT,
                "marked_at": session.starts_at + timedelta(minutes=5),
            }
            for n, session, present in marks
        ],
    )
    _payments(rng, registrations, ids, cutoffs)
    if waitlist:
        db.session.execute(_table(WaitlistEntry).insert(), waitlist)
    db.session.execute(
        sa.update(SeatPool), [{"id": pool, "seats_taken": n} for pool, n in pool_taken.items()]
    )
    return len(sessions)


def _table(model: type[Base]) -> sa.Table:
    # Core inserts: one executemany, where the ORM's bulk path goes row by row here.
    return cast(sa.Table, model.__table__)


def _session(
    offering: Offering, day: date, start: time, minutes: int, zone: ZoneInfo, pool: SeatPool | None
) -> Session:
    """A past date, made directly (not through add_session, which looks its pool up each time)."""
    starts_at = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
    session = Session(
        offering=offering,
        location=offering.location,
        seat_pool=pool or SeatPool(offering=offering, capacity=offering.capacity, seats_taken=0),
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
    )
    db.session.add(session)
    return session


def _registration(
    session: Session, offering: Offering, name: str, email: str, booked: datetime,
    cancelled_at: datetime | None, per_session: bool,
) -> dict[str, Any]:  # fmt: skip
    return {
        "seat_pool_id": session.seat_pool_id,
        "offering_id": offering.id,
        "session_id": session.id if per_session else None,
        "name": name,
        "email": email,
        "email_normalized": email,
        "status": RegistrationStatus.CANCELLED if cancelled_at else RegistrationStatus.CONFIRMED,
        "price_cents": offering.price_cents,
        "currency": offering.currency,
        "token": secrets.token_urlsafe(24),
        "source": "walk_in" if not email else "public",
        "created_at": booked,
        "confirmed_at": booked,
        "cancelled_at": cancelled_at,
        "cutoff": session.starts_at - timedelta(hours=offering.cancellation_cutoff_hours),
    }


def _wait_entry(rng: random.Random, session: Session, name: str, email: str) -> dict[str, Any]:
    joined = session.starts_at - timedelta(hours=rng.randint(30, 24 * 10))
    status = rng.choice(
        [WaitlistStatus.WAITING, WaitlistStatus.EXPIRED, WaitlistStatus.LEFT, WaitlistStatus.CLAIMED]
    )
    offered = (
        joined + timedelta(hours=12) if status in (WaitlistStatus.EXPIRED, WaitlistStatus.CLAIMED) else None
    )
    return {
        "seat_pool_id": session.seat_pool_id,
        "name": name,
        "email": email,
        "email_normalized": email,
        "status": status,
        "token": secrets.token_urlsafe(24),
        "created_at": joined,
        "offered_at": offered,
        "offer_expires_at": offered + timedelta(hours=4) if offered else None,
    }


def _payments(
    rng: random.Random, registrations: list[dict[str, Any]], ids: list[int], cutoffs: list[datetime]
) -> None:
    """Paid registrations paid: mostly by card, some cash or check at the desk, a few comped;
    a cancellation before the cut-off refunded in full, a late one not at all."""
    payments, refunded = [], []
    for n, reg in enumerate(registrations):
        if not reg["price_cents"] or not reg["email"]:
            continue
        method = rng.choices(
            [PaymentMethod.CARD, PaymentMethod.CASH, PaymentMethod.CHECK, PaymentMethod.COMP], [80, 11, 5, 4]
        )[0]
        amount = 0 if method is PaymentMethod.COMP else reg["price_cents"]
        in_time = reg["cancelled_at"] is not None and reg["cancelled_at"] <= cutoffs[n]
        refund = amount if in_time and amount else 0
        payments.append(
            {
                "registration_id": ids[n],
                "stripe_payment_intent_id": f"pi_demo_{ids[n]}" if method is PaymentMethod.CARD else None,
                "method": method,
                "amount_cents": amount,
                "currency": reg["currency"],
                "status": PaymentStatus.SUCCEEDED,
                "amount_refunded_cents": refund,
                "paid_at": reg["confirmed_at"],
                "created_at": reg["confirmed_at"],
                "updated_at": reg["confirmed_at"],
            }
        )
        refunded.append((refund, reg["cancelled_at"]))
    if not payments:
        return
    db.session.execute(_table(Payment).insert(), payments)
    by_registration = {
        registration_id: id_
        for registration_id, id_ in db.session.execute(
            sa.select(Payment.registration_id, Payment.id).where(
                Payment.registration_id.in_([p["registration_id"] for p in payments])
            )
        )
    }
    payment_ids = [by_registration[p["registration_id"]] for p in payments]
    refunds = [
        {
            "payment_id": payment_id,
            "amount_cents": amount,
            "status": RefundStatus.SUCCEEDED,
            "kind": RefundKind.CANCELLATION,
            "idempotency_key": f"demo-refund-{payment_id}",
            "created_at": when,
        }
        for payment_id, (amount, when) in zip(payment_ids, refunded, strict=True)
        if amount
    ]
    if refunds:
        db.session.execute(_table(Refund).insert(), refunds)
