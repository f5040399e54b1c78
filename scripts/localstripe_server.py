"""Run localstripe (the Stripe emulator used by `make run` and the tests), adding the one
event our app needs that it does not emit: charge.refunded, when a refund is created.

It refuses a refund above what remains on the charge, as Stripe does (400,
invalid_request_error): localstripe alone accepts it, and our money rules rely on the refusal.

It counts the webhooks it has yet to deliver (localstripe sends each one a second after the
event, in the background): GET /_config/webhooks/pending answers {"pending": n}, so a test can
wait until everything it caused has reached the app before the next test starts.

It also honours the Idempotency-Key header the way Stripe does (a repeated POST with the
same key returns the first response and creates nothing), so our idempotency keys are
exercised for real in the tests.

Usage: python scripts/localstripe_server.py --port 8420 [--from-scratch]
           [--webhook-url http://127.0.0.1:5000/stripe/webhook --webhook-secret whsec_...]
"""

import argparse
import sys

from aiohttp import web
from localstripe import resources, server, webhooks
from localstripe.errors import UserError
from localstripe.webhooks import register_webhook, schedule_webhook

_original_refund_create = resources.Refund._api_create.__func__


def _refuse_over_refund(charge_id=None, payment_intent=None, amount=None, **_):
    """Stripe's answer to a refund larger than what is left on the charge."""
    try:
        if payment_intent is not None:
            charge_id = resources.PaymentIntent._api_retrieve(payment_intent).latest_charge.id
        charge = resources.Charge._api_retrieve(charge_id)
    except Exception:  # unknown or odd ids: localstripe's own checks answer those
        return
    remaining = charge.amount - charge.amount_refunded
    wanted = resources.try_convert_to_int(amount) if amount is not None else remaining
    if not isinstance(wanted, int):
        return
    if remaining <= 0:
        raise UserError(
            400,
            f"Charge {charge.id} has already been refunded.",
            {"code": "charge_already_refunded"},
        )
    if wanted > remaining:
        raise UserError(
            400,
            f"Refund amount (${wanted / 100:.2f}) is greater than unrefunded amount on charge "
            f"(${remaining / 100:.2f})",
            {"param": "amount"},
        )


def _refund_create_with_event(cls, **data):
    _refuse_over_refund(data.get("charge"), data.get("payment_intent"), data.get("amount"))
    refund = _original_refund_create(cls, **data)
    charge = resources.Charge._api_retrieve(refund.charge)
    schedule_webhook(resources.Event("charge.refunded", charge))
    return refund


resources.Refund._api_create = classmethod(_refund_create_with_event)

_idempotent_responses: dict[str, tuple[int, bytes, str]] = {}


@web.middleware
async def idempotency_middleware(request, handler):
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    cache_key = f"{request.path}:{key}"
    if cache_key in _idempotent_responses:
        status, body, content_type = _idempotent_responses[cache_key]
        return web.Response(
            status=status, body=body, content_type=content_type, headers={"Idempotent-Replayed": "true"}
        )
    response = await handler(request)
    if 200 <= response.status < 300:
        _idempotent_responses[cache_key] = (response.status, response.body, response.content_type)
    return response


server.app.middlewares.append(idempotency_middleware)

_send_webhook = webhooks._send_webhook
_undelivered = 0


async def _counted_send_webhook(event):
    global _undelivered
    _undelivered += 1
    try:
        await _send_webhook(event)  # a second's pause, then the POST, its answer awaited
    finally:
        _undelivered -= 1


async def pending_webhooks(request):
    return web.json_response({"pending": _undelivered})


webhooks._send_webhook = _counted_send_webhook  # schedule_webhook looks it up at each call
server.app.router.add_get("/_config/webhooks/pending", pending_webhooks)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", default="whsec_localstripe")
    ours, rest = parser.parse_known_args()
    if ours.webhook_url:
        register_webhook("events-app", ours.webhook_url, ours.webhook_secret, None)
    sys.argv = [sys.argv[0], *rest]  # localstripe parses --port and --from-scratch itself
    server.start()
