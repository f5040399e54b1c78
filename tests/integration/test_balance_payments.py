"""Paying a booking's balance by card through the member's payment link (issue 13, "a price
difference ... asked for by a payment link"): PostgreSQL, the Stripe emulator delivering
signed webhooks to the live app, refunds executed as the worker does."""

import re
import threading
from types import SimpleNamespace

import pytest
import requests
import sqlalchemy as sa
import stripe

from events.clinic import current_clinic
from events.models import (
    AuditEntry,
    OfferingKind,
    OutboxEmail,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
    Role,
)
from events.notifications.outbox import EmailKind
from events.payments.balances import balance_due
from events.payments.gateway import GatewayRejected, IntentFor, PaymentDeclined, get_gateway
from events.payments.refunds import execute_due_refunds
from events.payments.services import (
    apply_intent,
    pay_balance_with_card,
    pay_with_card,
    reconcile_pending_payments,
)
from events.registration import links
from events.registration.services import Person, cancel_registration, register
from events.staff import bookings
from events.staff.rosters import RosterLine, paid_and_refunded
from tests.conftest import deliver_webhooks
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token
from tests.integration.test_bookings import plain
from tests.integration.test_staff import make_user, sign_in

SUCCESS = "4242424242424242"

pytestmark = pytest.mark.usefixtures("localstripe")


@pytest.fixture
def stripe_client(localstripe):
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})


def card_token(stripe_client, number: str = SUCCESS) -> str:
    return stripe_client.v1.tokens.create(
        params={"card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    ).id


@pytest.fixture
def moved(db, client, stripe_client):
    """Ana paid $15 by card (at Stripe) for Core Flow, then staff moved her to Core & Hip
    Strength ($25): $10 is due, and she was emailed the link to pay it."""
    admin = make_user(db, "sam@clinic.example", Role.ADMIN, name="Sam Admin")
    location = make_location(name="North Loop")
    current_clinic().email = "desk@northloop.example"  # the Reply-To of every email
    core = make_offering(location, OfferingKind.CLASS, title="Core Flow", price_cents=1500, capacity=4)
    hip = make_offering(
        location, OfferingKind.CLASS, title="Core & Hip Strength", price_cents=2500, capacity=4
    )
    first = make_session(core, upcoming_day(3))
    dearer = make_session(hip, upcoming_day(5))
    db.session.commit()
    held = register(core, first.id, Person("Ana Lopez", "ana@example.com")).registration
    assert pay_with_card(held.id, card_token(stripe_client)).status == "succeeded"
    assert sign_in(client, admin.email).status_code == 302
    target = f"{hip.id}-{dearer.id}"
    url = f"/staff/admin/registrations/{held.id}/transfer"
    review = client.post(
        url, data={"csrf_token": csrf_token(client.get(url).text), "target": target, "reason": "Asked"}
    )
    assert "collect the difference, $10.00, at the desk or by card through a payment link" in review.text
    assert 'name="payment_link"' in review.text
    done = client.post(
        url,
        data={
            "csrf_token": csrf_token(review.text),
            "target": target,
            "reason": "Asked",
            "expected_difference": "1000",
            "payment_link": "y",
        },
        follow_redirects=True,
    )
    assert "A link to pay the difference, $10.00, by card is emailed" in done.text
    db.session.expire_all()
    new = db.session.scalar(sa.select(Registration).where(Registration.offering_id == hip.id))
    assert balance_due(new) == 1000
    return SimpleNamespace(admin=admin, old=held, new=new, hip=hip, dearer=dearer, core=core)


def link_from_email(registration) -> str:
    row = _one_email(registration, EmailKind.BALANCE_DUE)
    text = plain(row)
    match = re.search(r"https?://\S+/balance/\S+", text)
    assert match, text
    return match.group(0)


def _one_email(registration, kind) -> OutboxEmail:
    from events.extensions import db

    rows = db.session.scalars(
        sa.select(OutboxEmail).where(OutboxEmail.registration_id == registration.id, OutboxEmail.kind == kind)
    ).all()
    assert len(rows) == 1, [r.dedupe_key for r in rows]
    return rows[0]


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def pay_link(client, path, token):
    page = client.get(path)
    assert page.status_code == 200
    return client.post(f"{path}/pay", json={"token": token}, headers={"X-CSRFToken": csrf_token(page.text)})


def audit_of(db, registration_id, action):
    return db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.target_id == registration_id, AuditEntry.action == action)
    ).all()


def test_the_member_pays_the_balance_once_by_the_link_and_everyone_sees_it(client, db, moved, stripe_client):
    new = moved.new
    url = link_from_email(new)
    text = plain(_one_email(new, EmailKind.BALANCE_DUE))
    assert "$10 is still due" in text and "Core & Hip Strength" in text
    # The email is the member's (their registration), with the clinic's Reply-To.
    from tests.integration.test_bookings import rendered

    message = rendered(_one_email(new, EmailKind.BALANCE_DUE))
    assert message["To"].addresses[0].addr_spec == "ana@example.com"
    assert message["Reply-To"].addresses[0].addr_spec == "desk@northloop.example"
    assert "by card with the link we are emailing you" in plain(
        _one_email(new, EmailKind.REGISTRATION_CONFIRMED)
    )

    path = path_of(url)
    page = client.get(path).text
    when = bookings.when_label(new)  # "Core & Hip Strength, Wed Dec 2, 6:00 pm CST"
    assert f"$10 still due</strong> for {when.replace('&', '&amp;')}, after your booking was moved" in page

    answer = pay_link(client, path, card_token(stripe_client))
    assert answer.status_code == 200 and answer.json["status"] == "succeeded", answer.json
    back = client.get(f"{path}/complete?payment_intent={answer.json['intent_id']}")
    assert back.status_code == 302
    assert "Your booking is fully paid" in client.get(path).text

    db.session.expire_all()
    new = db.session.get(Registration, new.id)
    assert balance_due(new) == 0
    paid = db.session.scalars(
        sa.select(Payment).where(Payment.registration_id == new.id, Payment.status == PaymentStatus.SUCCEEDED)
    ).all()
    assert sorted((p.purpose, p.amount_cents) for p in paid) == [
        (PaymentPurpose.BALANCE, 1000),
        (PaymentPurpose.REGISTRATION, 1500),
    ]
    # Stripe saw ids and neutral words only.
    balance = next(p for p in paid if p.purpose is PaymentPurpose.BALANCE)
    intent = stripe_client.v1.payment_intents.retrieve(balance.stripe_payment_intent_id)
    assert dict(intent.metadata) == {"registration_id": str(new.id), "item": "Balance", "purpose": "balance"}

    # Paying again (a second tab, the back button) charges nothing.
    again = client.post(  # (the page shows no card form now: an old tab's)
        f"{path}/pay", json={"token": card_token(stripe_client)}, headers={"X-CSRFToken": csrf_token(page)}
    )
    assert again.json["status"] == "closed"
    deliver_webhooks(moved_localstripe_base(stripe_client))
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(Payment.registration_id == new.id, Payment.purpose == "balance")
        )
        == 1
    )
    receipt = _one_email(new, EmailKind.BALANCE_PAID)  # once, though the webhook came too
    assert "We received your payment of $10 for Core & Hip Strength" in plain(receipt)
    assert "Visa ending 4242" in plain(receipt)
    [entry] = audit_of(db, new.id, "payment.balance_paid")
    assert entry.details["amount_cents"] == 1000

    staff_page = client.get(f"/staff/admin/registrations/{new.id}").text
    assert "Balance paid $10.00 by card (Visa ending 4242)" in staff_page
    assert "Ana Lopez paid the $10.00 still due for Core &amp; Hip Strength by card" in staff_page
    assert "Email a link to pay" not in staff_page
    paid_cents, refunded = paid_and_refunded([new.id])[new.id]
    assert RosterLine(new, None, paid_cents, refunded).payment_label == "paid"
    roster = client.get(f"/staff/sessions/{moved.dearer.id}").text
    assert "Ana Lopez" in roster and "part paid" not in roster


def moved_localstripe_base(stripe_client) -> str:
    from flask import current_app

    return current_app.config["STRIPE_API_BASE"]


def balance_intent(db, stripe_client, registration, confirm: bool):
    gateway = get_gateway()
    intent = gateway.create_intent(
        IntentFor(registration_id=registration.id, purpose="balance", label="Balance"),
        card_token=card_token(stripe_client),
        amount=balance_due(registration),
        currency="usd",
    )
    if confirm:
        return gateway.confirm_intent(intent.id)
    apply_intent(intent)  # recorded (open), as the pay page does before charging
    return intent


def test_a_second_success_for_the_same_balance_is_refunded_once(db, moved, stripe_client):
    new = moved.new
    first = balance_intent(db, stripe_client, new, confirm=True)
    second = balance_intent(db, stripe_client, new, confirm=True)
    for state in (first, second, second, first):  # webhook, return and reconcile, in any order
        apply_intent(state)

    db.session.expire_all()
    assert balance_due(db.session.get(Registration, new.id)) == 0
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert (refund.kind, refund.amount_cents) == (RefundKind.UNPLACED_PAYMENT, 1000)
    assert refund.payment.stripe_payment_intent_id == second.id
    assert execute_due_refunds() == 1
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == RefundStatus.SUCCEEDED
    assert len(audit_of(db, new.id, "payment.balance_paid")) == 1
    assert len(audit_of(db, new.id, "payment.extra_balance_refunded")) == 1
    told = plain(_one_email(new, EmailKind.LATE_PAYMENT_REFUNDED))
    assert "arrived after what you owed had already been paid" in told and "$10" in told
    assert (
        len(db.session.scalars(sa.select(OutboxEmail).where(OutboxEmail.kind == "balance_paid")).all()) == 1
    )


def test_taking_the_balance_at_the_desk_stops_the_open_card_payment(db, moved, stripe_client):
    intent = balance_intent(db, stripe_client, moved.new, confirm=False)

    bookings.take_desk_payment(moved.new.id, PaymentMethod.CASH, "", moved.admin)

    gateway = get_gateway()
    assert gateway.retrieve_intent(intent.id).status == "canceled"
    with pytest.raises((GatewayRejected, PaymentDeclined)):
        gateway.confirm_intent(intent.id)
    db.session.expire_all()
    card = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent.id))
    assert card.status == PaymentStatus.CANCELED and card.purpose is PaymentPurpose.BALANCE
    assert balance_due(db.session.get(Registration, moved.new.id)) == 0
    assert db.session.scalars(sa.select(Refund)).all() == []


def test_a_card_success_after_the_desk_took_the_balance_is_refunded_once(
    db, client, moved, stripe_client, monkeypatch
):
    intent = balance_intent(db, stripe_client, moved.new, confirm=False)
    stop = bookings.stop_superseded_intent

    def charged_first(intent_id):
        get_gateway().confirm_intent(intent_id)  # the member's card lands first
        stop(intent_id)

    monkeypatch.setattr(bookings, "stop_superseded_intent", charged_first)
    bookings.take_desk_payment(moved.new.id, PaymentMethod.CASH, "", moved.admin)
    apply_intent(get_gateway().retrieve_intent(intent.id))  # the webhook, later: nothing more

    db.session.expire_all()
    card = db.session.scalar(sa.select(Payment).where(Payment.stripe_payment_intent_id == intent.id))
    assert card.status == PaymentStatus.SUCCEEDED
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert (refund.payment_id, refund.kind, refund.amount_cents) == (
        card.id,
        RefundKind.UNPLACED_PAYMENT,
        1000,
    )
    assert execute_due_refunds() == 1
    db.session.expire_all()
    assert balance_due(db.session.get(Registration, moved.new.id)) == 0
    # Shown honestly: the extra card payment and its refund, on the staff page.
    page = client.get(f"/staff/admin/registrations/{moved.new.id}").text
    assert "Balance paid $10.00 by card" in page and "Refund $10.00 issued" in page
    assert "arrived after nothing was owed; $10.00 is refunded to their card" in page


def test_the_reconcile_stops_a_balance_payment_the_desk_could_not(db, moved, stripe_client, monkeypatch):
    intent = balance_intent(db, stripe_client, moved.new, confirm=False)
    assert reconcile_pending_payments() == 1  # a fresh attempt with the balance owed: left open
    assert get_gateway().retrieve_intent(intent.id).status != "canceled"
    monkeypatch.setattr(bookings, "stop_superseded_intent", lambda intent_id: None)
    bookings.take_desk_payment(moved.new.id, PaymentMethod.CHECK, "#1043", moved.admin)

    assert reconcile_pending_payments() == 1
    assert get_gateway().retrieve_intent(intent.id).status == "canceled"


@pytest.mark.parametrize(
    "choice, refunded", [(bookings.RefundChoice.FULL, 2500), (bookings.RefundChoice.NONE, 0)]
)
def test_staff_cancelling_after_the_balance_was_paid_refunds_both_payments_by_the_choice(
    db, moved, stripe_client, choice, refunded
):
    apply_intent(balance_intent(db, stripe_client, moved.new, confirm=True))
    db.session.expire_all()
    new = db.session.get(Registration, moved.new.id)
    quote = bookings.cancel_quote(new, choice)
    assert quote.refund_cents == refunded

    result = bookings.cancel_booking(new.id, choice, "Injured", moved.admin, refunded)

    assert result.refund_cents == refunded
    rows = db.session.scalars(sa.select(Refund).order_by(Refund.payment_id)).all()
    assert sorted(r.amount_cents for r in rows) == ([1000, 1500] if refunded else [])
    assert execute_due_refunds() == len(rows)
    db.session.expire_all()
    assert all(db.session.get(Refund, r.id).status == RefundStatus.SUCCEEDED for r in rows)


def test_a_member_cancelling_by_the_policy_after_paying_the_balance_gets_both_back(db, moved, stripe_client):
    moved.hip.late_cancel_refund_percent = 50
    db.session.commit()
    apply_intent(balance_intent(db, stripe_client, moved.new, confirm=True))

    _, refund_cents = cancel_registration(moved.new.id, expected_refund_cents=2500)  # before the cut-off

    assert refund_cents == 2500
    rows = db.session.scalars(sa.select(Refund)).all()
    assert sorted(r.amount_cents for r in rows) == [1000, 1500]
    assert len({r.idempotency_key for r in rows}) == 2
    assert execute_due_refunds() == 2


def test_expired_tampered_and_paid_links_say_so_plainly(client, db, moved, app, stripe_client):
    path = path_of(link_from_email(moved.new))
    tampered = client.get(path[:-3] + "xyz")
    assert tampered.status_code == 404 and "not valid" in tampered.text
    manage_link = links.sign(moved.new.token, links.MANAGE_SALT)
    assert client.get(f"/balance/{manage_link}").status_code == 404  # a manage link is not one
    app.config["BALANCE_LINK_MAX_AGE_DAYS"] = -1
    try:
        expired = client.get(path)
        assert expired.status_code == 410 and "expired" in expired.text
        assert client.post(f"{path}/pay", json={"token": "tok_x"}).status_code in (400, 410)
    finally:
        app.config["BALANCE_LINK_MAX_AGE_DAYS"] = 14
    bookings.take_desk_payment(moved.new.id, PaymentMethod.CASH, "", moved.admin)
    assert "Your booking is fully paid" in client.get(path).text
    old = client.get(f"/balance/{links.sign(moved.old.token, links.BALANCE_SALT)}")
    assert old.status_code == 200 and "no longer booked" in old.text


def test_the_staff_page_sends_the_link_again_and_refuses_when_nothing_is_owed(client, db, moved):
    url = f"/staff/admin/registrations/{moved.new.id}"
    page = client.get(url).text
    assert "Email a link to pay the $10.00 by card" in page and "sent 1 time already" in page
    sent = client.post(f"{url}/balance-link", data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert "A link to pay $10.00 by card is emailed to ana@example.com" in sent.text
    db.session.expire_all()
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(
                OutboxEmail.registration_id == moved.new.id, OutboxEmail.kind == EmailKind.BALANCE_DUE
            )
        )
        == 2
    )
    assert "emailed Ana Lopez a link to pay the $10.00 still due" in sent.text
    bookings.take_desk_payment(moved.new.id, PaymentMethod.CASH, "", moved.admin)
    refused = client.post(f"{url}/balance-link", data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert "No payment link was sent: They owe nothing now" in refused.text


def test_two_tabs_paying_the_same_link_at_once_charge_once(db, live_server, moved, stripe_client):
    path = path_of(link_from_email(moved.new))
    url = f"{live_server.url}{path}"
    tabs = []
    for _ in range(2):
        http = requests.Session()
        token = csrf_token(http.get(url, timeout=10).text)
        tabs.append((http, token, card_token(stripe_client)))
    start = threading.Barrier(2)
    answers = []

    def submit(tab):
        http, csrf, card = tab
        start.wait()
        answers.append(
            http.post(f"{url}/pay", json={"token": card}, headers={"X-CSRFToken": csrf}, timeout=30).json()
        )

    threads = [threading.Thread(target=submit, args=(tab,)) for tab in tabs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert "succeeded" in [a["status"] for a in answers], answers
    charged = [
        pi
        for pi in stripe_client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
        if (pi.metadata or {}).get("registration_id") == str(moved.new.id)
        and (pi.metadata or {}).get("purpose") == "balance"
        and pi.status == "succeeded"
    ]
    assert len(charged) == 1, answers
    db.session.expire_all()
    assert balance_due(db.session.get(Registration, moved.new.id)) == 0
    assert db.session.scalars(sa.select(Refund)).all() == []
    assert db.session.get(Registration, moved.new.id).status == RegistrationStatus.CONFIRMED


def test_the_webhook_alone_settles_a_balance_whose_page_closed(db, moved, stripe_client, localstripe):
    """Charged at Stripe, the member's page closed before our answer: the emulator's signed
    webhook reaches the live app and applies it through the same function."""
    charged = balance_intent(db, stripe_client, moved.new, confirm=True)
    assert charged.status == "succeeded"
    deliver_webhooks(localstripe)
    db.session.expire_all()
    assert balance_due(db.session.get(Registration, moved.new.id)) == 0
    _one_email(moved.new, EmailKind.BALANCE_PAID)
    assert db.session.scalars(sa.select(Refund)).all() == []


def test_the_reconcile_settles_a_balance_charge_whose_answer_was_lost(db, moved, stripe_client, monkeypatch):
    intent = balance_intent(db, stripe_client, moved.new, confirm=False)  # recorded, then charged:
    get_gateway().confirm_intent(intent.id)  # the answer lost (and no webhook reached us)

    reconcile_pending_payments()

    db.session.expire_all()
    assert balance_due(db.session.get(Registration, moved.new.id)) == 0
    _one_email(moved.new, EmailKind.BALANCE_PAID)
    assert db.session.scalars(sa.select(Refund)).all() == []


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b'{"token": 5}', b'{"token": "tok_\\u0000"}', b'{"token": "' + b"x" * 100_000 + b'"}'],
)
def test_the_balance_pay_endpoint_answers_odd_input_with_a_400(client, db, moved, body):
    path = path_of(link_from_email(moved.new))
    page = client.get(path).text
    answer = client.post(
        f"{path}/pay", data=body, content_type="application/json", headers={"X-CSRFToken": csrf_token(page)}
    )
    assert answer.status_code == 400 and answer.json["status"] == "failed"
    for odd in ("%00", "a" * 5000, "%ED%A0%80"):
        assert client.get(f"/balance/{odd}").status_code == 404
    db.session.expire_all()
    assert balance_due(db.session.get(Registration, moved.new.id)) == 1000


def test_the_members_own_page_offers_the_link_then_shows_both_payments(client, db, moved, stripe_client):
    manage = f"/manage/{links.sign(moved.new.token, links.MANAGE_SALT)}"
    page = client.get(manage).text
    assert "$10 still due</strong>" in page and "/balance/" in page
    apply_intent(balance_intent(db, stripe_client, moved.new, confirm=True))
    page = client.get(manage).text
    assert "still due" not in page and "Receipt for the balance" in page
    cancel = client.get(f"{manage}/cancel").text
    assert "full refund of $25" in cancel


def test_the_roster_calls_a_desk_paid_balance_paid_though_a_late_card_was_sent_back(
    db, moved, stripe_client, monkeypatch
):
    balance_intent(db, stripe_client, moved.new, confirm=False)
    stop = bookings.stop_superseded_intent

    def charged_first(intent_id):
        get_gateway().confirm_intent(intent_id)
        stop(intent_id)

    monkeypatch.setattr(bookings, "stop_superseded_intent", charged_first)
    bookings.take_desk_payment(moved.new.id, PaymentMethod.CASH, "", moved.admin)
    db.session.expire_all()
    new = db.session.get(Registration, moved.new.id)
    paid_cents, refunded = paid_and_refunded([new.id])[new.id]
    assert (paid_cents, refunded) == (2500, 0)
    assert RosterLine(new, None, paid_cents, refunded, PaymentMethod.CASH).payment_label == "paid (cash)"


def test_a_paid_balance_moves_with_the_booking_when_it_is_transferred_again(db, moved, stripe_client):
    """Paid $15 and then the $10 balance; moved back to a $15 date: both payments follow the
    booking, the $10 difference is refunded, and cancelling then refunds the $15 left."""
    apply_intent(balance_intent(db, stripe_client, moved.new, confirm=True))
    back_to = make_session(moved.core, upcoming_day(8))
    db.session.commit()
    new = db.session.get(Registration, moved.new.id)
    quote = bookings.transfer_quote(new, moved.core.id, back_to.id)
    assert quote.difference_cents == -1000

    result = bookings.transfer_booking(new.id, moved.core.id, back_to.id, "Back", moved.admin, -1000)

    assert result.refund_cents == 1000
    db.session.expire_all()
    latest = db.session.get(Registration, result.new.id)
    owners = db.session.scalars(sa.select(Payment.registration_id).where(Payment.status == "succeeded")).all()
    assert set(owners) == {latest.id}
    assert balance_due(latest) == 0
    left = bookings.cancel_quote(latest, bookings.RefundChoice.FULL).refund_cents
    assert left == 1500
    bookings.cancel_booking(latest.id, bookings.RefundChoice.FULL, "Injured", moved.admin, 1500)
    refunded = db.session.scalars(sa.select(Refund.amount_cents)).all()
    assert sum(refunded) == 2500  # all that was paid, once
    assert execute_due_refunds() == len(refunded)


def test_the_payment_link_its_emails_and_pages_in_spanish(client, db, moved, stripe_client):
    """A member who booked in Spanish gets the link's email, its page, its errors, the flash and
    the receipt in Spanish, with money as written in the US ("$10", not "10 US$")."""
    from flask import current_app

    from tests.integration.test_bookings import rendered

    new = moved.new
    new.language = "es"  # booked in Spanish: the worker writes every email to her in it
    db.session.commit()
    message = rendered(_one_email(new, EmailKind.BALANCE_DUE))
    text = " ".join(message.get_body(("plain",)).get_content().split())
    # Neutral subjects (the default) name the date, in Spanish, never the class.
    assert re.fullmatch(r"Pago pendiente: \w{3}, \d{1,2} \w{3}", message["Subject"]), message["Subject"]
    days = current_app.config["BALANCE_LINK_MAX_AGE_DAYS"]
    assert "Todavía debe $10." in text and f"(el enlace funciona durante {days} días)" in text
    assert "still due" not in text and "US$" not in text

    path = path_of(link_from_email(new))
    client.set_cookie("lang", "es")
    page = client.get(path).text
    assert "<strong>Todavía debe $10</strong> por Core &amp; Hip Strength, " in page
    assert "Pagar $10" in page and 'data-msg-not-charged="No se le cobró nada' in page
    assert "still due" not in page and "Card details" not in page
    malformed = client.post(f"{path}/pay", json={"token": "nope"}, headers={"X-CSRFToken": csrf_token(page)})
    assert malformed.status_code == 400
    assert (
        malformed.json["message"]
        == "Hubo un problema con los datos de su tarjeta. Por favor, vuelva a escribirlos."
    )

    answer = pay_link(client, path, card_token(stripe_client))
    assert answer.status_code == 200 and answer.json["status"] == "succeeded", answer.json
    paid = client.get(
        f"{path}/complete?payment_intent={answer.json['intent_id']}", follow_redirects=True
    ).text
    assert "Pago recibido: no debe nada más." in paid and "Su reserva está pagada por completo." in paid
    assert "Visa terminada en 4242" in paid and "ending 4242" not in paid
    manage = client.get(f"/manage/{links.sign(new.token, links.MANAGE_SALT)}").text
    assert "Recibo del saldo pendiente" in manage and "Receipt for the balance" not in manage
    receipt = rendered(_one_email(new, EmailKind.BALANCE_PAID))
    said = " ".join(receipt.get_body(("plain",)).get_content().split())
    assert re.fullmatch(r"Pago recibido: \w{3}, \d{1,2} \w{3}", receipt["Subject"]), receipt["Subject"]
    assert "Recibimos su pago de $10 para Core & Hip Strength: no debe nada más." in said
    assert "Visa terminada en 4242" in said and "Thank you" not in said


def test_deleting_their_data_after_paying_the_balance_refunds_both_payments(db, moved, stripe_client):
    """ "Delete my data" cancels by the policy like any cancellation: a seat paid in two payments
    (the first and the balance) is refunded across both, under both payments' locks."""
    from events.models import PrivacyAction, utcnow
    from events.privacy import erase
    from events.privacy import requests as privacy_requests

    apply_intent(balance_intent(db, stripe_client, moved.new, confirm=True))
    now = utcnow()
    request = privacy_requests.staff_request(PrivacyAction.ERASE, now)

    result = erase.erase(moved.new.email, request, now, registration_id=moved.new.id)

    assert result.refund_cents == 2500  # $15 first, $10 balance: before the cut-off, all of it
    rows = db.session.scalars(sa.select(Refund)).all()
    assert sorted(r.amount_cents for r in rows) == [1000, 1500]
    assert len({r.idempotency_key for r in rows}) == 2
    assert execute_due_refunds() == 2


def test_a_balance_the_desk_took_while_the_card_was_sent_is_answered_nothing_owed(
    db, moved, stripe_client, monkeypatch
):
    """The desk takes the balance (and cancels the card's intent) between the pay page recording
    the intent and charging it. Stripe refuses to charge a cancelled intent, and the member reads
    that nothing is owed, as a seat's payer reads where the seat stands (before, only the balance
    said "Your card was not charged. Please try again.", though paying again could not help)."""
    gateway = get_gateway()
    charge = gateway.confirm_intent

    def desk_first(intent_id):
        bookings.take_desk_payment(moved.new.id, PaymentMethod.CASH, "", moved.admin)
        return charge(intent_id)

    monkeypatch.setattr(gateway, "confirm_intent", desk_first)
    attempt = pay_balance_with_card(moved.new.id, card_token(stripe_client))

    assert (attempt.status, attempt.message) == ("closed", "Nothing is owed on this booking now.")
    db.session.expire_all()
    card = db.session.scalar(sa.select(Payment).where(Payment.purpose == PaymentPurpose.BALANCE))
    assert card.status == PaymentStatus.CANCELED
    assert balance_due(db.session.get(Registration, moved.new.id)) == 0
    assert db.session.scalars(sa.select(Refund)).all() == []
