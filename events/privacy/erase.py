"""A person's "Delete my data": everything booked with an address, at once.

In one transaction: upcoming bookings (and seats held while paying) are cancelled by the
offering's policy, their refunds queued through the one refund path under its locks (every
seat pool in id order, then every payment in id order), waitlist places left (an offered seat
goes to the next person); then every registration and waitlist place of the address is
anonymised (events/privacy/anonymise.py) with its emails and audit entries, and the addresses
on its "find my registrations" and privacy emails are emptied. One email confirms it, to the
address, which that email's row keeps only until it is sent (requests.tidy).
Refunds are sent to Stripe by the worker after commit, as always; no per-booking email is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from events import audit
from events.extensions import db
from events.languages import current_language
from events.models import (
    OutboxEmail,
    PrivacyRequest,
    RefundKind,
    Registration,
    RegistrationStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from events.notifications.outbox import EmailKind, dedupe_key, queue_email
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
class ErasurePlan:
    """What erasing would do now (a quote: the erasure itself recomputes under the locks)."""

    cancellations: list[PlannedCancellation]
    waitlist_places: int
    registrations: int

    @property
    def refund_cents(self) -> int:
        return sum(c.refund_cents for c in self.cancellations)

    @property
    def currency(self) -> str:
        return self.cancellations[0].currency if self.cancellations else "usd"


@dataclass(frozen=True)
class Erasure:
    cancelled: int
    refund_cents: int
    currency: str
    registrations: int
    waitlist_places: int


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
    return ErasurePlan(cancellations, waiting, len(registrations))


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
    # The locks, in the one order: seat pools by id, then payments by id.
    pools = {
        pool_id: seats.lock_pool(pool_id)
        for pool_id in sorted({r.seat_pool_id for r in live} | {e.seat_pool_id for e in active})
    }
    for row in (*live, *active):
        db.session.refresh(row)
    live = [r for r in live if r.status in LIVE]
    active = [e for e in active if e.status in ACTIVE_WAITLIST]
    # A booking paid with a class pass: its credits go back as a member's cancellation would
    # give them (before the cut-off or after a move), passes locked after the pools and before
    # any payment. (What becomes of the pass itself is the passes' erasure.)
    for registration in sorted(live, key=lambda r: (r.pass_id or 0, r.id)):
        if registration.pass_id is not None:
            settle_pass_credits(
                registration, now, pass_credits_come_back(registration, now), reason=ERASE_REASON
            )
    # Every payment that paid for a seat: its first and any balance paid after a transfer.
    payments = {r.id: seat_payments(r) for r in live}
    for payment_id in sorted(p.id for paid in payments.values() for p in paid):
        refunds.lock_for_refund(payment_id)
    refund_cents = 0
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
    db.session.flush()

    # The confirmation is written in the language they last booked in (else the page's).
    booked = max(registrations, key=lambda r: r.id, default=None)
    language = booked.language if booked is not None else current_language()
    reg_ids = [r.id for r in registrations]
    entry_ids = [e.id for e in entries]
    for ids in anonymise.chunks(reg_ids):
        anonymise.anonymise_registrations(ids, now)
    for ids in anonymise.chunks(entry_ids):
        anonymise.anonymise_waitlist_entries(ids, now)
    if address:
        anonymise.anonymise_address_emails(anonymise.address_matches(OutboxEmail.to_email, address))
        anonymise.forget_privacy_requests(anonymise.address_matches(PrivacyRequest.email, address), now)
    db.session.expire_all()  # the rows were changed by set-based statements

    result = Erasure(len(live), refund_cents, currency, len(reg_ids), len(entry_ids))
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
    )
    db.session.commit()
    return result
