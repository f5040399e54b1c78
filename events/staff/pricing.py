"""Admin of prices: an offering's sliding-scale tiers and the promo codes.

Plain functions, no request objects; every change is written to the audit trail in the same
transaction. What a price comes to is events/pricing.py's business, not this module's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from events import audit
from events.extensions import db
from events.models import (
    Offering,
    OfferingKind,
    PassProduct,
    PriceTier,
    PromoCode,
    PromoKind,
    PromoRedemption,
    Registration,
    User,
)
from events.pricing import normalize_code
from events.staff.errors import AdminError

# --- Tiers ---


@dataclass(frozen=True)
class TierData:
    name: str
    description: str
    price_cents: int
    position: int | None  # None: after the others


def add_tier(offering: Offering, data: TierData, actor: User) -> PriceTier:
    position = data.position
    if position is None:
        last = db.session.scalar(
            sa.select(sa.func.max(PriceTier.position)).where(PriceTier.offering_id == offering.id)
        )
        position = 0 if last is None else last + 1
    tier = PriceTier(
        offering_id=offering.id,
        name=data.name,
        description=data.description,
        price_cents=data.price_cents,
        position=position,
    )
    db.session.add(tier)
    db.session.flush()
    audit.record(
        actor.id,
        "price_tier.added",
        "offering",
        offering.id,
        offering_id=offering.id,
        offering_title=offering.title,
        tier=data.name,
        price_cents=data.price_cents,
    )
    db.session.commit()
    return tier


def update_tier(tier: PriceTier, data: TierData, actor: User) -> PriceTier:
    """A tier's new price applies to new registrations; those made keep what they were priced."""
    changes: dict[str, list[Any]] = {}
    for key in ("name", "description", "price_cents", "position"):
        old, new = getattr(tier, key), getattr(data, key)
        if new is None:  # (an order left empty keeps its place)
            continue
        if old != new:
            changes[key] = [str(old), str(new)]
            setattr(tier, key, new)
    audit.record(
        actor.id,
        "price_tier.updated",
        "offering",
        tier.offering_id,
        offering_id=tier.offering_id,
        offering_title=tier.offering.title,
        tier=tier.name,
        changes=changes,
    )
    db.session.commit()
    return tier


def remove_tier(tier: PriceTier, actor: User) -> None:
    """Remove a tier nobody has registered with (one in use stays: receipts name it)."""
    used = db.session.scalar(sa.select(Registration.id).where(Registration.price_tier_id == tier.id).limit(1))
    if used is not None:
        raise AdminError(f"“{tier.name}” has registrations, so it stays. Change its name or price instead.")
    audit.record(
        actor.id,
        "price_tier.removed",
        "offering",
        tier.offering_id,
        offering_id=tier.offering_id,
        offering_title=tier.offering.title,
        tier=tier.name,
    )
    db.session.delete(tier)
    db.session.commit()


# --- Promo codes ---


@dataclass(frozen=True)
class CodeData:
    code: str
    kind: PromoKind
    value: int  # percent (1..100) or cents
    offering_kinds: list[str]
    offering_ids: list[int]
    applies_to_passes: bool
    pass_product_ids: list[int]
    valid_from: datetime | None
    valid_until: datetime | None
    max_uses: int | None
    max_uses_per_email: int | None
    partner_tag: str
    is_active: bool = True


@dataclass(frozen=True)
class CodeLine:
    code: PromoCode
    uses: int  # not released


def list_codes() -> list[CodeLine]:
    """Every code, active first then newest, with its uses counted in the same query."""
    used = (
        sa.select(sa.func.count())
        .where(PromoRedemption.promo_code_id == PromoCode.id, PromoRedemption.released_at.is_(None))
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(PromoCode, used)
        .options(selectinload(PromoCode.offerings), selectinload(PromoCode.pass_products))
        .order_by(PromoCode.is_active.desc(), PromoCode.created_at.desc(), PromoCode.id.desc())
    ).all()
    return [CodeLine(code, count) for code, count in rows]


def _check(data: CodeData, exclude_id: int | None = None) -> str:
    normalized = normalize_code(data.code)
    if not normalized or len(normalized) > 40 or not normalized.replace("-", "").replace("_", "").isalnum():
        raise AdminError("Use letters, digits, - and _ only (up to 40).", "code")
    if not normalized.isascii():
        raise AdminError("Use letters A-Z, digits, - and _ only.", "code")
    clash = db.session.scalar(
        sa.select(PromoCode.id).where(
            PromoCode.code_normalized == normalized, PromoCode.id != (exclude_id or 0)
        )
    )
    if clash is not None:
        raise AdminError("There is already a code like this.", "code")
    if data.kind == PromoKind.PERCENT_OFF and not 1 <= data.value <= 100:
        raise AdminError("A percent off is 1 to 100.", "value")
    if data.valid_from and data.valid_until and data.valid_until <= data.valid_from:
        raise AdminError("“Valid until” must be after “valid from”.", "valid_until")
    unknown = set(data.offering_kinds) - {k.value for k in OfferingKind}
    if unknown:
        raise AdminError("Choose among the kinds listed.", "offering_kinds")
    return normalized


def _apply(code: PromoCode, data: CodeData, normalized: str) -> dict[str, list[Any]]:
    changes: dict[str, list[Any]] = {}
    values: dict[str, Any] = {
        "code": data.code.strip().upper(),
        "code_normalized": normalized,
        "kind": data.kind,
        "value": data.value,
        "offering_kinds": ",".join(sorted(data.offering_kinds)),
        "applies_to_passes": data.applies_to_passes,
        "valid_from": data.valid_from,
        "valid_until": data.valid_until,
        "max_uses": data.max_uses,
        "max_uses_per_email": data.max_uses_per_email,
        "partner_tag": data.partner_tag,
        "is_active": data.is_active,
    }
    for key, new in values.items():
        old = getattr(code, key)
        if old != new:
            changes[key] = [str(old), str(new)]
            setattr(code, key, new)
    offerings = (
        list(db.session.scalars(sa.select(Offering).where(Offering.id.in_(data.offering_ids))))
        if data.offering_ids
        else []
    )
    if {o.id for o in offerings} != {o.id for o in code.offerings}:
        changes["offerings"] = [
            ", ".join(o.title for o in code.offerings),
            ", ".join(o.title for o in offerings),
        ]
        code.offerings = offerings
    products = (
        list(db.session.scalars(sa.select(PassProduct).where(PassProduct.id.in_(data.pass_product_ids))))
        if data.pass_product_ids
        else []
    )
    if {p.id for p in products} != {p.id for p in code.pass_products}:
        changes["pass_products"] = [
            ", ".join(p.name for p in code.pass_products),
            ", ".join(p.name for p in products),
        ]
        code.pass_products = products
    return changes


def create_code(data: CodeData, actor: User) -> PromoCode:
    normalized = _check(data)
    code = PromoCode(code="", code_normalized="", kind=data.kind, value=0)
    code.offerings = []
    code.pass_products = []
    db.session.add(code)
    _apply(code, data, normalized)
    db.session.flush()
    audit.record(actor.id, "promo_code.created", "promo_code", code.id, code=code.code, tag=code.partner_tag)
    db.session.commit()
    return code


def update_code(code: PromoCode, data: CodeData, actor: User) -> PromoCode:
    """A code's new terms apply to uses from now on; those made keep their price."""
    normalized = _check(data, exclude_id=code.id)
    changes = _apply(code, data, normalized)
    audit.record(actor.id, "promo_code.updated", "promo_code", code.id, code=code.code, changes=changes)
    db.session.commit()
    return code


def set_active(code: PromoCode, active: bool, actor: User) -> PromoCode:
    """Deactivate (or bring back) a code: a deactivated code is refused as unknown."""
    if code.is_active != active:
        code.is_active = active
        action = "promo_code.activated" if active else "promo_code.deactivated"
        audit.record(actor.id, action, "promo_code", code.id, code=code.code)
    db.session.commit()
    return code


def offering_choices() -> list[tuple[int, str]]:
    return [
        (o.id, o.title)
        for o in db.session.scalars(
            sa.select(Offering).where(Offering.is_cancelled.is_(False)).order_by(Offering.title)
        )
    ]


def pass_product_choices() -> list[tuple[int, str]]:
    return [(p.id, p.name) for p in db.session.scalars(sa.select(PassProduct).order_by(PassProduct.position))]
