"""What a receipt says about a payment: our receipt number, the card, the amount, the date.

Pure reading of a payment row (its card details are copied from Stripe's charge when the
payment is applied, events/payments/services.py). The receipt number is ours, derived from
the payment's id: stable, and the same in the email, the member's page and the staff's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext, lazy_gettext

from events.models import Payment, PaymentMethod

# Stripe's brand words (payment_method_details.card.brand) as people write them.
CARD_BRANDS = {
    "amex": "American Express",
    "american_express": "American Express",
    "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club",
    "diners_club": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "interac": "Interac",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}


def receipt_number(payment_id: int) -> str:
    """'R-000042': our number for a payment, never reused (ids only count up)."""
    return f"R-{payment_id:06d}"


def card_brand_name(brand: str) -> str:
    """The brand as people write it (a name, the same in every language), or "Card" in the
    reader's language when Stripe gave none."""
    if not brand or brand == "unknown":
        return gettext("Card")
    return CARD_BRANDS.get(brand.lower(), brand.replace("_", " ").title())


def card_label(brand: str, last4: str) -> str:
    """'Visa ending 4242'; 'Card ending 4242' without a brand; '' when Stripe gave neither.
    In the reader's language ('Visa terminada en 4242')."""
    if not last4:
        return card_brand_name(brand) if brand else ""
    return gettext("%(brand)s ending %(last4)s", brand=card_brand_name(brand), last4=last4)


# Translated when read (a receipt is made in the reader's language: a page, or an email).
DESK_LABELS = {
    PaymentMethod.CASH: lazy_gettext("Cash, at the desk"),
    PaymentMethod.CHECK: lazy_gettext("Check, at the desk"),
    PaymentMethod.COMP: lazy_gettext("Complimentary (no charge)"),
}
# The word for how a desk payment was made, inside a sentence ("you paid by cash there").
DESK_METHOD_WORDS = {
    PaymentMethod.CASH: lazy_gettext("cash"),
    PaymentMethod.CHECK: lazy_gettext("check"),
    PaymentMethod.COMP: lazy_gettext("a free place from the clinic"),
}


def desk_method_word(method: PaymentMethod | str | None) -> str:
    """'cash' or 'check' in the reader's language; '' for a card (or nothing)."""
    try:
        known = PaymentMethod(method) if method else None
    except ValueError:
        return ""
    word = DESK_METHOD_WORDS.get(known) if known is not None else None
    return str(word) if word is not None else ""


def paid_with_label(payment: Payment) -> str:
    """What a payment was made with: the card, or how it was taken at the desk."""
    desk = DESK_LABELS.get(payment.method)
    return str(desk) if desk is not None else card_label(payment.card_brand, payment.card_last4)


@dataclass(frozen=True)
class Receipt:
    number: str
    amount_cents: int
    currency: str
    card: str  # "Visa ending 4242", or "" when Stripe gave no card details
    paid_at: datetime | None  # UTC; shown in the location's zone
    at_desk: str = ""  # "cash" or "check" (the reader's word) when paid at the desk: refunded there

    @classmethod
    def of(cls, payment: Payment) -> Receipt:
        return cls(
            number=receipt_number(payment.id),
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            card=paid_with_label(payment),
            paid_at=payment.paid_at or (payment.updated_at if payment.updated_at else None),
            at_desk=desk_method_word(payment.method) if payment.method.at_desk else "",
        )
