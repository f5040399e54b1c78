"""Run localstripe (the Stripe emulator used by `make run` and the tests), adding the one
event our app needs that it does not emit: charge.refunded, when a refund is created.

It also honours the Idempotency-Key header the way Stripe does (a repeated POST with the
same key returns the first response and creates nothing), so our idempotency keys are
exercised for real in the tests.

Usage: python scripts/localstripe_server.py --port 8420 [--from-scratch]
           [--webhook-url http://127.0.0.1:5000/stripe/webhook --webhook-secret whsec_...]
"""

import argparse
import sys

from aiohttp import web
from localstripe import resources, server
from localstripe.webhooks import register_webhook, schedule_webhook

_original_refund_create = resources.Refund._api_create.__func__


def _refund_create_with_event(cls, **data):
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

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", default="whsec_localstripe")
    ours, rest = parser.parse_known_args()
    if ours.webhook_url:
        register_webhook("events-app", ours.webhook_url, ours.webhook_secret, None)
    sys.argv = [sys.argv[0], *rest]  # localstripe parses --port and --from-scratch itself
    server.start()
