"""Registering, the seat rules, the waitlist and manage links, on PostgreSQL."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import g

from events.models import (
    OfferingKind,
    OutboxEmail,
    Registration,
    RegistrationStatus,
    SeatPool,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.registration import links, seats, services
from events.registration.services import Outcome, Person, WaitlistOutcome
from tests.factories import make_location, make_offering, make_session, upcoming_day, workshop
from tests.helpers import cancel_form, csrf_token, outbox_kinds


def post_register(client, offering, **fields):
    # Flask-WTF keeps the token it made in `g`, which the test's app context shares between
    # clients: each browser must get its own (made from its own session).
    g.pop("csrf_token", None)
    html = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(html), "name": "Ana Reyes", "email": "ana@example.com", **fields}
    return client.post(f"/offerings/{offering.slug}/register", data=data)


def pool_of(offering) -> SeatPool:
    return offering.sessions[0].seat_pool


def test_free_registration_is_confirmed_with_one_email(client, db):
    offering = workshop(capacity=3)
    db.session.commit()

    response = post_register(client, offering)

    assert response.status_code == 302 and "/manage/" in response.headers["Location"]
    registration = db.session.scalar(sa.select(Registration))
    assert registration.status == RegistrationStatus.CONFIRMED
    assert pool_of(offering).seats_taken == 1
    assert outbox_kinds(registration_id=registration.id) == [EmailKind.REGISTRATION_CONFIRMED]
    manage = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You&#39;re registered" in manage or "You're registered" in manage
    assert "Confirmed" in manage


def test_same_email_twice_is_told_and_nothing_is_created(app, client, db):
    offering = workshop(capacity=3)
    db.session.commit()
    post_register(client, offering, email="Ana@Example.com")

    # From another browser: told, neutrally, and the link goes to the registration's address.
    response = post_register(app.test_client(), offering, email=" ana@example.com ")

    assert response.status_code == 409
    assert "already registered" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 1
    db.session.expire_all()
    assert pool_of(offering).seats_taken == 1
    registration = db.session.scalar(sa.select(Registration))
    assert outbox_kinds(registration_id=registration.id) == [
        EmailKind.REGISTRATION_CONFIRMED,
        EmailKind.REGISTRATION_LINK,
    ]

    # From the browser that registered: back to the registration.
    again = post_register(client, offering, email="ana@example.com")
    assert again.status_code == 302
    assert links.unsign(again.headers["Location"].rsplit("/", 1)[1], links.MANAGE_SALT) == registration.token
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 1


def _link_emails(db) -> list:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.kind == EmailKind.REGISTRATION_LINK)
            .order_by(OutboxEmail.id)
        )
    )


def test_typing_a_members_email_into_many_forms_sends_them_one_link_a_window(app, client, db):
    """A member with eight classes: a stranger typing their email into every class's register
    and waitlist form, again and again, sends them one link email per window, not one per
    class; the first one still goes out, and another address is not held back by theirs."""
    offerings = [workshop(title=f"Class {n}", capacity=1 if n == 0 else 5) for n in range(8)]
    db.session.commit()
    for offering in offerings:
        assert post_register(client, offering, email="ana@example.com").status_code == 302
    stranger = app.test_client()
    for _ in range(3):
        for offering in offerings:
            response = post_register(stranger, offering, email=" ANA@example.com ")
            assert response.status_code == 409 and "already registered" in response.get_data(as_text=True)
    g.pop("csrf_token", None)  # the full class's waitlist form: the same answer, no more email
    first = offerings[0]
    page = stranger.get(f"/offerings/{first.slug}").get_data(as_text=True)
    stranger.post(
        f"/offerings/{first.slug}/waitlist",
        data={"csrf_token": csrf_token(page), "name": "X", "email": "ana@example.com"},
    )
    [link] = _link_emails(db)
    assert link.to_email == "ana@example.com"
    assert "ana" not in link.dedupe_key and "example" not in link.dedupe_key  # a digest names it

    # Someone else's address is answered on its own.
    post_register(client, offerings[1], email="bo@example.com")
    post_register(stranger, offerings[1], email="bo@example.com")
    assert [e.to_email for e in _link_emails(db)] == ["ana@example.com", "bo@example.com"]

    # A window later, one more (for whichever class was asked about), and no more.
    later = utcnow() + services.LINK_EMAIL_WINDOW + timedelta(seconds=1)
    for offering in offerings[2:5]:
        again = services.register(offering, None, Person("Ana", "ana@example.com"), now=later)
        assert again.outcome == Outcome.ALREADY_REGISTERED
    assert [e.to_email for e in _link_emails(db)] == ["ana@example.com", "bo@example.com", "ana@example.com"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not-an-email"}, "doesn&#39;t look like an email"),
        ({"name": ""}, "Please tell us your name"),
        ({"phone": "call me maybe"}, "Please use digits"),
        ({"name": "x" * 500}, "That name is too long"),
    ],
)
def test_bad_input_shows_a_message_beside_the_field_and_changes_nothing(client, db, fields, message):
    offering = workshop()
    db.session.commit()

    response = post_register(client, offering, **fields)

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'aria-invalid="true"' in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0


def test_a_post_without_csrf_token_changes_nothing(client, db):
    offering = workshop()
    db.session.commit()
    response = client.post(
        f"/offerings/{offering.slug}/register", data={"name": "A", "email": "a@example.com"}
    )
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0


def test_drop_in_class_registers_per_session(app, client, db):
    location = make_location()
    offering = make_offering(location, OfferingKind.CLASS, capacity=2)
    first = make_session(offering, upcoming_day(3))
    second = make_session(offering, upcoming_day(10))
    db.session.commit()

    assert post_register(client, offering, session_id=str(first.id)).status_code == 302
    assert post_register(client, offering, session_id=str(second.id)).status_code == 302
    # The same person in the same class twice is refused (the browser that registered is taken
    # back to the registration instead).
    assert post_register(app.test_client(), offering, session_id=str(first.id)).status_code == 409
    assert "/manage/" in post_register(client, offering, session_id=str(first.id)).headers["Location"]

    db.session.expire_all()
    assert (first.seat_pool.seats_taken, second.seat_pool.seats_taken) == (1, 1)
    # A class session that isn't this offering's is refused with a message.
    other = workshop()
    db.session.commit()
    response = post_register(client, offering, session_id=str(other.sessions[0].id))
    assert response.status_code == 409 and "choose one of the listed dates" in response.get_data(as_text=True)


def test_full_offers_the_waitlist_and_joining_shows_the_position(client, db):
    offering = workshop(capacity=1)
    db.session.commit()
    post_register(client, offering, email="first@example.com")

    response = post_register(client, offering, email="second@example.com")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Join the waitlist" in html
    assert f"/offerings/{offering.slug}/waitlist" in html

    data = {"csrf_token": csrf_token(html), "name": "Second", "email": "second@example.com"}
    joined = client.post(f"/offerings/{offering.slug}/waitlist", data=data)
    assert joined.status_code == 302
    page = client.get(joined.headers["Location"]).get_data(as_text=True)
    assert "number 1" in page
    entry = db.session.scalar(sa.select(WaitlistEntry))
    assert outbox_kinds(waitlist_entry_id=entry.id) == [EmailKind.WAITLIST_JOINED]


def test_a_freed_seat_is_offered_in_order_and_unclaimed_offers_pass_on(app_ctx, db):
    offering = workshop(capacity=1, days=5)
    db.session.commit()
    now = utcnow()
    taken = services.register(offering, None, Person("A", "a@example.com"), now).registration
    first = services.join_waitlist(offering, None, Person("B", "b@example.com"), now).entry
    second = services.join_waitlist(
        offering, None, Person("C", "c@example.com"), now + timedelta(seconds=1)
    ).entry
    assert seats.waitlist_position(second) == 2

    services.cancel_registration(taken.id, now)

    db.session.expire_all()
    assert first.status == WaitlistStatus.OFFERED and second.status == WaitlistStatus.WAITING
    assert pool_of(offering).seats_taken == 1  # the offer holds the seat
    window = first.offer_expires_at - now
    assert timedelta(minutes=15) <= window <= timedelta(hours=12)

    # Nobody else can take the offered seat.
    assert services.register(offering, None, Person("D", "d@example.com"), now).outcome == Outcome.FULL

    # The offer lapses: it passes to the next person.
    later = first.offer_expires_at + timedelta(seconds=1)
    seats.sweep_lapsed(later)
    db.session.expire_all()
    assert first.status == WaitlistStatus.EXPIRED and second.status == WaitlistStatus.OFFERED
    assert EmailKind.WAITLIST_OFFER_EXPIRED in outbox_kinds(waitlist_entry_id=first.id)
    assert outbox_kinds(waitlist_entry_id=second.id).count(EmailKind.WAITLIST_OFFER) == 1

    registration = services.claim_offer(second.id, later)
    assert registration.status == RegistrationStatus.CONFIRMED
    db.session.expire_all()
    assert pool_of(offering).seats_taken == 1
    with pytest.raises(services.RegistrationError):
        services.claim_offer(first.id, later)


def test_offer_windows_shrink_as_the_session_nears(app_ctx):
    now = utcnow()
    assert seats.offer_window(now, now + timedelta(days=3)) == timedelta(hours=12)
    assert seats.offer_window(now, now + timedelta(hours=8)) == timedelta(hours=2)
    assert seats.offer_window(now, now + timedelta(minutes=40)) == timedelta(minutes=15)
    assert seats.offer_window(now, now + timedelta(minutes=10)) == timedelta(minutes=10)


def test_no_offer_is_made_once_the_session_has_started(app_ctx, db):
    offering = workshop(capacity=1, days=1)
    db.session.commit()
    now = utcnow()
    taken = services.register(offering, None, Person("A", "a@example.com"), now).registration
    entry = services.join_waitlist(offering, None, Person("B", "b@example.com"), now).entry
    after_start = offering.sessions[0].starts_at + timedelta(minutes=5)

    services.cancel_registration(taken.id, after_start)

    db.session.expire_all()
    assert entry.status == WaitlistStatus.WAITING
    assert pool_of(offering).seats_taken == 0


def test_leaving_with_a_live_offer_passes_the_seat_on(app_ctx, db):
    offering = workshop(capacity=1)
    db.session.commit()
    now = utcnow()
    taken = services.register(offering, None, Person("A", "a@example.com"), now).registration
    first = services.join_waitlist(offering, None, Person("B", "b@example.com"), now).entry
    second = services.join_waitlist(offering, None, Person("C", "c@example.com"), now).entry
    services.cancel_registration(taken.id, now)

    services.leave_waitlist(first.id, now)

    db.session.expire_all()
    assert first.status == WaitlistStatus.LEFT and second.status == WaitlistStatus.OFFERED


def test_a_paid_hold_expires_and_frees_its_seat(app_ctx, db):
    offering = workshop(price_cents=2500, capacity=1)
    db.session.commit()
    now = utcnow()
    held = services.register(offering, None, Person("A", "a@example.com"), now)
    assert held.outcome == Outcome.HELD
    assert services.register(offering, None, Person("B", "b@example.com"), now).outcome == Outcome.FULL

    # Counting seats after the hold lapsed releases it lazily: B now gets the seat.
    later = now + timedelta(minutes=16)
    second = services.register(offering, None, Person("B", "b@example.com"), later)
    assert second.outcome == Outcome.HELD
    db.session.expire_all()
    assert held.registration.status == RegistrationStatus.EXPIRED
    assert pool_of(offering).seats_taken == 1


def test_waitlist_join_when_seats_are_free_says_so(app_ctx, db):
    offering = workshop(capacity=2)
    db.session.commit()
    result = services.join_waitlist(offering, None, Person("A", "a@example.com"))
    assert result.outcome == WaitlistOutcome.SEATS_AVAILABLE
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WaitlistEntry)) == 0


def test_manage_link_lets_the_person_cancel_and_their_seat_goes_to_the_waitlist(client, db):
    offering = workshop(capacity=1)
    db.session.commit()
    manage_url = post_register(client, offering).headers["Location"]
    services.join_waitlist(offering, None, Person("Wait", "wait@example.com"))

    page = client.get(manage_url).get_data(as_text=True)
    assert "Cancel my registration" in page
    # It asks first: nothing is cancelled by opening the confirmation.
    confirm = client.get(manage_url + "/cancel").get_data(as_text=True)
    assert "Cancel your registration?" in confirm and "nothing to refund" in confirm
    db.session.expire_all()
    assert db.session.scalar(sa.select(Registration)).status == RegistrationStatus.CONFIRMED
    response = client.post(manage_url + "/cancel", data=cancel_form(confirm))
    assert response.status_code == 302

    db.session.expire_all()
    registration = db.session.scalar(sa.select(Registration))
    assert registration.status == RegistrationStatus.CANCELLED
    assert outbox_kinds(registration_id=registration.id) == [
        EmailKind.REGISTRATION_CONFIRMED,
        EmailKind.REGISTRATION_CANCELLED,
    ]
    assert db.session.scalar(sa.select(WaitlistEntry)).status == WaitlistStatus.OFFERED
    # Cancelling again changes nothing.
    client.post(manage_url + "/cancel", data=cancel_form(confirm))
    assert len(outbox_kinds(registration_id=registration.id)) == 2


def test_manage_links_are_signed_and_expire(client, app, db):
    offering = workshop()
    db.session.commit()
    manage_url = post_register(client, offering).headers["Location"]
    signed = manage_url.rsplit("/", 1)[1]

    tampered = signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")
    assert client.get(f"/manage/{tampered}").status_code == 404
    registration = db.session.scalar(sa.select(Registration))
    # A link for the right token signed with another key is refused too.
    from itsdangerous import URLSafeTimedSerializer

    forged = URLSafeTimedSerializer("wrong-key", salt=links.MANAGE_SALT).dumps(registration.token)
    assert client.get(f"/manage/{forged}").status_code == 404

    app.config["MANAGE_LINK_MAX_AGE_DAYS"] = -1
    try:
        assert client.get(manage_url).status_code == 410
    finally:
        app.config["MANAGE_LINK_MAX_AGE_DAYS"] = 400


def test_registration_calendar_download_parses(client, db):
    from icalendar import Calendar

    offering = workshop(title="Posture Basics")
    db.session.commit()
    manage_url = post_register(client, offering).headers["Location"]
    response = client.get(manage_url + "/calendar.ics")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    events = Calendar.from_ical(response.data).walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["Posture Basics"]
    assert events[0].decoded("DTSTART") == offering.sessions[0].starts_at


def test_the_check_constraint_is_the_backstop_against_overbooking(app_ctx, db):
    from sqlalchemy.exc import IntegrityError

    workshop(capacity=1)
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(sa.update(SeatPool).values(seats_taken=2))
        db.session.flush()
    db.session.rollback()


def test_refund_policy_full_before_cutoff_and_by_percentage_after(app_ctx, db):
    from events.models import Payment, PaymentStatus

    offering = workshop(price_cents=4000, days=3, late_cancel_refund_percent=50)
    db.session.commit()
    registration = services.register(offering, None, Person("A", "a@example.com")).registration
    db.session.add(
        Payment(
            registration_id=registration.id,
            stripe_payment_intent_id="pi_policy",
            amount_cents=4000,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
        )
    )
    db.session.commit()
    start = offering.sessions[0].starts_at

    early = services.refund_quote(registration, start - timedelta(hours=25))
    late = services.refund_quote(registration, start - timedelta(hours=2))

    assert (early.amount_cents, early.full) == (4000, True)
    assert (late.amount_cents, late.full) == (2000, False)
    assert "50%" in late.explanation


def test_someone_offered_a_seat_who_registers_directly_gets_that_seat_not_two(app_ctx, db):
    offering = workshop(capacity=2)
    db.session.commit()
    now = utcnow()
    a = services.register(offering, None, Person("A", "a@example.com"), now).registration
    b = services.register(offering, None, Person("B", "b@example.com"), now).registration
    al = services.join_waitlist(offering, None, Person("Al", "al@example.com"), now).entry
    services.cancel_registration(a.id, now)  # Al is offered this seat
    services.cancel_registration(b.id, now)  # and this one stays free

    result = services.register(offering, None, Person("Al", "al@example.com"), now)

    assert result.outcome == Outcome.CONFIRMED
    db.session.expire_all()
    assert al.status == WaitlistStatus.CLAIMED and al.registration_id == result.registration.id
    assert pool_of(offering).seats_taken == 1  # his offered seat, not a second one
    # The other free seat is still there for someone else.
    assert services.register(offering, None, Person("Di", "di@example.com"), now).outcome == Outcome.CONFIRMED


def test_the_old_claim_link_after_registering_directly_returns_that_registration(app_ctx, db):
    offering = workshop(capacity=1)
    db.session.commit()
    now = utcnow()
    a = services.register(offering, None, Person("A", "a@example.com"), now).registration
    al = services.join_waitlist(offering, None, Person("Al", "al@example.com"), now).entry
    services.cancel_registration(a.id, now)
    db.session.expire_all()
    assert al.status == WaitlistStatus.OFFERED

    # Al registers directly for the seat offered to him, then clicks the old claim link.
    direct = services.register(offering, None, Person("Al", "al@example.com"), now).registration
    assert services.claim_offer(al.id, now).id == direct.id
    db.session.expire_all()
    assert pool_of(offering).seats_taken == 1
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Registration)
            .where(Registration.status == RegistrationStatus.CONFIRMED)
        )
        == 1
    )


def test_an_out_of_range_session_id_is_a_form_error_not_a_500(client, db):
    offering = workshop()
    db.session.commit()
    for value in ("3000000000", "99999999999999999999", "-4", "abc"):
        response = post_register(client, offering, session_id=value)
        assert response.status_code == 400, value
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0


def test_raising_capacity_offers_the_new_seats_and_it_cannot_drop_below_taken(app_ctx, db):
    offering = workshop(capacity=1)
    db.session.commit()
    now = utcnow()
    services.register(offering, None, Person("A", "a@example.com"), now)
    b = services.join_waitlist(offering, None, Person("B", "b@example.com"), now).entry
    c = services.join_waitlist(offering, None, Person("C", "c@example.com"), now).entry
    pool_id = pool_of(offering).id

    with pytest.raises(services.CapacityError):
        services.change_capacity(pool_id, 0, now)
    services.change_capacity(pool_id, 2, now)

    db.session.expire_all()
    assert (b.status, c.status) == (WaitlistStatus.OFFERED, WaitlistStatus.WAITING)
    assert (pool_of(offering).capacity, pool_of(offering).seats_taken) == (2, 2)
