"""Refunds through a real `celery -A worker.app worker` process on Redis and the Stripe emulator.

A request only writes the pending refund; the commit nudges the worker, which sends it to Stripe
and, once Stripe has accepted it, the "refund issued" email. With the nudge lost, the periodic
housekeeping sweep sends it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import stripe

from events.models import Refund, RefundStatus
from events.payments.services import apply_intent
from events.registration import services
from events.registration.services import Person
from tests.factories import workshop
from tests.helpers import charge_card, wait_until
from tests.integration.test_payments import SUCCESS, card_token
from tests.integration.test_staff_admin import login, token_from
from tests.worker.conftest import send_task

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("localstripe")]


def paid(db, localstripe, email: str, title: str):
    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})
    offering = workshop(price_cents=1000, title=title)
    db.session.commit()
    registration = services.register(offering, None, Person("Rae", email)).registration
    state = charge_card(
        registration_id=registration.id,
        card_token=card_token(client, SUCCESS),
        amount=1000,
        currency="usd",
        description="t",
    )
    apply_intent(state)
    return registration, state.id, client


def refund_status(db):
    db.session.expire_all()
    return db.session.scalar(sa.select(Refund.status))


def refund_six_dollars(client, db, registration):
    login(client, db)
    url = f"/staff/admin/registrations/{registration.id}"
    response = client.post(
        f"{url}/refund",
        data={
            "amount": "6",
            "reason": "Left early",
            "csrf_token": token_from(client, url),
            "confirmed": "yes",
        },
    )
    assert response.status_code == 302


def test_a_refund_an_admin_queues_is_sent_by_the_worker_then_the_email(
    client, db, smtp, celery_worker, publish, localstripe
):
    registration, intent_id, stripe_client = paid(db, localstripe, "rae@example.com", "Neck Care")

    refund_six_dollars(client, db, registration)  # its commit nudges the worker

    wait_until(lambda: refund_status(db) == RefundStatus.SUCCEEDED, timeout=30, what="the worker's refund")
    listed = stripe_client.v1.refunds.list(params={"payment_intent": intent_id}).data
    assert [r.amount for r in listed] == [600]
    wait_until(
        lambda: any(m["Subject"].startswith("Refund issued for ") for m in smtp.to("rae@example.com")),
        timeout=30,
        what="the refund issued email",
    )
    [issued] = [m for m in smtp.to("rae@example.com") if m["Subject"].startswith("Refund issued for ")]
    assert "$6" in issued.get_body(("plain",)).get_content()


def test_with_the_nudge_lost_the_housekeeping_sweep_sends_the_refund(
    client, db, smtp, celery_worker, redis_test_db, localstripe
):
    registration, intent_id, stripe_client = paid(db, localstripe, "sam@example.com", "Hip Care")

    refund_six_dollars(client, db, registration)  # no nudge: publishing is off for this test
    assert refund_status(db) == RefundStatus.PENDING
    assert stripe_client.v1.refunds.list(params={"payment_intent": intent_id}).data == []

    send_task(redis_test_db, "worker.tasks.housekeeping")  # what beat sends every minute

    wait_until(lambda: refund_status(db) == RefundStatus.SUCCEEDED, timeout=30, what="the sweep's refund")
    listed = stripe_client.v1.refunds.list(params={"payment_intent": intent_id}).data
    assert [r.amount for r in listed] == [600]
    # The sweep's refund is told like a nudged one: one "refund issued" email, for $6.
    wait_until(
        lambda: any(m["Subject"].startswith("Refund issued for ") for m in smtp.to("sam@example.com")),
        timeout=30,
        what="the refund issued email",
    )
    [issued] = [m for m in smtp.to("sam@example.com") if m["Subject"].startswith("Refund issued for ")]
    assert "$6" in issued.get_body(("plain",)).get_content()
