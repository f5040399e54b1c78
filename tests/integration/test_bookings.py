"""Changing one booking at the desk (issue 13 items 4, 5): cancel with a chosen refund,
transfer, correct details, and payments taken at the desk, on PostgreSQL."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from events.models import (
    AuditEntry,
    EmailStatus,
    OfferingKind,
    OutboxEmail,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
    Role,
    SeatPool,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_email
from events.notifications.sender import render_message
from events.payments import refunds
from events.registration import links
from events.registration.services import Person, join_waitlist, register, succeeded_payment
from events.staff import bookings, rosters
from events.staff.errors import AdminError
from events.staff.rosters import payment_label
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token
from tests.integration.test_staff import make_user, sign_in


@pytest.fixture
def desk(db, client):
    """A signed-in admin and a paid drop-in class ($15) with two dates, two seats each."""
    admin = make_user(db, "sam@clinic.example", Role.ADMIN, name="Sam Admin")
    location = make_location(name="North Loop")
    core = make_offering(
        location,
        OfferingKind.CLASS,
        title="Core Flow",
        price_cents=1500,
        capacity=2,
        cancellation_cutoff_hours=24,
        late_cancel_refund_percent=50,
    )
    first = make_session(core, upcoming_day(3))
    second = make_session(core, upcoming_day(10))
    db.session.commit()
    assert sign_in(client, admin.email).status_code == 302
    return SimpleNamespace(admin=admin, location=location, core=core, first=first, second=second)


def card_booked(db, desk, name="Ana Lopez", email="ana@example.com", session=None, offering=None):
    """Booked and paid by card (our mirror of a succeeded PaymentIntent)."""
    offering = offering or desk.core
    registration = register(offering, (session or desk.first).id, Person(name, email)).registration
    db.session.add(
        Payment(
            registration_id=registration.id,
            stripe_payment_intent_id=f"pi_desk_{registration.id}",
            amount_cents=registration.price_cents,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
            paid_at=utcnow(),
        )
    )
    registration.status, registration.confirmed_at, registration.hold_expires_at = (
        RegistrationStatus.CONFIRMED,
        utcnow(),
        None,
    )
    db.session.commit()
    return registration


def desk_booked(db, desk, method=PaymentMethod.CASH, name="Ana Lopez", email="ana@example.com"):
    held = register(desk.core, desk.first.id, Person(name, email)).registration
    bookings.take_desk_payment(held.id, method, "", desk.admin)
    return db.session.get(Registration, held.id)


def pool(db, pool_id) -> SeatPool:
    db.session.expire_all()
    return db.session.get(SeatPool, pool_id)


def rendered(row):
    """An outbox row built and rendered as the sender would."""
    from flask import current_app

    with current_app.test_request_context(base_url=current_app.config["PUBLIC_BASE_URL"]):
        return render_message(row)


def plain(row) -> str:
    """Its text part, with lines unwrapped."""
    return " ".join(rendered(row).get_body(("plain",)).get_content().split())


def audit_actions(registration_id):
    from events.extensions import db

    return {
        a.action: a.details
        for a in db.session.scalars(sa.select(AuditEntry).where(AuditEntry.target_id == registration_id))
    }


# --- Cancel with a chosen refund ---


def test_cancel_asks_first_then_refunds_by_policy_frees_the_seat_for_the_waitlist(client, db, desk):
    ana = card_booked(db, desk)
    card_booked(db, desk, "Ben Bell", "ben@example.com")
    waiting = join_waitlist(desk.core, desk.first.id, Person("Wes Wait", "wes@example.com")).entry
    url = f"/staff/admin/registrations/{ana.id}/cancel"
    form = client.get(url).get_data(as_text=True)
    assert "By the cancellation policy" in form and "$15.00" in form

    review = client.post(
        url, data={"csrf_token": csrf_token(form), "refund": "policy", "reason": "Asked by phone"}
    )
    page = review.get_data(as_text=True)
    assert review.status_code == 200
    assert "Cancel Ana Lopez's booking for Core Flow, " in page and "refund $15.00 to their card" in page
    assert db.session.get(Registration, ana.id).status == RegistrationStatus.CONFIRMED  # asked, not done

    done = client.post(
        url,
        data={
            "csrf_token": csrf_token(page),
            "refund": "policy",
            "reason": "Asked by phone",
            "expected_cents": "1500",
        },
    )
    assert done.status_code == 302
    db.session.expire_all()
    ana = db.session.get(Registration, ana.id)
    assert ana.status == RegistrationStatus.CANCELLED
    refund = db.session.scalar(sa.select(Refund).join(Payment).where(Payment.registration_id == ana.id))
    assert (refund.amount_cents, refund.status, refund.kind) == (
        1500,
        RefundStatus.PENDING,
        RefundKind.CANCELLATION,
    )
    assert db.session.get(WaitlistEntry, waiting.id).status == WaitlistStatus.OFFERED
    assert pool(db, desk.first.seat_pool_id).seats_taken == 2  # Ben, and the seat offered to Wes
    assert (
        db.session.scalar(
            sa.select(OutboxEmail.to_email).where(
                OutboxEmail.registration_id == ana.id, OutboxEmail.kind == EmailKind.REGISTRATION_CANCELLED
            )
        )
        == "ana@example.com"
    )
    details = audit_actions(ana.id)["registration.cancelled_by_staff"]
    assert details["refund_cents"] == 1500 and details["reason"] == "Asked by phone"
    assert details["refund_choice"] == "policy" and details["name"] == "Ana Lopez"
    followed = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "A refund of $15.00 to their card is queued" in followed


def test_policy_refund_is_the_members_own_after_the_cut_off_and_a_stale_quote_changes_nothing(
    client, db, desk
):
    desk.core.cancellation_cutoff_hours = 24 * 5  # the first date is 3 days away: past the cut-off
    db.session.commit()
    ana = card_booked(db, desk)
    quotes = {c: bookings.cancel_quote(ana, c).refund_cents for c in bookings.RefundChoice}
    assert quotes == {
        bookings.RefundChoice.FULL: 1500,
        bookings.RefundChoice.POLICY: 750,  # late_cancel_refund_percent=50, as the member's cancel gives
        bookings.RefundChoice.NONE: 0,
    }
    url = f"/staff/admin/registrations/{ana.id}/cancel"
    token = csrf_token(client.get(url).get_data(as_text=True))
    stale = client.post(
        url, data={"csrf_token": token, "refund": "policy", "reason": "x", "expected_cents": "1500"}
    )
    assert stale.status_code == 400 and "The refund is now $7.50, not $15.00" in stale.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Registration, ana.id).status == RegistrationStatus.CONFIRMED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0

    none = client.post(
        url, data={"csrf_token": token, "refund": "none", "reason": "No-show", "expected_cents": "0"}
    )
    assert none.status_code == 302
    db.session.expire_all()
    assert db.session.get(Registration, ana.id).status == RegistrationStatus.CANCELLED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0


# --- Desk payments ---


def test_a_hold_paid_in_cash_at_the_desk_is_booked_without_stripe(client, db, desk):
    held = register(desk.core, desk.first.id, Person("Ana Lopez", "ana@example.com")).registration
    page = client.get(f"/staff/admin/registrations/{held.id}").get_data(as_text=True)
    assert "take payment at the desk" in page
    url = f"/staff/admin/registrations/{held.id}/desk-payment"
    form = client.get(url).get_data(as_text=True)
    response = client.post(
        url, data={"csrf_token": csrf_token(form), "method": "cash", "note": "Receipt book 12"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    registration = db.session.get(Registration, held.id)
    assert registration.status == RegistrationStatus.CONFIRMED
    payment = succeeded_payment(registration)
    assert payment.method == PaymentMethod.CASH and payment.stripe_payment_intent_id is None
    assert (payment.amount_cents, payment.taken_by_id, payment.note) == (
        1500,
        desk.admin.id,
        "Receipt book 12",
    )
    assert (
        db.session.scalar(sa.select(OutboxEmail.kind).where(OutboxEmail.registration_id == held.id))
        == EmailKind.REGISTRATION_CONFIRMED
    )
    assert audit_actions(held.id)["payment.taken_at_desk"]["method"] == "cash"
    # The confirmation names the desk, not a card.
    row = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.registration_id == held.id))
    assert "Cash, at the desk" in plain(row)
    # Taking it again is refused, and nothing more is recorded.
    again = client.post(url, data={"csrf_token": csrf_token(form), "method": "check"})
    assert again.status_code == 400 and "booked and owe nothing" in again.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1
    roster = client.get(f"/staff/sessions/{desk.first.id}").get_data(as_text=True)
    assert "paid (cash)" in roster


def test_registering_someone_again_to_pay_cash_for_their_hold_books_it(client, db, desk):
    """They started paying online, then came to the desk: staff register them again with cash,
    which pays the hold they already have (not a green 'already registered' and nothing taken)."""
    held = register(desk.core, desk.first.id, Person("Hana Held", "hana@example.com")).registration
    assert held.status == RegistrationStatus.HELD
    url = f"/staff/admin/offerings/{desk.core.id}/register"
    form = client.get(url).get_data(as_text=True)
    response = client.post(
        url,
        data={
            "csrf_token": csrf_token(form),
            "name": "Hana Held",
            "email": "hana@example.com",
            "session_id": str(desk.first.id),
            "payment": "cash",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/staff/admin/registrations/{held.id}")
    db.session.expire_all()
    assert db.session.get(Registration, held.id).status == RegistrationStatus.CONFIRMED
    assert succeeded_payment(db.session.get(Registration, held.id)).method == PaymentMethod.CASH


def test_register_someone_and_take_a_check_or_a_comp(client, db, desk):
    url = f"/staff/admin/offerings/{desk.core.id}/register"
    form = client.get(url).get_data(as_text=True)
    assert "Paid by check at the desk" in form
    for name, email, how in (
        ("Chet Check", "chet@example.com", "check"),
        ("Cam Comp", "cam@example.com", "comp"),
    ):
        response = client.post(
            url,
            data={
                "csrf_token": csrf_token(form),
                "name": name,
                "email": email,
                "session_id": str(desk.first.id),
                "payment": how,
                "payment_note": "#1043" if how == "check" else "",
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    payments = {
        r.name: (r.status, p.method, p.amount_cents)
        for r, p in db.session.execute(sa.select(Registration, Payment).join(Payment.registration))
    }
    assert payments == {
        "Chet Check": (RegistrationStatus.CONFIRMED, PaymentMethod.CHECK, 1500),
        "Cam Comp": (RegistrationStatus.CONFIRMED, PaymentMethod.COMP, 0),
    }
    listing = client.get(f"/staff/admin/registrations?offering_id={desk.core.id}").get_data(as_text=True)
    assert "paid (check)" in listing and ">comp" in listing


def test_a_desk_payment_is_refunded_at_the_desk_never_through_stripe(client, db, desk, monkeypatch):
    ana = desk_booked(db, desk, PaymentMethod.CASH)
    cam = desk_booked(db, desk, PaymentMethod.COMP, "Cam Comp", "cam@example.com")
    for registration in (ana, cam):
        bookings.cancel_booking(
            registration.id,
            bookings.RefundChoice.FULL,
            "Moved away",
            desk.admin,
            1500 if registration is ana else 0,
        )

    def no_stripe(*args, **kwargs):
        raise AssertionError("a desk payment's refund went to Stripe")

    monkeypatch.setattr(refunds, "get_gateway", no_stripe)
    assert refunds.execute_due_refunds() == 0
    db.session.expire_all()
    refund = db.session.scalar(sa.select(Refund))
    assert refund.status == RefundStatus.SUCCEEDED and refund.amount_cents == 1500
    assert "to be returned at the desk" in refund.reason
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 1  # the comp refunds nothing
    cash = succeeded_payment(db.session.get(Registration, ana.id))
    assert cash.amount_refunded_cents == 1500
    assert (
        payment_label(db.session.get(Registration, ana.id), 1500, 1500, PaymentMethod.CASH)
        == "refunded (cash)"
    )
    email = db.session.scalar(
        sa.select(OutboxEmail).where(
            OutboxEmail.registration_id == ana.id, OutboxEmail.kind == EmailKind.REGISTRATION_CANCELLED
        )
    )
    text = plain(email)
    assert "You paid by cash at the desk, so we will return $15 to you there." in text


def test_payment_labels_name_the_desk():
    booked = Registration(price_cents=1500, status=RegistrationStatus.CONFIRMED)
    assert payment_label(booked, 1500, 0, PaymentMethod.CASH) == "paid (cash)"
    assert payment_label(booked, 1500, 0, PaymentMethod.CHECK) == "paid (check)"
    assert payment_label(booked, 1500, 500, PaymentMethod.CASH) == "partly refunded (cash)"
    assert payment_label(booked, 0, 0, PaymentMethod.COMP) == "comp"
    assert payment_label(booked, 1500, 0, None) == "paid"


# --- Transfer ---


def transfer(client, registration, target, reason="Can't make Tuesday"):
    url = f"/staff/admin/registrations/{registration.id}/transfer"
    form = client.get(url).get_data(as_text=True)
    review = client.post(url, data={"csrf_token": csrf_token(form), "target": target, "reason": reason})
    return url, review


def confirm_transfer(client, url, review, target, difference, reason="Can't make Tuesday"):
    return client.post(
        url,
        data={
            "csrf_token": csrf_token(review.get_data(as_text=True)),
            "target": target,
            "reason": reason,
            "expected_difference": str(difference),
        },
    )


def test_transfer_to_another_date_asks_first_moves_the_seat_payment_and_invites(client, db, desk):
    ana = card_booked(db, desk)
    card_booked(db, desk, "Ben Bell", "ben@example.com")  # the first date is full
    waiting = join_waitlist(desk.core, desk.first.id, Person("Wes Wait", "wes@example.com"))
    target = f"{desk.core.id}-{desk.second.id}"
    url, review = transfer(client, ana, target)
    page = review.get_data(as_text=True)
    assert review.status_code == 200 and "Move Ana Lopez from Core Flow, " in page
    assert "same price, nothing to pay or refund" in page
    assert db.session.get(Registration, ana.id).status == RegistrationStatus.CONFIRMED  # asked, not done

    done = confirm_transfer(client, url, review, target, 0)
    assert done.status_code == 302
    db.session.expire_all()
    old = db.session.get(Registration, ana.id)
    new = db.session.scalar(
        sa.select(Registration).where(
            Registration.session_id == desk.second.id, Registration.name == "Ana Lopez"
        )
    )
    assert old.status == RegistrationStatus.CANCELLED and old.cancel_reason.startswith(
        "Transferred to Core Flow"
    )
    assert new.status == RegistrationStatus.CONFIRMED and done.headers["Location"].endswith(f"/{new.id}")
    assert succeeded_payment(new).stripe_payment_intent_id == f"pi_desk_{ana.id}"  # the money moved with it
    assert pool(db, desk.second.seat_pool_id).seats_taken == 1
    assert pool(db, desk.first.seat_pool_id).seats_taken == 2  # Ben, and Ana's old seat offered to Wes
    assert db.session.get(WaitlistEntry, waiting.entry.id).status == WaitlistStatus.OFFERED
    cancelled = db.session.scalar(
        sa.select(OutboxEmail).where(
            OutboxEmail.registration_id == old.id, OutboxEmail.kind == EmailKind.REGISTRATION_CANCELLED
        )
    )
    confirmed = db.session.scalar(
        sa.select(OutboxEmail).where(
            OutboxEmail.registration_id == new.id, OutboxEmail.kind == EmailKind.REGISTRATION_CONFIRMED
        )
    )
    old_message, new_message = rendered(cancelled), rendered(confirmed)
    assert "has moved to Core Flow" in old_message.get_body(("plain",)).get_content()
    invites = {
        part.get_filename(): part.get_content()
        for message in (old_message, new_message)
        for part in message.walk()
        if part.get_content_type() == "text/calendar"
    }
    assert (
        "METHOD:CANCEL" in invites["cancel.ics"]
        and f"registration-{old.id}-session-{desk.first.id}@" in invites["cancel.ics"]
    )
    assert f"registration-{new.id}-session-{desk.second.id}@" in invites["invite.ics"]
    details = audit_actions(old.id)["registration.transferred"]
    assert details["new_registration_id"] == new.id and details["reason"] == "Can't make Tuesday"
    assert details["old"].startswith("Core Flow, ") and details["new"].startswith("Core Flow, ")


def test_transfer_to_a_cheaper_offering_refunds_the_difference_and_a_dearer_one_is_collected(
    client, db, desk
):
    cheaper = make_offering(desk.location, OfferingKind.CLASS, title="Gentle Stretch", price_cents=1000)
    cheaper_date = make_session(cheaper, upcoming_day(4))
    dearer = make_offering(desk.location, OfferingKind.WORKSHOP, title="Back Care Workshop", price_cents=2500)
    make_session(dearer, upcoming_day(6))
    db.session.commit()
    ana = card_booked(db, desk)
    target = f"{cheaper.id}-{cheaper_date.id}"
    url, review = transfer(client, ana, target)
    assert "refund the difference, $5.00, to their card" in review.get_data(as_text=True)
    assert confirm_transfer(client, url, review, target, -500).status_code == 302
    db.session.expire_all()
    moved = db.session.scalar(sa.select(Registration).where(Registration.offering_id == cheaper.id))
    refund = db.session.scalar(sa.select(Refund))
    assert (refund.amount_cents, refund.status, refund.payment.registration_id) == (
        500,
        RefundStatus.PENDING,
        moved.id,
    )

    # Now to the $25 workshop: $10 paid and not refunded, so $15 is collected at the desk.
    url, review = transfer(client, moved, str(dearer.id))
    assert "collect the difference, $15.00, at the desk" in review.get_data(as_text=True)
    done = confirm_transfer(client, url, review, str(dearer.id), 1500)
    assert done.status_code == 302
    assert "Collect the difference, $15.00, at the desk" in client.get(done.headers["Location"]).get_data(
        as_text=True
    )
    db.session.expire_all()
    workshop_booking = db.session.scalar(sa.select(Registration).where(Registration.offering_id == dearer.id))
    assert workshop_booking.status == RegistrationStatus.CONFIRMED and workshop_booking.session_id is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 1  # nothing more refunded
    row = db.session.scalar(
        sa.select(OutboxEmail).where(
            OutboxEmail.registration_id == workshop_booking.id,
            OutboxEmail.kind == EmailKind.REGISTRATION_CONFIRMED,
        )
    )
    assert row.context["balance_due_cents"] == 1500
    assert "costs $15 more than you paid" in plain(row)
    # The balance is recorded at the desk later: the booking owes nothing after.
    assert bookings.balance_due(workshop_booking) == 1500
    assert payment_label(workshop_booking, 1000, 0) == "part paid"
    booking_page = client.get(f"/staff/admin/registrations/{workshop_booking.id}").get_data(as_text=True)
    assert "Take the $15.00 still owed at the desk" in booking_page
    desk_page = client.get(f"/staff/admin/registrations/{workshop_booking.id}/desk-payment")
    assert "still to pay: <strong>$15.00</strong>" in desk_page.get_data(as_text=True)
    taken = bookings.take_desk_payment(workshop_booking.id, PaymentMethod.CASH, "the rest", desk.admin)
    assert taken.amount_cents == 1500
    db.session.expire_all()
    assert bookings.balance_due(db.session.get(Registration, workshop_booking.id)) == 0
    with pytest.raises(AdminError, match="owe nothing"):
        bookings.take_desk_payment(workshop_booking.id, PaymentMethod.CASH, "", desk.admin)


def test_a_walk_in_at_a_paid_class_pays_at_the_desk_afterwards(db, desk):
    walk_in = rosters.add_walk_in(
        desk.first, Person("Wal King", ""), desk.admin, now=desk.first.starts_at - timedelta(minutes=5)
    )
    assert walk_in.status == RegistrationStatus.CONFIRMED and bookings.balance_due(walk_in) == 1500
    assert payment_label(walk_in, 0, 0) == "unpaid"
    emails_before = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))
    taken = bookings.take_desk_payment(walk_in.id, PaymentMethod.CHECK, "check 1042", desk.admin)
    db.session.expire_all()
    walk_in = db.session.get(Registration, walk_in.id)
    assert (taken.amount_cents, taken.method, walk_in.status) == (
        1500,
        PaymentMethod.CHECK,
        RegistrationStatus.CONFIRMED,
    )
    assert payment_label(walk_in, 1500, 0, PaymentMethod.CHECK) == "paid (check)"
    assert bookings.balance_due(walk_in) == 0
    # Already booked: no second confirmation (and a walk-in without an email gets none anyway).
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == emails_before


def test_a_transfer_to_a_full_date_is_refused_and_changes_nothing(client, db, desk):
    ana = card_booked(db, desk)
    card_booked(db, desk, "Ben Bell", "ben@example.com", session=desk.second)
    card_booked(db, desk, "Cy Cole", "cy@example.com", session=desk.second)  # the second date is full
    target = f"{desk.core.id}-{desk.second.id}"
    url, review = transfer(client, ana, target)
    refused = confirm_transfer(client, url, review, target, 0)
    assert refused.status_code == 400
    assert "That one is full (2 of 2 seats taken)" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Registration, ana.id).status == RegistrationStatus.CONFIRMED
    assert pool(db, desk.second.seat_pool_id).seats_taken == 2
    assert pool(db, desk.first.seat_pool_id).seats_taken == 1
    assert "registration.transferred" not in audit_actions(ana.id)


# --- Correcting details ---


def test_a_corrected_email_gets_the_confirmation_again_and_the_old_address_nothing(client, db, desk):
    free = make_offering(desk.location, OfferingKind.WORKSHOP, title="Posture Talk")
    make_session(free, upcoming_day(5))
    db.session.commit()
    ana = register(free, None, Person("Ana Lopez", "ana@exmaple.com")).registration
    sent = db.session.scalar(sa.select(OutboxEmail).where(OutboxEmail.registration_id == ana.id))
    sent.status, sent.last_error = EmailStatus.FAILED, "550 no such domain"
    queue_email(EmailKind.REMINDER, registration=ana, key_parts=("t1",))  # still to go
    db.session.commit()
    failed_page = client.get("/staff/admin/emails/failed").get_data(as_text=True)
    assert f"/staff/admin/registrations/{ana.id}/details" in failed_page

    url = f"/staff/admin/registrations/{ana.id}/details"
    with client.application.test_request_context():
        old_link = links.manage_url(ana, external=False)  # as sent to the mistyped address
    form = client.get(url).get_data(as_text=True)
    bad = client.post(
        url,
        data={
            "csrf_token": csrf_token(form),
            "name": "Ana Lopez",
            "email": "zoë@example.com",
            "reason": "typo",
        },
    )
    assert bad.status_code == 400 and "without accents" in bad.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Registration, ana.id).email == "ana@exmaple.com"

    fixed = client.post(
        url,
        data={
            "csrf_token": csrf_token(form),
            "name": "Ana López",
            "email": "ana@example.com",
            "phone": "612-555-0100",
            "reason": "Mistyped domain",
        },
    )
    assert fixed.status_code == 302
    db.session.expire_all()
    ana = db.session.get(Registration, ana.id)
    assert (ana.name, ana.email, ana.email_normalized, ana.phone) == (
        "Ana López",
        "ana@example.com",
        "ana@example.com",
        "612-555-0100",
    )
    rows = db.session.scalars(
        sa.select(OutboxEmail).where(OutboxEmail.registration_id == ana.id).order_by(OutboxEmail.id)
    ).all()
    by_kind = [(r.kind, r.to_email, r.status) for r in rows]
    assert by_kind == [
        (EmailKind.REGISTRATION_CONFIRMED, "ana@exmaple.com", EmailStatus.FAILED),  # history, as it was
        (EmailKind.REMINDER, "ana@example.com", EmailStatus.PENDING),  # follows the new address
        (EmailKind.REGISTRATION_CONFIRMED, "ana@example.com", EmailStatus.PENDING),  # sent again
    ]
    assert len({r.dedupe_key for r in rows}) == 3
    # Retrying the failed one would go to the old address: refused.
    token = csrf_token(client.get(f"/staff/admin/registrations/{ana.id}").get_data(as_text=True))
    client.post(f"/staff/admin/emails/{rows[0].id}/resend", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(OutboxEmail, rows[0].id).status == EmailStatus.FAILED
    details = audit_actions(ana.id)["registration.details_corrected"]
    assert details["fields"] == ["name", "email", "phone"] and details["confirmation_resent"] is True
    assert details["reason"] == "Mistyped domain"
    # The mistyped address may be a stranger's: the link sent there no longer opens the booking.
    assert client.get(old_link).status_code == 404
    with client.application.test_request_context():
        new_link = links.manage_url(ana, external=False)
    assert client.get(new_link).status_code == 200


def test_a_walk_ins_name_is_corrected_without_an_email_but_an_email_cannot_be_removed(client, db, desk):
    ana = card_booked(db, desk)
    walk_in = card_booked(db, desk, name="Wal K", email="wal@example.com")
    walk_in.email = walk_in.email_normalized = ""  # as a walk-in who gave none is stored
    db.session.commit()
    form = client.get(f"/staff/admin/registrations/{walk_in.id}/details").get_data(as_text=True)
    fixed = client.post(
        f"/staff/admin/registrations/{walk_in.id}/details",
        data={"csrf_token": csrf_token(form), "name": "Walter King", "email": "", "reason": "spelling"},
    )
    assert fixed.status_code == 302
    url = f"/staff/admin/registrations/{ana.id}/details"
    removed = client.post(
        url, data={"csrf_token": csrf_token(form), "name": "Ana Lopez", "email": "", "reason": "test"}
    )
    assert removed.status_code == 400 and "Enter their email." in removed.get_data(as_text=True), (
        removed.get_data(as_text=True)[1500:4000]
    )
    db.session.expire_all()
    assert db.session.get(Registration, walk_in.id).name == "Walter King"
    assert db.session.get(Registration, ana.id).email == "ana@example.com"


@pytest.mark.parametrize(
    "field, value",
    [
        ("reason", "Asked\x00by phone"),
        ("reason", "Eve\x1b[31mred"),
        ("reason", "x" * 1_000_000),
        ("expected_cents", "99999999999999999999999"),
        ("expected_cents", "-5"),
        ("refund", "everything"),
    ],
)
def test_hostile_cancel_input_is_refused_and_changes_nothing(client, db, desk, field, value):
    ana = card_booked(db, desk)
    url = f"/staff/admin/registrations/{ana.id}/cancel"
    data = {"refund": "full", "reason": "Asked by phone", "expected_cents": "1500", field: value}
    data["csrf_token"] = csrf_token(client.get(url).get_data(as_text=True))
    from urllib.parse import urlencode

    body = urlencode(data, encoding="utf-8", errors="surrogatepass")
    response = client.post(url, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (400, 413)
    db.session.expire_all()
    assert db.session.get(Registration, ana.id).status == RegistrationStatus.CONFIRMED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0


@pytest.mark.parametrize("target", ["", "abc", "1-", "99999999999999999999", "-1", "\x00"])
def test_hostile_transfer_targets_are_refused(client, db, desk, target):
    ana = card_booked(db, desk)
    url = f"/staff/admin/registrations/{ana.id}/transfer"
    token = csrf_token(client.get(url).get_data(as_text=True))
    response = client.post(
        url, data={"csrf_token": token, "target": target, "reason": "x", "expected_difference": "0"}
    )
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Registration, ana.id).status == RegistrationStatus.CONFIRMED


def test_a_member_cancelling_a_cash_booking_is_told_the_desk_returns_it(client, db, desk):
    from events.registration import links
    from events.registration.services import cancel_registration

    ana = desk_booked(db, desk, PaymentMethod.CASH)
    manage = f"/manage/{links.sign(ana.token, links.MANAGE_SALT)}"
    preview = client.get(f"{manage}/cancel").get_data(as_text=True)
    assert "at the front desk (you paid by cash there)" in preview and "reaches your card" not in preview

    _, refund_cents = cancel_registration(ana.id)
    assert refund_cents == 1500
    refund = db.session.scalar(sa.select(Refund))
    assert refund.status == RefundStatus.SUCCEEDED and "to be returned at the desk" in refund.reason
    page = client.get(manage).get_data(as_text=True)
    assert "$15 is returned to you at the front desk (you paid by cash there)" in page


def test_a_transfer_to_a_date_they_were_offered_a_seat_on_uses_that_seat(client, db, desk):
    ana = card_booked(db, desk)
    card_booked(db, desk, "Ben Bell", "ben@example.com", session=desk.second)
    cy = card_booked(db, desk, "Cy Cole", "cy@example.com", session=desk.second)
    entry = join_waitlist(desk.core, desk.second.id, Person("Ana Lopez", "ana@example.com")).entry
    bookings.cancel_booking(cy.id, bookings.RefundChoice.NONE, "Moved away", desk.admin, 0)
    assert db.session.get(WaitlistEntry, entry.id).status == WaitlistStatus.OFFERED  # holds Cy's old seat
    target = f"{desk.core.id}-{desk.second.id}"
    url, review = transfer(client, ana, target)
    assert confirm_transfer(client, url, review, target, 0).status_code == 302
    db.session.expire_all()
    entry = db.session.get(WaitlistEntry, entry.id)
    assert entry.status == WaitlistStatus.CLAIMED and entry.registration.name == "Ana Lopez"
    assert pool(db, desk.second.seat_pool_id).seats_taken == 2  # Ben and Ana: the offered seat became hers
    assert pool(db, desk.first.seat_pool_id).seats_taken == 0


def test_a_manual_refund_of_a_cash_payment_is_recorded_for_the_desk(client, db, desk):
    ana = desk_booked(db, desk, PaymentMethod.CASH)
    page = f"/staff/admin/registrations/{ana.id}"
    form = client.get(page).get_data(as_text=True)
    assert "Paid at the desk: hand it back there" in form
    done = client.post(
        f"{page}/refund",
        data={"csrf_token": csrf_token(form), "amount": "5", "reason": "Late start", "confirmed": "yes"},
    )
    assert done.status_code == 302
    assert "Refund of $5.00 to Ana Lopez recorded: return it at the desk." in client.get(page).get_data(
        as_text=True
    )
    refund = db.session.scalar(sa.select(Refund))
    assert (refund.amount_cents, refund.status, refund.kind) == (
        500,
        RefundStatus.SUCCEEDED,
        RefundKind.MANUAL,
    )


def test_a_transfer_keeps_the_tier_and_code_a_booking_was_priced_with(db, desk):
    """Ana paid the Community tier ($5) less a 20% code ($4): moved to another date of the same
    class she owes nothing, the new booking keeps tier and code, and the code's use moves with it
    (still one use, now the new booking's)."""
    from events import pricing
    from events.models import PriceTier, PromoCode, PromoKind, PromoRedemption
    from events.pricing import PriceChoice

    desk.core.price_tiers = [
        PriceTier(name="Standard", price_cents=1500, position=0),
        PriceTier(name="Community", price_cents=500, position=1),
    ]
    promo = PromoCode(code="WELL", code_normalized="WELL", kind=PromoKind.PERCENT_OFF, value=20)
    db.session.add(promo)
    db.session.commit()
    community = desk.core.price_tiers[1]
    ana = register(
        desk.core,
        desk.first.id,
        Person("Ana Lopez", "ana@example.com"),
        price_choice=PriceChoice(community.id, code="WELL"),
    ).registration
    assert ana.price_cents == 400
    db.session.add(
        Payment(
            registration_id=ana.id,
            stripe_payment_intent_id="pi_tier_ana",
            amount_cents=400,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
        )
    )
    ana.status = RegistrationStatus.CONFIRMED
    db.session.commit()

    quote = bookings.transfer_quote(ana, desk.core.id, desk.second.id)
    assert quote.difference_cents == 0  # not $15 - $4
    result = bookings.transfer_booking(ana.id, desk.core.id, desk.second.id, "Tuesday instead", desk.admin, 0)

    new = result.new
    assert (new.price_cents, new.price_tier_id, new.promo_code_id, new.discount_cents) == (
        400,
        community.id,
        promo.id,
        100,
    )
    assert (result.refund_cents, result.due_cents) == (0, 0)
    db.session.expire_all()
    [use] = db.session.scalars(sa.select(PromoRedemption)).all()
    assert (use.registration_id, use.released_at) == (new.id, None)
    assert pricing.uses(promo.id) == 1
