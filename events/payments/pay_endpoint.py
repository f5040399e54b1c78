"""The JSON endpoint behind every card payment page (a seat's, a balance's, a class pass's): read
Stripe.js's card token, charge it, and say what the page does next."""

from __future__ import annotations

from collections.abc import Callable

from flask import jsonify
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from events.inputs import JsonBodyError, is_stripe_id, json_object_body
from events.payments.charging import PaymentAttempt


def card_payment_answer(pay: Callable[[int, str], PaymentAttempt], owner_id: int) -> ResponseReturnValue:
    """Charge the card token in the request body with `pay(owner_id, token)`, as JSON."""
    try:
        token = json_object_body().get("token")
    except JsonBodyError as error:
        return jsonify(status="failed", message=str(error)), 400
    if not is_stripe_id(token, "tok_"):
        # Not what Stripe.js produces: say so, rather than a 503 about reaching Stripe.
        message = gettext("That card token is malformed. Please enter your card again.")
        return jsonify(status="failed", message=message), 400
    attempt = pay(owner_id, token)
    status = 503 if attempt.status == "unavailable" else 200
    return jsonify(
        status=attempt.status,
        message=attempt.message,
        client_secret=attempt.client_secret,
        intent_id=attempt.intent_id,
    ), status
