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
