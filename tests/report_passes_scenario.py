"""Passes and codes in a small clinic's January, built row by row, with the report's pass and
code figures worked out by hand (EXPECTED below, each with its reasoning). Used on PostgreSQL
and on SQLite. Times are in America/Chicago, the clinic's time zone: January 31 at 11:30 pm is
February 1 in UTC and still January here."""

from __future__ import annotations

import itertools
from datetime import datetime

from events.extensions import db
from events.models import (
    LedgerKind,
    Pass,
    PassLedgerEntry,
    PassProduct,
    PassStatus,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    PromoCode,
    PromoKind,
    PromoRedemption,
    Refund,
    RefundKind,
    RefundStatus,
)
from tests.report_scenario import local

_n = itertools.count(1)


def _pass(product: PassProduct, status: PassStatus, price_cents: int, bought: datetime) -> Pass:
    n = next(_n)
    pass_ = Pass(
        product_id=product.id, name=f"Member {n}", email=f"pass{n}@example.com",
        email_normalized=f"pass{n}@example.com", status=status, credits=product.credits,
        price_cents=price_cents, currency="usd", validity_days=90, token=f"report-pass-{n}",
        created_at=bought,
    )  # fmt: skip
    db.session.add(pass_)
    db.session.flush()
    return pass_


def _ledger(pass_: Pass, kind: LedgerKind, credits: int, at: datetime) -> None:
    db.session.add(PassLedgerEntry(pass_id=pass_.id, kind=kind, credits=credits, created_at=at))


def _payment(pass_: Pass, cents: int, method: PaymentMethod, status: PaymentStatus, at: datetime) -> Payment:
    payment = Payment(
        pass_id=pass_.id, purpose=PaymentPurpose.PASS, method=method, amount_cents=cents, currency="usd",
        status=status, paid_at=at if status is PaymentStatus.SUCCEEDED else None, created_at=at,
        stripe_payment_intent_id=f"pi_report_pass_{pass_.id}" if method is PaymentMethod.CARD else None,
    )  # fmt: skip
    db.session.add(payment)
    db.session.flush()
    return payment


def _refund(payment: Payment, cents: int, status: RefundStatus, at: datetime) -> None:
    db.session.add(
        Refund(
            payment_id=payment.id, amount_cents=cents, status=status, kind=RefundKind.MANUAL,
            idempotency_key=f"report-pass-refund-{next(_n)}", created_at=at,
        )
    )  # fmt: skip


def _redeem(
    code: PromoCode, pass_: Pass, discount: int, at: datetime, released: datetime | None = None
) -> None:
    db.session.add(
        PromoRedemption(
            promo_code_id=code.id, pass_id=pass_.id, email_normalized=pass_.email_normalized,
            discount_cents=discount, created_at=at, released_at=released,
        )
    )  # fmt: skip


def build() -> None:
    ten = PassProduct(name="Ten classes", credits=10, price_cents=10000)
    five = PassProduct(name="Five classes", credits=5, price_cents=6000)
    ymca = PromoCode(
        code="YMCA", code_normalized="YMCA", kind=PromoKind.AMOUNT_OFF, value=1000, partner_tag="ymca"
    )
    friends = PromoCode(code="FRIENDS", code_normalized="FRIENDS", kind=PromoKind.AMOUNT_OFF, value=700)
    db.session.add_all([ten, five, ymca, friends])
    db.session.flush()

    # A: ten credits for $100, bought by card on January 5; four spent, one of them given back.
    a = _pass(ten, PassStatus.ACTIVE, 10000, local(1, 5, 10))
    _ledger(a, LedgerKind.PURCHASE, 10, local(1, 5, 10))
    _payment(a, 10000, PaymentMethod.CARD, PaymentStatus.SUCCEEDED, local(1, 5, 10))
    for day, hour, minute in ((10, 9, 0), (12, 9, 0), (20, 9, 0), (31, 23, 30)):
        _ledger(a, LedgerKind.SPEND, -1, local(1, day, hour, minute))
    _ledger(a, LedgerKind.RETURN, 1, local(1, 21, 8))
    _ledger(a, LedgerKind.FORFEIT, 0, local(1, 22, 8))  # a record only: nothing changes
    _redeem(ymca, a, 1000, local(1, 5, 10))

    # B: five for $60, bought at the desk on December 28 (last year); two spent in January;
    # $12 refunded on January 25, and a refund of $5 still pending.
    b = _pass(five, PassStatus.ACTIVE, 6000, local(12, 28, 12, year=2025))
    _ledger(b, LedgerKind.PURCHASE, 5, local(12, 28, 12, year=2025))
    paid_b = _payment(b, 6000, PaymentMethod.CASH, PaymentStatus.SUCCEEDED, local(12, 28, 12, year=2025))
    _ledger(b, LedgerKind.SPEND, -1, local(1, 15, 9))
    _ledger(b, LedgerKind.SPEND, -1, local(1, 16, 9))
    _refund(paid_b, 1200, RefundStatus.SUCCEEDED, local(1, 25, 9))
    _refund(paid_b, 500, RefundStatus.PENDING, local(1, 26, 9))

    # C: bought with a code at 00:30 on February 1: February, not January.
    c = _pass(five, PassStatus.ACTIVE, 5000, local(2, 1, 0, 30))
    _ledger(c, LedgerKind.PURCHASE, 5, local(2, 1, 0, 30))
    _payment(c, 5000, PaymentMethod.CARD, PaymentStatus.SUCCEEDED, local(2, 1, 0, 30))
    _redeem(ymca, c, 1000, local(2, 1, 0, 30))

    # D: a card purchase on January 8 whose payment failed: never active, nothing sold.
    d = _pass(five, PassStatus.VOID, 6000, local(1, 8, 9))
    _payment(d, 6000, PaymentMethod.CARD, PaymentStatus.FAILED, local(1, 8, 9))

    # Codes on three more January purchases: one given back (its hold lapsed) does not count;
    # FRIENDS has no partner tag and was used at 11 pm on January 31.
    e = _pass(ten, PassStatus.VOID, 9000, local(1, 20, 9))
    _redeem(ymca, e, 1000, local(1, 20, 9))
    f = _pass(ten, PassStatus.VOID, 9500, local(1, 22, 9))
    _redeem(ymca, f, 500, local(1, 22, 9), released=local(1, 23, 9))
    g = _pass(five, PassStatus.VOID, 5300, local(1, 31, 23))
    _redeem(friends, g, 700, local(1, 31, 23))
    db.session.commit()


EXPECTED = {
    "credits_sold": 10,  # A's purchase only: B's was in December, C's in February
    "credits_used": 3 + 2,  # A: four spent less one given back (the forfeit row is 0); B: two
    # A's credits are worth $100 / 10 = $10, B's $60 / 5 = $12: (3 x 1000 + 2 x 1200) / 5 = 1080.
    "revenue_per_credit_used": 1080,
    # A's $100 (B's was paid in December, C's in February, D's failed), less B's $12 refund
    # (the pending $5 is not a refund yet).
    "pass_revenue": 10000 - 1200,
    "code_redemptions": 3,  # A and E with YMCA, G with FRIENDS (F's given back, C's in February)
    "code_discounts": 1000 + 1000 + 700,
}
EXPECTED_BY_PARTNER = [("", 1, 700), ("ymca", 2, 2000)]
