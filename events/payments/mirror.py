"""Our payment row following a PaymentIntent's state: shared by registrations' payments
(events/payments/services.py) and class passes' (events/passes/purchase.py)."""

from __future__ import annotations

from events.models import Payment, PaymentStatus, utcnow
from events.payments.declines import staff_reason
from events.payments.gateway import IntentState

PAYMENT_STATUS_FROM_STRIPE = {
    "requires_payment_method": PaymentStatus.REQUIRES_PAYMENT_METHOD,
    "requires_confirmation": PaymentStatus.REQUIRES_PAYMENT_METHOD,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PROCESSING,
    "requires_capture": PaymentStatus.PROCESSING,
    "succeeded": PaymentStatus.SUCCEEDED,
    "canceled": PaymentStatus.CANCELED,
}


def mirror_intent(payment: Payment, state: IntentState) -> Payment:
    """Copy the intent's status, error and card onto `payment`.

    Never move a payment backwards because an older answer arrived late: a success stays a
    success, and a cancelled or failed intent never becomes open again (only a success,
    which Stripe would not report for it, could move it)."""
    status = PAYMENT_STATUS_FROM_STRIPE.get(state.status, PaymentStatus.PROCESSING)
    if state.status == "requires_payment_method" and state.error_message:
        status = PaymentStatus.FAILED
    settled = (PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED, PaymentStatus.FAILED)
    if payment.status not in settled or (
        payment.status != PaymentStatus.SUCCEEDED and status == PaymentStatus.SUCCEEDED
    ):
        payment.status = status
    payment.last_error = staff_reason(state.error_code, state.error_message)[:500]
    # What the receipt names: the card that was charged, and when (Stripe's time, else ours).
    if state.card_last4:
        payment.card_brand, payment.card_last4 = state.card_brand, state.card_last4
    if payment.status == PaymentStatus.SUCCEEDED and payment.paid_at is None:
        payment.paid_at = state.charged_at or utcnow()
    return payment
