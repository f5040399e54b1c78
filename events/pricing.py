"""The one price function: what a registration or a pass costs, computed once, in one place.

quote() prices a registration from the offering's list price, the sliding-scale tier chosen (or
a community seat) and a promo code, which always applies AFTER the tier ("Community $5, code
PARTNER -20% -> $4"). Everything is integer cents and never below zero. The registration stores
what it was priced with (price_tier_id, promo_code_id, discount_cents, community_seat) and the
total as price_cents, which is what the PaymentIntent charges (events/payments/services.py).

A code's uses are counted, not kept in a counter: PromoRedemption rows not released. redeem()
counts them under the code row's lock (SELECT ... FOR UPDATE), in the registration's
transaction, after the seat pool was locked: pools -> promo code -> passes -> payments. A use is
given back (released_at) when a hold lapses or the booking is cancelled on time (see
release_for_registrations).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from flask_babel import gettext, lazy_gettext

from events.extensions import db
from events.models import (
    SEAT_TAKING_STATUSES,
    Offering,
    PassProduct,
    PriceTier,
    PromoCode,
    PromoKind,
    PromoRedemption,
    Registration,
    SeatPool,
    Session,
    SessionStatus,
)
from events.offering_text import tier_text
from events.registration.holds import lapsed_hold

CODE_MAX_LENGTH = 40
_CODE_SHAPE = re.compile(r"^[A-Z0-9_\-.]{1,40}$")

UNKNOWN_CODE = lazy_gettext("We don't know that code. Please check it, or leave the box empty.")


class PricingError(Exception):
    """A price choice or code that can't be used; the message is for the person, shown beside
    the form field named by `field`."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def normalize_code(code: str) -> str:
    """What a member types, matched case-insensitively with spaces removed ("northloop-well ")."""
    return "".join(code.split()).upper()


@dataclass(frozen=True)
class QuoteLine:
    label: str
    amount_cents: int  # a discount is negative


@dataclass(frozen=True)
class Quote:
    currency: str
    list_price_cents: int
    tier: PriceTier | None
    community: bool
    # The price before the code: the tier's, the community price, or the list price.
    base_cents: int
    code: PromoCode | None
    discount_cents: int
    total_cents: int
    lines: list[QuoteLine] = field(default_factory=list)

    @property
    def community_price_cents(self) -> int | None:
        return self.base_cents if self.community else None

    @property
    def is_free(self) -> bool:
        return self.total_cents == 0


def percent_off(base_cents: int, percent: int) -> int:
    """What `percent` % of `base_cents` is, rounded half up to the cent: 20% of 499 is 99.8 ->
    100; 15% of 10 cents is 1.5 -> 2; 15% of 9 cents is 1.35 -> 1."""
    return (base_cents * percent + 50) // 100


def discount_for(code: PromoCode, base_cents: int) -> int:
    """What a code takes off a price (never more than the price: the total is never below 0)."""
    match code.kind:
        case PromoKind.PERCENT_OFF:
            off = percent_off(base_cents, min(code.value, 100))
        case PromoKind.AMOUNT_OFF:
            off = code.value
        case PromoKind.FIXED_PRICE:
            off = base_cents - min(code.value, base_cents)  # a fixed price never raises one
    return max(0, min(off, base_cents))


def _kinds(code: PromoCode) -> set[str]:
    return {kind.strip() for kind in code.offering_kinds.split(",") if kind.strip()}


def covers_offering(code: PromoCode, offering: Offering) -> bool:
    """A code with no offering kinds and no offerings is good for every offering."""
    kinds = _kinds(code)
    offering_ids = {o.id for o in code.offerings}
    if not kinds and not offering_ids:
        return True
    return offering.kind.value in kinds or offering.id in offering_ids


def covers_pass(code: PromoCode, product: PassProduct) -> bool:
    """A code is good for passes only with applies_to_passes; then for every product, or
    only those listed."""
    if not code.applies_to_passes:
        return False
    products = {p.id for p in code.pass_products}
    return not products or product.id in products


def find_code(code: str) -> PromoCode:
    """The active code a member typed, or PricingError (unknown, or not a code's shape)."""
    normalized = normalize_code(code)
    if not _CODE_SHAPE.match(normalized):
        raise PricingError(str(UNKNOWN_CODE), field="code")
    found = db.session.scalar(sa.select(PromoCode).where(PromoCode.code_normalized == normalized))
    if found is None or not found.is_active:
        raise PricingError(str(UNKNOWN_CODE), field="code")
    return found


def _check_dates(code: PromoCode, now: datetime) -> None:
    if code.valid_from is not None and now < code.valid_from:
        raise PricingError(gettext("This code can't be used yet."), field="code")
    if code.valid_until is not None and now >= code.valid_until:
        raise PricingError(gettext("This code has expired."), field="code")


def uses(
    code_id: int,
    email_normalized: str | None = None,
    now: datetime | None = None,
    excluding_registration_id: int | None = None,
) -> int:
    """Uses of a code that count (not released), in all or by one address. With `now`, a use by
    a hold that has run out is not counted either, though no sweep has released it yet (in
    another class's pool, say): its seat is gone, and its use goes with it."""
    query = sa.select(sa.func.count()).where(
        PromoRedemption.promo_code_id == code_id, PromoRedemption.released_at.is_(None)
    )
    if excluding_registration_id is not None:
        query = query.where(
            sa.or_(
                PromoRedemption.registration_id.is_(None),
                PromoRedemption.registration_id != excluding_registration_id,
            )
        )
    if email_normalized is not None:
        query = query.where(PromoRedemption.email_normalized == email_normalized)
    if now is not None:
        lapsed = sa.select(Registration.id).where(Registration.promo_code_id == code_id, lapsed_hold(now))
        query = query.where(
            sa.or_(PromoRedemption.registration_id.is_(None), PromoRedemption.registration_id.not_in(lapsed))
        )
    return db.session.execute(query).scalar_one()


def check_uses(code: PromoCode, email_normalized: str, now: datetime | None = None) -> None:
    """PricingError when the code is used up, in all or by this address. Exact only under the
    code row's lock (lock_for_use); without it, an early answer for the form."""
    if code.max_uses is not None and uses(code.id, now=now) >= code.max_uses:
        raise PricingError(gettext("This code has been used up."), field="code")
    if code.max_uses_per_email is not None and email_normalized:
        if uses(code.id, email_normalized, now=now) >= code.max_uses_per_email:
            raise PricingError(
                gettext("This code has already been used with this email address."), field="code"
            )


@dataclass(frozen=True)
class TransferPrice:
    """What a booking moved by staff costs on its new date, priced as it was first (events/
    staff/bookings.py): the same tier if the new offering has it, a community seat on the same
    offering while one is kept there, a code that covers the new offering (its use moves with
    the booking)."""

    price_cents: int
    tier_id: int | None
    community: bool
    promo_code_id: int | None
    discount_cents: int


def may_keep_community_price(registration: Registration, offering: Offering) -> bool:
    """A community-seat booking may keep its community price on another date of its own
    offering (one that still keeps community seats): the community price is that offering's."""
    return (
        registration.community_seat
        and registration.offering_id == offering.id
        and keeps_community_seats(offering)
    )


def transfer_price(
    registration: Registration, offering: Offering, community: bool | None = None
) -> TransferPrice:
    """`community`: whether the new seat is a kept community seat (the caller counted them);
    None: whenever the booking may keep its community price (may_keep_community_price).
    False prices a general seat: the tier it had, else the list price."""
    if registration.pass_id is not None:
        return TransferPrice(0, None, False, None, 0)  # a pass's credits pay (they move with it)
    tier_id = registration.price_tier_id
    if tier_id is not None and all(t.id != tier_id for t in offering.price_tiers):
        tier_id = None  # another offering's tier: its list price
    if community is None:
        community = may_keep_community_price(registration, offering)
    community = community and may_keep_community_price(registration, offering)
    _tier, base, _lines = _base(offering, tier_id, community)
    code = registration.promo_code
    if code is not None and not covers_offering(code, offering):
        code = None
    discount = discount_for(code, base) if code is not None else 0
    return TransferPrice(base - discount, tier_id, community, code.id if code else None, discount)


def move_use(old_registration_id: int, new_registration_id: int | None, now: datetime) -> None:
    """A booking moved to another registration takes its code's use along (None: the new
    booking is priced without the code, so the use is given back)."""
    values: dict[str, object] = (
        {"registration_id": new_registration_id} if new_registration_id is not None else {"released_at": now}
    )
    db.session.execute(
        sa.update(PromoRedemption)
        .where(PromoRedemption.registration_id == old_registration_id, PromoRedemption.released_at.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def keep_use_for_payment(registration: Registration, now: datetime) -> bool:
    """A card payment is confirming a registration priced with a code, perhaps after its hold
    lapsed: its use was then given back (or no longer counted by others), and someone else may
    have used the code since. Under the code's row lock (the caller holds the seat pool's), the
    use is kept only if it still fits the code's limits counting every other use; it then counts
    again. False: the code was used up meanwhile, so this price can't be honoured and the caller
    refunds the payment (no seat was kept for it)."""
    if registration.promo_code_id is None:
        return True
    code = lock_code(registration.promo_code_id)
    others = functools.partial(uses, code.id, now=now, excluding_registration_id=registration.id)
    if code.max_uses is not None and others() >= code.max_uses:
        return False
    if code.max_uses_per_email is not None and registration.email_normalized:
        if others(registration.email_normalized) >= code.max_uses_per_email:
            return False
    db.session.execute(
        sa.update(PromoRedemption)
        .where(PromoRedemption.registration_id == registration.id)
        .values(released_at=None)
        .execution_options(synchronize_session=False)
    )
    return True


def community_release_at(offering: Offering, first_start: datetime) -> datetime:
    """When a pool's unclaimed community seats join general sale."""
    return first_start - timedelta(hours=offering.community_release_hours)


def community_taken(pool_id: int) -> int:
    """Community seats taken in a pool (confirmed and live holds: they hold seats)."""
    return db.session.execute(
        sa.select(sa.func.count()).where(
            Registration.seat_pool_id == pool_id,
            Registration.community_seat.is_(True),
            Registration.status.in_(SEAT_TAKING_STATUSES),
        )
    ).scalar_one()


@dataclass(frozen=True)
class CommunitySeats:
    """A pool's community seats now: how many are still kept for the community price (0 once
    released), and so how many seats general sale may use."""

    kept: int  # unclaimed community seats still kept back
    left_for_general: int
    release_at: datetime | None

    @property
    def community_left(self) -> int:
        return self.kept


def keeps_community_seats(offering: Offering) -> bool:
    """Whether the offering keeps any seats for the community price (a free one: every seat is free)."""
    return offering.community_seats > 0 and not offering.is_free


def _kept(offering: Offering, pool: SeatPool, first_start: datetime | None, taken: int, now: datetime) -> int:
    """The rule, in one place: until the release time, the community seats not yet taken are
    kept (never more than the seats free); from then on, none."""
    if first_start is None or now >= community_release_at(offering, first_start):
        return 0
    kept = max(offering.community_seats - taken, 0)
    return min(kept, max(pool.capacity - pool.seats_taken, 0))


def community_seats(offering: Offering, pool: SeatPool, now: datetime) -> CommunitySeats:
    """Until the release time, general sale may only use capacity - (community seats not yet
    taken); from then on, unclaimed ones join general sale. Exact under the pool's lock."""
    general_left = max(pool.capacity - pool.seats_taken, 0)
    if not keeps_community_seats(offering):
        return CommunitySeats(0, general_left, None)
    first = db.session.scalar(
        sa.select(sa.func.min(Session.starts_at)).where(
            Session.seat_pool_id == pool.id, Session.status == SessionStatus.SCHEDULED
        )
    )
    if first is None:
        return CommunitySeats(0, general_left, None)
    kept = _kept(offering, pool, first, community_taken(pool.id), now)
    return CommunitySeats(kept, general_left - kept, community_release_at(offering, first))


def seat_free_for(registration: Registration, pool: SeatPool, now: datetime) -> bool:
    """Under the pool's lock: whether a seat is free at this registration's price (a payment
    that arrived after its hold lapsed keeps a seat only so): a community seat while one is
    kept for its community price, else one general sale may use."""
    community = community_seats(registration.offering, pool, now)
    return community.kept > 0 if registration.community_seat else community.left_for_general > 0


def community_kept_by_pool(pools: Iterable[tuple[Offering, SeatPool]], now: datetime) -> dict[int, int]:
    """Community seats still kept in each of these pools (0 once taken or released), for the
    pages and the API that show them: as community_seats() says, read without locks, in one
    query whatever the number of pools (none when no offering among them keeps any)."""
    pairs = list(pools)
    kept = {pool.id: 0 for _offering, pool in pairs}
    keeping = {pool.id: (offering, pool) for offering, pool in pairs if keeps_community_seats(offering)}
    if not keeping:
        return kept
    first_start = (
        sa.select(sa.func.min(Session.starts_at))
        .where(Session.seat_pool_id == SeatPool.id, Session.status == SessionStatus.SCHEDULED)
        .scalar_subquery()
    )
    taken = (
        sa.select(sa.func.count())
        .where(
            Registration.seat_pool_id == SeatPool.id,
            Registration.community_seat.is_(True),
            Registration.status.in_(SEAT_TAKING_STATUSES),
        )
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(SeatPool.id, first_start, taken).where(SeatPool.id.in_(sorted(keeping)))
    )
    for pool_id, first, count in rows.tuples():
        offering, pool = keeping[pool_id]
        kept[pool_id] = _kept(offering, pool, first, count, now)
    return kept


def community_left_by_pool(offering: Offering, pools: list[SeatPool], now: datetime) -> dict[int, int]:
    """Community seats still kept in each of these pools of `offering` (community_kept_by_pool)."""
    return community_kept_by_pool(((offering, pool) for pool in pools), now)


@dataclass(frozen=True)
class CommunityShown:
    """What the offering page's registration form says about community seats."""

    # Still kept for the pool the form books: the workshop's or course's one pool, or the date
    # chosen. With several dates and none chosen: None while any date keeps one (the page's
    # script shows each date's own count once one is chosen), else 0.
    left: int | None
    offered: bool  # the form offers a community seat (the offering keeps them, and one may be left)


def community_seats_shown(
    offering: Offering, open_sessions: list[Session], chosen: Session | None, left_by_pool: dict[int, int]
) -> CommunityShown:
    """The community seats the offering page's form shows, from `left_by_pool`
    (community_left_by_pool() of its pools), its open (scheduled) upcoming sessions and the
    date chosen (catalog.services.chosen_date)."""
    left: int | None
    if open_sessions and not offering.kind.per_session:
        left = left_by_pool.get(open_sessions[0].seat_pool_id, 0)
    elif chosen is not None:
        left = left_by_pool.get(chosen.seat_pool_id, 0)
    else:
        left = None if any(left_by_pool.values()) else 0
    return CommunityShown(left, keeps_community_seats(offering) and left != 0)


def default_tier(offering: Offering) -> PriceTier | None:
    """The tier preselected on the form: one named Standard, else one at the list price."""
    for tier in offering.price_tiers:
        if tier.name.strip().lower() == "standard":
            return tier
    for tier in offering.price_tiers:
        if tier.price_cents == offering.price_cents:
            return tier
    return None


def form_default(offering: Offering) -> str:
    """The price choice the registration form shows chosen: the default tier, else the list price."""
    tier = default_tier(offering)
    if tier is not None:
        return f"tier-{tier.id}"
    return "" if offering.price_tiers else "list"


def _base(
    offering: Offering, tier_id: int | None, community: bool
) -> tuple[PriceTier | None, int, list[QuoteLine]]:
    if community:
        if not keeps_community_seats(offering):
            raise PricingError(gettext("Please choose one of the prices."), field="price_choice")
        label = gettext("Community seat")
        return None, offering.community_price_cents, [QuoteLine(label, offering.community_price_cents)]
    if tier_id is not None:
        tier = next((t for t in offering.price_tiers if t.id == tier_id), None)
        if tier is None:
            raise PricingError(gettext("Please choose one of the prices."), field="price_choice")
        return tier, tier.price_cents, [QuoteLine(tier_text(tier).name, tier.price_cents)]
    return None, offering.price_cents, [QuoteLine(gettext("Price"), offering.price_cents)]


def _apply_code(base_cents: int, code: PromoCode | None, lines: list[QuoteLine]) -> tuple[int, int]:
    if code is None:
        return 0, base_cents
    off = discount_for(code, base_cents)
    lines.append(QuoteLine(gettext("Code %(code)s", code=code.code), -off))
    total = base_cents - off
    lines.append(QuoteLine(gettext("Total"), total))
    return off, total


def quote(
    offering: Offering,
    *,
    tier_id: int | None = None,
    code: str | None = None,
    community: bool = False,
    email_normalized: str = "",
    now: datetime,
    count_uses: bool = True,
) -> Quote:
    """What registering for `offering` costs with this choice, in integer cents.

    The tier chosen (or a community seat, or the list price) sets the base; a code then takes
    its share off that base: a percent rounds half up to the cent (percent_off), an amount off
    never takes it below 0, a fixed price never raises it. The code must be active, in its dates,
    cover the offering (kinds or offerings) and have uses left in all and for this address
    (counted without a lock here: redeem() counts again under the code's lock). PricingError,
    with the form field it belongs to, when a choice or the code can't be used."""
    tier, base, lines = _base(offering, tier_id, community)
    promo = None
    if code is not None and code.strip():
        promo = find_code(code)
        _check_dates(promo, now)
        if not covers_offering(promo, offering):
            raise PricingError(gettext("This code can't be used for this."), field="code")
        if count_uses:
            check_uses(promo, email_normalized, now)
    discount, total = _apply_code(base, promo, lines)
    return Quote(
        currency=offering.currency,
        list_price_cents=offering.price_cents,
        tier=tier,
        community=community,
        base_cents=base,
        code=promo,
        discount_cents=discount,
        total_cents=total,
        lines=lines,
    )


def quote_pass(product: PassProduct, code: str | None, email_normalized: str, now: datetime) -> Quote:
    """What buying a pass costs with a code (one with applies_to_passes, for every product or
    the listed ones), as quote() does for a registration."""
    lines = [QuoteLine(product.name, product.price_cents)]
    promo = None
    if code is not None and code.strip():
        promo = find_code(code)
        _check_dates(promo, now)
        if not covers_pass(promo, product):
            raise PricingError(gettext("This code can't be used for this."), field="code")
        check_uses(promo, email_normalized, now)
    discount, total = _apply_code(product.price_cents, promo, lines)
    return Quote(
        currency=product.currency,
        list_price_cents=product.price_cents,
        tier=None,
        community=False,
        base_cents=product.price_cents,
        code=promo,
        discount_cents=discount,
        total_cents=total,
        lines=lines,
    )


def lock_code(code_id: int) -> PromoCode:
    """Lock the code's row for the rest of the transaction (after the seat pool: pools -> promo
    code -> passes -> payments) and return it, freshly read."""
    return db.session.execute(
        sa.select(PromoCode)
        .where(PromoCode.id == code_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def redeem(
    code_id: int,
    email_normalized: str,
    discount_cents: int,
    now: datetime,
    *,
    registration_id: int | None = None,
    pass_id: int | None = None,
) -> PromoRedemption:
    """Write one use of a code, in the caller's transaction, under the code row's lock: its
    uses (in all and by this address) are counted with every concurrent redeemer waiting, so a
    code limited to 5 uses is used 5 times however many try at once. PricingError, with nothing
    written, when it is used up or no longer valid. The caller locked its seat pool first (a
    pass purchase: before its pass and payment rows)."""
    code = lock_for_use(code_id, email_normalized, now)
    return write_redemption(
        code, email_normalized, discount_cents, now, registration_id=registration_id, pass_id=pass_id
    )


def release_for_registrations(registration_ids: list[int], now: datetime) -> int:
    """Give back the code uses of these registrations (a hold that lapsed, a booking cancelled
    on time, or by the clinic): they no longer count against the code's limits. An on-time
    cancellation gives the use back; a late one keeps it (the caller decides). Returns how many."""
    if not registration_ids:
        return 0
    result = db.session.execute(
        sa.update(PromoRedemption)
        .where(
            PromoRedemption.registration_id.in_(registration_ids),
            PromoRedemption.released_at.is_(None),
        )
        .values(released_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def release_for_passes(pass_ids: list[int], now: datetime) -> int:
    """Give back the code uses of these pass purchases (a purchase whose hold lapsed unpaid, or
    refunded whole). Returns how many."""
    if not pass_ids:
        return 0
    result = db.session.execute(
        sa.update(PromoRedemption)
        .where(PromoRedemption.pass_id.in_(pass_ids), PromoRedemption.released_at.is_(None))
        .values(released_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def registration_lines(registration: Registration) -> list[QuoteLine]:
    """How a registration was priced, for receipts, emails and pages ("Community tier $5.00,
    code PARTNER -$1.00, paid $4.00"): empty when it was the plain list price."""
    if not (registration.price_tier_id or registration.promo_code_id or registration.community_seat):
        return []
    base = registration.price_cents + registration.discount_cents
    if registration.community_seat:
        first = QuoteLine(gettext("Community seat"), base)
    elif registration.price_tier is not None:
        first = QuoteLine(tier_text(registration.price_tier).name, base)
    else:
        first = QuoteLine(gettext("Price"), base)
    lines = [first]
    if registration.promo_code is not None:
        lines.append(
            QuoteLine(
                gettext("Code %(code)s", code=registration.promo_code.code), -registration.discount_cents
            )
        )
    lines.append(QuoteLine(gettext("Total"), registration.price_cents))
    return lines


def pricing_label(registration: Registration) -> str:
    """A short staff label: 'Community tier · code PARTNER (-$1.00)' ('' when list price)."""
    from events.filters import format_money

    parts = []
    if registration.community_seat:
        parts.append("Community seat")
    elif registration.price_tier is not None:
        parts.append(f"{registration.price_tier.name} tier")
    if registration.promo_code is not None:
        off = format_money(registration.discount_cents, registration.currency)
        parts.append(f"code {registration.promo_code.code} (-{off})")
    return " · ".join(parts)


@dataclass(frozen=True)
class PriceChoice:
    """What the registration form asked for: a tier, a community seat, a code (all optional)."""

    tier_id: int | None = None
    community: bool = False
    code: str | None = None

    @property
    def is_plain(self) -> bool:
        return self.tier_id is None and not self.community and not (self.code and self.code.strip())

    @classmethod
    def from_form(cls, raw: str | None, code: str | None) -> PriceChoice:
        """A form's answer: "tier-12", "community" or "list" ('' too: the list price), as the
        forms' validators allow, and the code typed (if any)."""
        raw = raw or ""
        tier_id = int(raw.removeprefix("tier-")) if raw.startswith("tier-") else None
        return cls(tier_id=tier_id, community=raw == "community", code=code or None)


def lock_for_use(code_id: int, email_normalized: str, now: datetime) -> PromoCode:
    """Lock the code's row (after the seat pool) and check, under that lock, that it may be
    used once more, in all and by this address: PricingError if not. The caller then writes
    its use (write_redemption) in the same transaction, so concurrent redeemers count it."""
    code = lock_code(code_id)
    if not code.is_active:
        raise PricingError(str(UNKNOWN_CODE), field="code")
    _check_dates(code, now)
    check_uses(code, email_normalized, now)
    return code


def write_redemption(
    code: PromoCode,
    email_normalized: str,
    discount_cents: int,
    now: datetime,
    *,
    registration_id: int | None = None,
    pass_id: int | None = None,
) -> PromoRedemption:
    """One use of a code locked by lock_for_use, in the caller's transaction."""
    redemption = PromoRedemption(
        promo_code_id=code.id,
        registration_id=registration_id,
        pass_id=pass_id,
        email_normalized=email_normalized,
        discount_cents=discount_cents,
        created_at=now,
    )
    db.session.add(redemption)
    db.session.flush()
    return redemption


def price_breakdown(registration: Registration) -> str:
    """How a registration was priced, in one line of the reader's language for emails and pages:
    "Community $5, code PARTNER -$1, paid $4" ('' for the plain list price); "total $4" while it
    is still to be paid."""
    from events.filters import format_money  # (the filters import this module)

    if not (registration.price_tier_id or registration.promo_code_id or registration.community_seat):
        return ""
    currency = registration.currency
    base = registration.price_cents + registration.discount_cents
    if registration.community_seat:
        first = gettext("Community seat %(amount)s", amount=format_money(base, currency))
    elif registration.price_tier is not None:
        first = gettext(
            "%(tier)s %(amount)s",
            tier=tier_text(registration.price_tier).name,
            amount=format_money(base, currency),
        )
    else:
        first = gettext("Price %(amount)s", amount=format_money(base, currency))
    parts = [first]
    if registration.promo_code is not None:
        parts.append(
            gettext(
                "code %(code)s -%(amount)s",
                code=registration.promo_code.code,
                amount=format_money(registration.discount_cents, currency),
            )
        )
    if not registration.price_cents:
        parts.append(gettext("nothing to pay"))
    elif registration.confirmed_at is not None:
        parts.append(gettext("paid %(amount)s", amount=format_money(registration.price_cents, currency)))
    else:  # still to pay (a hold)
        parts.append(gettext("total %(amount)s", amount=format_money(registration.price_cents, currency)))
    return ", ".join(parts)


def register_template_globals(app: Flask) -> None:
    """How a booking was priced, for the templates (the filters module can't import this one:
    it formats the money this module writes)."""
    app.jinja_env.globals["price_default"] = form_default
    app.jinja_env.globals["price_lines"] = registration_lines
    app.jinja_env.globals["price_breakdown"] = price_breakdown
    app.jinja_env.globals["pricing_label"] = pricing_label
