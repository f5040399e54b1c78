"""What a receipt says about a payment: our receipt number, the card, the amount, the date.

Pure reading of a payment row (its card details are copied from Stripe's charge when the
payment is applied, events/payments/services.py). The receipt number is ours, derived from
the payment's id: stable, and the same in the email, the member's page and the staff's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
    if not brand or brand == "unknown":
        return "Card"
    return CARD_BRANDS.get(brand.lower(), brand.replace("_", " ").title())


def card_label(brand: str, last4: str) -> str:
    """'Visa ending 4242'; 'Card ending 4242' without a brand; '' when Stripe gave neither."""
    if not last4:
        return card_brand_name(brand) if brand else ""
    return f"{card_brand_name(brand)} ending {last4}"


DESK_LABELS = {
    PaymentMethod.CASH: "Cash, at the desk",
    PaymentMethod.CHECK: "Check, at the desk",
    PaymentMethod.COMP: "Complimentary (no charge)",
}


def paid_with_label(payment: Payment) -> str:
    """What a payment was made with: the card, or how it was taken at the desk."""
    return DESK_LABELS.get(payment.method) or card_label(payment.card_brand, payment.card_last4)


@dataclass(frozen=True)
class Receipt:
    number: str
    amount_cents: int
    currency: str
    card: str  # "Visa ending 4242", or "" when Stripe gave no card details
    paid_at: datetime | None  # UTC; shown in the location's zone
    at_desk: str = ""  # "cash" or "check" when paid at the desk: refunds are handed back there

    @classmethod
    def of(cls, payment: Payment) -> Receipt:
        return cls(
            number=receipt_number(payment.id),
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            card=paid_with_label(payment),
            paid_at=payment.paid_at or (payment.updated_at if payment.updated_at else None),
            at_desk=payment.method.value if payment.method.at_desk else "",
        )
