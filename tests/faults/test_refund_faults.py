"""Refunds with Stripe down: nothing is promised that is not left, and the worker catches up.

Before refunds moved to the worker this was deterministic: the admin's $6 refund stayed pending
(Stripe unreachable), the cancellation's quote counted only refunds that had succeeded, and the
person was promised, and later sent, the full $10 on a $10 charge.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import sqlalchemy as sa

from events.models import (
    OutboxEmail,
    Payment,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.payments.gateway import ChargeState, StripeGateway, get_gateway
from events.payments.refunds import (
    RefundError,
    execute_due_refunds,
    queue_refund,
    refundable_remaining,
    retry_failed_refund,
)
from events.payments.services import mirror_charge_refunds
from tests.faults.test_stripe_faults import stripe_client
from tests.helpers import cancel_form, charge_card, csrf_token
from tests.integration.test_payments import SUCCESS, card_token, held_registration, pay, refreshed


def admin_client(client, db):
    """The test client, signed in as an admin. (One client plays both the admin and the person.)"""
    from tests.integration.test_staff_admin import login

    login(client, db)
    return client


def refunds(db) -> list[Refund]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Refund).order_by(Refund.id)))


def email_context(db, kind) -> list[dict]:
    db.session.expire_all()
    return [e.context for e in db.session.scalars(sa.select(OutboxEmail).where(OutboxEmail.kind == kind))]


def make_due(db) -> None:
    """As if the backoff's wait had passed."""
    db.session.execute(sa.update(Refund).values(next_attempt_at=utcnow()))
    db.session.commit()


def test_stripe_down_an_admin_refund_and_a_cancellation_are_capped_at_what_was_paid(
    app, client, db, private_stripe, use_stripe
):
    use_stripe(private_stripe.url)
    emulator = stripe_client(private_stripe.url)
    admin = admin_client(client, db)
    registration = held_registration(db, price_cents=1000, days=10)
    signed, paid = pay(client, registration, card_token(emulator, SUCCESS))
    assert paid.json["status"] == "succeeded"
    intent_id = paid.json["intent_id"]
    registration_url = f"/staff/admin/registrations/{registration.id}"

    private_stripe.kill()
    token = csrf_token(admin.get(registration_url).get_data(as_text=True))
    queued = admin.post(
        f"{registration_url}/refund",
        data={"amount": "6", "reason": "x", "csrf_token": token, "confirmed": "yes"},
    )
    assert queued.status_code == 302
    assert "Refund of $6.00 to " in admin.get(queued.location).get_data(as_text=True)
    execute_due_refunds()  # the worker, with Stripe down: still pending, tried again later
    [pending] = refunds(db)
    assert (pending.status, pending.attempts) == (RefundStatus.PENDING, 1)
    assert pending.last_error and pending.next_attempt_at > utcnow()

    confirm = client.get(f"/manage/{signed}/cancel").get_data(as_text=True)
    assert "back the <strong>$4</strong> not already refunded" in confirm  # what is left, not the $10 paid
    cancelled = client.post(f"/manage/{signed}/cancel", data=cancel_form(confirm))
    landed = client.get(cancelled.location).get_data(as_text=True)
    assert "A refund of $4 is on its way" in landed
    assert "$10 is on its way back" in landed  # $6 + $4, neither issued yet
    assert "$6: on its way" in landed and "$4: on its way" in landed
    [told] = email_context(db, EmailKind.REGISTRATION_CANCELLED)
    assert told["refund_cents"] == 400
    assert [(r.amount_cents, r.status) for r in refunds(db)] == [
        (600, RefundStatus.PENDING),
        (400, RefundStatus.PENDING),
    ]
    page = admin.get(registration_url).get_data(as_text=True)
    assert re.search(r"pending \(1 attempt; last: ", page)  # staff see it is stuck, and why
    assert email_context(db, EmailKind.REFUND_ISSUED) == []  # nothing issued, nothing said

    private_stripe.start()
    make_due(db)
    assert execute_due_refunds() == 2
    assert [r.status for r in refunds(db)] == [RefundStatus.SUCCEEDED] * 2
    listed = emulator.v1.refunds.list(params={"payment_intent": intent_id, "limit": 100}).data
    assert sorted(r.amount for r in listed) == [400, 600]
    assert refreshed(db, Payment, refunds(db)[0].payment_id).amount_refunded_cents == 1000
    assert sorted(c["refund_cents"] for c in email_context(db, EmailKind.REFUND_ISSUED)) == [400, 600]
    print("\n[fault stripe down] admin $6 + cancel: queued 600 + 400 = 1000 of 1000; issued after restart")


def test_a_refund_stripe_refuses_is_shown_failed_with_its_reason_and_retried_only_if_covered(
    app, client, db, private_stripe, use_stripe
):
    """$5 refunded in Stripe's dashboard (its webhook not yet arrived); the admin refunds $6.
    Stripe refuses (only $5 is left there): staff see "failed" with Stripe's reason and a Retry
    button; once the dashboard refund is mirrored, a retry is refused by our own rule."""
    use_stripe(private_stripe.url)
    emulator = stripe_client(private_stripe.url)
    admin = admin_client(client, db)
    registration = held_registration(db, price_cents=1000, days=10)
    _, paid = pay(client, registration, card_token(emulator, SUCCESS))
    intent_id = paid.json["intent_id"]
    emulator.v1.refunds.create(params={"payment_intent": intent_id, "amount": 500})
    registration_url = f"/staff/admin/registrations/{registration.id}"
    token = csrf_token(admin.get(registration_url).get_data(as_text=True))
    admin.post(
        f"{registration_url}/refund",
        data={"amount": "6", "reason": "x", "csrf_token": token, "confirmed": "yes"},
    )

    execute_due_refunds()

    [refund] = refunds(db)
    assert refund.status == RefundStatus.FAILED
    assert "greater than unrefunded amount on charge ($5.00)" in refund.last_error
    page = admin.get(registration_url).get_data(as_text=True)
    assert "failed: Refund amount ($6.00) is greater than unrefunded amount" in page
    assert f"/staff/admin/refunds/{refund.id}/retry" in page
    assert email_context(db, EmailKind.REFUND_ISSUED) == []

    from events.payments.gateway import get_gateway

    with app.test_request_context():
        charge = get_gateway().retrieve_charge(get_gateway().retrieve_intent(intent_id).latest_charge_id)
        mirror_charge_refunds(charge)  # what the charge.refunded webhook does
    retried = admin.post(
        f"/staff/admin/refunds/{refund.id}/retry", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert "Only $5.00 is left to refund on this payment." in admin.get(retried.location).get_data(
        as_text=True
    )
    assert [(r.amount_cents, r.status) for r in refunds(db)] == [
        (600, RefundStatus.FAILED),
        (500, RefundStatus.SUCCEEDED),
    ]


def test_on_sqlite_an_admin_refund_and_a_cancellation_are_capped_and_sent_by_the_worker(
    tmp_path, private_stripe
):
    """The embedded default holds the same rule: SQLite's BEGIN IMMEDIATE is the lock. (A
    private emulator: SQLite's ids start again at 1, and so would the idempotency keys made
    from them, which the run's shared emulator would replay.)"""
    from flask_migrate import upgrade

    from events.extensions import db as sqlite_db
    from events.payments.services import apply_intent
    from events.registration.services import Person, cancel_registration, register
    from events.staff.registrations import manual_refund
    from tests.conftest import make_test_app
    from tests.factories import workshop
    from tests.helpers import charge_card

    emulator = stripe_client(private_stripe.url)
    app = make_test_app(
        f"sqlite:///{tmp_path / 'refunds.sqlite3'}",
        STRIPE_API_BASE=private_stripe.url,
        STRIPE_SECRET_KEY="sk_test_emulator",
    )
    with app.app_context():
        upgrade()
        offering = workshop(price_cents=1000, days=10)
        sqlite_db.session.commit()
        registration = register(offering, None, Person("Lee", "lite@example.com")).registration
        intent = charge_card(
            registration_id=registration.id,
            card_token=card_token(emulator, SUCCESS),
            amount=1000,
            currency="usd",
            description="t",
        )
        apply_intent(intent)
        admin = User(email="boss@clinic.example", name="Boss", role=Role.ADMIN, password_hash="")
        sqlite_db.session.add(admin)
        sqlite_db.session.commit()

        manual_refund(registration, 600, "Left early", admin)
        _, told = cancel_registration(registration.id)

        assert told == 400
        assert execute_due_refunds() == 2
        listed = emulator.v1.refunds.list(params={"payment_intent": intent.id, "limit": 100}).data
        assert sorted(r.amount for r in listed) == [400, 600]
        assert {r.status for r in refunds(sqlite_db)} == {RefundStatus.SUCCEEDED}
        assert sqlite_db.session.scalar(sa.select(Payment.amount_refunded_cents)) == 1000
        sqlite_db.session.remove()
        sqlite_db.engine.dispose()


# --- Mirroring refunds made in Stripe (the charge.refunded webhook) ---------------------------


def paid_at_private_stripe(client, db, private_stripe, use_stripe, price_cents=1000):
    """A registration paid through the pay page on an emulator of the test's own (it sends no
    webhooks: the test calls the mirror itself, at the moment it wants the webhook to arrive)."""
    use_stripe(private_stripe.url)
    emulator = stripe_client(private_stripe.url)
    registration = held_registration(db, price_cents=price_cents, days=10)
    _, paid = pay(client, registration, card_token(emulator, SUCCESS))
    assert paid.json["status"] == "succeeded"
    return registration, emulator, paid.json["intent_id"]


def charge_of(intent_id: str, **refund_changes) -> ChargeState:
    """What the charge.refunded webhook re-reads from Stripe; `refund_changes` rewrite every
    refund on it (localstripe makes only succeeded refunds; Stripe also reports pending ones)."""
    gateway = get_gateway()
    charge = gateway.retrieve_charge(gateway.retrieve_intent(intent_id).latest_charge_id)
    return dataclasses.replace(
        charge, refunds=[dataclasses.replace(r, **refund_changes) for r in charge.refunds]
    )


def at_stripe(emulator, intent_id: str) -> list[int]:
    listed = emulator.v1.refunds.list(params={"payment_intent": intent_id, "limit": 100})
    return sorted(r.amount for r in listed.data)


@pytest.mark.parametrize(
    ("stripe_status", "mirrored_as", "issued_emails"),
    [
        ("pending", RefundStatus.SUCCEEDED, [400]),
        ("failed", RefundStatus.FAILED, []),
        ("canceled", RefundStatus.FAILED, []),
    ],
)
def test_a_dashboard_refund_not_yet_succeeded_is_mirrored_and_never_sent_again(
    app, client, db, private_stripe, use_stripe, stripe_status, mirrored_as, issued_emails
):
    """Before: a dashboard refund reported pending/failed/canceled was mirrored as a PENDING row
    the worker claimed and sent to Stripe again: Stripe held [400, 400], and two "refund issued"
    emails went out."""
    registration, emulator, intent_id = paid_at_private_stripe(client, db, private_stripe, use_stripe)
    dashboard = emulator.v1.refunds.create(params={"payment_intent": intent_id, "amount": 400})

    with app.test_request_context():
        mirror_charge_refunds(charge_of(intent_id, status=stripe_status))
        assert execute_due_refunds() == 0

    assert at_stripe(emulator, intent_id) == [400]
    [row] = refunds(db)
    assert (row.stripe_refund_id, row.amount_cents, row.status) == (dashboard.id, 400, mirrored_as)
    assert [c["refund_cents"] for c in email_context(db, EmailKind.REFUND_ISSUED)] == issued_emails
    # A refund made in the dashboard is retried there, not by us under a key of ours.
    refused = "made in Stripe's dashboard" if mirrored_as == RefundStatus.FAILED else "Only a failed"
    with app.test_request_context(), pytest.raises(RefundError, match=refused):
        retry_failed_refund(row.id)
    db.session.rollback()
    page = (
        admin_client(client, db).get(f"/staff/admin/registrations/{registration.id}").get_data(as_text=True)
    )
    assert f"/staff/admin/refunds/{row.id}/retry" not in page


def test_a_dashboard_refund_mirrored_pending_that_then_fails_no_longer_counts_as_refunded(
    app, client, db, private_stripe, use_stripe
):
    """Pending at Stripe counts as given (so we never refund it again); if Stripe later reports
    it failed, the money is back on the payment and can be refunded."""
    registration, emulator, intent_id = paid_at_private_stripe(client, db, private_stripe, use_stripe)
    emulator.v1.refunds.create(params={"payment_intent": intent_id, "amount": 400})
    with app.test_request_context():
        mirror_charge_refunds(charge_of(intent_id, status="pending"))
        payment = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent_id))
        assert refundable_remaining(payment) == 600
        failed = dataclasses.replace(charge_of(intent_id, status="failed"), amount_refunded=0)
        mirror_charge_refunds(failed)
        assert refundable_remaining(refreshed(db, Payment, payment.id)) == 1000
    [row] = refunds(db)
    assert (row.status, row.last_error) == (RefundStatus.FAILED, "Stripe reports the refund failed.")
    assert [c["refund_cents"] for c in email_context(db, EmailKind.REFUND_ISSUED)] == [400]


@pytest.mark.parametrize("ours", [RefundStatus.PENDING, RefundStatus.FAILED])
def test_a_dashboard_refund_of_the_same_amount_as_one_of_ours_not_sent_is_mirrored_and_told(
    app, client, db, private_stripe, use_stripe, ours
):
    """Our $10 refund is pending (Stripe unreachable so far) or failed; staff refund $10 in the
    dashboard. Before: the mirror matched the dashboard refund to our row by amount and skipped
    it: no row, no email; ours was then refused (over-refund) and the person never told."""
    registration, emulator, intent_id = paid_at_private_stripe(client, db, private_stripe, use_stripe)
    with app.test_request_context():
        payment = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent_id))
        queue_refund(payment.id, 1000, kind=RefundKind.MANUAL, key="ours-not-sent")
        db.session.commit()
    if ours == RefundStatus.FAILED:
        db.session.execute(sa.update(Refund).values(status=RefundStatus.FAILED, last_error="refused"))
        db.session.commit()
    dashboard = emulator.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1000})

    with app.test_request_context():
        mirror_charge_refunds(charge_of(intent_id))
        execute_due_refunds()

    assert at_stripe(emulator, intent_id) == [1000]
    rows = refunds(db)
    assert [(r.idempotency_key, r.status) for r in rows] == [
        ("ours-not-sent", RefundStatus.FAILED),
        (f"stripe-{dashboard.id}", RefundStatus.SUCCEEDED),
    ]
    assert [c["refund_cents"] for c in email_context(db, EmailKind.REFUND_ISSUED)] == [1000]
    assert db.session.get(Payment, rows[0].payment_id).amount_refunded_cents == 1000


class WebhookFirstGateway(StripeGateway):
    """Stripe's charge.refunded webhook arriving (and mirrored) before the worker has recorded
    the answer to its refund call."""

    def refund(self, **kwargs):
        state = super().refund(**kwargs)
        mirror_charge_refunds(
            self.retrieve_charge(self.retrieve_intent(state.payment_intent_id).latest_charge_id)
        )
        return state


def test_a_staff_retry_mirrored_before_the_worker_records_it_stays_one_refund(
    app, client, db, private_stripe, use_stripe
):
    """Stripe reported our $6 refund failed (its id recorded); staff retry it. Before: the row
    kept the failed attempt's Stripe id, so the mirror did not see it as ours and wrote a second
    SUCCEEDED row; the worker's record then hit the unique Stripe id and the row stayed PENDING,
    counting the $6 twice."""
    registration, emulator, intent_id = paid_at_private_stripe(client, db, private_stripe, use_stripe)
    with app.test_request_context():
        payment = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent_id))
        refund, _ = queue_refund(payment.id, 600, kind=RefundKind.MANUAL, key="admin-refund-retried")
        # As the worker records Stripe answering "failed" (the failed refund keeps its id).
        refund.status, refund.stripe_refund_id = RefundStatus.FAILED, "re_reported_failed"
        refund.next_attempt_at, refund.last_error = None, "Stripe reports the refund failed."
        db.session.commit()
        retry_failed_refund(refund.id)
        db.session.commit()
    use_stripe(private_stripe.url, WebhookFirstGateway("sk_test_emulator", private_stripe.url))

    with app.test_request_context():
        assert execute_due_refunds() == 1

    assert at_stripe(emulator, intent_id) == [600]
    [row] = refunds(db)
    assert row.status == RefundStatus.SUCCEEDED and row.stripe_refund_id not in (None, "re_reported_failed")
    assert [c["refund_cents"] for c in email_context(db, EmailKind.REFUND_ISSUED)] == [600]
    with app.test_request_context():
        assert refundable_remaining(db.session.get(Payment, row.payment_id)) == 400
    db.session.rollback()


def test_a_late_payment_already_refunded_in_the_dashboard_promises_no_money_and_paid_for_no_seat(
    app, client, db, private_stripe, use_stripe, smtp_recorder
):
    """The hold lapsed and the seat went to someone else; the payment succeeded at Stripe and
    staff refunded all of it in the dashboard before its success reached us. Before: nothing was
    left to queue, so no unplaced-payment row marked it, and succeeded_payment() took it as the
    payment for the (expired) registration's seat."""
    from datetime import timedelta

    from events.notifications.delivery import deliver_due
    from events.payments.services import apply_intent
    from events.registration import seats, services
    from events.registration.services import Person

    use_stripe(private_stripe.url)
    emulator = stripe_client(private_stripe.url)
    registration = held_registration(db, price_cents=1000, capacity=1, days=10)
    later = utcnow() + timedelta(minutes=20)
    seats.sweep_lapsed(later)
    services.register(registration.offering, None, Person("Other", "other@example.com"), later)
    with app.test_request_context():
        state = charge_card(
            registration_id=registration.id,
            card_token=card_token(emulator, SUCCESS),
            amount=1000,
            currency="usd",
            description="late",
        )
        # Our row saw it processing (as a bank debit would be), then the dashboard refund came.
        apply_intent(dataclasses.replace(state, status="processing"))
        emulator.v1.refunds.create(params={"payment_intent": state.id, "amount": 1000})
        mirror_charge_refunds(charge_of(state.id))
        apply_intent(state)
        assert execute_due_refunds() == 0
        registration = refreshed(db, Registration, registration.id)
        assert registration.status == RegistrationStatus.EXPIRED
        assert services.succeeded_payment(registration) is None
        assert services.refund_quote(registration).amount_cents == 0

    assert at_stripe(emulator, state.id) == [1000]
    assert [c["refund_cents"] for c in email_context(db, EmailKind.LATE_PAYMENT_REFUNDED)] == [0]
    deliver_due()
    [late] = [m for _, m in smtp_recorder.messages if "too late for a seat" in m["Subject"]]
    text = late.get_body(("plain",)).get_content()
    assert "nothing more for us to refund" in text and "We are refunding" not in text


def test_the_worker_never_sends_a_pending_row_that_already_has_a_stripe_refund_id(
    app, client, db, private_stripe, use_stripe
):
    """The claim's backstop: a row with a Stripe id records a refund Stripe holds (as the mirror
    left dashboard refunds before it stopped writing them PENDING); sending it refunds twice."""
    registration, emulator, intent_id = paid_at_private_stripe(client, db, private_stripe, use_stripe)
    dashboard = emulator.v1.refunds.create(params={"payment_intent": intent_id, "amount": 400})
    payment_id = db.session.scalar(sa.select(Payment.id).where(Payment.stripe_payment_intent_id == intent_id))
    db.session.add(
        Refund(
            payment_id=payment_id,
            stripe_refund_id=dashboard.id,
            idempotency_key=f"stripe-{dashboard.id}",
            kind=RefundKind.MIRRORED,
            amount_cents=400,
            status=RefundStatus.PENDING,
            reason="Refunded in Stripe",
        )
    )
    db.session.commit()

    with app.test_request_context():
        assert execute_due_refunds() == 0

    assert at_stripe(emulator, intent_id) == [400]
