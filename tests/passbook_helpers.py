"""Passes made directly (product, pass, ledger.activate), for the pass-booking tests: they
don't depend on how passes are sold."""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from events.extensions import db
from events.models import (
    LedgerKind,
    Offering,
    OfferingKind,
    Pass,
    PassLedgerEntry,
    PassProduct,
    PassStatus,
    utcnow,
)
from events.passes import ledger
from events.registration.services import normalize_email
from tests.factories import make_location, make_offering, make_session, upcoming_day

_seq = itertools.count(1)


def make_product(credits: int = 10, kinds: str = "class", **kw) -> PassProduct:
    product = PassProduct(
        name=kw.pop("name", f"{credits}-class pass"),
        credits=credits,
        price_cents=kw.pop("price_cents", 12000),
        validity_days=kw.pop("validity_days", 90),
        offering_kinds=kinds,
        **kw,
    )
    db.session.add(product)
    db.session.flush()
    return product


def make_pass(
    email: str,
    product: PassProduct | None = None,
    now: datetime | None = None,
    name: str = "Pat Holder",
    expires_at: datetime | None = None,
) -> Pass:
    """An active pass of `product` (a new 10-class pass for classes by default), activated:
    its purchase row written by ledger.activate."""
    product = product or make_product()
    now = now or utcnow()
    pass_ = Pass(
        product=product,
        name=name,
        email=email,
        email_normalized=normalize_email(email),
        status=PassStatus.HELD,
        credits=product.credits,
        price_cents=product.price_cents,
        validity_days=product.validity_days,
        token=secrets.token_urlsafe(24),
        language="en",
    )
    db.session.add(pass_)
    db.session.flush()
    ledger.lock_pass(pass_.id)
    ledger.activate(pass_, now)
    if expires_at is not None:
        pass_.expires_at = expires_at
    db.session.flush()
    return pass_


def make_class(
    capacity: int = 10, days: int = 7, price_cents: int = 1500, credits: int = 1, dates: int = 1, **kw
) -> Offering:
    """A drop-in class (booked per date) with `dates` weekly sessions from `days` days on."""
    n = next(_seq)
    offering = make_offering(
        kw.pop("location", None) or make_location(),
        OfferingKind.CLASS,
        title=kw.pop("title", f"Strength Class {n}"),
        price_cents=price_cents,
        capacity=capacity,
        credits_per_booking=credits,
        **kw,
    )
    for week in range(dates):
        make_session(offering, upcoming_day(days + 7 * week))
    return offering


def ledger_sum(pass_id: int) -> int:
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(PassLedgerEntry.credits), 0)).where(
                PassLedgerEntry.pass_id == pass_id
            )
        )
    )


def ledger_kinds(pass_id: int) -> list[LedgerKind]:
    return list(
        db.session.scalars(
            sa.select(PassLedgerEntry.kind)
            .where(PassLedgerEntry.pass_id == pass_id)
            .order_by(PassLedgerEntry.id)
        )
    )


def soon(hours: float) -> datetime:
    return utcnow() + timedelta(hours=hours)
