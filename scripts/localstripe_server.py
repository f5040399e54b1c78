"""Run localstripe (the Stripe emulator used by `make run` and the tests), adding the one
event our app needs that it does not emit: charge.refunded, when a refund is created.

It refuses a refund above what remains on the charge, as Stripe does (400,
invalid_request_error): localstripe alone accepts it, and our money rules rely on the refusal.

It counts the webhooks it has yet to deliver (localstripe sends each one a second after the
event, in the background): GET /_config/webhooks/pending answers {"pending": n}, so a test can
wait until everything it caused has reached the app before the next test starts.

Stripe's test cards declined when attached (4000 0000 0000 9995 and the others in DECLINES)
answer with Stripe's code, decline_code and message for each, not localstripe's bare
card_declined: the pay page words a decline by its code.

Its charges carry `payment_method_details.card` (brand, last 4 digits, expiry), as Stripe's
do: the receipt in the booking email names the card that paid.

It also honours the Idempotency-Key header the way Stripe does (a repeated POST with the
same key returns the first response and creates nothing), so our idempotency keys are
exercised for real in the tests.

It listens on 127.0.0.1 only (localstripe itself binds every interface). Its objects live in
memory, or with --state FILE in that file too (written after every change, atomically), so a
restart of `make run` still knows every earlier payment and can refund it; --from-scratch
starts empty all the same. (localstripe alone always writes /tmp/localstripe.pickle, one file
for every emulator on the machine: not here.)

Usage: python scripts/localstripe_server.py --port 8420 [--host 127.0.0.1]
           [--state instance/localstripe-state.pickle] [--from-scratch]
           [--webhook-url http://127.0.0.1:5000/stripe/webhook --webhook-secret whsec_...]
"""

import argparse
import logging
import os
import pickle
import socket
from pathlib import Path

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

# Stripe's test cards that are declined when attached, with the code, decline_code and message
# Stripe answers for each (https://docs.stripe.com/testing#declined-payments): localstripe
# declines them all as a bare card_declined, and the pay page chooses its words by the code.
DECLINES = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "4000000000000119": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
}

_original_add_source = resources.Customer._api_add_source.__func__


def _card_number(source) -> str:
    try:
        if isinstance(source, str) and source.startswith("tok_"):
            return resources.Token._api_retrieve(source).card._card_number
        if isinstance(source, dict):
            return str(source.get("number") or "")
    except Exception:  # an unknown token: localstripe's own answer stands
        return ""
    return ""


def _add_source_with_stripes_decline(cls, id, source=None, **kwargs):
    try:
        return _original_add_source(cls, id, source=source, **kwargs)
    except UserError as error:
        decline = DECLINES.get(_card_number(source)) if error.code == 402 else None
        if decline is not None:
            code, decline_code, message = decline
            error.body["error"].update(
                type="card_error", code=code, decline_code=decline_code, message=message
            )
        raise


resources.Customer._api_add_source = classmethod(_add_source_with_stripes_decline)


def _payment_method_details(charge):
    """Stripe's `payment_method_details` of a charge: the card's brand (lowercase, as Stripe
    writes it), last 4 digits and expiry. localstripe keeps cards as Card (card_...) or
    PaymentMethod (pm_...) objects; both are read here."""
    try:
        method = resources.PaymentMethod._api_retrieve(charge.payment_method)
    except Exception:  # an unknown or odd id: no details, as for a non-card payment
        return None
    card = getattr(method, "card", None)
    if isinstance(card, dict):  # a PaymentMethod
        brand, last4 = card.get("brand"), card.get("last4")
        exp_month, exp_year = card.get("exp_month"), card.get("exp_year")
    elif getattr(method, "object", None) == "card":  # a Card (our tokens become these)
        brand, last4 = method.brand, method.last4
        exp_month, exp_year = method.exp_month, method.exp_year
    else:
        return None
    return {
        "type": "card",
        "card": {
            "brand": str(brand or "unknown").lower().replace(" ", "_"),
            "last4": last4,
            "exp_month": exp_month,
            "exp_year": exp_year,
        },
    }


resources.Charge.payment_method_details = property(_payment_method_details)

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


# Where the objects are kept between runs (None: in memory only).
STATE: Path | None = None


def _dump_state(store) -> None:
    """The objects and the idempotency replays, written whole (a kill mid-write leaves the
    previous file, never half of one)."""
    if STATE is None:
        return
    tmp = STATE.with_name(STATE.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(
            {"store": dict(store), "idempotency": _idempotent_responses}, f, protocol=pickle.HIGHEST_PROTOCOL
        )
    os.replace(tmp, STATE)


def _load_state(store) -> None:
    if STATE is None or not STATE.exists():
        return
    with open(STATE, "rb") as f:
        saved = pickle.load(f)  # noqa: S301  (our own file, in the instance folder)
    store.clear()
    store.update(saved["store"])
    _idempotent_responses.clear()
    _idempotent_responses.update(saved["idempotency"])


resources.Store.dump_to_disk = _dump_state
resources.Store.try_load_from_disk = _load_state


def main() -> None:
    global STATE
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", type=Path, help="keep the emulator's objects in this file across restarts")
    parser.add_argument("--from-scratch", action="store_true", help="start empty (still writing --state)")
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", default="whsec_localstripe")
    args = parser.parse_args()
    if args.webhook_url:
        register_webhook("events-app", args.webhook_url, args.webhook_secret, None)
    if args.state is not None:
        args.state.parent.mkdir(parents=True, exist_ok=True)
        STATE = args.state
        if not args.from_scratch:
            resources.store.try_load_from_disk()
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    access_log = logging.getLogger("aiohttp.access")
    access_log.setLevel(logging.INFO)
    access_log.addHandler(logging.StreamHandler())
    # (print=None: no "Running on http://0.0.0.0" banner, which would not be true.)
    print(
        f"Stripe emulator on http://{args.host}:{args.port}" + (f", state in {STATE}" if STATE else ""),
        flush=True,
    )
    web.run_app(server.app, sock=sock, access_log=access_log, print=None)


if __name__ == "__main__":
    main()
