"""Holds you can come back to, one clear state for an expired hold, cancelling that asks once
and offers another date, and what the pay page says (issue 12), on PostgreSQL.

Registering again with the email of a live hold takes the browser that made the hold back to
its payment; any other browser gets a neutral answer with no link, and the link is emailed to
the held address instead (services.LINK_EMAIL_WINDOW).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from events.extensions import db as _db
from events.filters import format_time, zone_name
from events.models import (
    OfferingKind,
    OutboxEmail,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    Registration,
    RegistrationStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.payments.receipts import Receipt, card_label, receipt_number
from events.payments.services import apply_intent
from events.registration import links, manage, services
from events.registration.services import Outcome, Person, WaitlistOutcome
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import cancel_form, charge_card, csrf_token, outbox_kinds, wait_for_webhooks
from tests.integration.test_payments import SUCCESS, card_token
from tests.integration.test_registration import post_register
from tests.integration.test_staff_admin import login

pytestmark = pytest.mark.usefixtures("localstripe")


@pytest.fixture
def stripe_client(localstripe):
    import stripe

    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})


def paid_class(db, capacity=5, price_cents=1800, dates=(4, 11, 18)):
    location = make_location(name="North Loop", address_line1="800 N Washington Ave", postal_code="55401")
    offering = make_offering(
        location,
        OfferingKind.CLASS,
        title="Core & Hip Strength",
        price_cents=price_cents,
        capacity=capacity,
        late_cancel_refund_percent=50,
    )
    sessions = [make_session(offering, upcoming_day(days)) for days in dates]
    db.session.commit()
    return offering, sessions


def link_emails(registration_id: int) -> list[OutboxEmail]:
    return list(
        _db.session.scalars(
            sa.select(OutboxEmail).where(
                OutboxEmail.registration_id == registration_id,
                OutboxEmail.kind == EmailKind.REGISTRATION_LINK,
            )
        )
    )


# --- 1. Holds you can come back to ---------------------------------------------------------------


def test_the_browser_that_holds_a_seat_resumes_it_and_any_other_gets_its_link_by_email(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "HOLD_MINUTES", 60)  # still held a link window later
    offering, (first, *_) = paid_class(db)
    ana = Person("Ana Reyes", "ana@example.com")
    held = services.register(offering, first.id, ana, browser_key="browser-a")
    assert held.outcome == Outcome.HELD and held.registration is not None

    again = services.register(offering, first.id, Person("Ana", " ANA@example.com "), browser_key="browser-a")
    assert again.outcome == Outcome.RESUME and again.registration.id == held.registration.id
    assert link_emails(held.registration.id) == []  # nothing to send: they are back at it

    # Someone else typing Ana's email: no way in, and Ana is sent her own link, once a window.
    for _ in range(3):
        stranger = services.register(offering, first.id, ana, browser_key="browser-b")
        assert stranger.outcome == Outcome.ALREADY_REGISTERED
    nobody = services.register(offering, first.id, ana)  # no session cookie at all
    assert nobody.outcome == Outcome.ALREADY_REGISTERED
    [email] = link_emails(held.registration.id)
    assert email.to_email == "ana@example.com"
    later = utcnow() + services.LINK_EMAIL_WINDOW + timedelta(seconds=1)
    assert services.register(offering, first.id, ana, now=later).outcome == Outcome.ALREADY_REGISTERED
    assert len(link_emails(held.registration.id)) == 2

    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 1
    assert first.seat_pool.seats_taken == 1


def test_staff_registering_someone_already_registered_emails_nobody(db):
    offering, (first, *_) = paid_class(db)
    held = services.register(offering, first.id, Person("Ana", "ana@example.com"), browser_key="a")
    result = services.register(offering, first.id, Person("Ana", "ana@example.com"), source="staff")
    assert result.outcome == Outcome.ALREADY_REGISTERED
    assert link_emails(held.registration.id) == []


def test_the_waitlist_form_resumes_a_hold_on_the_last_seat(db):
    """Their own hold takes the last seat, so the class shows full: joining its waitlist from
    the same browser takes them back to their payment instead."""
    offering, (first, *_) = paid_class(db, capacity=1)
    ana = Person("Ana", "ana@example.com")
    held = services.register(offering, first.id, ana, browser_key="a").registration
    assert services.join_waitlist(offering, first.id, ana, browser_key="a").outcome == WaitlistOutcome.RESUME
    other = services.join_waitlist(offering, first.id, ana, browser_key="b")
    assert other.outcome == WaitlistOutcome.ALREADY_REGISTERED
    assert len(link_emails(held.id)) == 1


def test_registering_again_in_the_same_browser_lands_on_the_payment_with_the_hold_time(app, client, db):
    offering, (first, *_) = paid_class(db)
    response = post_register(client, offering, session_id=str(first.id))
    assert "/pay" in response.headers["Location"]
    registration = db.session.scalar(sa.select(Registration))

    again = post_register(client, offering, session_id=str(first.id), email="Ana@Example.com")

    assert again.status_code == 302 and again.headers["Location"].endswith("/pay?back=1")
    signed = again.headers["Location"].split("/")[-2]
    assert links.unsign(signed, links.MANAGE_SALT) == registration.token
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    until = registration.hold_expires_at.astimezone(offering.location.zone)
    held_until = f"{format_time(until)} {zone_name(until)}"
    assert f"Continue to payment: your seat is held until <strong>{held_until}</strong>." in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 1


def test_another_browser_gets_a_neutral_answer_without_any_link(app, client, db):
    offering, (first, *_) = paid_class(db)
    post_register(client, offering, session_id=str(first.id))
    confirmed, _ = paid_class(db)  # a second class, booked and confirmed
    booked = services.register(confirmed, confirmed.sessions[0].id, Person("Ana", "ana@example.com"))
    booked.registration.status = RegistrationStatus.CONFIRMED
    db.session.commit()

    answers = []
    for target in (offering, confirmed):
        stranger = post_register(
            app.test_client(), target, session_id=str(target.sessions[0].id), email="ana@example.com"
        )
        html = stranger.get_data(as_text=True)
        assert stranger.status_code == 409
        assert "/manage/" not in html and "/pay" not in html
        answers.append(re.search(r"This email is already registered[^<]*", html).group(0))
    # The same words for a seat held and a seat paid for: nothing tells them apart.
    assert answers[0] == answers[1]
    assert "We&#39;ve emailed the link" in answers[0]


# --- 2. An expired hold: one state, one action ---------------------------------------------------


def _expire(db, registration):
    registration.hold_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()


def test_an_expired_hold_shows_one_message_and_one_way_back_to_that_date(client, db):
    offering, (_, second, _) = paid_class(db)
    registration = services.register(offering, second.id, Person("Ana", "ana@example.com")).registration
    _expire(db, registration)
    signed = links.sign(registration.token, links.MANAGE_SALT)

    page = client.get(f"/manage/{signed}").get_data(as_text=True)

    assert page.count("Your held seat has been released") == 1
    for contradiction in (
        "Awaiting payment",
        "Complete payment",
        "Continue to payment",
        "Cancel my registration",
    ):
        assert contradiction not in page
    state = page[page.index('class="card state') : page.index("</section>", page.index('class="card state'))]
    assert re.findall(r"<a [^>]*>", state) == [
        f'<a class="button" href="/offerings/{offering.slug}?session={second.id}#register">'
    ]
    assert "Register again" in state
    # The link opens the offering with that date chosen.
    offering_page = client.get(f"/offerings/{offering.slug}?session={second.id}").get_data(as_text=True)
    chosen = rf'<input type="radio" id="session-{second.id}" name="session_id" value="{second.id}"\s+checked'
    assert re.search(chosen, offering_page)
    # The pay page sends them to that one state rather than flashing a second message.
    pay = client.get(f"/manage/{signed}/pay")
    assert pay.status_code == 302 and pay.location.endswith(f"/manage/{signed}")


def test_an_expired_hold_on_a_full_date_offers_the_waitlist(client, db):
    offering, (first, *_) = paid_class(db, capacity=1)
    registration = services.register(offering, first.id, Person("Ana", "ana@example.com")).registration
    _expire(db, registration)
    services.register(offering, first.id, Person("Bo", "bo@example.com"))  # releases hers, takes the seat
    page = client.get(f"/manage/{links.sign(registration.token, links.MANAGE_SALT)}").get_data(as_text=True)
    assert "Join the waitlist" in page and "Register again" not in page


def test_registering_again_after_the_hold_expired_makes_a_new_hold(client, db):
    offering, (first, *_) = paid_class(db)
    post_register(client, offering, session_id=str(first.id))
    _expire(db, db.session.scalar(sa.select(Registration)))
    again = post_register(client, offering, session_id=str(first.id))
    assert "/pay" in again.headers["Location"]
    db.session.expire_all()
    statuses = sorted(r.status.value for r in db.session.scalars(sa.select(Registration)))
    assert statuses == ["expired", "held"]


# --- 3. What the pay page says -------------------------------------------------------------------


def test_the_pay_page_says_what_when_where_and_how_much(client, db):
    offering, (first, *_) = paid_class(db)
    location = offering.location
    response = post_register(client, offering, session_id=str(first.id))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    start = first.local_start
    for said in (
        "Core &amp; Hip Strength",
        f"{start:%A}, {start:%B} {start.day}",  # the date, in the location's zone
        format_time(start),
        zone_name(start),
        location.name,
        location.full_address,
        "$18",
    ):
        assert said in page, said


# --- 4. The receipt ------------------------------------------------------------------------------


def test_a_receipt_names_the_card_the_amount_and_a_stable_number():
    assert receipt_number(42) == "R-000042"
    assert card_label("visa", "4242") == "Visa ending 4242"
    assert card_label("amex", "0005") == "American Express ending 0005"
    assert card_label("", "4242") == "Card ending 4242"
    assert card_label("", "") == ""


def test_a_paid_booking_stores_its_card_and_sends_one_email(db, stripe_client):
    offering, (first, *_) = paid_class(db)
    registration = services.register(offering, first.id, Person("Ana", "ana@example.com")).registration
    state = charge_card(
        registration_id=registration.id,
        card_token=card_token(stripe_client, SUCCESS),
        amount=1800,
        currency="usd",
        description="t",
    )
    assert (state.card_brand, state.card_last4) == ("visa", "4242") and state.charged_at is not None
    apply_intent(state)
    apply_intent(state)  # a second copy changes nothing
    wait_for_webhooks(1)  # nor does the webhook's
    db.session.expire_all()
    assert outbox_kinds(registration_id=registration.id) == [EmailKind.REGISTRATION_CONFIRMED]
    receipt = Receipt.of(services.succeeded_payment(db.session.get(Registration, registration.id)))
    assert receipt.card == "Visa ending 4242" and receipt.amount_cents == 1800
    assert receipt.paid_at == state.charged_at


# --- 5. Cancelling asks once, then offers another date -------------------------------------------


def _paid(db, stripe_client, offering, session, email="ana@example.com"):
    registration = services.register(offering, session.id, Person("Ana", email)).registration
    apply_intent(
        charge_card(
            registration_id=registration.id,
            card_token=card_token(stripe_client, SUCCESS),
            amount=offering.price_cents,
            currency="usd",
            description="t",
        )
    )
    wait_for_webhooks(1)  # nothing left in flight for the next test
    db.session.expire_all()
    return db.session.get(Registration, registration.id)


def test_cancelling_says_the_refund_and_when_it_arrives_before_anything_changes(client, db, stripe_client):
    offering, (first, second, third) = paid_class(db, capacity=1)
    registration = _paid(db, stripe_client, offering, first)
    services.register(offering, third.id, Person("Full", "full@example.com"))  # the third date is full
    signed = links.sign(registration.token, links.MANAGE_SALT)

    manage_page = client.get(f"/manage/{signed}").get_data(as_text=True)
    assert "Receipt" in manage_page and "Visa ending 4242" in manage_page
    assert re.search(r"R-\d{6}", manage_page)
    assert f'href="/manage/{signed}/cancel"' in manage_page
    confirm = client.get(f"/manage/{signed}/cancel").get_data(as_text=True)
    assert "full refund of $18" in confirm and "Visa ending 4242" in confirm
    assert "5–10 business days" in confirm
    db.session.expire_all()
    assert db.session.get(Registration, registration.id).status == RegistrationStatus.CONFIRMED

    done = client.post(f"/manage/{signed}/cancel", data=cancel_form(confirm))
    assert done.status_code == 302
    landed = client.get(done.location).get_data(as_text=True)
    assert "A refund of $18 is on its way to your card" in landed
    assert "Book another date" in landed
    # Its other dates with seats, each opening the offering with that date chosen; not the full one.
    assert f"/offerings/{offering.slug}?session={second.id}#register" in landed
    assert f"session={third.id}" not in landed and f"session={first.id}#" not in landed
    db.session.expire_all()
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert (refund.amount_cents, refund.status) == (1800, RefundStatus.PENDING)


def test_a_refund_that_changed_meanwhile_is_shown_again_not_given_silently(client, db, stripe_client):
    offering, (first, *_) = paid_class(db)
    registration = _paid(db, stripe_client, offering, first)
    signed = links.sign(registration.token, links.MANAGE_SALT)
    confirm = client.get(f"/manage/{signed}/cancel").get_data(as_text=True)
    form = cancel_form(confirm)
    form["refund_cents"] = "900"  # as if the page had been opened before the cut-off passed

    answer = client.post(f"/manage/{signed}/cancel", data=form)

    assert answer.status_code == 409
    html = answer.get_data(as_text=True)
    assert "The refund has changed" in html and "full refund of $18" in html
    db.session.expire_all()
    assert db.session.get(Registration, registration.id).status == RegistrationStatus.CONFIRMED
    assert db.session.scalars(sa.select(Refund)).all() == []
    # A post without the confirmation (an old page's one-tap button) is asked, not obeyed.
    bare = client.post(f"/manage/{signed}/cancel", data={"csrf_token": form["csrf_token"]})
    assert bare.status_code == 400 and "Cancel your registration?" in bare.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Registration, registration.id).status == RegistrationStatus.CONFIRMED


def test_a_late_cancellation_is_quoted_by_the_policy(db, stripe_client):
    offering, (first, *_) = paid_class(db)
    registration = _paid(db, stripe_client, offering, first)
    late = first.starts_at - timedelta(hours=2)
    preview = manage.cancel_preview(registration, now=late)
    assert (preview.quote.amount_cents, preview.quote.full, preview.card) == (900, False, "Visa ending 4242")
    with pytest.raises(services.QuoteChanged) as changed:
        services.cancel_registration(registration.id, now=late, expected_refund_cents=1800)
    assert changed.value.quote.amount_cents == 900
    _, refunded = services.cancel_registration(registration.id, now=late, expected_refund_cents=900)
    assert refunded == 900


def test_a_workshop_cancelled_offers_the_next_ones_on_its_topic(db):
    location = make_location()
    past_topic = make_offering(location, title="Back Basics", topic="Back", capacity=3)
    make_session(past_topic, upcoming_day(3))
    sibling = make_offering(location, title="Back Basics (January)", topic="Back", capacity=3)
    make_session(sibling, upcoming_day(30))
    make_session(sibling, upcoming_day(37))
    full = make_offering(location, title="Back Basics (full)", topic="Back", capacity=1)
    make_session(full, upcoming_day(20))
    other = make_offering(location, title="Knees", topic="Knees", capacity=3)
    make_session(other, upcoming_day(5))
    db.session.commit()
    services.register(full, None, Person("Full", "full@example.com"))
    registration = services.register(past_topic, None, Person("Ana", "ana@example.com")).registration
    services.cancel_registration(registration.id)

    page = manage.manage_page(db.session.get(Registration, registration.id))

    assert page.state == manage.State.CANCELLED
    assert [(s.offering.title, s.starts_at) for s in page.other_dates] == [
        ("Back Basics (January)", sibling.sessions[0].starts_at)
    ]


def test_staff_see_the_receipt_number_and_card_of_a_payment(client, db, stripe_client):
    offering, (first, *_) = paid_class(db)
    registration = _paid(db, stripe_client, offering, first)
    login(client, db)
    page = client.get(f"/staff/admin/registrations/{registration.id}").get_data(as_text=True)
    payment = registration.payments[0]
    assert "by Visa ending 4242 on " in page and f"receipt {receipt_number(payment.id)}" in page


def test_no_cancelling_once_it_has_started_or_while_a_payment_is_going_through(client, db, stripe_client):
    offering, (first, second, _) = paid_class(db)
    registration = _paid(db, stripe_client, offering, first)
    first.starts_at = utcnow() - timedelta(minutes=5)
    first.ends_at = utcnow() + timedelta(minutes=55)
    db.session.commit()
    signed = links.sign(registration.token, links.MANAGE_SALT)
    page = client.get(f"/manage/{signed}").get_data(as_text=True)
    assert "Cancel my registration" not in page and "/cancel" not in page
    assert client.get(f"/manage/{signed}/cancel").status_code == 302
    token = csrf_token(client.get(f"/offerings/{offering.slug}").get_data(as_text=True))
    posted = client.post(f"/manage/{signed}/cancel", data={"refund_cents": "0", "csrf_token": token})
    assert posted.status_code == 302
    db.session.expire_all()
    assert db.session.get(Registration, registration.id).status == RegistrationStatus.CONFIRMED

    held = services.register(offering, second.id, Person("Bo", "bo@example.com")).registration
    db.session.add(
        Payment(
            registration_id=held.id,
            stripe_payment_intent_id="pi_processing_1",
            amount_cents=1800,
            currency="usd",
            status=PaymentStatus.PROCESSING,
        )
    )
    db.session.commit()
    assert manage.manage_page(held).state == manage.State.PAYMENT_PENDING
    assert not manage.can_cancel(held)
    held_page = client.get(f"/manage/{links.sign(held.token, links.MANAGE_SALT)}").get_data(as_text=True)
    assert "/cancel" not in held_page and "waiting for your bank" in held_page
