"""Class passes (issue 14, part A): buying one by card through the one success path (the card
submission, the webhook, the return from the page, the reconcile), a late or second payment
refunded once, the desk sale, staff adjust / freeze / unfreeze / refund pro rata, expiry, the
ledger always the truth, hostile input, the API. PostgreSQL and the Stripe emulator delivering
signed webhooks to the live app."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa
import stripe

from events.models import (
    AuditEntry,
    LedgerKind,
    OfferingKind,
    OutboxEmail,
    Pass,
    PassLedgerEntry,
    PassProduct,
    PassStatus,
    PassValidityStart,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.passes import admin as pass_admin
from events.passes import ledger
from events.passes.purchase import void_lapsed_holds
from events.payments import services as payments
from events.payments.gateway import IntentFor, get_gateway
from events.payments.refunds import execute_due_refunds
from events.registration import links
from events.staff.errors import AdminError
from tests.conftest import WEBHOOK_SECRET, deliver_webhooks
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token, wait_until
from tests.integration.test_staff_admin import login, token_from

SUCCESS = "4242424242424242"
THREE_D_SECURE = "4000002500003155"

pytestmark = pytest.mark.usefixtures("localstripe")


@pytest.fixture
def stripe_client(localstripe):
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})


def card_token(stripe_client, number: str = SUCCESS) -> str:
    return stripe_client.v1.tokens.create(
        params={"card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    ).id


def make_product(db, **kw) -> PassProduct:
    values = dict(
        name="10-class pass",
        credits=10,
        price_cents=12000,
        validity_days=90,
        validity_starts=PassValidityStart.PURCHASE,
        offering_kinds="class",
        is_on_sale=True,
    )
    values.update(kw)
    product = PassProduct(**values)
    db.session.add(product)
    db.session.commit()
    return product


def refreshed(db, model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def start_buying(client, product: PassProduct, name="Ana Lopez", email="ana@example.com") -> tuple[Pass, str]:
    url = f"/passes/{product.id}/buy"
    response = client.post(url, data={"name": name, "email": email, "csrf_token": token_from(client, url)})
    assert response.status_code == 302, response.get_data(as_text=True)
    signed = response.headers["Location"].split("/pass/")[1].split("/")[0]
    from events.extensions import db

    pass_ = db.session.scalar(sa.select(Pass).where(Pass.token == links.unsign(signed, links.PASS_SALT)))
    assert pass_ is not None and pass_.status is PassStatus.HELD
    return pass_, signed


def pay_on_page(client, signed: str, token: str):
    page = client.get(f"/pass/{signed}/pay")
    assert page.status_code == 200
    return client.post(
        f"/pass/{signed}/pay",
        json={"token": token},
        headers={"X-CSRFToken": csrf_token(page.get_data(as_text=True))},
    )


def charge_at_stripe(pass_id: int, token: str, amount: int = 12000):
    """A pass charged at Stripe without our page answering (a closed tab, a lost answer)."""
    gateway = get_gateway()
    intent = gateway.create_intent(
        IntentFor(pass_id=pass_id, purpose="pass", label="Class pass"),
        card_token=token,
        amount=amount,
        currency="usd",
    )
    return gateway.confirm_intent(intent.id)


def ledger_rows(db, pass_id: int) -> list[tuple[str, int]]:
    db.session.expire_all()
    return [
        (e.kind.value, e.credits)
        for e in db.session.scalars(
            sa.select(PassLedgerEntry).where(PassLedgerEntry.pass_id == pass_id).order_by(PassLedgerEntry.id)
        )
    ]


def pass_emails(db, kind: str) -> list[OutboxEmail]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboxEmail).where(OutboxEmail.kind == kind)))


# --- Buying by card ---


def test_buying_by_card_activates_the_pass_once_and_stripe_sees_ids_and_a_neutral_label(
    client, db, stripe_client, localstripe
):
    product = make_product(db, name="Ana's favourite strength pass")
    pass_, signed = start_buying(client, product)
    assert client.get(f"/pass/{signed}").status_code == 302  # held: its page is the payment page

    response = pay_on_page(client, signed, card_token(stripe_client))

    assert response.status_code == 200 and response.json["status"] == "succeeded"
    pass_ = refreshed(db, Pass, pass_.id)
    assert pass_.status is PassStatus.ACTIVE and pass_.hold_expires_at is None
    assert ledger_rows(db, pass_.id) == [("purchase", 10)]
    assert abs(pass_.expires_at - (pass_.activated_at + timedelta(days=90))) < timedelta(seconds=1)
    payment = db.session.scalar(sa.select(Payment).where(Payment.pass_id == pass_.id))
    assert (payment.purpose, payment.registration_id, payment.amount_cents, payment.status) == (
        PaymentPurpose.PASS,
        None,
        12000,
        PaymentStatus.SUCCEEDED,
    )
    intent = stripe_client.v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
    assert dict(intent.metadata) == {"pass_id": str(pass_.id), "purpose": "pass", "item": "Class pass"}
    deliver_webhooks(localstripe)  # payment_intent.succeeded: applied again, changes nothing
    assert ledger_rows(db, pass_.id) == [("purchase", 10)]
    assert len(pass_emails(db, EmailKind.PASS_ISSUED)) == 1
    complete = client.get(f"/pass/{signed}/pay/complete?payment_intent={payment.stripe_payment_intent_id}")
    assert complete.status_code == 302 and complete.headers["Location"].endswith(f"/pass/{signed}")
    page = client.get(f"/pass/{signed}").get_data(as_text=True)
    assert "10 of 10 credits left" in page
    assert f"Expires {pass_.expires_at.astimezone(ZoneInfo('America/Chicago')):%b}" in page
    # The ledger is the truth: the balance is its sum.
    assert ledger.balance(pass_.id) == 10


def test_a_declined_card_for_a_pass_is_told_by_its_code_and_another_card_pays(client, db, stripe_client):
    from events.languages import in_language
    from events.payments import declines

    product = make_product(db)
    pass_, signed = start_buying(client, product)
    client.set_cookie("lang", "so")

    declined = pay_on_page(client, signed, card_token(stripe_client, "4000000000000341"))

    with client.application.test_request_context("/"), in_language("so"):
        expected = declines.decline_message("card_declined")
    assert declined.json == {**declined.json, "status": "failed", "message": expected}
    payment = db.session.scalar(sa.select(Payment).where(Payment.pass_id == pass_.id))
    assert payment.status is PaymentStatus.FAILED
    assert payment.last_error == "card_declined: Your card was declined."  # Stripe's, for staff
    assert refreshed(db, Pass, pass_.id).status is PassStatus.HELD
    assert pay_on_page(client, signed, card_token(stripe_client)).json["status"] == "succeeded"


def test_the_webhook_alone_activates_a_pass_charged_while_the_page_was_closed(db, stripe_client, localstripe):
    product = make_product(db)
    from events.passes.buying import Buyer, start_purchase

    pass_ = start_purchase(product, Buyer("Ana Lopez", "ana@example.com"))
    charge_at_stripe(pass_.id, card_token(stripe_client))  # nothing applied on our side

    wait_until(
        lambda: refreshed(db, Pass, pass_.id).status is PassStatus.ACTIVE, timeout=15, what="the webhook"
    )
    assert ledger_rows(db, pass_.id) == [("purchase", 10)]


def test_the_return_from_the_page_alone_activates_it_when_webhooks_fail(
    client, db, stripe_client, localstripe, app
):
    product = make_product(db)
    pass_, signed = start_buying(client, product)
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_rotated_wrongly"  # every delivery refused
    try:
        state = charge_at_stripe(pass_.id, card_token(stripe_client))
        deliver_webhooks(localstripe)
        assert refreshed(db, Pass, pass_.id).status is PassStatus.HELD
        response = client.get(f"/pass/{signed}/pay/complete?payment_intent={state.id}")
    finally:
        app.config["STRIPE_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    assert response.status_code == 302
    assert refreshed(db, Pass, pass_.id).status is PassStatus.ACTIVE
    assert ledger_rows(db, pass_.id) == [("purchase", 10)]


def test_the_reconcile_sweep_activates_a_pass_whose_answers_were_all_lost(
    client, db, stripe_client, localstripe, app
):
    product = make_product(db)
    pass_, signed = start_buying(client, product)
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_rotated_wrongly"
    try:
        response = pay_on_page(client, signed, card_token(stripe_client, THREE_D_SECURE))
        assert response.json["status"] == "requires_action"
        requests.post(
            f"{localstripe}/v1/payment_intents/{response.json['intent_id']}/_authenticate?success=true",
            json={"key": "pk_test_emulator", "client_secret": response.json["client_secret"]},
            timeout=10,
        )
        deliver_webhooks(localstripe)
        assert refreshed(db, Pass, pass_.id).status is PassStatus.HELD
    finally:
        app.config["STRIPE_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    # The hold has run out meanwhile, but a payment is in flight: the sweep waits for it (grace).
    assert void_lapsed_holds(utcnow() + timedelta(minutes=16)) == 0

    assert payments.reconcile_pending_payments() == 1
    assert refreshed(db, Pass, pass_.id).status is PassStatus.ACTIVE
    assert payments.reconcile_pending_payments() == 0
    assert len(pass_emails(db, EmailKind.PASS_ISSUED)) == 1


def test_a_payment_after_the_hold_lapsed_is_refunded_once_and_the_buyer_told(
    client, db, stripe_client, localstripe
):
    product = make_product(db)
    pass_, signed = start_buying(client, product)
    assert void_lapsed_holds(utcnow() + timedelta(minutes=16)) == 1  # unpaid: voided
    assert refreshed(db, Pass, pass_.id).status is PassStatus.VOID

    state = charge_at_stripe(pass_.id, card_token(stripe_client))
    payments.apply_intent(state)
    payments.apply_intent(state)  # again, as the webhook will
    deliver_webhooks(localstripe)

    pass_ = refreshed(db, Pass, pass_.id)
    assert pass_.status is PassStatus.VOID and ledger_rows(db, pass_.id) == []
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert (refund.kind, refund.amount_cents, refund.status) == (
        RefundKind.UNPLACED_PAYMENT,
        12000,
        RefundStatus.PENDING,
    )
    assert len(pass_emails(db, EmailKind.PASS_PAYMENT_REFUNDED)) == 1
    assert execute_due_refunds() == 1
    assert [r.amount for r in stripe_client.v1.refunds.list(params={"payment_intent": state.id}).data] == [
        12000
    ]
    assert "not completed" in client.get(f"/pass/{signed}").get_data(as_text=True)


def test_a_second_successful_payment_is_refunded_once_and_the_pass_keeps_its_credits(
    client, db, stripe_client, localstripe
):
    product = make_product(db)
    pass_, signed = start_buying(client, product)
    assert pay_on_page(client, signed, card_token(stripe_client)).json["status"] == "succeeded"

    second = charge_at_stripe(pass_.id, card_token(stripe_client))  # another tab, say
    payments.apply_intent(second)
    payments.apply_intent(second)
    deliver_webhooks(localstripe)

    assert ledger_rows(db, pass_.id) == [("purchase", 10)]
    refunds = db.session.scalars(sa.select(Refund)).all()
    assert [(r.amount_cents, r.payment.stripe_payment_intent_id) for r in refunds] == [(12000, second.id)]
    [told] = pass_emails(db, EmailKind.PASS_PAYMENT_REFUNDED)
    assert told.context["paid_already"] is True
    # A pay submission on a pass already active charges nothing.
    assert client.get(f"/pass/{signed}/pay").status_code == 302


# --- Staff ---


def staff_post(client, url: str, page_url: str, data: dict):
    return client.post(url, data={**data, "csrf_token": token_from(client, page_url)})


def test_a_desk_sale_activates_the_pass_at_once_and_emails_its_link(client, db):
    product = make_product(db)
    admin = login(client, db)

    response = staff_post(
        client,
        "/staff/admin/passes/sell",
        "/staff/admin/passes/sell",
        {
            "product_id": str(product.id),
            "name": "Bo Chen",
            "email": "bo@example.com",
            "method": "cash",
            "note": "at the desk",
        },
    )

    assert response.status_code == 302, response.get_data(as_text=True)
    pass_ = db.session.scalar(sa.select(Pass).where(Pass.email_normalized == "bo@example.com"))
    assert pass_.status is PassStatus.ACTIVE and ledger.balance(pass_.id) == 10
    [payment] = pass_.payments
    assert (payment.method, payment.amount_cents, payment.taken_by_id, payment.stripe_payment_intent_id) == (
        PaymentMethod.CASH,
        12000,
        admin.id,
        None,
    )
    assert [e.context["pass_id"] for e in pass_emails(db, EmailKind.PASS_ISSUED)] == [pass_.id]
    assert (
        db.session.scalar(sa.select(AuditEntry.action).where(AuditEntry.target_type == "pass"))
        == "pass.sold_at_desk"
    )
    detail = client.get(f"/staff/admin/passes/{pass_.id}").get_data(as_text=True)
    assert "10 of 10" in detail and "Bo Chen" in detail
    listing = client.get("/staff/admin/passes?q=bo%40example").get_data(as_text=True)
    assert "Bo Chen" in listing


def test_adjust_freeze_unfreeze_and_refund_the_unused_credits_pro_rata(
    client, db, stripe_client, localstripe
):
    product = make_product(db)
    pass_, signed = start_buying(client, product)
    assert pay_on_page(client, signed, card_token(stripe_client)).json["status"] == "succeeded"
    login(client, db)
    page = f"/staff/admin/passes/{pass_.id}"

    # Adjust: the first post shows the confirmation; nothing changes until it is confirmed.
    review = staff_post(client, f"{page}/adjust", page, {"credits": "-3", "reason": "Two no-shows agreed"})
    assert review.status_code == 200 and "Take 3 credits off" in review.get_data(as_text=True)
    assert ledger.balance(pass_.id) == 10
    done = staff_post(
        client, f"{page}/adjust", page, {"credits": "-3", "reason": "Agreed", "confirmed": "yes"}
    )
    assert done.status_code == 302 and ledger.balance(pass_.id) == 7
    # Never below zero, checked under the lock.
    refused = staff_post(
        client, f"{page}/adjust", page, {"credits": "-8", "reason": "Too many", "confirmed": "yes"}
    )
    assert refused.status_code == 400 and "below zero" in refused.get_data(as_text=True)
    assert ledger.balance(pass_.id) == 7

    # Freeze (a medical pause), then unfreeze ten days later: the expiry moves on ten days.
    done = staff_post(
        client, f"{page}/freeze", page, {"freeze-reason": "Knee surgery", "freeze-confirmed": "yes"}
    )
    assert done.status_code == 302
    pass_ = refreshed(db, Pass, pass_.id)
    assert pass_.frozen_since is not None and not ledger.is_usable(pass_, utcnow())
    expires = pass_.expires_at
    actor = db.session.scalar(sa.select(User).where(User.role == Role.ADMIN))
    assert (
        pass_admin.unfreeze(pass_.id, "Back", actor, now=pass_.frozen_since + timedelta(days=9, hours=2))
        == 10
    )
    pass_ = refreshed(db, Pass, pass_.id)
    assert pass_.frozen_since is None and pass_.expires_at == expires + timedelta(days=10)

    # Refund pro rata: $120 / 10 credits x 7 unused = $84.00.
    review = staff_post(client, f"{page}/refund", page, {"refund-reason": "Moving away"})
    assert review.status_code == 200 and "$84.00" in review.get_data(as_text=True)
    done = staff_post(
        client,
        f"{page}/refund",
        page,
        {"refund-reason": "Moving away", "refund-expected_cents": "8400", "refund-confirmed": "yes"},
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    pass_ = refreshed(db, Pass, pass_.id)
    assert pass_.status is PassStatus.REFUNDED and ledger.balance(pass_.id) == 0
    assert ledger_rows(db, pass_.id)[-1] == ("refund", -7)
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert (refund.amount_cents, refund.status, refund.kind) == (
        8400,
        RefundStatus.PENDING,
        RefundKind.MANUAL,
    )
    assert execute_due_refunds() == 1  # the worker's job
    assert refreshed(db, Refund, refund.id).status is RefundStatus.SUCCEEDED
    intent_id = refund.payment.stripe_payment_intent_id
    assert [r.amount for r in stripe_client.v1.refunds.list(params={"payment_intent": intent_id}).data] == [
        8400
    ]
    assert len(pass_emails(db, EmailKind.PASS_REFUND_ISSUED)) == 1
    actions = set(db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.target_type == "pass")))
    assert {"pass.adjusted", "pass.frozen", "pass.unfrozen", "pass.refunded"} <= actions


def test_a_pro_rata_refund_is_floored_to_the_cent_and_cash_goes_back_at_the_desk(db):
    product = make_product(db, credits=3, price_cents=10000)
    actor = User(email="desk@clinic.example", name="Desk", role=Role.ADMIN)
    db.session.add(actor)
    db.session.commit()
    pass_ = pass_admin.sell_at_desk(product.id, "Cy", "cy@example.com", PaymentMethod.CASH, "", actor)
    spent = ledger.write(
        ledger.lock_pass(pass_.id), LedgerKind.ADJUSTMENT, -1, actor_id=actor.id, reason="used"
    )
    db.session.commit()
    assert spent.credits == -1

    decision = pass_admin.refund_unused(pass_.id, "Leaving", actor)

    assert (decision.credits, decision.cents) == (2, 6666)  # 10000 / 3 x 2 = 6666.67, floored
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert refund.status is RefundStatus.SUCCEEDED and "at the desk" in refund.reason
    with pytest.raises(AdminError):
        pass_admin.refund_unused(pass_.id, "Again", actor)  # once: nothing left, not active


def test_a_failed_pass_refund_can_be_retried_from_the_pass_page(client, db, stripe_client, localstripe):
    product = make_product(db)
    pass_, signed = start_buying(client, product)
    assert pay_on_page(client, signed, card_token(stripe_client)).json["status"] == "succeeded"
    login(client, db)
    actor = db.session.scalar(sa.select(User).where(User.role == Role.ADMIN))
    pass_admin.refund_unused(pass_.id, "Leaving", actor)
    refund = db.session.scalar(sa.select(Refund))
    refund.status, refund.last_error, refund.next_attempt_at = RefundStatus.FAILED, "Stripe said no", None
    db.session.commit()
    page = f"/staff/admin/passes/{pass_.id}"
    assert "Retry" in client.get(page).get_data(as_text=True)

    review = staff_post(client, f"/staff/admin/refunds/{refund.id}/retry", page, {})
    assert review.status_code == 200 and "Retry the refund" in review.get_data(as_text=True)
    done = staff_post(client, f"/staff/admin/refunds/{refund.id}/retry", page, {"confirmed": "yes"})

    assert done.status_code == 302 and f"/staff/admin/passes/{pass_.id}" in done.headers["Location"]
    refund = refreshed(db, Refund, refund.id)
    assert (refund.status, refund.retries) == (RefundStatus.PENDING, 1)


def test_staff_pass_pages_need_an_admin(client, db):
    product = make_product(db)
    for url in (
        "/staff/admin/passes",
        "/staff/admin/pass-products",
        f"/staff/admin/pass-products/{product.id}",
        "/staff/admin/passes/sell",
    ):
        assert client.get(url).status_code == 302  # to the sign-in
    login(client, db, role=Role.INSTRUCTOR)
    for url in ("/staff/admin/passes", "/staff/admin/pass-products", "/staff/admin/passes/sell"):
        assert client.get(url).status_code == 403


def test_creating_and_editing_a_product_and_the_offering_credits_per_booking(client, db):
    location = make_location(name="North Loop")
    offering = make_offering(location, OfferingKind.CLASS, title="Core Flow", price_cents=1500)
    make_session(offering, upcoming_day(3))
    db.session.commit()
    login(client, db)
    new = "/staff/admin/pass-products/new"
    response = staff_post(
        client,
        new,
        new,
        {
            "name": "5 Core Flow classes",
            "credits": "5",
            "price": "60",
            "validity_days": "60",
            "validity_starts": "first_use",
            "offering_ids": str(offering.id),
            "is_on_sale": "y",
            "position": "1",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    product = db.session.scalar(sa.select(PassProduct))
    assert (
        product.credits,
        product.price_cents,
        product.validity_starts,
        [o.id for o in product.offerings],
    ) == (
        5,
        6000,
        PassValidityStart.FIRST_USE,
        [offering.id],
    )
    public = client.get("/passes").get_data(as_text=True)
    assert "5 Core Flow classes" in public and "Core Flow" in public and "$60" in public
    assert "from your first class" in public
    assert db.session.scalar(
        sa.select(AuditEntry.action).where(AuditEntry.target_type == "pass_product")
    ) == ("pass_product.created")
    # A free pass (a price of 0) is a price, not a missing one; editing keeps the rest.
    edit = f"/staff/admin/pass-products/{product.id}"
    assert "Core Flow" in client.get(edit).get_data(as_text=True)
    response = staff_post(
        client,
        edit,
        edit,
        {
            "name": "5 Core Flow classes",
            "credits": "5",
            "price": "0",
            "validity_days": "60",
            "validity_starts": "first_use",
            "offering_ids": str(offering.id),
            "is_on_sale": "y",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert refreshed(db, PassProduct, product.id).price_cents == 0
    product.price_cents = 6000
    db.session.commit()
    api = client.get("/api/v1/pass-products").json["data"]
    assert [(p["name"], p["price_cents"], p["credits"]) for p in api] == [("5 Core Flow classes", 6000, 5)]
    assert "balance" not in str(api)
    assert "/pass-products" in client.get("/api/v1/openapi.json").json["paths"]


HOSTILE = ["a\x00b", "9" * 400, "1e309", "-99999", "NaN", "99999999999999999999999999"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_input_on_every_pass_form_is_a_form_error_and_changes_nothing(client, db, value):
    product = make_product(db)
    actor = login(client, db)
    pass_ = pass_admin.sell_at_desk(product.id, "Cy", "cy@example.com", PaymentMethod.COMP, "", actor)
    before = (
        ledger_rows(db, pass_.id),
        db.session.scalar(sa.select(sa.func.count()).select_from(PassProduct)),
    )
    buy = f"/passes/{product.id}/buy"
    page = f"/staff/admin/passes/{pass_.id}"
    posts = [
        (buy, buy, {"name": value, "email": value}),
        (
            "/staff/admin/pass-products/new",
            "/staff/admin/pass-products/new",
            {
                "name": value,
                "credits": value,
                "price": value,
                "validity_days": value,
                "validity_starts": value,
                "position": value,
            },
        ),
        (
            "/staff/admin/passes/sell",
            "/staff/admin/passes/sell",
            {"product_id": value, "name": value, "email": value, "method": value},
        ),
        (f"{page}/adjust", page, {"credits": value, "reason": value, "confirmed": "yes"}),
        (
            f"{page}/freeze",
            page,
            {"freeze-reason": value if "\x00" in value else "", "freeze-confirmed": "yes"},
        ),
        (
            f"{page}/refund",
            page,
            {"refund-reason": "x", "refund-expected_cents": value, "refund-confirmed": "yes"},
        ),
    ]
    for url, form_page, data in posts:
        response = staff_post(client, url, form_page, data)
        assert response.status_code == 400, (url, data, response.status_code)
    assert client.get(f"/staff/admin/passes?q={value}").status_code == 200
    assert client.get(f"/staff/admin/passes?before={value}").status_code == 200
    assert client.get(f"/pass/{value}").status_code == 404
    assert (
        ledger_rows(db, pass_.id),
        db.session.scalar(sa.select(sa.func.count()).select_from(PassProduct)),
    ) == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Pass)) == 1


# --- Expiry and the ledger's truth ---


def test_expiry_writes_what_is_left_once_and_costs_one_query_when_nothing_is_due(db, count_queries):
    product = make_product(db)
    actor = User(email="desk@clinic.example", name="Desk", role=Role.ADMIN)
    db.session.add(actor)
    db.session.commit()
    pass_ = pass_admin.sell_at_desk(product.id, "Cy", "cy@example.com", PaymentMethod.COMP, "", actor)
    pass_admin.adjust(pass_.id, -4, "used", actor)
    expires = refreshed(db, Pass, pass_.id).expires_at

    with count_queries() as counted:
        assert pass_admin.expire_due(expires - timedelta(minutes=1)) == 0
    assert len(counted) <= 2

    assert pass_admin.expire_due(expires + timedelta(minutes=1)) == 1
    assert pass_admin.expire_due(expires + timedelta(days=1)) == 0  # once
    assert ledger_rows(db, pass_.id)[-1] == ("expiry", -6) and ledger.balance(pass_.id) == 0
    assert not ledger.is_usable(refreshed(db, Pass, pass_.id), expires + timedelta(minutes=1))


def test_the_balance_is_always_the_ledger_sum_and_never_below_zero(db):
    """Random sequences of staff adjustments, pauses and expiry."""
    rng = random.Random(14)
    product = make_product(db, credits=5)
    actor = User(email="desk@clinic.example", name="Desk", role=Role.ADMIN)
    db.session.add(actor)
    db.session.commit()
    for _ in range(4):
        pass_ = pass_admin.sell_at_desk(product.id, "Cy", "cy@example.com", PaymentMethod.COMP, "", actor)
        now = utcnow()
        for _ in range(25):
            step = rng.choice(["add", "take", "take", "freeze", "unfreeze", "expire"])
            try:
                if step == "add":
                    pass_admin.adjust(pass_.id, rng.randint(1, 3), "r", actor)
                elif step == "take":
                    pass_admin.adjust(pass_.id, -rng.randint(1, 4), "r", actor)
                elif step == "freeze":
                    pass_admin.freeze(pass_.id, "r", actor, now=now)
                elif step == "unfreeze":
                    pass_admin.unfreeze(pass_.id, "r", actor, now=now + timedelta(days=rng.randint(0, 5)))
                else:
                    pass_admin.expire_due(now + timedelta(days=rng.randint(0, 120)))
            except AdminError:
                pass
            rows = ledger_rows(db, pass_.id)
            running = 0
            for _kind, credits in rows:
                running += credits
                assert running >= 0, rows
            assert ledger.balance(pass_.id) == running == sum(c for _, c in rows)


def test_a_held_pass_page_sends_to_payment_and_a_void_one_says_so(client, db):
    product = make_product(db)
    pass_, signed = start_buying(client, product)
    assert re.search(r"/pass/[^/]+/pay$", client.get(f"/pass/{signed}").headers["Location"])
    void_lapsed_holds(utcnow() + timedelta(minutes=16))
    body = client.get(f"/pass/{signed}").get_data(as_text=True)
    assert "not completed" in body
    assert client.get(f"/pass/{signed}/pay").status_code == 302
    assert client.get("/pass/not-a-signed-link").status_code == 404


def test_the_staff_pass_list_runs_the_same_statements_at_any_size_and_the_audit_reads(
    client, db, count_queries
):
    products = [make_product(db, name="10-class pass"), make_product(db, name="5-class pass", credits=5)]
    actor = login(client, db)

    def sell(n: int) -> None:
        for i in range(n):
            pass_admin.sell_at_desk(
                products[i % 2].id, f"Holder {i}", f"h{i}@example.com", PaymentMethod.COMP, "", actor
            )

    def statements() -> int:
        with count_queries() as counted:
            response = client.get("/staff/admin/passes")
        assert response.status_code == 200
        return len(counted)

    sell(3)
    with_3 = statements()
    sell(60)  # more than a page
    with_63 = statements()
    assert with_63 == with_3
    page = client.get("/staff/admin/passes").get_data(as_text=True)
    assert page.count("5 of 5") + page.count("10 of 10") == pass_admin.PAGE_SIZE and "Older" in page
    older = re.search(r'href="(/staff/admin/passes\?before=\d+)"', page).group(1)
    assert client.get(older.replace("&amp;", "&")).status_code == 200
    trail = client.get("/staff/audit").get_data(as_text=True)
    assert "sold Holder 59&#39;s class pass #" in trail
    assert re.search(r'href="/staff/admin/passes/\d+">Pass #\d+</a>', trail)


def test_credits_per_booking_is_set_on_the_offering_form_from_1_to_20(client, db):
    from events.models import Offering
    from tests.integration.test_staff_admin import offering_form

    location = make_location(name="North Loop")
    db.session.commit()
    login(client, db)
    new = "/staff/admin/offerings/new"
    for bad in ("0", "21", "99999999999999999999999", "a\x00"):
        data = offering_form(location.id, kind="class", title="Core Flow", credits_per_booking=bad)
        assert staff_post(client, new, new, data).status_code == 400, bad
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Offering)) == 0
    data = offering_form(location.id, kind="class", title="Core Flow", credits_per_booking="2")
    assert staff_post(client, new, new, data).status_code == 302
    assert db.session.scalar(sa.select(Offering.credits_per_booking)) == 2


def test_two_card_submissions_at_once_charge_a_pass_once(db, live_server, stripe_client):
    """Two tabs send two card tokens for one held pass at the same moment (real threads, the
    live server): the intent is recorded under the pass's lock before it is charged, so one is
    charged and the other turned away; nothing needs refunding."""
    import threading

    from events.passes.buying import Buyer, start_purchase

    pass_ = start_purchase(make_product(db), Buyer("Ana Lopez", "ana@example.com"))
    signed = links.sign(pass_.token, links.PASS_SALT)
    url = f"{live_server.url}/pass/{signed}/pay"
    tabs = []
    for _ in range(2):
        http = requests.Session()
        tabs.append((http, csrf_token(http.get(url, timeout=10).text), card_token(stripe_client)))
    start = threading.Barrier(2)
    answers = []

    def submit(tab):
        http, csrf, card = tab
        start.wait()
        answers.append(http.post(url, json={"token": card}, headers={"X-CSRFToken": csrf}, timeout=30).json())

    threads = [threading.Thread(target=submit, args=(tab,)) for tab in tabs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert "succeeded" in [a["status"] for a in answers], answers
    intents = [
        pi
        for pi in stripe_client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
        if (pi.metadata or {}).get("pass_id") == str(pass_.id)
    ]
    assert sorted(pi.status for pi in intents if pi.status != "canceled") == ["succeeded"], answers
    assert db.session.scalars(sa.select(Refund)).all() == []
    assert ledger_rows(db, pass_.id) == [("purchase", 10)]


@pytest.mark.parametrize("token", ["tok_\x00", "x" * 5000, 12, None, ["tok_1"]])
def test_a_malformed_card_token_for_a_pass_is_a_400_and_charges_nothing(client, db, token):
    product = make_product(db)
    pass_, signed = start_buying(client, product)
    page = client.get(f"/pass/{signed}/pay").get_data(as_text=True)
    response = client.post(
        f"/pass/{signed}/pay", json={"token": token}, headers={"X-CSRFToken": csrf_token(page)}
    )
    assert response.status_code == 400 and response.json["status"] == "failed"
    garbage = client.post(
        f"/pass/{signed}/pay",
        data=b"\x00\xff{",
        headers={"X-CSRFToken": csrf_token(page), "Content-Type": "application/json"},
    )
    assert garbage.status_code == 400
    assert db.session.scalars(sa.select(Payment)).all() == []
    assert refreshed(db, Pass, pass_.id).status is PassStatus.HELD


def test_the_pass_page_tells_its_history_in_words_and_lists_upcoming_bookings(client, db):
    from events.registration.services import Person, register

    location = make_location(name="North Loop")
    core = make_offering(location, OfferingKind.CLASS, title="Core Flow", price_cents=0)
    first, second = make_session(core, upcoming_day(3)), make_session(core, upcoming_day(10))
    product = make_product(db)
    actor = login(client, db)
    pass_ = pass_admin.sell_at_desk(product.id, "Ana", "ana@example.com", PaymentMethod.CASH, "", actor)
    booked = []
    for session in (first, second):
        registration = register(core, session.id, Person("Ana", "ana@example.com")).registration
        ledger.spend(ledger.lock_pass(pass_.id), registration, utcnow())
        db.session.commit()
        booked.append(registration)
    ledger.give_back(booked[1], utcnow(), reason="cancelled in time")
    booked[1].status = RegistrationStatus.CANCELLED
    db.session.commit()
    pass_admin.adjust(pass_.id, 1, "A makeup class", actor)

    body = client.get(f"/pass/{links.sign(pass_.token, links.PASS_SALT)}").get_data(as_text=True)

    assert "10 of 10 credits left" in body  # 10 - 1 - 1 + 1 + 1
    assert "bought, 10 credits" in body
    assert body.count("1 credit spent on Core Flow (") == 2
    assert "1 credit returned (Core Flow cancelled)" in body
    assert "1 credit added by the clinic: “A makeup class”" in body
    bookings = body[body.index('id="bookings-heading"') :].split("</section>")[0]
    assert bookings.count("Core Flow") == 1  # the cancelled one is not upcoming


@pytest.mark.real_commits  # threads with connections of their own
def test_two_takings_of_the_last_credit_at_once_leave_zero_never_below(app, db):
    """Real threads, each its own transaction: the check is made under the pass's row lock, so
    of two staff taking the last credit at the same moment one is refused."""
    import threading

    product = make_product(db, credits=1)
    actor = User(email="desk@clinic.example", name="Desk", role=Role.ADMIN)
    db.session.add(actor)
    db.session.commit()
    pass_id = pass_admin.sell_at_desk(product.id, "Cy", "cy@example.com", PaymentMethod.COMP, "", actor).id
    actor_id = actor.id
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def take() -> None:
        with app.app_context():
            from events.extensions import db as thread_db

            who = thread_db.session.get(User, actor_id)
            start.wait()
            try:
                pass_admin.adjust(pass_id, -1, "last one", who)
                outcomes.append("taken")
            except AdminError:
                outcomes.append("refused")
            finally:
                thread_db.session.remove()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "refused", "refused", "taken"]
    assert ledger_rows(db, pass_id) == [("purchase", 1), ("adjustment", -1)]


def test_a_free_pass_is_issued_at_once_without_a_card(client, db):
    product = make_product(db, name="Community pass", price_cents=0, credits=4)
    url = f"/passes/{product.id}/buy"
    page = client.get(url).get_data(as_text=True)
    assert "Get my pass" in page and "Continue to payment" not in page
    response = client.post(
        url, data={"name": "Ana", "email": "ana@example.com", "csrf_token": csrf_token(page)}
    )
    assert response.status_code == 302 and "/pay" not in response.headers["Location"]
    pass_ = db.session.scalar(sa.select(Pass))
    assert pass_.status is PassStatus.ACTIVE and ledger_rows(db, pass_.id) == [("purchase", 4)]
    assert db.session.scalars(sa.select(Payment)).all() == []
    assert len(pass_emails(db, EmailKind.PASS_ISSUED)) == 1
    assert "4 of 4 credits left" in client.get(response.headers["Location"]).get_data(as_text=True)
    # Not on sale: no page, no purchase.
    product.is_on_sale = False
    db.session.commit()
    assert client.get(url).status_code == 404
    assert "Community pass" not in client.get("/passes").get_data(as_text=True)


# --- A promo code on a pass (events/pricing.py prices it once) ---


def make_code(db, **kw):
    from events.models import PromoCode, PromoKind

    values = dict(code="WELL20", code_normalized="WELL20", kind=PromoKind.PERCENT_OFF, value=20)
    values["applies_to_passes"] = True
    values.update(kw)
    code = PromoCode(**values)
    db.session.add(code)
    db.session.commit()
    return code


def buy_with_code(client, product, code, email="ana@example.com"):
    url = f"/passes/{product.id}/buy"
    return client.post(
        url, data={"name": "Ana Lopez", "email": email, "code": code, "csrf_token": token_from(client, url)}
    )


def test_a_code_lowers_the_pass_price_the_intent_charges_it_and_its_use_is_counted(
    client, db, stripe_client, localstripe
):
    from events.models import PromoRedemption

    product = make_product(db)  # $120
    code = make_code(db)  # 20% off: $96
    response = buy_with_code(client, product, "well20 ")  # typed loosely: matched all the same
    assert response.status_code == 302
    signed = response.headers["Location"].split("/pass/")[1].split("/")[0]
    pass_ = db.session.scalar(sa.select(Pass).where(Pass.token == links.unsign(signed, links.PASS_SALT)))
    assert (pass_.price_cents, pass_.discount_cents, pass_.promo_code_id) == (9600, 2400, code.id)
    page = client.get(f"/pass/{signed}/pay").get_data(as_text=True)
    summary = page[page.index('<dl class="summary">') :][:900]
    assert "<dt>Code WELL20</dt><dd>-$24</dd>" in summary and "<dt>To pay</dt><dd>$96</dd>" in summary

    assert pay_on_page(client, signed, card_token(stripe_client)).json["status"] == "succeeded"

    payment = db.session.scalar(sa.select(Payment).where(Payment.pass_id == pass_.id))
    intent = stripe_client.v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
    assert (payment.amount_cents, intent.amount) == (9600, 9600)
    [use] = db.session.scalars(sa.select(PromoRedemption).where(PromoRedemption.pass_id == pass_.id)).all()
    assert (use.promo_code_id, use.discount_cents, use.released_at) == (code.id, 2400, None)
    # The pro-rata refund is of what was paid: $96 / 10 x 10 unused.
    assert pass_admin.pro_rata_cents(refreshed(db, Pass, pass_.id), [payment], 10) == 9600


def test_a_full_discount_issues_the_pass_at_once_without_a_card(client, db):
    product = make_product(db)
    make_code(db, code="FREEPASS", code_normalized="FREEPASS", value=100)
    response = buy_with_code(client, product, "FREEPASS")
    assert response.status_code == 302 and "/pay" not in response.headers["Location"]
    pass_ = db.session.scalar(sa.select(Pass).order_by(Pass.id.desc()))
    assert (pass_.status, pass_.price_cents) == (PassStatus.ACTIVE, 0)
    assert ledger_rows(db, pass_.id) == [("purchase", 10)]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("NOSUCH", "know that code"),
        ("CLASSONLY", "be used for this"),
        ("USEDUP", "used up"),
    ],
)
def test_a_code_that_cannot_be_used_is_a_form_error_and_nothing_is_written(client, db, typed, message):
    from events.models import PromoRedemption

    product = make_product(db)
    make_code(db, code="CLASSONLY", code_normalized="CLASSONLY", applies_to_passes=False)
    make_code(db, code="USEDUP", code_normalized="USEDUP", max_uses=0)
    response = buy_with_code(client, product, typed)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Pass)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PromoRedemption)) == 0


def test_an_unpaid_purchase_whose_hold_lapsed_gives_its_code_use_back(client, db):
    from events.models import PromoRedemption

    product = make_product(db)
    make_code(db, max_uses=1)
    assert buy_with_code(client, product, "WELL20").status_code == 302
    # The one use is taken while the purchase is held...
    assert buy_with_code(client, product, "WELL20", email="bo@example.com").status_code == 400
    void_lapsed_holds(utcnow() + timedelta(hours=3))
    db.session.expire_all()
    [use] = db.session.scalars(sa.select(PromoRedemption)).all()
    assert use.released_at is not None
    # ... and free again once it lapsed unpaid.
    assert buy_with_code(client, product, "WELL20", email="bo@example.com").status_code == 302


def test_a_pro_rata_refund_after_a_duplicate_payment_is_of_the_price_not_of_both_payments(
    client, db, stripe_client, localstripe
):
    """A second payment for one pass is refunded whole as unplaced; refunding the unused credits
    afterwards must be price / credits x unused ($120 / 10 x 4 = $48), not of the $240 taken."""
    product = make_product(db)  # $120, 10 credits
    pass_, signed = start_buying(client, product)
    assert pay_on_page(client, signed, card_token(stripe_client)).json["status"] == "succeeded"
    payments.apply_intent(charge_at_stripe(pass_.id, card_token(stripe_client)))
    admin = User(email="desk@example.com", name="Dee Desk", role=Role.ADMIN)
    db.session.add(admin)
    db.session.commit()
    ledger.write(ledger.lock_pass(pass_.id), LedgerKind.ADJUSTMENT, -6, reason="six classes taken")
    db.session.commit()

    decision = pass_admin.refund_unused(pass_.id, "moving away", admin)

    assert decision.cents == 4800
    db.session.expire_all()
    refunds = {(r.kind, r.amount_cents) for r in db.session.scalars(sa.select(Refund))}
    assert refunds == {(RefundKind.UNPLACED_PAYMENT, 12000), (RefundKind.MANUAL, 4800)}


def test_a_desk_sale_in_the_buyers_language_emails_the_pass_in_it(client, db):
    from events.notifications.outbox import email_language

    product = make_product(db)
    login(client, db)
    response = staff_post(
        client,
        "/staff/admin/passes/sell",
        "/staff/admin/passes/sell",
        {"product_id": str(product.id), "name": "Lupe Ríos", "email": "lupe@example.com", "method": "check"}
        | {"language": "es"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    pass_ = db.session.scalar(sa.select(Pass))
    [email] = pass_emails(db, EmailKind.PASS_ISSUED)
    assert (pass_.language, email_language(email)) == ("es", "es")
