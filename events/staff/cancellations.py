"""The clinic calls off a session or a whole offering: everyone is told, refunded in full and
their seats freed, in one transaction that holds the seat pools first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from events import audit
from events.extensions import db
from events.filters import staff_time
from events.models import (
    WAITLIST_ACTIVE_STATUSES,
    Offering,
    Payment,
    RefundKind,
    Registration,
    RegistrationStatus,
    Session,
    SessionStatus,
    User,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_email
from events.passes import ledger
from events.passes.refunding import payments_of_refunded_passes, returned_credits_quote
from events.payments import refunds
from events.payments.balances import seat_payments
from events.registration import seats
from events.registration.services import credits_context, mark_cancelled, settle_pass_credits
from events.staff.rosters import registrations_covering


@dataclass(frozen=True)
class DeskRefund:
    """A refund of a cash or check payment: recorded as given at once, handed back at the desk
    by staff (never sent to Stripe), so the page names who gets what."""

    name: str
    amount_cents: int
    method: str  # "cash" or "check"


@dataclass
class CancelTotals:
    """What a cancellation does (or, before it, would do): the people told, the refunds (card
    and desk together) and their sum in cents, the desk ones by name, the waitlist entries cleared."""

    people: int = 0
    refunds: int = 0
    refund_cents: int = 0
    waitlist: int = 0
    whole_offering: bool = False  # a workshop's or course's last date: the offering goes too
    desk_refunds: list[DeskRefund] = field(default_factory=list)

    @property
    def card_refunds(self) -> int:
        """Refunds sent to Stripe by the worker."""
        return self.refunds - len(self.desk_refunds)

    @property
    def card_refund_cents(self) -> int:
        return self.refund_cents - self.desk_refund_cents

    @property
    def desk_refund_cents(self) -> int:
        return sum(d.amount_cents for d in self.desk_refunds)

    def add(self, other: CancelTotals) -> None:
        self.people += other.people
        self.refunds += other.refunds
        self.refund_cents += other.refund_cents
        self.waitlist += other.waitlist
        self.desk_refunds.extend(other.desk_refunds)

    def count_refund(self, registration: Registration, payment: Payment, cents: int) -> None:
        """Add one refund of `cents` (none when 0) to the totals, by name if it is a desk one."""
        if not cents:
            return
        self.refunds += 1
        self.refund_cents += cents
        if payment.method.at_desk:
            self.desk_refunds.append(DeskRefund(registration.name, cents, payment.method.value))


_LIVE = (RegistrationStatus.CONFIRMED, RegistrationStatus.HELD)


def _preview_registrations(registrations: Iterable[Registration]) -> CancelTotals:
    totals = CancelTotals()
    for registration in registrations:
        if registration.status not in _LIVE:
            continue
        totals.people += 1
        for payment in seat_payments(registration):  # its first, and a balance paid after a transfer
            totals.count_refund(registration, payment, refunds.refundable_remaining(payment))
        # Booked with a pass since refunded: its credits come back as money.
        pass_payment, cents = returned_credits_quote(registration)
        if pass_payment is not None:
            totals.count_refund(registration, pass_payment, cents)
    return totals


def _waiting(pool_ids: Iterable[int]) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(WaitlistEntry)
            .where(
                WaitlistEntry.seat_pool_id.in_(list(pool_ids)),
                WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES),
            )
        )
        or 0
    )


def _other_scheduled_dates(session: Session) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Session)
            .where(
                Session.offering_id == session.offering_id,
                Session.status == SessionStatus.SCHEDULED,
                Session.id != session.id,
            )
        )
        or 0
    )


def preview_offering_cancel(offering: Offering) -> CancelTotals:
    """What cancelling the offering would do now, for the confirmation page (unlocked: a quote)."""
    registrations = db.session.scalars(
        sa.select(Registration).where(Registration.offering_id == offering.id).order_by(Registration.id)
    )
    totals = _preview_registrations(registrations)
    totals.waitlist = _waiting({s.seat_pool_id for s in offering.sessions})
    totals.whole_offering = True
    return totals


def preview_session_cancel(session: Session) -> CancelTotals:
    """What cancelling this session would do now, for the confirmation page (a quote)."""
    if session.offering.kind.per_session:
        totals = _preview_registrations(db.session.scalars(registrations_covering(session)))
        totals.waitlist = _waiting([session.seat_pool_id])
        return totals
    if _other_scheduled_dates(session) == 0:
        return preview_offering_cancel(session.offering)
    # A workshop's or course's other dates go on: everyone is told, nobody refunded.
    confirmed = registrations_covering(session).where(Registration.status == RegistrationStatus.CONFIRMED)
    people = db.session.scalar(sa.select(sa.func.count()).select_from(confirmed.subquery())) or 0
    return CancelTotals(people=people)


def _cancel_registrations(
    registrations: Iterable[Registration], actor: User, reason: str, key: str, session_id: int | None
) -> CancelTotals:
    """Cancel, refund in full whatever is left of what was paid, and tell each person the amount
    actually queued. The caller holds the seat pools (in id order)."""
    totals = CancelTotals()
    now = utcnow()
    registrations = list(registrations)
    live = [r for r in registrations if r.status in _LIVE]
    # The locks after the pools, in the one order: the passes of class pass bookings (their
    # credits always come back when the clinic cancels), then every payment below, in id order
    # (those of the seats, and those of refunded passes, whose credits come back as money).
    for pass_id in sorted({r.pass_id for r in live if r.pass_id is not None}):
        ledger.lock_pass(pass_id)
    paid = [p for r in live for p in seat_payments(r)] + payments_of_refunded_passes(live)
    for payment_id in sorted({p.id for p in paid}):
        refunds.lock_for_refund(payment_id)
    settled = {
        registration.id: settle_pass_credits(
            registration,
            now,
            True,
            reason=f"Clinic cancelled: {reason}",
            clinic_caused=True,
            actor_id=actor.id,
        )
        for registration in sorted(live, key=lambda r: (r.pass_id or 0, r.id))
        if registration.pass_id is not None
    }
    for registration in registrations:
        if registration.status not in _LIVE:
            continue
        totals.people += 1
        pool = seats.lock_pool(registration.seat_pool_id)
        paid_with = seat_payments(registration)
        # Everything paid goes back (each capped at what is left on it), in the payments' id order.
        queued = refunds.queue_refunds_across(
            paid_with,
            sum(p.amount_cents for p in paid_with),
            kind=RefundKind.CLINIC_CANCELLATION,
            key=f"{key}-registration-{registration.id}",
            reason=reason,
            actor_id=actor.id,
        )
        for payment, cents in queued:
            totals.count_refund(registration, payment, cents)
        refund_cents = sum(cents for _, cents in queued)
        for payment, cents in (settled[registration.id].refunds or []) if registration.id in settled else []:
            totals.count_refund(registration, payment, cents)
        mark_cancelled(registration, reason, now)
        # The session is already cancelled, so the freed seat is offered to nobody.
        seats.free_seat(pool, now)
        context = {"refund_cents": refund_cents, "currency": registration.currency, "reason": reason[:300]}
        if queued and all(payment.method.at_desk for payment, _ in queued):
            context["desk_method"] = queued[0][0].method.value  # handed back there, not to a card
        if registration.id in settled:
            context |= credits_context(registration, settled[registration.id], now)
        queue_email(
            EmailKind.SESSION_CANCELLED,
            registration=registration,
            session_id=session_id,
            context=context,
        )
        audit.record_about(
            actor.id,
            "registration.cancelled",
            registration,
            refund_cents=refund_cents,
            method=paid_with[0].method.value if paid_with else "",
            reason=reason[:200],
        )
    return totals


def _clear_waitlist(pool_id: int, actor: User) -> int:
    entries = db.session.scalars(
        sa.select(WaitlistEntry).where(
            WaitlistEntry.seat_pool_id == pool_id, WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES)
        )
    ).all()
    pool = seats.lock_pool(pool_id)
    now = utcnow()
    for entry in entries:
        held_a_seat = entry.status == WaitlistStatus.OFFERED
        entry.status = WaitlistStatus.LEFT
        if held_a_seat:
            seats.free_seat(pool, now)
    if entries:
        audit.record(
            actor.id,
            "waitlist.cleared",
            "seat_pool",
            pool_id,
            entries=len(entries),
            offering_id=pool.offering_id,
        )
    return len(entries)


def cancel_session(session_id: int, actor: User, reason: str) -> int:
    """cancel_session_totals, returning the number of refunds queued."""
    return cancel_session_totals(session_id, actor, reason).refunds


def cancel_session_totals(session_id: int, actor: User, reason: str) -> CancelTotals:
    """Cancel one session. A class's registrations are cancelled and refunded in full; for a
    workshop or course, everyone is told, and if no other session remains the whole offering is
    cancelled. Running it again does nothing more (and returns zeros). Returns what was done."""
    session = db.session.get_one(Session, session_id)
    seats.lock_pool(session.seat_pool_id)
    db.session.refresh(session)
    if session.status == SessionStatus.CANCELLED:
        db.session.commit()
        return CancelTotals()
    session.status = SessionStatus.CANCELLED
    session.cancel_reason = reason[:400]
    offering = session.offering
    entry = audit.record(
        actor.id, "session.cancelled", "session", session.id, offering_id=offering.id, reason=reason[:200]
    )
    totals = CancelTotals()
    if offering.kind.per_session:
        registrations = db.session.scalars(registrations_covering(session)).all()
        totals = _cancel_registrations(
            registrations, actor, reason, f"cancel-session-{session.id}", session.id
        )
        totals.waitlist = _clear_waitlist(session.seat_pool_id, actor)
    elif _other_scheduled_dates(session) == 0:
        totals = _cancel_offering(offering, actor, reason)
    else:
        for registration in db.session.scalars(
            registrations_covering(session).where(Registration.status == RegistrationStatus.CONFIRMED)
        ):
            totals.people += 1
            queue_email(
                EmailKind.SESSION_CANCELLED,
                registration=registration,
                session_id=session.id,
                context={"refund_cents": 0, "currency": registration.currency, "reason": reason[:300]},
            )
    # The entry's details are complete only now (a new dict: JSON columns don't track edits).
    entry.details = {
        **entry.details,
        "offering_id": offering.id,
        "offering_title": offering.title,
        "starts_local": staff_time(session.starts_at, session.location),
        "people": totals.people,
        "refunds": totals.refunds,
        "refund_cents": totals.refund_cents,
        "desk_refund_cents": totals.desk_refund_cents,
    }
    db.session.commit()
    return totals


def _cancel_offering(offering: Offering, actor: User, reason: str) -> CancelTotals:
    offering.is_cancelled = True
    entry = audit.record(
        actor.id, "offering.cancelled", "offering", offering.id, offering_id=offering.id, reason=reason[:200]
    )
    for session in offering.sessions:
        session.status = SessionStatus.CANCELLED
    registrations = db.session.scalars(
        sa.select(Registration).where(Registration.offering_id == offering.id).order_by(Registration.id)
    ).all()
    totals = _cancel_registrations(registrations, actor, reason, f"cancel-offering-{offering.id}", None)
    for pool_id in sorted({s.seat_pool_id for s in offering.sessions}):
        totals.waitlist += _clear_waitlist(pool_id, actor)
    totals.whole_offering = True
    entry.details = {
        **entry.details,
        "offering_id": offering.id,
        "offering_title": offering.title,
        "people": totals.people,
        "refunds": totals.refunds,
        "refund_cents": totals.refund_cents,
        "desk_refund_cents": totals.desk_refund_cents,
    }
    return totals


def cancel_offering(offering_id: int, actor: User, reason: str) -> int:
    """cancel_offering_totals, returning the number of refunds queued."""
    return cancel_offering_totals(offering_id, actor, reason).refunds


def cancel_offering_totals(offering_id: int, actor: User, reason: str) -> CancelTotals:
    """Cancel every date of an offering, refunding and telling everyone. Returns what was done
    (zeros if it was already cancelled)."""
    seats.lock_offering_pools(offering_id)
    offering = db.session.get_one(Offering, offering_id)
    db.session.refresh(offering)
    if offering.is_cancelled:
        db.session.commit()
        return CancelTotals()
    totals = _cancel_offering(offering, actor, reason)
    db.session.commit()
    return totals
