"""Credits given back onto a class pass whose unused credits were already refunded.

Pat buys a 10-class pass ($120), books Core Flow with one credit, then leaves: staff refund the
9 unused credits ($108), and the pass is closed (REFUNDED). The booked class still holds the
10th credit. When that booking is cancelled in time, or the clinic cancels the class, the credit
can't go back on a closed pass: its value ($12, the price paid per credit, capped at what the
pass's payments can still give back) is refunded as money, once, and the member is told so on
the cancel page, on the manage page and in the email. A late cancellation keeps it spent."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from events.models import (
    LedgerKind,
    OutboxEmail,
    Pass,
    PassStatus,
    Payment,
    PaymentMethod,
    Refund,
    RefundKind,
    RefundStatus,
    Role,
    User,
)
from events.notifications.outbox import EmailKind
from events.passes import admin as pass_admin
from events.passes import booking, ledger, refunding
from events.registration import links
from events.registration.services import Person, cancel_registration
from events.staff import bookings, cancellations
from tests.factories import make_clinic
from tests.integration.test_bookings import plain
from tests.passbook_helpers import ledger_kinds, make_class, make_product

ME = "pat.holder@example.com"


def admin(db) -> User:
    user = User(email="admin@clinic.example", name="Ada Admin", role=Role.ADMIN)
    db.session.add(user)
    db.session.commit()
    return user


def booked_then_refunded(db, method: PaymentMethod = PaymentMethod.CASH, price_cents: int = 12000):
    """Pat's pass, bought at the desk, one credit booked on Core Flow in 5 days, the other 9
    refunded by staff."""
    make_clinic()
    actor = admin(db)
    cls = make_class(days=5, title="Core Flow")
    product = make_product(credits=10, price_cents=price_cents)
    db.session.commit()
    pass_ = pass_admin.sell_at_desk(product.id, "Pat Holder", ME, method, "", actor)
    result = booking.book_with_pass(cls, cls.sessions[0].id, Person("Pat Holder", ME, "", "en"))
    assert result.outcome is booking.Outcome.BOOKED
    decision = pass_admin.refund_unused(pass_.id, "Moving away", actor)
    assert decision.credits == 9 and decision.cents == price_cents * 9 // 10
    db.session.expire_all()
    assert db.session.get_one(Pass, pass_.id).status is PassStatus.REFUNDED
    assert ledger.balance(pass_.id) == 0
    return cls, pass_.id, result.registration, actor


def returned_refunds(db, pass_id: int, registration_id: int) -> list[Refund]:
    key = refunding.returned_credits_key(pass_id, registration_id)
    return list(db.session.scalars(sa.select(Refund).where(Refund.idempotency_key.startswith(key))))


def refunded_on(db, payment: Payment) -> int:
    """Everything refunded or being refunded on a payment."""
    on_it = sa.select(sa.func.sum(Refund.amount_cents)).where(Refund.payment_id == payment.id)
    return db.session.scalar(on_it)


def cancellation_email(db, registration_id: int, kind: EmailKind) -> OutboxEmail:
    return db.session.scalar(
        sa.select(OutboxEmail).where(OutboxEmail.registration_id == registration_id, OutboxEmail.kind == kind)
    )


def test_a_member_cancelling_in_time_gets_what_the_credit_cost_back_once(app, db, client):
    cls, pass_id, reg, _actor = booked_then_refunded(db)
    manage = f"/manage/{links.sign(reg.token, links.MANAGE_SALT)}"
    preview = unescape(client.get(f"{manage}/cancel").get_data(as_text=True))
    # Bought in cash: the $12 is handed back at the desk, never sent to a card.
    assert "Your class pass had already been refunded, so the credit can't be used again." in preview
    assert "You'll get <strong>$12</strong> back at the front desk (you paid by cash there)." in preview

    cancel_registration(reg.id, expected_refund_cents=0)
    cancel_registration(reg.id)  # twice: a no-op

    db.session.expire_all()
    # The credit came back and went again as money: the closed pass holds nothing.
    assert ledger_kinds(pass_id)[-2:] == [LedgerKind.RETURN, LedgerKind.REFUND]
    assert ledger.balance(pass_id) == 0
    [refund] = returned_refunds(db, pass_id, reg.id)
    payment = db.session.get_one(Payment, refund.payment_id)
    assert payment.pass_id == pass_id
    assert (refund.amount_cents, refund.kind) == (1200, RefundKind.CANCELLATION)
    assert refund.status is RefundStatus.SUCCEEDED  # cash: handed back at the desk
    # Pending and refunded never exceed what was paid for the pass.
    total = db.session.scalar(
        sa.select(sa.func.sum(Refund.amount_cents)).where(Refund.payment_id == payment.id)
    )
    assert total == 12000 == payment.amount_cents

    email = cancellation_email(db, reg.id, EmailKind.REGISTRATION_CANCELLED)
    assert email.context["credits_refunded_cents"] == 1200 and email.context["credits_back"] == 0
    text = plain(email)
    assert "You paid by cash at the desk, so we will return $12 to you there." in text
    assert "stayed spent" not in text and "back on your class pass" not in text
    page = unescape(client.get(manage).get_data(as_text=True))
    assert "You paid by cash at the desk, so we will return $12 to you there." in page


def test_the_clinic_cancelling_the_class_refunds_the_credit_as_its_own_doing(app, db):
    cls, pass_id, reg, actor = booked_then_refunded(db)
    preview = cancellations.preview_session_cancel(cls.sessions[0])
    assert (preview.refunds, preview.refund_cents) == (1, 1200)

    totals = cancellations.cancel_session_totals(cls.sessions[0].id, actor, "Instructor ill")

    assert (totals.refunds, totals.refund_cents) == (1, 1200)
    [refund] = returned_refunds(db, pass_id, reg.id)
    assert (refund.amount_cents, refund.kind) == (1200, RefundKind.CLINIC_CANCELLATION)
    # A closed pass is not extended by the clinic's doing: nothing is left on it to use.
    assert LedgerKind.EXTENSION not in ledger_kinds(pass_id)
    assert ledger.balance(pass_id) == 0
    text = plain(cancellation_email(db, reg.id, EmailKind.SESSION_CANCELLED))
    assert "You paid by cash at the desk, so we will return $12 to you there." in text


def test_staff_cancelling_with_a_full_refund_refunds_the_credit_too(app, db):
    _cls, pass_id, reg, actor = booked_then_refunded(db)

    result = bookings.cancel_booking(reg.id, bookings.RefundChoice.FULL, "Asked by phone", actor, 0)

    assert result.refund_cents == 0  # nothing was paid for the seat itself
    [refund] = returned_refunds(db, pass_id, reg.id)
    assert refund.amount_cents == 1200
    email = cancellation_email(db, reg.id, EmailKind.REGISTRATION_CANCELLED)
    assert "You paid by cash at the desk, so we will return $12 to you there." in plain(email)


def test_a_late_cancellation_keeps_the_credit_spent_and_refunds_nothing(app, db):
    cls, pass_id, reg, _actor = booked_then_refunded(db)

    cancel_registration(reg.id, now=cls.sessions[0].starts_at - timedelta(hours=1))

    assert returned_refunds(db, pass_id, reg.id) == []
    assert ledger_kinds(pass_id)[-1] is LedgerKind.FORFEIT
    text = plain(cancellation_email(db, reg.id, EmailKind.REGISTRATION_CANCELLED))
    assert "You cancelled after the cut-off, so the credit stayed spent." in text


def test_a_pass_given_free_has_nothing_to_refund_and_says_the_credit_is_gone(app, db, client):
    _cls, pass_id, reg, _actor = booked_then_refunded(db, PaymentMethod.COMP, price_cents=0)

    cancel_registration(reg.id, expected_refund_cents=0)

    assert returned_refunds(db, pass_id, reg.id) == []
    assert ledger.balance(pass_id) == 0
    email = cancellation_email(db, reg.id, EmailKind.REGISTRATION_CANCELLED)
    assert email.context["credits_refunded_cents"] == 0
    assert "Your class pass had already been refunded, so the credit can't be used again." in plain(email)


@pytest.mark.parametrize("language", ["es", "so"])
def test_the_email_says_it_in_the_members_language(app, db, language):
    _cls, pass_id, reg, _actor = booked_then_refunded(db)
    reg.language = language
    db.session.commit()

    cancel_registration(reg.id, expected_refund_cents=0)

    text = plain(cancellation_email(db, reg.id, EmailKind.REGISTRATION_CANCELLED))
    assert "12" in text
    assert "already been refunded" not in text  # translated, not English


def test_a_credit_value_is_what_was_paid_per_credit_not_what_is_left(db):
    """$100 for 10 credits, 9 refunded ($90): one credit is worth $10, the price paid per
    credit; three would be $30, but only $10 is left on the payment to give back."""
    _cls, pass_id, reg, _actor = booked_then_refunded(db, price_cents=10000)
    pass_ = db.session.get_one(Pass, pass_id)
    payments = list(pass_.payments)
    assert refunding.credits_value_cents(pass_, payments, 1) == 1000
    assert refunding.credits_value_cents(pass_, payments, 3) == 1000  # capped: 10000 - 9000 left
    assert refunding.credits_value_cents(pass_, payments, 0) == 0


def test_the_member_the_desk_and_the_clinic_cancelling_at_once_refund_the_credit_once(live_server, db):
    """Real threads against the live server, on PostgreSQL: Pat cancels on the manage page, a
    desk admin cancels the booking with a full refund, and another admin cancels the class,
    all at the same moment. Each path locks the pool, the pass, then the payments (the pass's
    and any seat's, in id order): one of them gives the credit back and refunds it, once; the
    others find it cancelled. No deadlock, no second refund, never more than was paid."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tests.helpers import csrf_token
    from tests.integration.test_bookings_live import staff_http
    from tests.integration.test_staff import make_user

    for round_ in range(3):
        if round_:
            db.session.rollback()
        cls, pass_id, reg, _actor = booked_then_refunded_again(db, round_)
        for email in (f"desk{round_}@clinic.example", f"boss{round_}@clinic.example"):
            make_user(db, email, Role.ADMIN)
        db.session.commit()
        base = live_server.url
        member = __import__("requests").Session()
        manage = f"{base}/manage/{links.sign(reg.token, links.MANAGE_SALT)}/cancel"
        member_post = (
            member,
            manage,
            {"csrf_token": csrf_token(member.get(manage).text), "refund_cents": "0"},
        )
        desk = staff_http(base, f"desk{round_}@clinic.example")
        desk_url = f"{base}/staff/admin/registrations/{reg.id}/cancel"
        desk_post = (
            desk,
            desk_url,
            {
                "csrf_token": csrf_token(desk.get(desk_url).text),
                "refund": "full",
                "reason": "Asked by phone",
                "expected_cents": "0",
                "confirmed": "yes",
            },
        )
        boss = staff_http(base, f"boss{round_}@clinic.example")
        boss_url = f"{base}/staff/sessions/{cls.sessions[0].id}/cancel"
        boss_post = (
            boss,
            boss_url,
            {
                "csrf_token": csrf_token(boss.get(boss_url).text),
                "reason": "Instructor ill",
                "confirmed": "yes",
            },
        )
        posts = [member_post, desk_post, boss_post]
        start = threading.Barrier(len(posts))

        def send(post, start=start):
            http, url, data = post
            start.wait()
            return http.post(url, data=data, allow_redirects=False, timeout=30)

        with ThreadPoolExecutor(len(posts)) as pool:
            statuses = [r.status_code for r in pool.map(send, posts)]

        assert all(status < 500 for status in statuses), statuses
        db.session.expire_all()
        [refund] = returned_refunds(db, pass_id, reg.id)
        assert refund.amount_cents == 1200
        assert ledger_kinds(pass_id).count(LedgerKind.RETURN) == 1
        assert ledger.balance(pass_id) == 0
        payment = db.session.scalar(sa.select(Payment).where(Payment.pass_id == pass_id))
        refunded = db.session.scalar(
            sa.select(sa.func.sum(Refund.amount_cents)).where(Refund.payment_id == payment.id)
        )
        assert refunded == payment.amount_cents == 12000


def booked_then_refunded_again(db, round_: int):
    """booked_then_refunded() for the rounds of a test: each round its own person and class."""
    if round_ == 0:
        return booked_then_refunded(db)
    actor = db.session.scalar(sa.select(User).where(User.email == "admin@clinic.example"))
    cls = make_class(days=5, title=f"Core Flow {round_}")
    product = make_product(credits=10, price_cents=12000)
    db.session.commit()
    email = f"pat{round_}@example.com"
    pass_ = pass_admin.sell_at_desk(product.id, "Pat Holder", email, PaymentMethod.CASH, "", actor)
    result = booking.book_with_pass(cls, cls.sessions[0].id, Person("Pat Holder", email, "", "en"))
    pass_admin.refund_unused(pass_.id, "Moving away", actor)
    return cls, pass_.id, result.registration, actor
