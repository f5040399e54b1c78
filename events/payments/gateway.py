"""The only code that talks to Stripe.

Every call that moves money carries an idempotency key derived from our own ids, so a retry
after a timeout or crash can never charge or refund twice. Results come back as small plain
objects so the rest of the app never touches Stripe's types.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import current_app

T = TypeVar("T")


class PaymentDeclined(Exception):
    """The card was declined or failed: `code` is Stripe's (its decline_code, else its error
    code), which chooses what the member reads; the message is Stripe's English, for staff."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class GatewayUnavailable(Exception):
    """Stripe could not be reached or answered with an error of its own; try again later."""


class GatewayRejected(GatewayUnavailable):
    """Stripe refused the request as invalid (e.g. refunding more than is left): retrying won't help."""


class InvalidWebhook(Exception):
    """The webhook's signature is missing, forged or too old."""


@dataclass(frozen=True)
class IntentState:
    id: str
    status: str  # Stripe's PaymentIntent status
    amount: int
    currency: str
    client_secret: str
    registration_id: int | None
    latest_charge_id: str | None
    error_message: str = ""
    error_code: str = ""  # Stripe's decline_code, else its error code ("insufficient_funds")
    # What it pays for, from our metadata: "registration" (the seat) or "balance" (what a
    # booking still owes after a transfer onto a dearer date).
    purpose: str = "registration"
    # From the latest charge (asked for expanded): what the receipt names. Empty until charged.
    card_brand: str = ""  # Stripe's word: "visa", "mastercard", "amex"...
    card_last4: str = ""
    charged_at: datetime | None = None
    # A class pass's purchase (purpose "pass"): the pass it buys, from our metadata.
    pass_id: int | None = None


@dataclass(frozen=True)
class IntentFor:
    """What a PaymentIntent pays for, as Stripe is told it: our ids, our word for the purpose and
    a neutral label, never a class's title or anything about the person. Its idempotency keys
    and metadata are made from these here and only here, so a retry (across a deploy too) is
    the same Stripe call (tests/unit/test_card_charging_keys.py pins them)."""

    registration_id: int | None = None
    pass_id: int | None = None  # a class pass's purchase names the pass instead
    purpose: str = "registration"  # "registration" (a seat), "balance" (what a booking owes), "pass"
    label: str = ""

    def _owner(self) -> tuple[str, str, str]:
        """(metadata key, our id, key prefix)"""
        if self.pass_id is not None:
            return "pass_id", str(self.pass_id), f"pass-{self.pass_id}"
        return "registration_id", str(self.registration_id), f"registration-{self.registration_id}"

    def metadata(self) -> dict[str, str]:
        key, owner_id, _ = self._owner()
        if self.pass_id is not None:
            return {key: owner_id, "purpose": "pass", "item": self.label[:200]}
        metadata = {key: owner_id, "item": self.label[:200]}
        if self.purpose == "balance":
            metadata["purpose"] = "balance"
        return metadata

    def customer_metadata(self) -> dict[str, str]:
        key, owner_id, _ = self._owner()
        return {key: owner_id}

    def customer_key(self, card_token: str) -> str:
        return f"{self._owner()[2]}-customer-{card_token}"

    def intent_key(self, card_token: str) -> str:
        kind = "balance" if self.purpose == "balance" else "payment"
        return f"{self._owner()[2]}-{kind}-{card_token}"


@dataclass(frozen=True)
class RefundState:
    id: str
    amount: int
    status: str
    payment_intent_id: str | None
    refund_row_id: int | None = None  # our Refund row, when we made it


def _refund_row_id(refund: Mapping[str, Any]) -> int | None:
    value = (refund.get("metadata") or {}).get("refund_id")
    return int(value) if value and str(value).isdigit() else None


@dataclass(frozen=True)
class ChargeState:
    id: str
    payment_intent_id: str | None
    amount: int
    amount_refunded: int
    refunds: list[RefundState] = field(default_factory=list)


def _id(value: str | Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else value.get("id")


def _charge_card(charge: object) -> tuple[str, str, datetime | None]:
    """The card brand, its last 4 digits and when it was charged, from an expanded charge
    (an id alone, or a payment by something else than a card, gives none of them)."""
    if not isinstance(charge, Mapping):
        return "", "", None
    details = charge.get("payment_method_details") or {}
    card = details.get("card") if isinstance(details, Mapping) else None
    brand = last4 = ""
    if isinstance(card, Mapping):
        brand, last4 = str(card.get("brand") or "")[:20], str(card.get("last4") or "")
        last4 = last4 if len(last4) == 4 and last4.isdigit() else ""
    created = charge.get("created")
    charged_at = datetime.fromtimestamp(created, UTC) if isinstance(created, int) and created > 0 else None
    return brand, last4, charged_at


def _decline_code(error: Mapping[str, Any] | Any) -> str:
    """Stripe's most precise code for a failed charge: the bank's decline_code
    ("insufficient_funds") when it gives one, else the error's code ("expired_card")."""
    get = error.get if isinstance(error, Mapping) else lambda key: getattr(error, key, None)
    return str(get("decline_code") or get("code") or "")[:60]


def _intent_state(pi: Mapping[str, Any]) -> IntentState:
    error = pi.get("last_payment_error") or {}
    registration_id = (pi.get("metadata") or {}).get("registration_id")
    brand, last4, charged_at = _charge_card(pi.get("latest_charge"))
    purpose = (pi.get("metadata") or {}).get("purpose")
    pass_id = (pi.get("metadata") or {}).get("pass_id")
    return IntentState(
        id=pi["id"],
        status=pi["status"],
        amount=pi["amount"],
        currency=pi["currency"],
        client_secret=pi.get("client_secret") or "",
        registration_id=int(registration_id) if registration_id and str(registration_id).isdigit() else None,
        latest_charge_id=_id(pi.get("latest_charge")),
        error_message=(error.get("message") or "") if error else "",
        error_code=_decline_code(error) if error else "",
        card_brand=brand,
        card_last4=last4,
        charged_at=charged_at,
        purpose=purpose if purpose in ("balance", "pass") else "registration",
        pass_id=int(pass_id) if pass_id and str(pass_id).isdigit() else None,
    )


class StripeGateway:
    def __init__(self, secret_key: str, api_base: str = "", timeout_seconds: float = 15) -> None:
        # Stripe's SDK is imported here, where it is first used, not at module level: it takes
        # about a second to import, which every `flask` command and worker start would pay.
        import stripe

        # A bounded timeout: a hanging Stripe must not hold a web worker for minutes.
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else {},
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=timeout_seconds),
        )

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import stripe  # (already loaded by __init__: a dictionary lookup)

        try:
            return fn(*args, **kwargs)
        except stripe.CardError as error:
            code = _decline_code(error.error) if error.error is not None else ""
            raise PaymentDeclined(
                error.user_message or "Your card was declined.", code or error.code or "card_declined"
            ) from error
        except stripe.InvalidRequestError as error:
            raise GatewayRejected(getattr(error, "user_message", None) or str(error)) from error
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
            raise GatewayUnavailable(str(error)) from error
        except stripe.StripeError as error:
            raise GatewayUnavailable(getattr(error, "user_message", None) or str(error)) from error

    def create_intent(
        self, intent_for: IntentFor, *, card_token: str, amount: int, currency: str
    ) -> IntentState:
        """A PaymentIntent for one card submission, not yet confirmed (nothing is charged).

        Created before the charge so that our payment row can name it first: if the answer to
        the charge is then lost, we still know which intent to ask Stripe about. The keys
        include the card token, so a double-submitted form is one intent.
        """
        customer = self._call(
            self._client.v1.customers.create,
            params={"source": card_token, "metadata": intent_for.customer_metadata()},
            options={"idempotency_key": intent_for.customer_key(card_token)},
        )
        pi = self._call(
            self._client.v1.payment_intents.create,
            params={
                "amount": amount,
                "currency": currency,
                "customer": customer["id"],
                "payment_method": _id(customer.get("default_source")),
                "payment_method_types": ["card"],
                # (description goes in metadata: the emulator rejects the description field)
                "metadata": intent_for.metadata(),
            },
            options={"idempotency_key": intent_for.intent_key(card_token)},
        )
        return _intent_state(pi)

    def confirm_intent(self, intent_id: str) -> IntentState:
        """Charge the card of an intent made by create_intent. A declined card raises
        PaymentDeclined; one that needs 3D Secure comes back as "requires_action"."""
        pi = self._call(
            self._client.v1.payment_intents.confirm,
            intent_id,
            params={"expand": ["latest_charge"]},
            options={"idempotency_key": f"confirm-{intent_id}"},
        )
        return _intent_state(pi)

    def retrieve_intent(self, intent_id: str) -> IntentState:
        """The intent as it stands, with its latest charge expanded (the card that paid)."""
        return _intent_state(
            self._call(
                self._client.v1.payment_intents.retrieve, intent_id, params={"expand": ["latest_charge"]}
            )
        )

    def cancel_intent(self, intent_id: str) -> None:
        self._call(self._client.v1.payment_intents.cancel, intent_id)

    def refund(
        self, *, payment_intent_id: str, amount: int, idempotency_key: str, refund_row_id: int | None = None
    ) -> RefundState:
        metadata = {"refund_id": str(refund_row_id)} if refund_row_id is not None else {}
        refund = self._call(
            self._client.v1.refunds.create,
            params={"payment_intent": payment_intent_id, "amount": amount, "metadata": metadata},
            options={"idempotency_key": idempotency_key},
        )
        return RefundState(
            id=refund["id"],
            amount=refund["amount"],
            status=refund["status"],
            payment_intent_id=payment_intent_id,
        )

    def retrieve_charge(self, charge_id: str) -> ChargeState:
        charge = self._call(self._client.v1.charges.retrieve, charge_id)
        refunds = self._call(self._client.v1.refunds.list, params={"charge": charge_id, "limit": 100})
        pi_id = _id(charge.get("payment_intent"))
        return ChargeState(
            id=charge["id"],
            payment_intent_id=pi_id,
            amount=charge["amount"],
            amount_refunded=charge.get("amount_refunded") or 0,
            refunds=[
                RefundState(
                    id=r["id"],
                    amount=r["amount"],
                    status=r["status"],
                    payment_intent_id=pi_id,
                    refund_row_id=_refund_row_id(r),
                )
                for r in refunds.data
            ],
        )

    def parse_webhook(self, payload: bytes, signature: str | None, secret: str) -> dict:
        """Verify the signature on the raw body (and its age, 5 minutes at most) and return the event."""
        if not signature:
            raise InvalidWebhook("missing Stripe-Signature header")
        import stripe  # (already loaded by __init__)

        try:
            stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret, 300)
            event = json.loads(payload)
            return {"id": event["id"], "type": event["type"], "object": event["data"]["object"]}
        except (ValueError, KeyError, TypeError, stripe.SignatureVerificationError) as error:
            raise InvalidWebhook(str(error)) from error


def get_gateway() -> StripeGateway:
    """The app's gateway, built once per app from its config (tests may replace it)."""
    ext = current_app.extensions
    if "stripe_gateway" not in ext:
        cfg = current_app.config
        ext["stripe_gateway"] = StripeGateway(
            cfg["STRIPE_SECRET_KEY"], cfg["STRIPE_API_BASE"], cfg["STRIPE_TIMEOUT_SECONDS"]
        )
    return ext["stripe_gateway"]
