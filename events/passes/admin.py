"""Staff operations on class passes: the products on sale, selling one at the desk, and the
changes staff make to a pass (adjust, freeze, unfreeze, refund its unused credits, resend its
email). Each owns its transaction, takes the pass's lock before any payment's (the one lock
order), and writes an audit row in the same transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from events import audit
from events.extensions import db
from events.models import (
    LedgerKind,
    Location,
    Offering,
    Pass,
    PassLedgerEntry,
    PassProduct,
    PassStatus,
    PassValidityStart,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    User,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_pass_email
from events.passes import ledger
from events.passes.purchase import issue
from events.passes.refunding import RefundDecision, lock_pass_payments, pro_rata_cents, refund_unused_credits
from events.payments import refunds
from events.registration.services import new_token, normalize_email
from events.staff.errors import AdminError

PAGE_SIZE = 50


# --- Products ---


@dataclass(frozen=True)
class ProductData:
    name: str
    description: str
    credits: int
    price_cents: int
    validity_days: int
    validity_starts: PassValidityStart
    offering_kinds: list[str]
    offering_ids: list[int]
    location_ids: list[int]
    is_on_sale: bool
    position: int


def all_products() -> list[PassProduct]:
    return list(db.session.scalars(sa.select(PassProduct).order_by(PassProduct.position, PassProduct.id)))


def save_product(product: PassProduct | None, data: ProductData, actor: User) -> PassProduct:
    """Create (product None) or update a pass product. Passes already sold keep what they were
    sold with (their credits, price and validity are copied onto them)."""
    created = product is None
    if product is None:
        product = PassProduct()
        db.session.add(product)
    product.name = data.name
    product.description = data.description
    product.credits = data.credits
    product.price_cents = data.price_cents
    product.validity_days = data.validity_days
    product.validity_starts = data.validity_starts
    product.offering_kinds = ",".join(sorted(set(data.offering_kinds)))
    product.offerings = (
        list(db.session.scalars(sa.select(Offering).where(Offering.id.in_(data.offering_ids))))
        if data.offering_ids
        else []
    )
    product.locations = (
        list(db.session.scalars(sa.select(Location).where(Location.id.in_(data.location_ids))))
        if data.location_ids
        else []
    )
    product.is_on_sale = data.is_on_sale
    product.position = data.position
    db.session.flush()
    audit.record(
        actor.id,
        "pass_product.created" if created else "pass_product.updated",
        "pass_product",
        product.id,
        product_name=product.name,
        credits=product.credits,
        price_cents=product.price_cents,
        on_sale=product.is_on_sale,
    )
    db.session.commit()
    return product


# --- Selling at the desk ---


DESK_METHODS = (PaymentMethod.CASH, PaymentMethod.CHECK, PaymentMethod.COMP)


def sell_at_desk(
    product_id: int,
    name: str,
    email: str,
    method: PaymentMethod,
    note: str,
    actor: User,
    language: str = "en",
) -> Pass:
    """A pass paid at the desk (cash or check, or comp: free by the clinic's choice): active at
    once, its link emailed. Never touches Stripe."""
    if method not in DESK_METHODS:
        raise AdminError("Choose cash, check or comp.", "method")
    product = db.session.get(PassProduct, product_id)
    if product is None:
        raise AdminError("Choose a pass.", "product_id")
    now = utcnow()
    pass_ = Pass(
        product_id=product.id,
        name=name[:120],
        email=email[:254],
        email_normalized=normalize_email(email),
        status=PassStatus.HELD,
        credits=product.credits,
        price_cents=product.price_cents,
        currency=product.currency,
        validity_days=product.validity_days,
        token=new_token(),
        source="staff",
        language=language,
    )
    db.session.add(pass_)
    db.session.flush()
    pass_ = ledger.lock_pass(pass_.id)
    amount = 0 if method is PaymentMethod.COMP else product.price_cents
    payment = Payment(
        pass_id=pass_.id,
        registration_id=None,
        stripe_payment_intent_id=None,
        method=method,
        purpose=PaymentPurpose.PASS,
        amount_cents=amount,
        currency=product.currency,
        status=PaymentStatus.SUCCEEDED,
        paid_at=now,
        taken_by_id=actor.id,
        note=note[:200],
    )
    db.session.add(payment)
    db.session.flush()
    issue(pass_, now)
    audit.record(
        actor.id,
        "pass.sold_at_desk",
        "pass",
        pass_.id,
        name=pass_.name,
        product_name=product.name,
        method=method.value,
        amount_cents=amount,
        payment_id=payment.id,
    )
    db.session.commit()
    return pass_


# --- The passes list and a pass's page ---


@dataclass(frozen=True)
class PassLine:
    class_pass: Pass
    balance: int


@dataclass(frozen=True)
class PassListPage:
    lines: list[PassLine]
    next_before: int | None


def search_passes(q: str, before: int | None, page_size: int = PAGE_SIZE) -> PassListPage:
    """Newest first, by name or email, a page at a time (keyset on id): three statements
    however many passes there are (the page, its products, its balances)."""
    query = sa.select(Pass).order_by(Pass.id.desc()).limit(page_size + 1)
    q = q.strip()
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(Pass.name.ilike(like, escape="\\"), Pass.email_normalized.ilike(like, escape="\\"))
        )
    if before is not None:
        query = query.where(Pass.id < before)
    rows = list(db.session.scalars(query.options(sa.orm.selectinload(Pass.product))))
    more = len(rows) > page_size
    rows = rows[:page_size]
    amounts = ledger.balances([p.id for p in rows]) if rows else {}
    return PassListPage([PassLine(p, amounts[p.id]) for p in rows], rows[-1].id if more and rows else None)


@dataclass(frozen=True)
class PassDetail:
    class_pass: Pass
    balance: int
    ledger: list[PassLedgerEntry]
    payments: list[Payment]
    refunds: list[Refund]
    unused_refund_cents: int


def pass_detail(pass_id: int) -> PassDetail | None:
    pass_ = db.session.get(Pass, pass_id)
    if pass_ is None:
        return None
    entries = list(
        db.session.scalars(
            sa.select(PassLedgerEntry).where(PassLedgerEntry.pass_id == pass_id).order_by(PassLedgerEntry.id)
        )
    )
    payments = list(
        db.session.scalars(sa.select(Payment).where(Payment.pass_id == pass_id).order_by(Payment.id))
    )
    refund_rows = (
        list(
            db.session.scalars(
                sa.select(Refund).where(Refund.payment_id.in_([p.id for p in payments])).order_by(Refund.id)
            )
        )
        if payments
        else []
    )
    left = sum(e.credits for e in entries)
    return PassDetail(pass_, left, entries, payments, refund_rows, pro_rata_cents(pass_, payments, left))


def paid_cents(payments: list[Payment]) -> int:
    return sum(p.amount_cents for p in payments if p.status == PaymentStatus.SUCCEEDED)


# --- Changes staff make to a pass ---


def _active_pass(pass_id: int) -> Pass:
    pass_ = ledger.lock_pass(pass_id)
    if pass_.anonymised_at is not None:
        db.session.rollback()
        raise AdminError("This pass was closed and its holder's details deleted: it can't be changed.")
    if pass_.status is not PassStatus.ACTIVE:
        db.session.rollback()
        raise AdminError(f"This pass is {pass_.status.value}: only an active pass can be changed.")
    return pass_


def adjust(pass_id: int, credits: int, reason: str, actor: User) -> PassLedgerEntry:
    """Add (or take off) credits, with a reason. Never below zero: checked under the pass's lock."""
    if credits == 0:
        raise AdminError("Enter a number of credits other than 0.", "credits")
    pass_ = _active_pass(pass_id)
    try:
        entry = ledger.write(pass_, LedgerKind.ADJUSTMENT, credits, actor_id=actor.id, reason=reason)
    except ledger.NotEnoughCredits:
        left = ledger.balance(pass_id)
        db.session.rollback()
        raise AdminError(f"Only {left} credits are left: a pass can't go below zero.", "credits") from None
    audit.record(actor.id, "pass.adjusted", "pass", pass_.id, name=pass_.name, credits=credits, reason=reason)
    db.session.commit()
    return entry


def freeze(pass_id: int, reason: str, actor: User, now: datetime | None = None) -> Pass:
    """A medical pause: nothing can be booked with it until it is unfrozen."""
    now = now or utcnow()
    pass_ = _active_pass(pass_id)
    if pass_.frozen_since is not None:
        db.session.rollback()
        raise AdminError("This pass is already paused.")
    pass_.frozen_since = now
    audit.record(actor.id, "pass.frozen", "pass", pass_.id, name=pass_.name, reason=reason)
    db.session.commit()
    return pass_


def paused_days(frozen_since: datetime, now: datetime) -> int:
    """The days a pause lasted, a part day counted as a whole one (in the holder's favour)."""
    return max(math.ceil((now - frozen_since) / timedelta(days=1)), 0)


def unfreeze(pass_id: int, reason: str, actor: User, now: datetime | None = None) -> int:
    """End a pause: the expiry moves on by the days paused (if it had started counting).
    Returns those days."""
    now = now or utcnow()
    pass_ = _active_pass(pass_id)
    if pass_.frozen_since is None:
        db.session.rollback()
        raise AdminError("This pass is not paused.")
    days = paused_days(pass_.frozen_since, now)
    if pass_.expires_at is not None:
        pass_.expires_at = pass_.expires_at + timedelta(days=days)
    pass_.frozen_since = None
    audit.record(actor.id, "pass.unfrozen", "pass", pass_.id, name=pass_.name, days=days, reason=reason)
    db.session.commit()
    return days


def refund_unused(
    pass_id: int, reason: str, actor: User, expected_cents: int | None = None
) -> RefundDecision:
    """Refund the unused credits pro rata (refund_unused_credits): pending refund rows sent by
    the worker; a cash or check payment's recorded as handed back at the desk. Locks: the pass,
    then its payments. `expected_cents`: what the confirmation page showed; a different figure
    now (a booking meanwhile) is refused."""
    pass_ = _active_pass(pass_id)
    unused = ledger.balance(pass_id)
    if unused <= 0:
        db.session.rollback()
        raise AdminError("No credits are left on this pass to refund.")
    payments = lock_pass_payments(pass_id)
    cents = pro_rata_cents(pass_, payments, unused)
    if expected_cents is not None and cents != expected_cents:
        db.session.rollback()
        raise AdminError(
            "The pass changed since this page was shown (a booking, perhaps). Check the figures again."
        )
    decision = refund_unused_credits(
        pass_, payments, unused, f"Unused class pass credits ({unused})", actor.id, reason
    )
    audit.record(
        actor.id,
        "pass.refunded",
        "pass",
        pass_.id,
        name=pass_.name,
        credits=unused,
        amount_cents=decision.cents,
        reason=reason,
    )
    db.session.commit()
    return decision


def resend(pass_id: int, actor: User) -> None:
    """Email the pass's link again (a new email each time staff ask)."""
    pass_ = db.session.get(Pass, pass_id)
    if pass_ is None or pass_.status is not PassStatus.ACTIVE:
        raise AdminError("Only an active pass's email can be sent again.")
    entry = audit.record(actor.id, "pass.email_resent", "pass", pass_.id, name=pass_.name)
    db.session.flush()
    queue_pass_email(EmailKind.PASS_ISSUED, pass_, key_parts=(f"resend-{entry.id}",))
    db.session.commit()


def retry_refund(refund_id: int, actor: User) -> Refund:
    """Send a pass payment's refund that Stripe refused to the worker again."""
    try:
        refund = refunds.retry_failed_refund(refund_id)
    except refunds.RefundError as error:
        db.session.rollback()
        raise AdminError(str(error)) from error
    pass_ = db.session.get_one(Pass, refund.payment.pass_id)
    audit.record(
        actor.id,
        "pass.refund_retried",
        "pass",
        pass_.id,
        name=pass_.name,
        refund_id=refund.id,
        amount_cents=refund.amount_cents,
    )
    db.session.commit()
    return refund


# --- Expiry (the worker's periodic task) ---


def expire_due(now: datetime | None = None) -> int:
    """Write an EXPIRY row for what is left on each pass past its expiry, once per expiry (a
    pass whose expiry keep_usable moved on expires again when the new one comes). One indexed
    query when nothing is due; a paused pass waits (its expiry moves on when unpaused).
    Returns how many passes expired."""
    now = now or utcnow()
    already = ledger.expiry_written_for(Pass.id)
    due = list(
        db.session.scalars(
            sa.select(Pass.id)
            .where(
                Pass.status == PassStatus.ACTIVE,
                Pass.expires_at <= now,
                Pass.frozen_since.is_(None),
                ~already,
            )
            .order_by(Pass.id)
        )
    )
    db.session.rollback()
    for pass_id in due:
        pass_ = ledger.lock_pass(pass_id)
        if ledger.is_expired(pass_, now) and not ledger.expiry_written(pass_):
            ledger.expire(pass_, now)
        db.session.commit()
    return len(due)
