"""Buying a class pass online, and what its holder's page shows.

A purchase is a pass held (status HELD, hold_expires_at like a seat's hold) while its buyer pays
by card on our payment page, through the one charging function a registration's card payment
uses too (events/payments/charging.py): the intent is recorded under the pass's lock before it
is charged (of two submissions only one charges), then applied by payments.services.apply_intent,
which hands a pass's intent to events/passes/purchase.py. The webhook, the return from the page
and the reconcile sweep go through that one function too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext, lazy_gettext, ngettext

from events import pricing
from events.extensions import db
from events.filters import format_long_date
from events.models import (
    LedgerKind,
    Offering,
    OfferingKind,
    Pass,
    PassLedgerEntry,
    PassProduct,
    PassStatus,
    PassValidityStart,
    Payment,
    PaymentStatus,
    Registration,
    RegistrationStatus,
    Session,
    SessionStatus,
    utcnow,
)
from events.offering_text import offering_text
from events.passes import ledger
from events.passes.purchase import NEUTRAL_LABEL, issue
from events.payments.charging import UNAVAILABLE, Due, PaymentAttempt, charge_card, mark_payment_failed
from events.payments.declines import staff_reason
from events.payments.gateway import (
    GatewayRejected,
    GatewayUnavailable,
    IntentFor,
    IntentState,
    PaymentDeclined,
    get_gateway,
)
from events.payments.services import apply_intent
from events.registration.services import new_token, normalize_email

HOLD_LAPSED = lazy_gettext(
    "This purchase was not completed in time, so nothing was charged. You can start again."
)


@dataclass(frozen=True)
class Buyer:
    name: str
    email: str
    language: str = "en"


# --- Products on sale ---


def products_on_sale() -> list[PassProduct]:
    return list(
        db.session.scalars(
            sa.select(PassProduct)
            .where(PassProduct.is_on_sale.is_(True))
            .order_by(PassProduct.position, PassProduct.id)
        )
    )


def product_on_sale(product_id: int) -> PassProduct | None:
    product = db.session.get(PassProduct, product_id)
    return product if product is not None and product.is_on_sale else None


KIND_WORDS = {
    OfferingKind.CLASS.value: lazy_gettext("drop-in classes"),
    OfferingKind.WORKSHOP.value: lazy_gettext("workshops"),
    OfferingKind.COURSE.value: lazy_gettext("courses"),
}


def good_for(product: PassProduct) -> str:
    """What a pass is good for, in plain words: "drop-in classes at North Loop"."""
    kinds = [
        str(KIND_WORDS[k]) for k in sorted(ledger.offering_kinds(product.offering_kinds)) if k in KIND_WORDS
    ]
    if product.offerings:
        what = ", ".join(o.title for o in product.offerings)
    elif len(kinds) == 1:
        what = kinds[0]
    elif kinds:
        what = gettext("%(first)s and %(last)s", first=", ".join(kinds[:-1]), last=kinds[-1])
    else:
        what = gettext("every class, workshop and course")
    if product.locations:
        return gettext(
            "%(what)s at %(where)s", what=what, where=", ".join(loc.name for loc in product.locations)
        )
    return what


def validity_words(validity_days: int, starts: PassValidityStart) -> str:
    if starts is PassValidityStart.FIRST_USE:
        return gettext("valid %(days)s days from your first class", days=validity_days)
    return gettext("valid %(days)s days from purchase", days=validity_days)


# --- Buying by card ---


def start_purchase(
    product: PassProduct, buyer: Buyer, now: datetime | None = None, code: str | None = None
) -> Pass:
    """A pass held for its buyer while they pay; a pass that costs nothing (a free product, or a
    100% code) is issued at once. The price, with any promo code, is computed once by
    events/pricing.py and the code's use is counted under its row's lock (a pass purchase
    takes the code's lock first: no pool, then promo code -> pass -> payments). PricingError,
    with nothing written, for a code that can't be used. Commits."""
    now = now or utcnow()
    email_normalized = normalize_email(buyer.email)
    quote = pricing.quote_pass(product, code, email_normalized, now)
    # The code's row is locked (and its uses counted) before the pass row that names it is
    # written: the foreign key's share lock taken first would deadlock two buyers of one code.
    promo = None
    if quote.code is not None:
        try:
            promo = pricing.lock_for_use(quote.code.id, email_normalized, now)
        except pricing.PricingError:
            db.session.rollback()
            raise
    pass_ = Pass(
        product_id=product.id,
        name=buyer.name[:120],
        email=buyer.email[:254],
        email_normalized=email_normalized,
        status=PassStatus.HELD,
        credits=product.credits,
        price_cents=quote.total_cents,
        currency=product.currency,
        validity_days=product.validity_days,
        token=new_token(),
        source="public",
        language=buyer.language,
        hold_expires_at=now + timedelta(minutes=current_app.config["HOLD_MINUTES"]),
        promo_code_id=promo.id if promo is not None else None,
        discount_cents=quote.discount_cents,
    )
    db.session.add(pass_)
    db.session.flush()
    if promo is not None:
        pricing.write_redemption(promo, email_normalized, quote.discount_cents, now, pass_id=pass_.id)
    if quote.total_cents == 0:
        issue(ledger.lock_pass(pass_.id), now)
    db.session.commit()
    return pass_


def pass_by_token(token: str) -> Pass | None:
    return db.session.scalar(sa.select(Pass).where(Pass.token == token))


def hold_is_live(pass_: Pass, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return (
        pass_.status is PassStatus.HELD and pass_.hold_expires_at is not None and pass_.hold_expires_at > now
    )


def _closed_attempt(pass_: Pass) -> PaymentAttempt | None:
    if pass_.status is PassStatus.ACTIVE:
        return PaymentAttempt("succeeded")
    if not hold_is_live(pass_):
        return PaymentAttempt("closed", str(HOLD_LAPSED))
    return None


@dataclass(frozen=True)
class PassPrice:
    """A held pass's price: paying it issues the pass (the owner charging.charge_card is given).
    A pass has no seat pool; its own row is the lock (promo code -> pass -> payments)."""

    pass_id: int

    @property
    def intent_for(self) -> IntentFor:
        # A neutral label, never the product's name.
        return IntentFor(pass_id=self.pass_id, purpose="pass", label=NEUTRAL_LABEL)

    @property
    def payments(self) -> sa.ColumnElement[bool]:
        return Payment.pass_id == self.pass_id

    @property
    def log_name(self) -> str:
        return f"pass {self.pass_id}"

    @property
    def unavailable_message(self) -> str:
        return str(UNAVAILABLE)

    def due(self, charging: int | None = None) -> Due:
        pass_ = db.session.get_one(Pass, self.pass_id)
        return Due(pass_.price_cents, pass_.currency, _closed_attempt(pass_))

    def lock(self) -> None:
        ledger.lock_pass(self.pass_id)

    def record_decline(self, intent_id: str | None, declined: PaymentDeclined) -> None:
        mark_payment_failed(intent_id, staff_reason(declined.code, str(declined)))
        db.session.commit()

    def apply(self, state: IntentState) -> object:
        return apply_intent(state)


def pay_pass_with_card(pass_id: int, card_token: str) -> PaymentAttempt:
    """Charge a held pass's price to a tokenized card, then apply the result, as a seat's is
    (events/payments/charging.py)."""
    return charge_card(PassPrice(pass_id), card_token)


def complete_after_return(pass_id: int, intent_id: str | None) -> Pass:
    """Apply Stripe's state as the webhook would (a lost webhook strands nobody), then return
    the pass as it stands. `intent_id`: the one the browser came back with."""
    if intent_id is not None:
        db.session.commit()
        try:
            state = get_gateway().retrieve_intent(intent_id)
        except (GatewayUnavailable, GatewayRejected):
            state = None
        if state is not None and state.purpose == "pass" and state.pass_id == pass_id:
            apply_intent(state)
    return db.session.get_one(Pass, pass_id)


def payment_processing(pass_: Pass) -> bool:
    latest = db.session.scalar(
        sa.select(Payment.status).where(Payment.pass_id == pass_.id).order_by(Payment.id.desc()).limit(1)
    )
    return latest == PaymentStatus.PROCESSING


def live_passes(email: str, now: datetime | None = None) -> list[tuple[Pass, int]]:
    """The active passes of an address not past their expiry, with their balances (for "Find
    my registrations", which emails their links again). Two queries."""
    now = now or utcnow()
    rows = list(
        db.session.scalars(
            sa.select(Pass)
            .where(
                Pass.email_normalized == normalize_email(email),
                Pass.status == PassStatus.ACTIVE,
                sa.or_(Pass.expires_at.is_(None), Pass.expires_at > now),
            )
            .order_by(Pass.id)
            .limit(20)
        )
    )
    amounts = ledger.balances([p.id for p in rows]) if rows else {}
    return [(p, amounts[p.id]) for p in rows]


# --- The holder's page ---


@dataclass(frozen=True)
class HistoryLine:
    when: datetime
    kind: str
    credits: int
    what: str  # the class a credit was spent on or returned for, else ""
    reason: str
    session_start: datetime | None = None  # that class's date (a drop-in's), in its zone
    new_expires_at: datetime | None = None  # an extension: the pass's new expiry


@dataclass(frozen=True)
class PassPage:
    class_pass: Pass
    balance: int
    usable: bool
    history: list[HistoryLine]
    bookings: list[Registration]
    classes: list[Session]


def ledger_history(pass_: Pass) -> list[HistoryLine]:
    """A pass's ledger, oldest first, with the class each credit went to (two queries)."""
    entries = db.session.scalars(
        sa.select(PassLedgerEntry).where(PassLedgerEntry.pass_id == pass_.id).order_by(PassLedgerEntry.id)
    ).all()
    registration_ids = {e.registration_id for e in entries if e.registration_id is not None}
    regs = (
        {
            r.id: r
            for r in db.session.scalars(sa.select(Registration).where(Registration.id.in_(registration_ids)))
        }
        if registration_ids
        else {}
    )
    return [
        HistoryLine(
            when=e.created_at,
            kind=e.kind.value,
            credits=e.credits,
            what=offering_text(regs[e.registration_id].offering).title if e.registration_id in regs else "",
            reason=e.reason if e.kind in (LedgerKind.ADJUSTMENT,) else "",
            session_start=_booked_start(regs.get(e.registration_id or 0)),
            new_expires_at=e.new_expires_at,
        )
        for e in entries
    ]


def history_words(line: HistoryLine) -> str:
    """One line of a pass's history in words, as its page says it (the same messages)."""
    if line.kind == LedgerKind.PURCHASE.value:
        return ngettext("bought, %(num)d credit", "bought, %(num)d credits", line.credits)
    if line.kind == LedgerKind.SPEND.value:
        return ngettext(
            "%(num)d credit spent on %(what)s",
            "%(num)d credits spent on %(what)s",
            -line.credits,
            what=line.what,
        )
    if line.kind == LedgerKind.RETURN.value:
        return ngettext(
            "%(num)d credit returned (%(what)s cancelled)",
            "%(num)d credits returned (%(what)s cancelled)",
            line.credits,
            what=line.what,
        )
    if line.kind == LedgerKind.FORFEIT.value:
        return gettext("credits kept for %(what)s (cancelled late or missed)", what=line.what)
    if line.kind == LedgerKind.ADJUSTMENT.value:
        if line.credits >= 0:
            return ngettext(
                "%(num)d credit added by the clinic", "%(num)d credits added by the clinic", line.credits
            )
        return ngettext(
            "%(num)d credit taken off by the clinic", "%(num)d credits taken off by the clinic", -line.credits
        )
    if line.kind == LedgerKind.EXPIRY.value and line.what:
        return ngettext(
            "%(num)d credit expired: the pass had already expired when %(what)s was cancelled",
            "%(num)d credits expired: the pass had already expired when %(what)s was cancelled",
            -line.credits,
            what=line.what,
        )
    if line.kind == LedgerKind.EXPIRY.value:
        return ngettext("%(num)d credit expired", "%(num)d credits expired", -line.credits)
    if line.kind == LedgerKind.EXTENSION.value:
        return gettext(
            "the clinic cancelled or moved %(what)s, so your pass now expires %(date)s",
            what=line.what,
            date=format_long_date(line.new_expires_at),
        )
    return ngettext("%(num)d unused credit refunded", "%(num)d unused credits refunded", -line.credits)


def pass_page(pass_: Pass, now: datetime | None = None, class_limit: int = 12) -> PassPage:
    now = now or utcnow()
    history = ledger_history(pass_)
    if pass_.anonymised_at is not None:
        # Closed at the holder's request: the page says so, and shows nothing of what they booked.
        return PassPage(pass_, sum(line.credits for line in history), False, [], [], [])
    live = db.session.scalars(
        sa.select(Registration)
        .where(
            Registration.pass_id == pass_.id,
            Registration.status.in_((RegistrationStatus.CONFIRMED, RegistrationStatus.HELD)),
        )
        .order_by(Registration.id)
    )
    # Upcoming only: a drop-in's date still to come, a workshop or course with a date to come.
    bookings = [
        r
        for r in live
        if any(s.ends_at > now for s in ([r.session] if r.session is not None else r.offering.sessions))
    ]
    return PassPage(
        class_pass=pass_,
        balance=sum(line.credits for line in history),
        usable=ledger.is_usable(pass_, now),
        history=history,
        bookings=bookings,
        classes=covered_sessions(pass_.product, now, class_limit)
        if pass_.status is PassStatus.ACTIVE
        else [],
    )


def _booked_start(registration: Registration | None) -> datetime | None:
    if registration is None or registration.session is None:
        return None
    return registration.session.local_start


def covered_sessions(product: PassProduct, now: datetime, limit: int = 12) -> list[Session]:
    """Upcoming sessions of published offerings the product covers, soonest first."""
    query = (
        sa.select(Session)
        .join(Offering, Offering.id == Session.offering_id)
        .where(
            Session.starts_at > now,
            Session.status == SessionStatus.SCHEDULED,
            Offering.is_published.is_(True),
            Offering.is_cancelled.is_(False),
        )
        .order_by(Session.starts_at)
    )
    kinds = ledger.offering_kinds(product.offering_kinds)
    if kinds:
        query = query.where(
            Offering.kind.in_([OfferingKind(k) for k in kinds if k in OfferingKind._value2member_map_])
        )
    if product.offerings:
        query = query.where(Offering.id.in_([o.id for o in product.offerings]))
    if product.locations:
        query = query.where(Offering.location_id.in_([loc.id for loc in product.locations]))
    return list(db.session.scalars(query.limit(limit)))
