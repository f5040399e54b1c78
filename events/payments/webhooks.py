"""The Stripe webhook endpoint: verify, record the event id, dispatch, answer fast."""

from flask import current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from events.extensions import csrf, db, limiter
from events.models import WebhookEvent, utcnow
from events.payments import bp, services
from events.payments.gateway import GatewayUnavailable, InvalidWebhook, get_gateway


@bp.post("/stripe/webhook")
@csrf.exempt
@limiter.exempt
def stripe_webhook():
    gateway = get_gateway()
    try:
        event = gateway.parse_webhook(
            request.get_data(),
            request.headers.get("Stripe-Signature"),
            current_app.config["STRIPE_WEBHOOK_SECRET"],
        )
    except InvalidWebhook as error:
        return jsonify(error={"status": 400, "title": "Invalid signature", "message": str(error)}), 400

    try:
        # Re-read the object's current state: events may arrive late, twice or out of order.
        match event["type"]:
            case "payment_intent.succeeded" | "payment_intent.payment_failed":
                state = gateway.retrieve_intent(event["object"]["id"])
                handler = lambda: services.apply_intent(state, commit=False)  # noqa: E731
            case "charge.refunded":
                charge = gateway.retrieve_charge(event["object"]["id"])
                handler = lambda: services.mirror_charge_refunds(charge)  # noqa: E731
            case _:
                return jsonify(received=True, handled=False)
    except GatewayUnavailable:
        return jsonify(error={"status": 503, "title": "Stripe unavailable", "message": "retry later"}), 503

    # The event id and the changes it causes commit together: a concurrent or repeated
    # delivery waits on the unique id, then finds it taken and does nothing.
    try:
        db.session.add(WebhookEvent(stripe_event_id=event["id"], type=event["type"], processed_at=utcnow()))
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return jsonify(received=True, duplicate=True)
    handler()
    # Any error from here on is a real failure: it propagates (500) and Stripe delivers again.
    db.session.commit()
    services.execute_pending_refunds()
    current_app.logger.info("Stripe event %s (%s) handled", event["id"], event["type"])
    return jsonify(received=True, handled=True)
