"""The Stripe webhook endpoint: verify, record the event id, dispatch, answer fast.

Answers: 400 to a request that is not a well-formed signed event (Stripe will not fix it by
retrying); 2xx to events about objects we never created (logged and ignored: a 5xx would make
Stripe retry them for days); 503 only when Stripe itself can't be reached to re-read the object.
"""

from collections.abc import Callable

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask.wrappers import Response

from events.extensions import csrf, limiter
from events.payments import services
from events.payments.gateway import GatewayRejected, GatewayUnavailable, InvalidWebhook, get_gateway

bp = Blueprint("payments", __name__)

MAX_ID_LENGTH = 255


def _bad_request(title: str, message: str) -> tuple[Response, int]:
    return jsonify(error={"status": 400, "title": title, "message": message}), 400


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


@bp.post("/stripe/webhook")
@csrf.exempt
@limiter.exempt
def stripe_webhook() -> ResponseReturnValue:
    gateway = get_gateway()
    try:
        event = gateway.parse_webhook(
            request.get_data(),
            request.headers.get("Stripe-Signature"),
            current_app.config["STRIPE_WEBHOOK_SECRET"],
        )
    except InvalidWebhook as error:
        return _bad_request("Invalid signature", str(error))
    obj = event["object"]
    if not (_is_id(event["id"]) and isinstance(event["type"], str)):
        return _bad_request("Malformed event", "an event needs a string id and type")

    handler: Callable[[], object]
    try:
        # Re-read the object's current state: events may arrive late, twice or out of order.
        match event["type"]:
            case "payment_intent.succeeded" | "payment_intent.payment_failed" | "charge.refunded":
                if not (isinstance(obj, dict) and _is_id(obj.get("id"))):
                    return _bad_request("Malformed event", "the event's object needs a string id")
                if event["type"] == "charge.refunded":
                    charge = gateway.retrieve_charge(obj["id"])
                    handler = lambda: services.mirror_charge_refunds(charge)  # noqa: E731
                else:
                    state = gateway.retrieve_intent(obj["id"])
                    handler = lambda: services.apply_intent(state)  # noqa: E731
            case _:
                return jsonify(received=True, handled=False)
    except GatewayRejected as error:
        # Stripe doesn't know it (not ours, another account, a test-mode reset): nothing to do,
        # and nothing a retry would change.
        current_app.logger.warning("Stripe event %s names an unknown object: %s", event["id"], error)
        return jsonify(received=True, handled=False, ignored="unknown object")
    except GatewayUnavailable:
        return jsonify(error={"status": 503, "title": "Stripe unavailable", "message": "retry later"}), 503

    # Any error from the handler is a real failure: it propagates (500) and Stripe delivers again.
    if not services.apply_event_once(event["id"], event["type"], handler):
        return jsonify(received=True, duplicate=True)
    current_app.logger.info("Stripe event %s (%s) handled", event["id"], event["type"])
    return jsonify(received=True, handled=True)
