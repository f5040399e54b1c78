"""The front desk's view of registrations: search, register someone, refund."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from events import audit, pricing
from events.extensions import db
from events.models import (
    Offering,
    OutboxEmail,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundKind,
    Registration,
    RegistrationStatus,
    Session,
    User,
)
from events.notifications.outbox import EmailKind
from events.payments import refunds
from events.registration.services import (
    Outcome,
    Person,
    RegisterResult,
    RegistrationError,
    register,
    succeeded_payment,
)
from events.staff import bookings
from events.staff.errors import AdminError
from events.staff.rosters import desk_methods, paid_and_refunded, payment_label


@dataclass
class RegistrationLine:
    registration: Registration
    paid_cents: int
    refunded_cents: int
    method: PaymentMethod | None = None

    @property
    def payment_label(self) -> str:
        return payment_label(self.registration, self.paid_cents, self.refunded_cents, self.method)


REGISTRATIONS_PER_PAGE = 100


@dataclass
class RegistrationPage:
    """One page of a search, newest first. older_than: the `before` that asks for the next
    (older) page, None on the last one."""

    lines: list[RegistrationLine]
    older_than: int | None


def like_pattern(text: str) -> str:
    """'%text%' for LIKE/ILIKE ... ESCAPE '\\', with the wildcards in text taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_registrations(
    q: str = "",
    offering_id: int | None = None,
    status: str = "",
    before: int | None = None,
    per_page: int = REGISTRATIONS_PER_PAGE,
) -> RegistrationPage:
    """Registrations matching a name, email or offering title (any part of one), newest first.

    Paged by id (keyset: the rows older than `before`), so a page costs the same at the
    hundredth as at the first, and is read along the primary key or, with a search, from the
    trigram indexes on name and email that PostgreSQL has (migration 0011); the offering
    titles matching are looked up first, so that every arm of the OR can use an index.
    """
    query = (
        sa.select(Registration)
        .options(
            joinedload(Registration.offering),
            joinedload(Registration.session).joinedload(Session.location),
        )
        .order_by(Registration.id.desc())
        .limit(per_page + 1)
    )
    text = q.strip().lower()
    if text:
        pattern = like_pattern(text)
        matching_offerings = list(
            db.session.scalars(
                sa.select(Offering.id).where(sa.func.lower(Offering.title).like(pattern, escape="\\"))
            )
        )
        query = query.where(
            sa.or_(
                # ILIKE on PostgreSQL (its trigram index serves it), lower() LIKE lower() on SQLite.
                Registration.name.ilike(pattern, escape="\\"),
                Registration.email_normalized.like(pattern, escape="\\"),
                Registration.offering_id.in_(matching_offerings),
            )
        )
    if offering_id:
        query = query.where(Registration.offering_id == offering_id)
    if status:
        query = query.where(Registration.status == status)
    if before:
        query = query.where(Registration.id < before)
    registrations = list(db.session.scalars(query))
    older_than = registrations[per_page - 1].id if len(registrations) > per_page else None
    registrations = registrations[:per_page]
    ids = [r.id for r in registrations]
    money = paid_and_refunded(ids)
    methods = desk_methods(ids)
    lines = [RegistrationLine(r, *money.get(r.id, (0, 0)), methods.get(r.id)) for r in registrations]
    return RegistrationPage(lines, older_than)


def staff_names_for_refunds(payment: Payment | None) -> dict[int, str]:
    """The names of the staff who asked for this payment's refunds, by user id (one query)."""
    ids = {r.created_by_id for r in payment.refunds if r.created_by_id} if payment else set()
    if not ids:
        return {}
    rows = db.session.execute(sa.select(User.id, User.name).where(User.id.in_(ids)))
    return {user_id: name for user_id, name in rows}


def desk_price_choices(offering: Offering) -> list[tuple[str, str]]:
    """The prices staff may register someone at, as the public form offers them: each tier,
    a community seat (refused by the service once none is kept for the date), or the list
    price when there are no tiers. Empty for a free offering."""
    if offering.is_free:
        return []
    money = bookings.money
    choices = [(f"tier-{t.id}", f"{t.name} tier, {money(t.price_cents)}") for t in offering.price_tiers]
    if not choices:
        choices = [("list", f"List price, {money(offering.price_cents)}")]
    if offering.community_seats > 0:
        choices.append(
            ("community", f"Community seat, {money(offering.community_price_cents)} (while one is kept)")
        )
    return choices


def register_on_behalf(
    offering: Offering,
    session_id: int | None,
    person: Person,
    actor: User,
    desk_method: PaymentMethod | None = None,
    payment_note: str = "",
    price_choice: pricing.PriceChoice | None = None,
) -> RegisterResult:
    """Register someone as staff: the same rules and emails as the public form, priced as it
    prices (`price_choice`: a tier, a community seat, a promo code; RegistrationError with the
    field when one can't be used). For a paid one, `desk_method` (cash, check, comp) takes the
    quoted price at the desk at once, which books the held seat; without it, the seat is held
    and staff send the payment link. The audit trail says how it was priced."""
    try:
        result = register(offering, session_id, person, source="staff", price_choice=price_choice)
    except RegistrationError:
        db.session.rollback()
        raise
    if result.outcome in (Outcome.CONFIRMED, Outcome.HELD):
        registration = result.registration
        assert registration is not None  # both outcomes come with their registration
        priced: dict[str, object] = {"price_cents": registration.price_cents}
        if registration.price_tier is not None:
            priced["tier"] = registration.price_tier.name
        if registration.community_seat:
            priced["community_seat"] = True
        if registration.promo_code is not None:
            priced |= {"code": registration.promo_code.code, "discount_cents": registration.discount_cents}
        audit.record(
            actor.id,
            "registration.created_by_staff",
            "registration",
            registration.id,
            outcome=result.outcome.value,
            name=registration.name,
            offering_id=offering.id,
            offering_title=offering.title,
            **priced,
        )
        db.session.commit()
    existing = result.registration if result.outcome is Outcome.ALREADY_REGISTERED else None
    owes = existing is not None and (
        existing.status == RegistrationStatus.HELD or bookings.balance_due(existing) > 0
    )
    if desk_method is not None and (result.outcome is Outcome.HELD or owes):
        # A new hold, or the one they already had (paying at the desk is why staff register
        # them again): the desk payment books it.
        assert result.registration is not None
        bookings.take_desk_payment(result.registration.id, desk_method, payment_note, actor)
        db.session.refresh(result.registration)
        return RegisterResult(Outcome.CONFIRMED, result.registration)
    return result


def manual_refund(registration: Registration, amount_cents: int, reason: str, actor: User) -> Refund:
    """Queue a refund of part or all of what is left (the worker sends it to Stripe after
    commit, and the "refund issued" email once Stripe has accepted it)."""
    payment = succeeded_payment(registration)
    if payment is None:
        raise AdminError("There is no successful payment to refund.")
    if amount_cents <= 0:
        raise AdminError("Enter an amount above zero.", "amount")
    # The refund locks (seat pool, then payment) before reading what is left: a cancellation
    # or another refund of this payment waits for this one, and then counts it.
    payment = refunds.lock_for_refund(payment.id)
    left = refunds.refundable_remaining(payment)
    if left == 0:
        raise AdminError("Nothing is left to refund on this payment.")
    if amount_cents > left:
        raise AdminError(f"At most ${left / 100:.2f} is left to refund.", "amount")
    n = (
        db.session.execute(
            sa.select(sa.func.count())
            .select_from(Refund)
            .join(Refund.payment)
            .where(Payment.registration_id == registration.id, Refund.kind == RefundKind.MANUAL)
        ).scalar_one()
        + 1
    )
    refund, _ = refunds.queue_refund(
        payment.id,
        amount_cents,
        kind=RefundKind.MANUAL,
        key=f"manual-refund-{registration.id}-{n}",
        reason=reason or "Manual refund",
        actor_id=actor.id,
    )
    assert refund is not None  # a new key, and the amount was checked against what is left under the lock
    audit.record_about(
        actor.id,
        "refund.requested",
        registration,
        refund_id=refund.id,
        amount_cents=amount_cents,
        reason=reason[:200],
    )
    db.session.commit()
    return refund


def retry_refund(refund_id: int, actor: User) -> Refund:
    """Send a refund Stripe refused to the worker again (if the payment still covers it)."""
    try:
        refund = refunds.retry_failed_refund(refund_id)
    except refunds.RefundError as error:
        db.session.rollback()
        raise AdminError(str(error)) from error
    registration = refund.payment.registration
    if registration is None:  # (a pass's refund is retried from the pass's page)
        raise AdminError("This refund is for a class pass: retry it from the pass's page.")
    audit.record(
        actor.id,
        "refund.retried",
        "registration",
        registration.id,
        refund_id=refund.id,
        amount_cents=refund.amount_cents,
        name=registration.name,
        offering_id=registration.offering_id,
        offering_title=registration.offering.title,
    )
    db.session.commit()
    return refund


def other_payments(registration: Registration, shown: Payment | None) -> list[Payment]:
    """Its payments that went through besides the one shown first: a balance paid after a
    transfer (by card or at the desk), or an extra payment sent back (with its refund)."""
    return [
        p
        for p in db.session.scalars(
            sa.select(Payment)
            .where(Payment.registration_id == registration.id, Payment.status == PaymentStatus.SUCCEEDED)
            .order_by(Payment.id)
            .options(selectinload(Payment.refunds))  # the page lists each one's refunds: one query
        )
        if shown is None or p.id != shown.id
    ]


def balance_links_sent(registration: Registration) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.registration_id == registration.id, OutboxEmail.kind == EmailKind.BALANCE_DUE)
        )
        or 0
    )
