"""A promo code and a sliding-scale tier at checkout, against localstripe as a real process:
the PaymentIntent's amount is the price events/pricing.py worked out, set before it is
confirmed; the confirmation (the receipt) says how."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from events.models import (
    Payment,
    PaymentStatus,
    PriceTier,
    PromoCode,
    PromoKind,
    Registration,
    RegistrationStatus,
)
from events.notifications.outbox import EmailKind
from events.pricing import PriceChoice
from events.registration import services
from events.registration.services import Person
from tests.factories import workshop
from tests.helpers import outbox_kinds
from tests.integration.test_payments import SUCCESS, card_token, pay, refreshed, stripe_client  # noqa: F401

pytestmark = pytest.mark.usefixtures("localstripe")


def test_the_intent_amount_at_stripe_is_the_quoted_price(client, db, stripe_client):  # noqa: F811
    offering = workshop(price_cents=1500)
    offering.price_tiers = [
        PriceTier(name="Supported", price_cents=2500, position=0),
        PriceTier(name="Standard", price_cents=1500, position=1),
        PriceTier(name="Community", price_cents=500, position=2),
    ]
    db.session.add(PromoCode(code="PARTNER", code_normalized="PARTNER", kind=PromoKind.PERCENT_OFF, value=15))
    db.session.commit()
    supported = offering.price_tiers[0]

    result = services.register(
        offering,
        None,
        Person("Pat Payer", "pat@example.com"),
        price_choice=PriceChoice(supported.id, code="partner"),
    )
    registration = result.registration
    # $25.00 - 15% = $25.00 - $3.75 = $21.25
    assert (registration.status, registration.price_cents, registration.discount_cents) == (
        RegistrationStatus.HELD,
        2125,
        375,
    )

    _signed, response = pay(client, registration, card_token(stripe_client, SUCCESS))

    assert response.status_code == 200 and response.json["status"] == "succeeded"
    payment = db.session.scalar(sa.select(Payment))
    intent = stripe_client.v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
    assert intent.amount == 2125 and intent.currency == "usd"
    assert "PARTNER" not in str(intent.get("metadata")) and "Supported" not in str(intent.get("description"))
    assert (payment.status, payment.amount_cents) == (PaymentStatus.SUCCEEDED, 2125)
    assert refreshed(db, Registration, registration.id).status == RegistrationStatus.CONFIRMED
    assert outbox_kinds(registration_id=registration.id) == [EmailKind.REGISTRATION_CONFIRMED]


@pytest.mark.parametrize("max_uses", [1, 2])
def test_a_late_card_payment_keeps_its_code_price_only_if_the_code_still_has_a_use(
    db,
    stripe_client,  # noqa: F811
    max_uses,
):
    """A's hold with a code ran out (not yet swept), so the code's use went to B in another
    class; A's card success then arrives. With one use, A's price can't stand: A's money is
    refunded once and the code stays at one use. With two, A is confirmed and both count."""
    from datetime import timedelta

    from events import pricing
    from events.models import Refund, RefundKind, utcnow
    from events.payments import services as payments
    from events.payments.gateway import IntentFor, get_gateway

    first, second = workshop(price_cents=2000, days=5), workshop(price_cents=2000, days=5)
    promo = PromoCode(code="ONCE", code_normalized="ONCE", kind=PromoKind.PERCENT_OFF, value=50)
    promo.max_uses = max_uses
    db.session.add(promo)
    db.session.commit()
    a = services.register(first, None, Person("Ana", "a@example.com"), price_choice=PriceChoice(code="ONCE"))
    a.registration.hold_expires_at = utcnow() - timedelta(hours=2)
    db.session.commit()
    b = services.register(second, None, Person("Bo", "b@example.com"), price_choice=PriceChoice(code="ONCE"))
    assert b.registration.promo_code_id == promo.id

    gateway = get_gateway()
    intent = gateway.create_intent(
        IntentFor(registration_id=a.registration.id, label="Registration"),
        card_token=card_token(stripe_client, SUCCESS),
        amount=1000,
        currency="usd",
    )
    payments.apply_intent(gateway.confirm_intent(intent.id))

    a_now = refreshed(db, Registration, a.registration.id)
    refunded = db.session.scalars(sa.select(Refund.kind)).all()
    if max_uses == 1:
        assert a_now.status is not RegistrationStatus.CONFIRMED
        assert refunded == [RefundKind.UNPLACED_PAYMENT]
        assert pricing.uses(promo.id, now=utcnow()) == 1  # B's (A's lapsed hold no longer counts)
    else:
        assert a_now.status is RegistrationStatus.CONFIRMED and refunded == []
        assert pricing.uses(promo.id) == 2


def test_a_card_success_locks_the_code_before_the_payment(client, db, stripe_client):  # noqa: F811
    """apply_intent for a registration priced with a code takes its row locks in the one order
    (seat pools -> promo code -> payments): the code's lock taken after the payment's could
    deadlock against a path that holds the code and waits for the payment."""
    from events.extensions import db as ext_db
    from events.payments import services as payments
    from events.payments.gateway import IntentFor, get_gateway

    offering = workshop(price_cents=2000, days=5)
    db.session.add(PromoCode(code="HALF", code_normalized="HALF", kind=PromoKind.PERCENT_OFF, value=50))
    db.session.commit()
    held = services.register(
        offering, None, Person("Ana", "a@example.com"), price_choice=PriceChoice(code="HALF")
    )
    gateway = get_gateway()
    intent = gateway.create_intent(
        IntentFor(registration_id=held.registration.id, label="Registration"),
        card_token=card_token(stripe_client, SUCCESS),
        amount=1000,
        currency="usd",
    )
    state = gateway.confirm_intent(intent.id)
    locked: list[str] = []

    def note_lock(conn, cursor, statement, parameters, context, executemany):
        if "FOR UPDATE" in statement:
            locked.append(statement.split("FROM", 1)[1].split()[0].strip('"'))

    engine = ext_db.engine
    sa.event.listen(engine, "before_cursor_execute", note_lock)
    try:
        payments.apply_intent(state)
    finally:
        sa.event.remove(engine, "before_cursor_execute", note_lock)
    order = [name for name in locked if name in ("seat_pools", "promo_codes", "payments")]
    assert order.index("seat_pools") < order.index("promo_codes") < order.index("payments"), order
    assert refreshed(db, Registration, held.registration.id).status is RegistrationStatus.CONFIRMED
