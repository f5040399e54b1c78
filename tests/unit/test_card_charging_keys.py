"""The idempotency keys and metadata of a card charge, pinned to the byte: a retry after a
deploy must be the same Stripe call as before it (a changed key would be a second charge), and
Stripe is told ids and a neutral label only. From each owner the one charging function is
given (events/payments/charging.py) to the gateway's two calls."""

from types import SimpleNamespace

from events.passes.buying import PassPrice
from events.payments.gateway import IntentFor, StripeGateway
from events.payments.services import BookingBalance, SeatPrice


class RecordingStripe:
    """Stands in for the Stripe client's two calls create_intent makes, recording them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, dict]] = []
        self.v1 = SimpleNamespace(
            customers=SimpleNamespace(create=self._customer),
            payment_intents=SimpleNamespace(create=self._intent),
        )

    def _customer(self, *, params: dict, options: dict) -> dict:
        self.calls.append(("customer", params, options))
        return {"id": "cus_1", "default_source": "card_1"}

    def _intent(self, *, params: dict, options: dict) -> dict:
        self.calls.append(("intent", params, options))
        return {"id": "pi_1", "status": "requires_confirmation", "amount": params["amount"], "currency": "x"}


def created(intent_for: IntentFor) -> list[tuple[str, dict, str]]:
    gateway = object.__new__(StripeGateway)  # no network client: the recording one instead
    stripe = RecordingStripe()
    gateway._client = stripe  # type: ignore[attr-defined]
    gateway.create_intent(intent_for, card_token="tok_abc", amount=2500, currency="usd")
    return [(name, params["metadata"], options["idempotency_key"]) for name, params, options in stripe.calls]


def test_a_seat_price_is_keyed_by_its_registration():
    assert created(SeatPrice(7).intent_for) == [
        ("customer", {"registration_id": "7"}, "registration-7-customer-tok_abc"),
        ("intent", {"registration_id": "7", "item": "Registration 7"}, "registration-7-payment-tok_abc"),
    ]


def test_a_booking_balance_is_keyed_apart_from_its_price():
    assert created(BookingBalance(7).intent_for) == [
        ("customer", {"registration_id": "7"}, "registration-7-customer-tok_abc"),
        (
            "intent",
            {"registration_id": "7", "item": "Balance", "purpose": "balance"},
            "registration-7-balance-tok_abc",
        ),
    ]


def test_a_class_pass_is_keyed_by_the_pass():
    assert created(PassPrice(3).intent_for) == [
        ("customer", {"pass_id": "3"}, "pass-3-customer-tok_abc"),
        ("intent", {"pass_id": "3", "purpose": "pass", "item": "Class pass"}, "pass-3-payment-tok_abc"),
    ]
