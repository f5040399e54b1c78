"""What a member's own pages show: the manage page's one state, the cancel confirmation,
and the other dates to book after cancelling.

Pure reading (no locks, nothing written): the cancel itself, with its exact refund under the
refund locks, is services.cancel_registration.

The manage page shows exactly one state, each with one message and its one next step:
- CONFIRMED: booked (a paid one with its receipt); "Cancel my registration" asks first.
- AWAITING_PAYMENT: the seat is held until a time; "Continue to payment".
- PAYMENT_PENDING: a payment is on its way (processing, or its answer not heard yet while
  its seat is kept for it): nothing to do but wait for the email.
- RELEASED: the hold ran out unpaid (nothing was charged); "Register again", or "Join the
  waitlist" when that date is full, leading to the offering with that date selected.
- CANCELLED: what was refunded and when it reaches the card; "Book another date".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

import sqlalchemy as sa
from flask import url_for
from flask_babel import gettext

from events.extensions import db
from events.filters import format_short_day, format_time, zone_name
from events.languages import DEFAULT_LANGUAGE, current_language
from events.models import (
    OPEN_PAYMENT_STATUSES,
    Offering,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    Registration,
    RegistrationStatus,
    SeatPool,
    Session,
    SessionStatus,
    utcnow,
)
from events.offering_text import offering_text
from events.passes import refunding
from events.passes.booking import PassSummary, credits_expired_on_return, credits_given_back, pass_summary
from events.payments import balances
from events.payments.receipts import Receipt, card_label, desk_method_word
from events.payments.services import payment_processing
from events.registration import links, services

# When a refund reaches the card once Stripe has it (Stripe's own wording for card refunds).
REFUND_ARRIVES = "5–10 business days"


def refund_arrives() -> str:
    """How long a card refund takes to arrive, in the page's language."""
    return gettext("5–10 business days")


class State(Enum):
    CONFIRMED = "confirmed"
    AWAITING_PAYMENT = "awaiting_payment"
    PAYMENT_PENDING = "payment_pending"
    RELEASED = "released"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Action:
    label: str
    url: str


@dataclass(frozen=True)
class RefundLine:
    amount_cents: int
    currency: str
    issued: bool  # Stripe has it (else still to be sent by the worker, or failed)
    failed: bool


@dataclass
class ManagePage:
    registration: Registration
    state: State
    sessions: list[Session]  # the scheduled ones it covers (cancelled ones marked in the list)
    hold_until: datetime | None = None  # while the hold lasts; in the location's zone
    receipt: Receipt | None = None
    refunds: list[RefundLine] = field(default_factory=list)
    next_step: Action | None = None  # the one action of RELEASED
    paid_too_late: bool = False  # RELEASED, and a payment came after: it is being sent back
    other_dates: list[Session] = field(default_factory=list)  # CANCELLED: book another date
    cancellable: bool = False  # booked or held, and not started: "Cancel my registration"
    started: bool = False
    # Booked, and owing the difference of a transfer onto a dearer date: its payment link.
    balance_due_cents: int = 0
    balance_url: str = ""
    balance_receipts: list[Receipt] = field(default_factory=list)  # the balance paid by card
    # Booked with a class pass: "Class pass: 1 credit (6 of 10 left, expires Jun 14)", and,
    # once cancelled, whether its credits came back.
    paid_with_pass: PassSummary | None = None
    pass_credits_back: int = 0
    pass_credits_expired: bool = False  # given back onto an expired pass, so expired with it
    # Given back onto a pass already refunded, so refunded as money: the cents (None: not so).
    pass_credits_refunded_cents: int | None = None
    # ... handed back at the desk (the pass was bought there): "cash" or "check", in words.
    pass_credits_refunded_at_desk: str = ""


def _open_payment(registration: Registration) -> bool:
    return (
        db.session.scalar(
            sa.select(Payment.id)
            .where(Payment.registration_id == registration.id, Payment.status.in_(OPEN_PAYMENT_STATUSES))
            .limit(1)
        )
        is not None
    )


def state_of(registration: Registration, now: datetime) -> State:
    status = registration.status
    if status == RegistrationStatus.CONFIRMED:
        return State.CONFIRMED
    if status == RegistrationStatus.CANCELLED:
        return State.CANCELLED
    if status == RegistrationStatus.HELD:
        if services.hold_is_live(registration, now):
            return State.PAYMENT_PENDING if payment_processing(registration) else State.AWAITING_PAYMENT
        # Run out: the seat is still kept while a payment's answer is awaited (grace).
        return State.PAYMENT_PENDING if _open_payment(registration) else State.RELEASED
    return State.RELEASED  # expired


def offering_url(offering: Offering, session: Session | None, external: bool = False) -> str:
    """The offering page at its registration form, with this date chosen (a class's)."""
    if session is not None and offering.kind.per_session:
        return url_for(
            "catalog.offering", slug=offering.slug, session=session.id, _anchor="register", _external=external
        )
    return url_for("catalog.offering", slug=offering.slug, _anchor="register", _external=external)


def _bookable(offering: Offering) -> bool:
    return offering.is_published and not offering.is_cancelled


def _released_next_step(registration: Registration, now: datetime) -> Action:
    """Register again (or join the waitlist) for the same date, if it is still to come."""
    offering = registration.offering
    session = registration.session
    pool = registration.seat_pool
    start = services.first_session_start(registration)
    if not _bookable(offering) or start is None or start <= now:
        return Action(gettext("See other dates"), url_for("catalog.schedule"))
    if session is not None and session.status != SessionStatus.SCHEDULED:
        return Action(gettext("See other dates"), offering_url(offering, None))
    # Its own lapsed hold still counts until the next sweep: that seat is free for them.
    free = pool.seats_left + (1 if registration.status == RegistrationStatus.HELD else 0)
    label = gettext("Register again") if free > 0 else gettext("Join the waitlist")
    return Action(label, offering_url(offering, session))


def other_dates(registration: Registration, now: datetime | None = None, limit: int = 6) -> list[Session]:
    """Upcoming dates with a free seat to book instead: a class's other sessions; for a
    workshop or course (one registration for all its dates), the next sessions of other
    offerings on the same topic, one per offering."""
    now = now or utcnow()
    offering = registration.offering
    base = (
        sa.select(Session)
        .join(SeatPool, SeatPool.id == Session.seat_pool_id)
        .join(Offering, Offering.id == Session.offering_id)
        .where(
            Session.status == SessionStatus.SCHEDULED,
            Session.starts_at > now,
            SeatPool.seats_taken < SeatPool.capacity,
            Offering.is_published.is_(True),
            Offering.is_cancelled.is_(False),
        )
        .order_by(Session.starts_at, Session.id)
    )
    if offering.kind.per_session:
        query = base.where(Session.offering_id == offering.id)
        if registration.session_id:
            query = query.where(Session.id != registration.session_id)
        return list(db.session.scalars(query.limit(limit)))
    # Whole offerings start on their first session: an offering whose first one is past has begun.
    firsts = (
        sa.select(Session.offering_id, sa.func.min(Session.starts_at).label("first"))
        .where(Session.status == SessionStatus.SCHEDULED)
        .group_by(Session.offering_id)
        .subquery()
    )
    query = base.join(
        firsts, sa.and_(firsts.c.offering_id == Session.offering_id, firsts.c.first == Session.starts_at)
    ).where(Offering.topic == offering.topic, Offering.id != offering.id)
    return list(db.session.scalars(query.limit(limit)))


def _refund_lines(payment_id: int) -> list[RefundLine]:
    rows = db.session.scalars(
        sa.select(Refund).where(Refund.payment_id == payment_id).order_by(Refund.id)
    ).all()
    return [
        RefundLine(
            r.amount_cents,
            r.payment.currency,
            issued=r.status == RefundStatus.SUCCEEDED,
            failed=r.status in (RefundStatus.FAILED, RefundStatus.CANCELED),
        )
        for r in rows
    ]


def manage_page(registration: Registration, now: datetime | None = None) -> ManagePage:
    now = now or utcnow()
    state = state_of(registration, now)
    sessions = services.registration_sessions(registration)
    page = ManagePage(registration, state, sessions)
    zone = registration.offering.location.zone
    if services.hold_is_live(registration, now) and registration.hold_expires_at is not None:
        page.hold_until = registration.hold_expires_at.astimezone(zone)
    payment = services.succeeded_payment(registration)
    if payment is not None:
        page.receipt = Receipt.of(payment)
        page.refunds = _refund_lines(payment.id)
    if state == State.RELEASED:
        page.next_step = _released_next_step(registration, now)
        page.paid_too_late = (
            db.session.scalar(
                sa.select(Payment.id)
                .where(Payment.registration_id == registration.id, Payment.status == PaymentStatus.SUCCEEDED)
                .limit(1)
            )
            is not None
        )
    if state == State.CANCELLED:
        page.other_dates = other_dates(registration, now)
    page.started = has_started(registration, now)
    page.cancellable = can_cancel(registration, now)
    page.paid_with_pass = pass_summary(registration)
    if page.paid_with_pass is not None and state == State.CANCELLED:
        page.pass_credits_back = credits_given_back(registration)
        page.pass_credits_expired = credits_expired_on_return(registration)
        refunded = refunding.returned_credits_refunded(registration)  # (one read of its refunds)
        if refunded is not None:
            page.pass_credits_refunded_cents = sum(cents for _, cents in refunded)
            if page.pass_credits_refunded_cents:
                page.pass_credits_refunded_at_desk = desk_method_word(refunding.desk_method(refunded))
    if state == State.CONFIRMED:
        page.balance_due_cents = balances.balance_due(registration)
        if page.balance_due_cents:
            page.balance_url = links.balance_url(registration, external=False)
        page.balance_receipts = [Receipt.of(p) for p in balances.balance_payments(registration)]
    return page


@dataclass(frozen=True)
class CancelPreview:
    """What cancelling now does, said before it is done: the refund by the policy, where it
    goes and when it arrives."""

    registration: Registration
    sessions: list[Session]
    quote: services.RefundQuote
    paid_cents: int  # what was paid (0: free, or held and not paid)
    card: str  # "Visa ending 4242", or "" (then "your card")
    arrives: str = field(default_factory=refund_arrives)
    at_desk: str = ""  # "cash" or "check" (the reader's word): paid at the desk, refunded there
    pass_credits: int = 0  # booked with a class pass: the credits it spent
    pass_credits_back: bool = False  # ... and cancelling now gives them back
    pass_expired: bool = False  # ... onto a pass past its expiry: they expire at once
    pass_refunded: bool = False  # ... onto a pass already refunded: they are refunded as money
    pass_refund_cents: int = 0  # ... that much (a quote)
    pass_refund_at_desk: str = ""  # ... handed back at the desk: "cash" or "check", in words


def cancel_preview(registration: Registration, now: datetime | None = None) -> CancelPreview:
    now = now or utcnow()
    payment = services.succeeded_payment(registration)
    pass_payment, pass_refund_cents = refunding.returned_credits_quote(registration)
    return CancelPreview(
        registration=registration,
        sessions=[
            s for s in services.registration_sessions(registration) if s.status == SessionStatus.SCHEDULED
        ],
        quote=services.refund_quote(registration, now),
        # Everything paid for the seat: its first payment and a balance paid after a transfer.
        paid_cents=sum(p.amount_cents for p in balances.seat_payments(registration)),
        card=card_label(payment.card_brand, payment.card_last4) if payment is not None else "",
        at_desk=desk_method_word(payment.method) if payment is not None and payment.method.at_desk else "",
        pass_credits=registration.credits_spent if registration.pass_id is not None else 0,
        pass_credits_back=registration.pass_id is not None
        and services.pass_credits_come_back(registration, now),
        pass_expired=services.credits_expire_on_return(registration, now),
        pass_refunded=refunding.is_refunded(registration),
        pass_refund_cents=pass_refund_cents,
        pass_refund_at_desk=desk_method_word(pass_payment.method)
        if pass_payment is not None and pass_payment.method.at_desk
        else "",
    )


def has_started(registration: Registration, now: datetime) -> bool:
    start = services.first_session_start(registration)
    return start is not None and start <= now


def can_cancel(registration: Registration, now: datetime | None = None) -> bool:
    """A member may cancel a booking, or release a seat held while they pay, until it starts.
    Not while a payment is going through (it could still succeed), nor a hold run out."""
    now = now or utcnow()
    booked_or_held = state_of(registration, now) in (State.CONFIRMED, State.AWAITING_PAYMENT)
    return booked_or_held and not has_started(registration, now)


@dataclass(frozen=True)
class ClaimedPlace:
    """Where a claimed waitlist seat stands, for the waitlist link (private to that person)
    and a second press of "Claim": one message and its one next step."""

    state: State
    message: str
    action: Action
    hold_until: datetime | None = None  # AWAITING_PAYMENT: in the location's zone


def claimed_place(
    registration: Registration, now: datetime | None = None, resumed: bool = False
) -> ClaimedPlace:
    """The registration a claimed offer became: its payment while the hold lasts, else its
    manage page (booked; a payment going through; a hold run out, which offers "Register
    again"; cancelled, which offers "Book another date"). `resumed`: the pay link says
    "Welcome back" (for someone pressing "Claim" again)."""
    now = now or utcnow()
    state = state_of(registration, now)
    manage = links.manage_url(registration, external=False)
    if state == State.AWAITING_PAYMENT and registration.hold_expires_at is not None:
        until = registration.hold_expires_at.astimezone(registration.offering.location.zone)
        return ClaimedPlace(
            state,
            gettext("You claimed your seat. Pay to book it."),
            Action(gettext("Continue to payment"), links.pay_url(registration, resumed=resumed)),
            until,
        )
    if state == State.CONFIRMED:
        return ClaimedPlace(
            state,
            gettext("You claimed your seat: you're booked."),
            Action(gettext("See your registration"), manage),
        )
    if state == State.PAYMENT_PENDING:
        return ClaimedPlace(
            state,
            gettext(
                "You claimed your seat and your payment is going through. We'll email you when it completes."
            ),
            Action(gettext("See your registration"), manage),
        )
    if state == State.RELEASED:
        return ClaimedPlace(
            state,
            gettext(
                "You claimed your seat, but the payment wasn't completed in time, so it was released. "
                "You weren't charged."
            ),
            Action(gettext("See your registration"), manage),
        )
    return ClaimedPlace(
        state,
        gettext("You claimed your seat, and that registration was later cancelled."),
        Action(gettext("See your registration"), manage),
    )


# --- The payment link for what a booking still owes ---


class BalanceState(Enum):
    DUE = "due"  # something is owed: the card form
    PAID = "paid"  # paid (by this link, or at the desk): nothing to pay
    NOT_BOOKED = "not_booked"  # cancelled (or otherwise not booked): nothing to pay


@dataclass(frozen=True)
class BalancePage:
    registration: Registration
    state: BalanceState
    due_cents: int
    what: str  # "Core & Hip Strength, Wed Dec 2, 6:00 pm CST"
    receipts: list[Receipt]  # the balance paid by card, when it was


def _local_label(session: Session) -> str:
    """'Wed Dec 2, 6:00 pm CST' (as staff write it); in another language as it writes a day
    and a time ('mié, 2 dic, 18:00 CST')."""
    start = session.local_start
    if current_language() == DEFAULT_LANGUAGE:
        meridiem = "am" if start.hour < 12 else "pm"
        return f"{start:%a %b %-d, %-I:%M} {meridiem} {start.tzname()}"
    return gettext(
        "%(day)s, %(time)s %(zone)s",
        day=format_short_day(start),
        time=format_time(start),
        zone=zone_name(start),
    )


def balance_page(registration: Registration) -> BalancePage:
    """What the member's payment link shows: what is owed and what it is for, or that it
    is paid (with the receipt), or that the booking is no longer booked."""
    sessions = [
        s for s in services.registration_sessions(registration) if s.status == SessionStatus.SCHEDULED
    ]
    title = offering_text(registration.offering).title  # in the page's language, when translated
    if registration.session is not None:
        what = gettext("%(title)s, %(when)s", title=title, when=_local_label(registration.session))
    elif sessions:
        what = gettext("%(title)s, from %(when)s", title=title, when=_local_label(sessions[0]))
    else:
        what = title
    receipts = [Receipt.of(p) for p in balances.balance_payments(registration)]
    if registration.status != RegistrationStatus.CONFIRMED:
        return BalancePage(registration, BalanceState.NOT_BOOKED, 0, what, receipts)
    due = balances.balance_due(registration)
    state = BalanceState.DUE if due else BalanceState.PAID
    return BalancePage(registration, state, due, what, receipts)
