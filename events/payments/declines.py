"""What a member reads when their card is declined, chosen by Stripe's code.

Stripe explains a decline in English only, and in a bank's words. We keep its code (the
decline_code, else the error code) and say it plainly in the member's language, for someone
on a phone who may not know what "CVC" means; staff keep Stripe's own reason beside the code.
"""

from __future__ import annotations

from flask_babel import LazyString, lazy_gettext

DECLINED = lazy_gettext("Your card was declined. Try another card, or ask your bank.")
NOT_ENOUGH_MONEY = lazy_gettext(
    "Your card was declined because there is not enough money on it. Try another card, or ask your bank."
)
EXPIRED = lazy_gettext("Your card has expired. Try another card.")
WRONG_SECURITY_CODE = lazy_gettext(
    "The security code is not right. Check the 3 or 4 numbers on your card, and try again."
)
PROCESSING_ERROR = lazy_gettext(
    "Something went wrong while we checked your card, and nothing was charged. Please try again."
)
BANK_MUST_CONFIRM = lazy_gettext(
    "Your bank needs you to confirm this payment. Try again and follow your bank's steps, "
    "or try another card."
)
NOT_ACCEPTED = lazy_gettext(
    "Your card was not accepted, and nothing was charged. Try another card, or ask your bank."
)

# Stripe's codes (https://docs.stripe.com/declines/codes) -> our message. A lost, stolen or
# "fraudulent" card reads as a plain decline: the member is not told what the bank suspects.
MESSAGES: dict[str, LazyString] = {
    "card_declined": DECLINED,
    "generic_decline": DECLINED,
    "do_not_honor": DECLINED,
    "do_not_try_again": DECLINED,
    "lost_card": DECLINED,
    "stolen_card": DECLINED,
    "pickup_card": DECLINED,
    "fraudulent": DECLINED,
    "restricted_card": DECLINED,
    "card_not_supported": DECLINED,
    "transaction_not_allowed": DECLINED,
    "card_velocity_exceeded": DECLINED,
    "withdrawal_count_limit_exceeded": DECLINED,
    "insufficient_funds": NOT_ENOUGH_MONEY,
    "expired_card": EXPIRED,
    "incorrect_cvc": WRONG_SECURITY_CODE,
    "invalid_cvc": WRONG_SECURITY_CODE,
    "processing_error": PROCESSING_ERROR,
    "try_again_later": PROCESSING_ERROR,
    "issuer_not_available": PROCESSING_ERROR,
    "authentication_required": BANK_MUST_CONFIRM,
    "payment_intent_authentication_failure": BANK_MUST_CONFIRM,
}


def decline_message(code: str) -> str:
    """The member's sentence for Stripe's decline code, in the language being written."""
    return str(MESSAGES.get(code, NOT_ACCEPTED))


def staff_reason(code: str, stripe_reason: str) -> str:
    """What our payment row keeps for staff: Stripe's code and its English reason."""
    return f"{code}: {stripe_reason}" if code else stripe_reason
