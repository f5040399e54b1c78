"""What staff and members are told when a cancellation refunds money they may not expect
(review of e3200ec): a class pass credit given back onto a refunded pass is refunded as money,
and a pass or seat paid in cash or by check is refunded at the desk, never to a card.

A desk refund is recorded as given the moment it is decided (refunds._record_desk_refund): if
the page staff act from says "no refund", the cash is never handed back, yet our books say it
was; if the member is told "we are refunding" with no word of the desk, they wait for a card
refund that never comes."""

from __future__ import annotations

from html import unescape

import sqlalchemy as sa

from events.models import (
    OutboxEmail,
    Payment,
    PaymentMethod,
    PaymentPurpose,
    PaymentStatus,
    RefundStatus,
    Role,
)
from events.notifications.outbox import EmailKind
from events.registration import links
from events.registration.services import Person, cancel_registration, register
from events.staff import bookings, cancellations
from tests.helpers import csrf_token
from tests.integration.test_bookings import plain
from tests.integration.test_passes_refunded_returns import booked_then_refunded, returned_refunds
from tests.integration.test_staff import make_user, sign_in
from tests.passbook_helpers import make_class


def _email(db, registration_id: int, kind: EmailKind) -> OutboxEmail:
    return db.session.scalar(
        sa.select(OutboxEmail).where(OutboxEmail.registration_id == registration_id, OutboxEmail.kind == kind)
    )


def test_staff_cancelling_a_booking_on_a_refunded_cash_pass_are_told_the_cash_to_hand_back(app, db, client):
    """Pat's pass was bought in cash ($120, 10 credits) and its 9 unused credits refunded. The
    desk cancels Pat's booking with a full refund: the credit's $12 is recorded as handed back
    in cash. The confirmation step and the message after it must say so (they said "no refund",
    so nobody hands the $12 back)."""
    _cls, pass_id, reg, _actor = booked_then_refunded(db)
    make_user(db, "desk@clinic.example", Role.ADMIN)
    db.session.commit()
    assert sign_in(client, "desk@clinic.example").status_code == 302
    url = f"/staff/admin/registrations/{reg.id}/cancel"
    form = client.get(url).get_data(as_text=True)

    review = client.post(
        url, data={"csrf_token": csrf_token(form), "refund": "full", "reason": "Asked by phone"}
    )
    page = unescape(review.get_data(as_text=True))
    assert review.status_code == 200
    confirm = page.split('id="confirm-cancel"', 1)[1].split("</div>", 1)[0]
    assert "$12.00" in confirm and "desk" in confirm, confirm
    assert "no refund" not in confirm

    done = client.post(
        url,
        data={
            "csrf_token": csrf_token(page),
            "refund": "full",
            "reason": "Asked by phone",
            "expected_cents": "0",
        },
    )
    assert done.status_code == 302
    [refund] = returned_refunds(db, pass_id, reg.id)
    assert (refund.amount_cents, refund.status) == (1200, RefundStatus.SUCCEEDED)  # recorded as handed back
    followed = unescape(client.get(done.headers["Location"]).get_data(as_text=True))
    assert "no refund" not in followed
    assert "Return $12.00 to them at the desk" in followed


def card_pass_booked_then_refunded(db):
    """Pat's $120 pass bought by card, one credit booked, the 9 unused refunded ($108 pending)."""
    from events.models import User
    from events.passes import admin as pass_admin
    from events.passes import booking
    from tests.factories import make_clinic
    from tests.passbook_helpers import make_pass, make_product

    make_clinic()
    actor = make_user(db, "desk@clinic.example", Role.ADMIN)
    cls = make_class(days=5, title="Core Flow")
    pass_ = make_pass("pat@example.com", make_product(credits=10, price_cents=12000))
    db.session.add(
        Payment(
            pass_id=pass_.id,
            stripe_payment_intent_id=f"pi_pass_{pass_.id}",
            method=PaymentMethod.CARD,
            purpose=PaymentPurpose.PASS,
            amount_cents=12000,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
        )
    )
    db.session.commit()
    result = booking.book_with_pass(
        cls, cls.sessions[0].id, Person("Pat Holder", "pat@example.com", "", "en")
    )
    assert pass_admin.refund_unused(pass_.id, "Moving away", actor).cents == 10800
    assert isinstance(actor, User)
    return pass_.id, result.registration, actor


def test_staff_cancelling_a_booking_on_a_refunded_card_pass_are_told_the_card_refund(app, db):
    """The same with a pass bought by card: $12 goes back to the card, and staff are told."""
    from events.staff.views.bookings import _cancelled_message

    pass_id, reg, actor = card_pass_booked_then_refunded(db)

    result = bookings.cancel_booking(reg.id, bookings.RefundChoice.FULL, "Asked by phone", actor, 0)

    [refund] = returned_refunds(db, pass_id, reg.id)
    assert (refund.amount_cents, refund.status) == (1200, RefundStatus.PENDING)
    message = _cancelled_message(result)
    assert "no refund" not in message and "$12.00" in message, message
    # The member is told it goes back as money (a card refund: no desk is named).
    text = plain(_email(db, reg.id, EmailKind.REGISTRATION_CANCELLED))
    assert "we are refunding what it cost, $12, instead." in text and "desk" not in text


def test_a_member_of_a_refunded_cash_pass_is_told_the_money_waits_at_the_desk(app, db, client):
    """Pat paid for the pass in cash: the credit's $12 is handed back at the desk (recorded as
    given at once, never sent to a card). The cancel page, the email and the manage page must
    say where the money is, as they do for a seat paid in cash."""
    _cls, pass_id, reg, _actor = booked_then_refunded(db)
    manage = f"/manage/{links.sign(reg.token, links.MANAGE_SALT)}"
    preview = unescape(client.get(f"{manage}/cancel").get_data(as_text=True))
    assert "$12" in preview
    assert "desk" in preview and "you paid by cash there" in preview

    cancel_registration(reg.id, expected_refund_cents=0)

    text = plain(_email(db, reg.id, EmailKind.REGISTRATION_CANCELLED))
    assert "$12" in text
    assert "at the desk" in text, text
    page = unescape(client.get(manage).get_data(as_text=True))
    assert "at the desk" in page


def test_the_clinic_cancelling_a_class_booked_on_a_refunded_cash_pass_says_the_desk(app, db):
    cls, _pass_id, reg, actor = booked_then_refunded(db)

    cancellations.cancel_session_totals(cls.sessions[0].id, actor, "Instructor ill")

    text = plain(_email(db, reg.id, EmailKind.SESSION_CANCELLED))
    assert "$12" in text and "at the desk" in text, text


def test_the_clinic_cancelling_a_cash_paid_seat_does_not_promise_a_card_refund(app, db):
    """Not new in e3200ec, found while checking session_cancelled.*: a seat paid in cash is
    refunded at the desk (recorded as given), yet the email said "to your card"."""
    from events.models import User

    cls = make_class(days=5, title="Core Flow", price_cents=1500)
    actor = User(email="boss@clinic.example", name="Boss", role=Role.ADMIN)
    db.session.add(actor)
    db.session.commit()
    held = register(cls, cls.sessions[0].id, Person("Ana Lopez", "ana@example.com")).registration
    bookings.take_desk_payment(held.id, PaymentMethod.CASH, "", actor)

    totals = cancellations.cancel_session_totals(cls.sessions[0].id, actor, "Instructor ill")

    assert totals.desk_refund_cents == 1500
    text = plain(_email(db, held.id, EmailKind.SESSION_CANCELLED))
    assert "$15" in text
    assert "to your card" not in text, text
    assert "at the desk" in text, text
