"""Review of e3200ec, concurrency: the paths that now meet on a class pass and its payments,
raced with real threads against the live server on PostgreSQL.

Pat's $120 pass (10 credits, bought in cash) pays for two classes on two dates (two seat
pools). At the same moment: staff refund the pass's unused credits (the figure the page
showed), Pat cancels the first booking on the manage page, the desk cancels the second with a
full refund, and another admin cancels the second class. Locks: pools -> pass -> payments on
every path (refund_unused: pass -> payments). Whatever the order: no 500 (a deadlock is one),
each booking's credit comes back once, the pass never goes below zero, a refunded pass holds
nothing, and what is refunded never exceeds the $120 paid, nor what the order of events gives:
$96 for the 8 unused credits plus $12 for each credit given back after the refund, or nothing
if a credit came back first (the refund's figure changed: refused, staff are asked again)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy as sa

from events.models import (
    LedgerKind,
    Pass,
    PassStatus,
    Payment,
    PaymentMethod,
    Refund,
    RefundStatus,
    Role,
    User,
)
from events.passes import admin as pass_admin
from events.passes import booking, ledger
from events.registration import links
from events.registration.services import Person
from tests.factories import make_clinic
from tests.helpers import csrf_token
from tests.integration.test_bookings_live import staff_http
from tests.integration.test_staff import make_user
from tests.passbook_helpers import ledger_kinds, make_class, make_product


def test_refunding_a_pass_while_its_bookings_are_cancelled_four_ways_at_once(live_server, db):
    make_clinic()
    for email in (
        "seller@clinic.example",
        "refunder@clinic.example",
        "desk@clinic.example",
        "boss@clinic.example",
    ):
        make_user(db, email, Role.ADMIN)
    db.session.commit()
    seller = db.session.scalar(sa.select(User).where(User.email == "seller@clinic.example"))
    base = live_server.url
    for round_ in range(6):
        email = f"pat{round_}@example.com"
        first = make_class(days=5, title=f"Core Flow {round_}")
        second = make_class(days=6, title=f"Back Basics {round_}")
        product = make_product(credits=10, price_cents=12000)
        db.session.commit()
        pass_ = pass_admin.sell_at_desk(product.id, "Pat Holder", email, PaymentMethod.CASH, "", seller)
        person = Person("Pat Holder", email, "", "en")
        a = booking.book_with_pass(first, first.sessions[0].id, person).registration
        b = booking.book_with_pass(second, second.sessions[0].id, person).registration
        pass_id = pass_.id
        assert ledger.balance(pass_id) == 8

        refunder = staff_http(base, "refunder@clinic.example")
        pass_url = f"{base}/staff/admin/passes/{pass_id}"
        refund_post = (
            refunder,
            f"{pass_url}/refund",
            {
                "csrf_token": csrf_token(refunder.get(pass_url).text),
                "refund-reason": "Moving away",
                "refund-expected_cents": "9600",
                "refund-confirmed": "yes",
            },
        )
        member = requests.Session()
        manage = f"{base}/manage/{links.sign(a.token, links.MANAGE_SALT)}/cancel"
        member_post = (
            member,
            manage,
            {"csrf_token": csrf_token(member.get(manage).text), "refund_cents": "0"},
        )
        desk = staff_http(base, "desk@clinic.example")
        desk_url = f"{base}/staff/admin/registrations/{b.id}/cancel"
        desk_post = (
            desk,
            desk_url,
            {
                "csrf_token": csrf_token(desk.get(desk_url).text),
                "refund": "full",
                "reason": "Asked by phone",
                "expected_cents": "0",
            },
        )
        boss = staff_http(base, "boss@clinic.example")
        boss_url = f"{base}/staff/sessions/{second.sessions[0].id}/cancel"
        boss_post = (
            boss,
            boss_url,
            {
                "csrf_token": csrf_token(boss.get(boss_url).text),
                "reason": "Instructor ill",
                "confirmed": "yes",
            },
        )
        posts = [refund_post, member_post, desk_post, boss_post]
        start = threading.Barrier(len(posts))

        def send(post, start=start):
            http, url, data = post
            start.wait()
            return http.post(url, data=data, allow_redirects=False, timeout=30)

        with ThreadPoolExecutor(len(posts)) as pool:
            statuses = [r.status_code for r in pool.map(send, posts)]

        assert all(status < 500 for status in statuses), statuses
        db.session.expire_all()
        kinds = ledger_kinds(pass_id)
        assert kinds.count(LedgerKind.RETURN) == 2, kinds  # each booking's credit back once
        balance = ledger.balance(pass_id)
        assert balance >= 0
        pass_ = db.session.get_one(Pass, pass_id)
        payment = db.session.scalar(sa.select(Payment).where(Payment.pass_id == pass_id))
        refunded = db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_cents), 0)).where(
                Refund.payment_id == payment.id, Refund.status != RefundStatus.FAILED
            )
        )
        assert refunded <= payment.amount_cents == 12000
        if pass_.status is PassStatus.REFUNDED:
            # Refunded: nothing left on it, and every credit not used is money (10 x $12).
            assert balance == 0 and refunded == 12000, (statuses, kinds, refunded)
        else:
            # The refund was refused (the figure changed under it): both credits are back on it.
            assert balance == 10 and refunded == 0, (statuses, kinds, refunded)
