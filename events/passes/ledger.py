"""The credit ledger of class passes: the one place a pass's credits change.

The ledger is the truth: a pass's balance is the sum of its rows, never a counter. Every change
locks the pass row first (SELECT ... FOR UPDATE; on SQLite writers are already serialised by
BEGIN IMMEDIATE) and checks the balance under that lock, so two bookings on the last credit
cannot both spend it. Lock order, the same on every path that touches money:
seat pools (in id order) -> promo code -> passes (in id order) -> payments (in id order).

Functions here write rows in the caller's transaction and never commit.

Credits given back onto a pass past its expiry (a booking made before the expiry, for a class
after it): when the clinic cancelled or moved the class, the pass's expiry moves on so they stay
usable (keep_usable, an EXTENSION row the member reads); when the member cancelled in time, they
come back and expire at once (an EXPIRY row, as the expiry task writes), so no balance ever sits
on a pass that can't be used.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, aliased

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
    new_expires_at: datetime | None = None,
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
        new_expires_at=new_expires_at,
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


def give_back(
    registration: Registration, now: datetime, reason: str = "", usable_for_days: int | None = None
) -> PassLedgerEntry | None:
    """Return a booking's credits to its pass (an on-time cancellation, the clinic's
    cancellation or move). At most once per booking; None if it spent none or got them back.
    Takes lock_pass() (the caller holds the seat pool's).

    `usable_for_days`: the clinic cancelled or moved the class, so the credits stay usable for
    at least that many days (keep_usable). None: the member's own cancellation, whose credits
    expire as the pass does: onto a pass already expired, at once."""
    if registration.pass_id is None or not registration.credits_spent:
        return None
    pass_ = lock_pass(registration.pass_id)
    if _settled(pass_.id, registration.id):
        return None
    if is_expired(pass_, now) and not expiry_written(pass_):
        # What was left when the pass expired goes first, as the expiry task would have taken
        # it: only the credits given back may be kept usable, whichever of the two ran first.
        expire(pass_, now)
    entry = write(
        pass_,
        LedgerKind.RETURN,
        registration.credits_spent,
        registration=registration,
        reason=reason,
        now=now,
    )
    if usable_for_days is not None:
        keep_usable(pass_, registration, now, usable_for_days)
    if is_expired(pass_, now):
        expire(pass_, now, registration=registration, reason="Given back after the pass expired")
    return entry


def is_expired(pass_: Pass, now: datetime) -> bool:
    """Active and past its expiry. A paused pass is not (its expiry moves on when restarted)."""
    return (
        pass_.status is PassStatus.ACTIVE
        and pass_.frozen_since is None
        and pass_.expires_at is not None
        and pass_.expires_at <= now
    )


def keep_usable(pass_: Pass, registration: Registration, now: datetime, days: int) -> PassLedgerEntry | None:
    """Credits the clinic gave back (it cancelled or moved the class) can be used for at least
    `days` days from now: a pass that has expired, or expires sooner, gets that expiry, written
    as an EXTENSION row naming the booking and the new date. A paused pass is left alone (its
    expiry moves on by the days paused); 0 days extends nothing. The caller holds lock_pass."""
    if pass_.status is not PassStatus.ACTIVE or pass_.frozen_since is not None or pass_.anonymised_at:
        return None
    usable_until = now + timedelta(days=days)
    if days <= 0 or pass_.expires_at is None or pass_.expires_at >= usable_until:
        return None
    pass_.expires_at = usable_until
    return write(
        pass_,
        LedgerKind.EXTENSION,
        0,
        registration=registration,
        reason=f"Expiry moved on {days} days: the clinic cancelled or moved a class booked with it",
        now=now,
        new_expires_at=usable_until,
    )


def expire(
    pass_: Pass, now: datetime, *, registration: Registration | None = None, reason: str = "Expired"
) -> PassLedgerEntry:
    """Take what is left off a pass past its expiry: an EXPIRY row, even when nothing is left
    (it says the pass expired). `registration`: the booking whose credits came back after the
    expiry. The caller holds lock_pass."""
    left = balance(pass_.id)
    return write(pass_, LedgerKind.EXPIRY, -max(left, 0), registration=registration, reason=reason, now=now)


def expiry_written_for(
    pass_id: sa.ColumnElement[int] | InstrumentedAttribute[int] | int,
) -> sa.ColumnElement[bool]:
    """The pass's current expiry has its EXPIRY row: one written after the last EXTENSION (an
    expiry keep_usable moved on needs a new one when it comes). Ledger rows of a pass are written
    under its lock, so their ids follow the order they were written in. Restarting a paused pass
    moves its expiry too, but never revives one already expired: no new row is due then."""
    expiry = aliased(PassLedgerEntry)
    extension = aliased(PassLedgerEntry)
    later_extension = (
        sa.select(extension.id)
        .where(
            extension.pass_id == pass_id,
            extension.kind == LedgerKind.EXTENSION,
            extension.id > expiry.id,
        )
        .exists()
    )
    return (
        sa.select(expiry.id)
        .where(expiry.pass_id == pass_id, expiry.kind == LedgerKind.EXPIRY, ~later_extension)
        .exists()
    )


def expiry_written(pass_: Pass) -> bool:
    """Whether the pass's current expiry has its EXPIRY row (expiry_written_for)."""
    return bool(db.session.scalar(sa.select(expiry_written_for(pass_.id))))


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
