"""A person's "Delete my data": everything booked with an address, at once.

In one transaction: upcoming bookings (and seats held while paying) are cancelled by the
offering's policy, their refunds queued through the one refund path under its locks (every
seat pool in id order, then every pass, then every payment in id order), waitlist places left
(an offered seat goes to the next person); the address's class passes are closed: what is
unused is refunded pro rata by the staff action's own function
(passes.admin.refund_unused_credits: one refund per pass whoever decides it), and a pass still
held while its payment is in flight is voided (a payment that succeeds later is refunded once
by the late-payment path); then every registration, waitlist place and pass of the address is
anonymised (events/privacy/anonymise.py) with its emails and audit entries, and the addresses
on its "find my registrations" and privacy emails are emptied. One email confirms it, to the
address, which that email's row keeps only until it is sent (requests.tidy).
Refunds are sent to Stripe by the worker after commit, as always; no per-booking email is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from events import audit
from events.extensions import db
from events.languages import current_language
from events.models import (
    OutboxEmail,
    Pass,
    PassStatus,
    Payment,
    PaymentStatus,
    PrivacyRequest,
    RefundKind,
    Registration,
    RegistrationStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from events.notifications.outbox import EmailKind, dedupe_key, queue_email
from events.passes import ledger, refunding
from events.payments import refunds
from events.payments.balances import seat_payments
from events.privacy import anonymise
from events.registration import seats
from events.registration.services import (
    mark_cancelled,
    normalize_email,
    pass_credits_come_back,
    refund_quote,
    registration_sessions,
    settle_pass_credits,
)

ERASE_REASON = "Cancelled: the person asked us to delete their data"
PASS_CLOSED_REASON = "Closed: the holder asked us to delete their data"
LIVE = (RegistrationStatus.CONFIRMED, RegistrationStatus.HELD)
ACTIVE_WAITLIST = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


@dataclass(frozen=True)
class PlannedCancellation:
    registration_id: int
    title: str
    starts_at: datetime | None  # local, in its place's zone
    refund_cents: int
    currency: str


@dataclass(frozen=True)
class PlannedPassClosure:
    pass_id: int
    product: str
    credits_left: int  # unused, refunded pro rata (0 for a pass held while paying)
    refund_cents: int
    currency: str
    held: bool  # bought by card and not paid yet: voided


@dataclass(frozen=True)
class ErasurePlan:
    """What erasing would do now (a quote: the erasure itself recomputes under the locks)."""

    cancellations: list[PlannedCancellation]
    waitlist_places: int
    registrations: int
    passes: list[PlannedPassClosure] = field(default_factory=list)

    @property
    def refund_cents(self) -> int:
        return sum(c.refund_cents for c in self.cancellations) + sum(p.refund_cents for p in self.passes)

    @property
    def currency(self) -> str:
        if self.cancellations:
            return self.cancellations[0].currency
        return self.passes[0].currency if self.passes else "usd"


@dataclass(frozen=True)
class Erasure:
    cancelled: int
    refund_cents: int  # the cancelled bookings' refunds
    currency: str
    registrations: int
    waitlist_places: int
    passes: int = 0  # passes anonymised
    passes_closed: int = 0  # of which still usable or held until now
    pass_refund_cents: int = 0  # the closed passes' unused credits

    @property
    def total_refund_cents(self) -> int:
        return self.refund_cents + self.pass_refund_cents


def _passes(address: str) -> list[Pass]:
    if not address:
        return []
    return list(db.session.scalars(sa.select(Pass).where(Pass.email_normalized == address).order_by(Pass.id)))


def _open(pass_: Pass, now: datetime) -> bool:
    """A pass erasing closes: active and not expired (its unused credits are refunded), or held."""
    if pass_.anonymised_at is not None:
        return False
    if pass_.status is PassStatus.HELD:
        return True
    return pass_.status is PassStatus.ACTIVE and (pass_.expires_at is None or pass_.expires_at > now)


def _successful(payments: list[Payment]) -> list[Payment]:
    return [p for p in payments if p.status == PaymentStatus.SUCCEEDED]


def _rows(address: str) -> tuple[list[Registration], list[WaitlistEntry]]:
    registrations = list(
        db.session.scalars(
            sa.select(Registration).where(Registration.email_normalized == address).order_by(Registration.id)
        )
    )
    entries = list(
        db.session.scalars(
            sa.select(WaitlistEntry)
            .where(WaitlistEntry.email_normalized == address)
            .order_by(WaitlistEntry.id)
        )
    )
    return registrations, entries


def _still_to_end(registration: Registration, now: datetime) -> bool:
    """Booked or held, with a session still to come (or under way)."""
    if registration.status not in LIVE:
        return False
    return any(s.ends_at > now for s in registration_sessions(registration))


def plan(email: str, now: datetime, registration: Registration | None = None) -> ErasurePlan:
    """`registration`: the one staff act from (when it has no address, it is all there is)."""
    address = normalize_email(email)
    registrations, entries = _rows(address) if address else ([registration] if registration else [], [])
    cancellations = []
    for registration in registrations:
        if not _still_to_end(registration, now):
            continue
        sessions = registration_sessions(registration)
        cancellations.append(
            PlannedCancellation(
                registration.id,
                registration.offering.title,
                sessions[0].local_start if sessions else None,
                refund_quote(registration, now).amount_cents,
                registration.currency,
            )
        )
    waiting = sum(1 for e in entries if e.status in ACTIVE_WAITLIST)
    closures = []
    for pass_ in _passes(address):
        if not _open(pass_, now):
            continue
        held = pass_.status is PassStatus.HELD
        left = 0 if held else max(ledger.balance(pass_.id), 0)
        closures.append(
            PlannedPassClosure(
                pass_.id,
                pass_.product.name,
                left,
                0 if held else refunding.pro_rata_cents(pass_, _successful(list(pass_.payments)), left),
                pass_.currency,
                held,
            )
        )
    return ErasurePlan(cancellations, waiting, len(registrations), closures)


def erase(
    email: str,
    request: PrivacyRequest,
    now: datetime,
    actor_id: int | None = None,
    registration_id: int | None = None,
) -> Erasure:
    """Cancel, refund, anonymise and confirm, in one transaction (committed here).

    `request` is the privacy request being carried out (the link used, or staff's); staff name
    the registration they acted from, so the entry shows in its history. A registration with
    no address (a walk-in who gave none) is a person of its own: only it is erased."""
    address = normalize_email(email)
    if address:
        registrations, entries = _rows(address)
    else:
        registrations = [db.session.get_one(Registration, registration_id)] if registration_id else []
        entries = []
    live = [r for r in registrations if _still_to_end(r, now)]
    active = [e for e in entries if e.status in ACTIVE_WAITLIST]
    pass_ids = [p.id for p in _passes(address)]
    # The locks, in the one order: seat pools by id, then passes by id, then payments by id.
    pools = {
        pool_id: seats.lock_pool(pool_id)
        for pool_id in sorted({r.seat_pool_id for r in live} | {e.seat_pool_id for e in active})
    }
    # The address's passes, and those its upcoming bookings were paid with (whoever holds them).
    booked_with = {r.pass_id for r in live if r.pass_id is not None}
    locked_passes = {pass_id: ledger.lock_pass(pass_id) for pass_id in sorted(set(pass_ids) | booked_with)}
    passes = [locked_passes[pass_id] for pass_id in pass_ids]
    for row in (*live, *active):
        db.session.refresh(row)
    live = [r for r in live if r.status in LIVE]
    active = [e for e in active if e.status in ACTIVE_WAITLIST]
    # Then every payment, in id order: each that paid for a seat (its first and any balance
    # paid after a transfer), and each of the passes locked above (those being closed are
    # refunded below; a refunded one gets back as money the credits of a booking cancelled in
    # time). The passes being closed are known only once the credits are given back: all their
    # payments are locked first.
    payments = {r.id: seat_payments(r) for r in live}
    payments_of_passes = list(
        db.session.scalars(sa.select(Payment).where(Payment.pass_id.in_(sorted(locked_passes))))
        if locked_passes
        else []
    )
    locked = {
        payment_id: refunds.lock_for_refund(payment_id)
        for payment_id in sorted(
            {p.id for paid in payments.values() for p in paid} | {p.id for p in payments_of_passes}
        )
    }
    # A booking paid with a class pass: its credits go back as a member's cancellation would
    # give them (before the cut-off or after a move); onto a refunded pass, as money.
    refund_cents = 0
    for registration in sorted(live, key=lambda r: (r.pass_id or 0, r.id)):
        if registration.pass_id is not None:
            settled = settle_pass_credits(
                registration,
                now,
                pass_credits_come_back(registration, now),
                reason=ERASE_REASON,
                actor_id=actor_id,
            )
            refund_cents += settled.refunded_cents or 0
    closing = [p for p in passes if _open(p, now)]
    closing_ids = {p.id for p in closing}
    pass_payment_ids = {p.id for p in payments_of_passes if p.pass_id in closing_ids}
    currency = live[0].currency if live else "usd"
    for registration in live:
        quote = refund_quote(registration, now)
        mark_cancelled(registration, ERASE_REASON, now)
        if payments[registration.id] and quote.amount_cents > 0:
            queued = refunds.queue_refunds_across(
                payments[registration.id],
                quote.amount_cents,
                kind=RefundKind.CANCELLATION,
                key=f"erase-registration-{registration.id}",
                reason=ERASE_REASON,
                actor_id=actor_id,
            )
            refund_cents += sum(amount for _, amount in queued)
        seats.free_seat(pools[registration.seat_pool_id], now)
    for entry in active:
        offered = entry.status == WaitlistStatus.OFFERED
        entry.status = WaitlistStatus.LEFT
        if offered:
            seats.free_seat(pools[entry.seat_pool_id], now)  # the held seat goes to the next person
    # The passes, after the bookings (a booking cancelled in time may give credits back first).
    pass_refund_cents = 0
    for pass_ in closing:
        pass_refund_cents += _close_pass(
            pass_, [locked[i] for i in sorted(pass_payment_ids) if locked[i].pass_id == pass_.id], actor_id
        )
    if closing and not live:
        currency = closing[0].currency
    db.session.flush()

    # The confirmation is written in the language they last booked in (else the page's).
    booked = max(registrations, key=lambda r: r.id, default=None)
    language = (
        booked.language if booked is not None else passes[-1].language if passes else current_language()
    )
    reg_ids = [r.id for r in registrations]
    entry_ids = [e.id for e in entries]
    for ids in anonymise.chunks(reg_ids):
        anonymise.anonymise_registrations(ids, now)
    for ids in anonymise.chunks(entry_ids):
        anonymise.anonymise_waitlist_entries(ids, now)
    passes_anonymised = anonymise.anonymise_passes(pass_ids, now, keep_link=True)
    if address:
        anonymise.anonymise_address_emails(anonymise.address_matches(OutboxEmail.to_email, address))
        anonymise.forget_privacy_requests(anonymise.address_matches(PrivacyRequest.email, address), now)
    db.session.expire_all()  # the rows were changed by set-based statements

    result = Erasure(
        len(live),
        refund_cents,
        currency,
        len(reg_ids),
        len(entry_ids),
        passes_anonymised,
        len(closing),
        pass_refund_cents,
    )
    owner = f"p{request.id}"
    queue_email(
        EmailKind.DATA_ERASED,
        to_email=email.strip(),
        owner=owner,
        language=language,
        context={
            "cancelled": result.cancelled,
            "refund_cents": result.refund_cents,
            "currency": result.currency,
            "waitlist_places": len(active),
            "passes_closed": result.passes_closed,
            "pass_refund_cents": result.pass_refund_cents,
        },
    )
    request = db.session.get_one(PrivacyRequest, request.id)
    request.confirmation_email_id = db.session.scalar(
        sa.select(OutboxEmail.id).where(OutboxEmail.dedupe_key == dedupe_key(EmailKind.DATA_ERASED, owner))
    )
    audit.record(
        actor_id,
        "privacy.erased",
        "privacy_request",
        request.id,
        registration_id=registration_id,
        cancelled=result.cancelled,
        refund_cents=result.refund_cents,
        registrations=result.registrations,
        waitlist_places=result.waitlist_places,
        passes=result.passes,
        passes_closed=result.passes_closed,
        pass_refund_cents=result.pass_refund_cents,
    )
    db.session.commit()
    return result


def _close_pass(pass_: Pass, payments: list[Payment], actor_id: int | None) -> int:
    """Close a pass for good (the caller holds its lock, then its payments'): a held one is
    voided; an active one has its unused credits refunded pro rata, exactly as staff's "refund
    unused credits" does. Returns the cents refunded."""
    if pass_.status is PassStatus.HELD:
        pass_.status = PassStatus.VOID  # a payment that still succeeds is refunded once, later
        return 0
    unused = ledger.balance(pass_.id)
    if unused <= 0:
        return 0  # nothing left to refund: anonymising it (anonymised_at) makes it unusable
    decision = refunding.refund_unused_credits(
        pass_, payments, unused, f"Unused class pass credits ({unused})", actor_id, PASS_CLOSED_REASON
    )
    return decision.cents
