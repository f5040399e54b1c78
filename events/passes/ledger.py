"""The credit ledger of class passes: the one place a pass's credits change.

The ledger is the truth: a pass's balance is the sum of its rows, never a counter. Every change
locks the pass row first (SELECT ... FOR UPDATE; on SQLite writers are already serialised by
BEGIN IMMEDIATE) and checks the balance under that lock, so two bookings on the last credit
cannot both spend it. Lock order, the same on every path that touches money:
seat pools (in id order) -> promo code -> passes (in id order) -> payments (in id order).

Functions here write rows in the caller's transaction and never commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from events.extensions import db
from events.models import (
    LedgerKind,
    Offering,
    Pass,
    PassLedgerEntry,
    PassProduct,
    PassStatus,
    PassValidityStart,
    Registration,
)


class NotEnoughCredits(Exception):
    """The pass cannot pay for this: too few credits, not active, frozen, expired or not valid
    for the class. The message says which, for the member."""


def lock_pass(pass_id: int) -> Pass:
    """Lock the pass row for the rest of the transaction and return it, freshly read."""
    return db.session.execute(
        sa.select(Pass).where(Pass.id == pass_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def balance(pass_id: int) -> int:
    """Credits left: the sum of the pass's ledger."""
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(PassLedgerEntry.credits), 0)).where(
                PassLedgerEntry.pass_id == pass_id
            )
        )
        or 0
    )


def balances(pass_ids: list[int]) -> dict[int, int]:
    """Credits left of several passes, in one query."""
    rows = db.session.execute(
        sa.select(PassLedgerEntry.pass_id, sa.func.sum(PassLedgerEntry.credits))
        .where(PassLedgerEntry.pass_id.in_(pass_ids))
        .group_by(PassLedgerEntry.pass_id)
    ).all()
    found = {pass_id: int(total) for pass_id, total in rows}
    return {pass_id: found.get(pass_id, 0) for pass_id in pass_ids}


def offering_kinds(value: str) -> set[str]:
    return {part.strip() for part in value.split(",") if part.strip()}


def product_covers(product: PassProduct, offering: Offering) -> bool:
    """Whether a pass of this product can pay for a booking of this offering (empty = any)."""
    kinds = offering_kinds(product.offering_kinds)
    if kinds and offering.kind.value not in kinds:
        return False
    if product.offerings and offering.id not in {o.id for o in product.offerings}:
        return False
    return not (product.locations and offering.location_id not in {loc.id for loc in product.locations})


def is_usable(pass_: Pass, now: datetime) -> bool:
    """Active, not paused for a medical reason, not past its expiry, not closed by its holder's
    "Delete my data" (or anonymised after the retention period)."""
    if pass_.status is not PassStatus.ACTIVE or pass_.frozen_since is not None:
        return False
    if pass_.anonymised_at is not None:
        return False
    return pass_.expires_at is None or pass_.expires_at > now


def write(
    pass_: Pass,
    kind: LedgerKind,
    credits: int,
    *,
    registration: Registration | None = None,
    actor_id: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> PassLedgerEntry:
    """Write one ledger row. The caller holds lock_pass(pass_.id); a row that would take the
    balance below zero is refused (NotEnoughCredits) and nothing is written."""
    if credits < 0 and balance(pass_.id) + credits < 0:
        raise NotEnoughCredits("not enough credits left on this pass")
    entry = PassLedgerEntry(
        pass_id=pass_.id,
        kind=kind,
        credits=credits,
        registration_id=registration.id if registration is not None else None,
        actor_id=actor_id,
        reason=reason[:200],
    )
    if now is not None:
        entry.created_at = now
    db.session.add(entry)
    db.session.flush()
    return entry


def start_validity(pass_: Pass, now: datetime) -> None:
    """Set the expiry if it has not started counting (validity from first use)."""
    if pass_.expires_at is None:
        pass_.expires_at = now + timedelta(days=pass_.validity_days)


def activate(pass_: Pass, now: datetime) -> PassLedgerEntry:
    """A paid (or desk-sold) pass becomes usable: its purchase row, its expiry if it counts from
    purchase. Idempotent: a pass already activated gets no second purchase row."""
    existing = db.session.scalar(
        sa.select(PassLedgerEntry).where(
            PassLedgerEntry.pass_id == pass_.id, PassLedgerEntry.kind == LedgerKind.PURCHASE
        )
    )
    if existing is not None:
        return existing
    pass_.status = PassStatus.ACTIVE
    pass_.activated_at = now
    pass_.hold_expires_at = None
    if pass_.product.validity_starts is PassValidityStart.PURCHASE:
        start_validity(pass_, now)
    return write(pass_, LedgerKind.PURCHASE, pass_.credits, now=now)


def spend(pass_: Pass, registration: Registration, now: datetime) -> PassLedgerEntry:
    """Pay for `registration` with `pass_`: registration.credits_spent credits (the offering's
    credits_per_booking). The caller holds the seat pool's lock and then lock_pass()."""
    if not is_usable(pass_, now):
        raise NotEnoughCredits("this pass cannot be used now")
    if not product_covers(pass_.product, registration.offering):
        raise NotEnoughCredits("this pass is not valid for this class")
    credits = registration.offering.credits_per_booking
    entry = write(pass_, LedgerKind.SPEND, -credits, registration=registration, now=now)
    start_validity(pass_, now)
    registration.pass_id = pass_.id
    registration.credits_spent = credits
    return entry


def give_back(registration: Registration, now: datetime, reason: str = "") -> PassLedgerEntry | None:
    """Return a booking's credits to its pass (an on-time cancellation, the clinic's
    cancellation or move). At most once per booking; None if it spent none or got them back.
    The credits expire as the pass does. Takes lock_pass() (the caller holds the seat pool's)."""
    if registration.pass_id is None or not registration.credits_spent:
        return None
    pass_ = lock_pass(registration.pass_id)
    if _settled(pass_.id, registration.id):
        return None
    return write(
        pass_,
        LedgerKind.RETURN,
        registration.credits_spent,
        registration=registration,
        reason=reason,
        now=now,
    )


def forfeit(registration: Registration, now: datetime, reason: str = "") -> PassLedgerEntry | None:
    """Record that a booking's credits stay spent (a late cancellation, a no-show): a row of
    zero credits, so the pass's history says what happened. At most once per booking."""
    if registration.pass_id is None or not registration.credits_spent:
        return None
    pass_ = lock_pass(registration.pass_id)
    if _settled(pass_.id, registration.id):
        return None
    return write(pass_, LedgerKind.FORFEIT, 0, registration=registration, reason=reason, now=now)


def _settled(pass_id: int, registration_id: int) -> bool:
    """Whether the booking's credits were already given back or forfeited."""
    return (
        db.session.scalar(
            sa.select(PassLedgerEntry.id).where(
                PassLedgerEntry.pass_id == pass_id,
                PassLedgerEntry.registration_id == registration_id,
                PassLedgerEntry.kind.in_((LedgerKind.RETURN, LedgerKind.FORFEIT)),
            )
        )
        is not None
    )
