"""The webhook endpoint: signatures, replays, unknown events and concurrent deliveries."""

import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from events.models import Payment, Registration, RegistrationStatus, WebhookEvent
from events.notifications.outbox import EmailKind
from events.registration import services
from events.registration.services import Person
from tests.conftest import WEBHOOK_SECRET
from tests.factories import workshop
from tests.helpers import charge_card, outbox_kinds


def signed_event(
    event_type: str,
    obj: dict,
    event_id: str = "evt_test_1",
    timestamp: int | None = None,
    secret: str = WEBHOOK_SECRET,
) -> tuple[bytes, dict]:
    timestamp = timestamp or int(time.time())
    payload = json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "created": timestamp, "data": {"object": obj}}
    ).encode()
    signature = hmac.new(secret.encode(), b"%d.%s" % (timestamp, payload), hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={timestamp},v1={signature}", "Content-Type": "application/json"}


def event_count(db) -> int:
    """Events these tests sent (the emulator may still be delivering an earlier test's own)."""
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(WebhookEvent)
        .where(WebhookEvent.stripe_event_id.like("evt_test%"))
    )


def test_forged_signature_is_rejected_and_nothing_is_written(client, db):
    payload, headers = signed_event("payment_intent.succeeded", {"id": "pi_x"}, secret="whsec_forged")
    response = client.post("/stripe/webhook", data=payload, headers=headers)
    assert response.status_code == 400 and response.json["error"]["title"] == "Invalid signature"
    assert client.post("/stripe/webhook", data=payload).status_code == 400  # no signature at all
    assert event_count(db) == 0


def test_stale_timestamp_is_rejected(client, db):
    payload, headers = signed_event(
        "payment_intent.succeeded", {"id": "pi_x"}, timestamp=int(time.time()) - 3600
    )
    assert client.post("/stripe/webhook", data=payload, headers=headers).status_code == 400
    assert event_count(db) == 0


def test_a_body_changed_after_signing_is_rejected(client, db):
    payload, headers = signed_event("charge.refunded", {"id": "ch_x"})
    tampered = payload.replace(b"ch_x", b"ch_y")
    assert client.post("/stripe/webhook", data=tampered, headers=headers).status_code == 400


def test_unknown_event_type_is_acknowledged_and_ignored(client, db):
    payload, headers = signed_event("customer.created", {"id": "cus_1"})
    response = client.post("/stripe/webhook", data=payload, headers=headers)
    assert response.status_code == 200 and response.json == {"received": True, "handled": False}
    assert event_count(db) == 0


@pytest.mark.usefixtures("localstripe")
def test_the_same_event_ten_times_at_once_confirms_once(live_server, db, localstripe):
    import stripe

    offering = workshop(price_cents=2000)
    db.session.commit()
    registration = services.register(offering, None, Person("Cy", "cy@example.com")).registration
    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})
    token = client.v1.tokens.create(
        params={"card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2032, "cvc": "123"}}
    ).id
    # Charged at Stripe, but our side has not heard yet (as if the browser closed).
    intent = charge_card(
        registration_id=registration.id, card_token=token, amount=2000, currency="usd", description="t"
    )
    payload, headers = signed_event("payment_intent.succeeded", {"id": intent.id}, event_id="evt_concurrent")

    def deliver(_):
        return requests.post(f"{live_server.url}/stripe/webhook", data=payload, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(deliver, range(10)))

    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    assert sum(1 for r in responses if r.json().get("handled")) == 1
    db.session.expire_all()
    assert db.session.get(Registration, registration.id).status == RegistrationStatus.CONFIRMED
    assert outbox_kinds(registration_id=registration.id).count(EmailKind.REGISTRATION_CONFIRMED) == 1
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.stripe_event_id == "evt_concurrent")
        )
        == 1
    )


@pytest.mark.parametrize("obj", [{}, {"id": None}, {"id": 12}, {"id": ["pi_x"]}, {"id": ""}, "pi_x", None])
@pytest.mark.parametrize("event_type", ["payment_intent.succeeded", "charge.refunded"])
def test_a_signed_event_whose_object_has_no_usable_id_is_a_400(client, db, obj, event_type):
    payload, headers = signed_event(event_type, obj, event_id="evt_test_malformed")
    response = client.post("/stripe/webhook", data=payload, headers=headers)
    assert response.status_code == 400 and response.json["error"]["title"] == "Malformed event"
    assert event_count(db) == 0


def test_a_signed_event_with_a_non_string_id_is_a_400(client, db):
    payload, headers = signed_event("payment_intent.succeeded", {"id": "pi_x"}, event_id=12345)
    response = client.post("/stripe/webhook", data=payload, headers=headers)
    assert response.status_code == 400 and response.json["error"]["title"] == "Malformed event"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 0


@pytest.mark.usefixtures("localstripe")
@pytest.mark.parametrize(
    "event_type, object_id",
    [
        ("payment_intent.succeeded", "pi_never_created_by_us"),
        ("payment_intent.payment_failed", "pi_never_created_by_us"),
        ("charge.refunded", "ch_never_created_by_us"),
    ],
)
def test_an_event_about_an_object_stripe_does_not_know_is_acknowledged_and_changes_nothing(
    client, db, event_type, object_id
):
    """A 5xx would make Stripe retry it for three days: it is a 2xx, logged and ignored."""
    offering = workshop(price_cents=2000)
    db.session.commit()
    registration = services.register(offering, None, Person("Cy", "cy@example.com")).registration
    emails_before = outbox_kinds(registration_id=registration.id)

    payload, headers = signed_event(event_type, {"id": object_id}, event_id="evt_test_unknown")
    response = client.post("/stripe/webhook", data=payload, headers=headers)

    assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    assert response.json["handled"] is False
    assert event_count(db) == 0
    assert db.session.get(Registration, registration.id).status == RegistrationStatus.HELD
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0
    assert outbox_kinds(registration_id=registration.id) == emails_before
