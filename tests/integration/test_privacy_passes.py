"""Privacy covers class passes: "Download my data" holds an address's passes (their ledger in
words, their payments, emails and history); "Delete my data" closes them (the unused credits
refunded pro rata once, through the worker; a pass still being paid for voided, its late
payment refunded once), anonymises them and leaves the ledger and the money; retention
anonymises a pass long ended and not a live one; nothing of the person stays in any table.
PostgreSQL and the Stripe emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from events.models import (
    AuditEntry,
    OutboxEmail,
    Pass,
    PassLedgerEntry,
    PassStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PrivacyAction,
    PromoCode,
    PromoKind,
    PromoRedemption,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    Role,
    User,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.passes import admin as pass_admin
from events.passes import ledger
from events.payments import services as payments
from events.payments.refunds import execute_due_refunds
from events.privacy import erase, export, requests, retention
from events.registration import links
from events.registration.services import Person, register
from events.staff.errors import AdminError
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token
from tests.integration.test_passes import (
    card_token,
    charge_at_stripe,
    ledger_rows,
    make_product,
    pay_on_page,
    refreshed,
    start_buying,
)
from tests.integration.test_privacy_requests import _ask, _link_path
from tests.integration.test_staff_admin import login
from tests.privacy_dump import rows_holding

ANA = ("Ana Quintero", "ana.quintero@example.com")
BO = ("Bo Lindqvist", "bo.lindqvist@example.com")

pytestmark = pytest.mark.usefixtures("localstripe")


@pytest.fixture
def stripe_client(localstripe):
    import stripe

    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})


@pytest.fixture
def desk(db) -> User:
    make_clinic(name="Revival PT", email="hello@revival.example")
    user = User(email="desk@clinic.example", name="Desk Person", role=Role.ADMIN)
    db.session.add(user)
    db.session.commit()
    return user


def _take_off(pass_id: int, credits: int, actor: User, reason: str) -> None:
    """Credits used (staff taking them off by hand: booking with a pass is not built yet)."""
    pass_admin.adjust(pass_id, -credits, reason, actor)


def _card_pass(client, db, stripe_client, product, who=ANA) -> tuple[Pass, str]:
    pass_, signed = start_buying(client, product, name=who[0], email=who[1])
    assert pay_on_page(client, signed, card_token(stripe_client)).json["status"] == "succeeded"
    return refreshed(db, Pass, pass_.id), signed


def _erase_by_link(app, client, db, email: str):
    _ask(client, email, "erase")
    path = _link_path(app, db, email)
    page = client.get(path).get_data(as_text=True)
    done = client.post(path, data={"csrf_token": csrf_token(page)})
    assert done.status_code == 200, done.get_data(as_text=True)
    return page, done.get_data(as_text=True)


def _confirmation_sent_and_tidied(db) -> None:
    for row in db.session.scalars(sa.select(OutboxEmail).where(OutboxEmail.kind == EmailKind.DATA_ERASED)):
        row.status = "sent"
    db.session.commit()
    requests.tidy()


# --- Download my data ---


def test_the_export_holds_the_address_passes_in_words_and_nothing_of_anyone_elses(db, desk):
    product = make_product(db, credits=5, price_cents=6000)
    ana = pass_admin.sell_at_desk(product.id, ANA[0], ANA[1], PaymentMethod.CASH, "paid in cash", desk)
    _take_off(ana.id, 2, desk, "used two at the desk")
    bo = pass_admin.sell_at_desk(product.id, BO[0], BO[1], PaymentMethod.CHECK, "", desk)

    document = export.data_for("  Ana.Quintero@Example.com ")

    [held] = document["passes"]
    assert (held["id"], held["product"], held["name"], held["email"]) == (ana.id, "10-class pass", *ANA)
    assert (held["status"], held["credits"], held["balance"], held["price_cents"]) == ("active", 5, 3, 6000)
    assert held["expires_at"] is not None and held["expires_at"].startswith(str(ana.expires_at.year))
    assert [(h["kind"], h["credits"], h["what"]) for h in held["history"]] == [
        ("purchase", 5, "bought, 5 credits"),
        ("adjustment", -2, "2 credits taken off by the clinic"),
    ]
    [payment] = document["payments"]
    assert (payment["pass_id"], payment["registration_id"], payment["method"], payment["amount_cents"]) == (
        ana.id,
        None,
        "cash",
        6000,
    )
    assert payment["note"] == "paid in cash"
    [email] = document["emails"]
    assert (email["kind"], email["to"], email["pass_id"]) == (EmailKind.PASS_ISSUED, ANA[1], ana.id)
    assert {(h["action"], h["pass_id"]) for h in document["history"]} == {
        ("pass.sold_at_desk", ana.id),
        ("pass.adjusted", ana.id),
    }
    text = export.as_json(document)
    assert BO[0] not in text and BO[1] not in text
    assert bo.id not in {p["pass_id"] for p in document["payments"]} | {
        e["pass_id"] for e in document["emails"]
    }
    assert export.counts(document)["passes"] == 1


# --- Delete my data ---


def test_delete_my_data_closes_the_pass_refunds_the_unused_credits_once_and_leaves_nothing_of_her(
    app, client, db, desk, stripe_client, localstripe
):
    product = make_product(db, credits=3, price_cents=10000)
    ana, signed = _card_pass(client, db, stripe_client, product)
    _take_off(ana.id, 1, desk, "Ana Quintero came on Tuesday")
    bo, _ = _card_pass(client, db, stripe_client, product, who=BO)
    # 10000 paid for 3 credits, 2 unused: 10000 x 2 / 3 = 6666.67, floored to the cent.
    expected = 10000 * 2 // 3
    assert expected == 6666

    page, done = _erase_by_link(app, client, db, ANA[1])

    assert "Your class pass “10-class pass” is closed and its 2 unused credits refunded: $66.66." in page
    assert "We closed your class pass. Its unused credits are refunded: $66.66." in done
    closed = refreshed(db, Pass, ana.id)
    assert closed.anonymised_at is not None and closed.status is PassStatus.REFUNDED
    assert (closed.name, closed.email, closed.email_normalized) == ("Anonymised", "", f"anonymised:p{ana.id}")
    assert not ledger.is_usable(closed, utcnow())
    # The ledger and the money stay for the reports: the purchase, the use, the refund.
    assert ledger_rows(db, ana.id) == [("purchase", 3), ("adjustment", -1), ("refund", -2)]
    [payment] = db.session.scalars(sa.select(Payment).where(Payment.pass_id == ana.id)).all()
    assert (payment.amount_cents, payment.status, payment.card_last4) == (10000, PaymentStatus.SUCCEEDED, "")
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert (refund.payment_id, refund.amount_cents, refund.kind, refund.status) == (
        payment.id,
        expected,
        RefundKind.MANUAL,
        RefundStatus.PENDING,  # no web request calls Stripe: the worker sends it
    )
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "privacy.erased"))
    assert (entry.details["passes"], entry.details["passes_closed"], entry.details["pass_refund_cents"]) == (
        1,
        1,
        expected,
    )
    assert "1 class pass anonymised, 1 class pass closed, $66.66 refunded" in audit_sentence(entry)

    assert execute_due_refunds() == 1
    assert [
        r.amount
        for r in stripe_client.v1.refunds.list(
            params={"payment_intent": payment.stripe_payment_intent_id}
        ).data
    ] == [expected]
    # The "refund issued" email has nobody to go to: none is written.
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.kind == EmailKind.PASS_REFUND_ISSUED)
        )
        == 0
    )

    # Erasing again (another link, staff) refunds nothing more; staff can't refund it either.
    again = erase.erase(ANA[1], requests.staff_request(PrivacyAction.ERASE, utcnow()), utcnow())
    assert (again.passes, again.pass_refund_cents) == (0, 0)
    with pytest.raises(AdminError):
        pass_admin.refund_unused(closed.id, "again", desk)
    with pytest.raises(AdminError):
        pass_admin.adjust(closed.id, 5, "top up", desk)
    assert len(db.session.scalars(sa.select(Refund)).all()) == 1

    # Her link still opens the page, which says it was closed at her request, and nothing else.
    body = client.get(f"/pass/{signed}").get_data(as_text=True)
    assert "This pass was closed at your request" in body
    assert ANA[0] not in body and "History" not in body and "Tuesday" not in body

    # Bo's pass is untouched; nothing of Ana is left anywhere once the confirmation is sent.
    assert refreshed(db, Pass, bo.id).name == BO[0]
    held = rows_holding(list(ANA))
    assert list(held) == ["outbox_emails"] and len(held["outbox_emails"]) == 1, held
    _confirmation_sent_and_tidied(db)
    assert rows_holding([*ANA, "Ana Quintero came on Tuesday"]) == {}
    assert rows_holding([BO[1]]) != {}


def audit_sentence(entry: AuditEntry) -> str:
    from events.audit import Facts, describe

    return describe(Facts(entry.action, "The system", entry.target_type, entry.target_id, entry.details))


def test_a_pass_held_while_paying_is_voided_and_its_late_payment_refunded_once(
    app, client, db, desk, stripe_client, localstripe
):
    product = make_product(db)
    held, _ = start_buying(client, product, name=ANA[0], email=ANA[1])

    result = erase.erase(
        ANA[1], requests.staff_request(PrivacyAction.ERASE, utcnow()), utcnow(), actor_id=desk.id
    )

    assert (result.passes, result.passes_closed, result.pass_refund_cents) == (1, 1, 0)
    voided = refreshed(db, Pass, held.id)
    assert voided.status is PassStatus.VOID and voided.anonymised_at is not None
    # The card payment arrives afterwards, twice (the answer and the webhook): refunded once.
    state = charge_at_stripe(held.id, card_token(stripe_client))
    payments.apply_intent(state)
    payments.apply_intent(state)
    assert ledger_rows(db, held.id) == []
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert (refund.kind, refund.amount_cents) == (RefundKind.UNPLACED_PAYMENT, 12000)
    assert execute_due_refunds() == 1
    assert [r.amount for r in stripe_client.v1.refunds.list(params={"payment_intent": state.id}).data] == [
        12000
    ]
    _confirmation_sent_and_tidied(db)
    assert rows_holding(list(ANA)) == {}


def test_staff_see_the_pass_on_the_erase_page_and_erase_it_for_a_caller(app, client, db, desk):
    product = make_product(db, credits=4, price_cents=8000)
    sold = pass_admin.sell_at_desk(product.id, ANA[0], ANA[1], PaymentMethod.CASH, "", desk)
    _take_off(sold.id, 1, desk, "used")
    offering = make_offering(make_location(), title="Posture Basics")
    make_session(offering, upcoming_day(5))
    db.session.commit()
    registration = register(offering, None, Person(ANA[0], ANA[1])).registration
    # A partner's code used for both: the uses stay counted, the address they count under goes.
    code = PromoCode(code="YMCA", code_normalized="YMCA", kind=PromoKind.PERCENT_OFF, value=10)
    db.session.add(code)
    db.session.flush()
    db.session.add_all(
        [
            PromoRedemption(
                promo_code_id=code.id, pass_id=sold.id, email_normalized=ANA[1], discount_cents=800
            ),
            PromoRedemption(promo_code_id=code.id, registration_id=registration.id, email_normalized=ANA[1]),
        ]
    )
    db.session.commit()
    login(client, db)

    url = f"/staff/admin/registrations/{registration.id}/privacy/erase"
    page = client.get(url)
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert (
        f"Closes their class pass “10-class pass” (#{sold.id}), refunding its 3 unused credit(s) "
        "pro rata: $60.00." in body
    )
    done = client.post(url, data={"csrf_token": csrf_token(body), "confirmed": "yes"}, follow_redirects=True)
    assert "1 class pass(es) anonymised (1 closed), $60.00 refunded" in done.get_data(as_text=True)

    closed = refreshed(db, Pass, sold.id)
    assert closed.status is PassStatus.REFUNDED and closed.anonymised_at is not None
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert refund.amount_cents == 6000 and refund.status is RefundStatus.SUCCEEDED  # cash: at the desk
    assert refreshed(db, Registration, registration.id).anonymised_at is not None
    uses = db.session.execute(
        sa.select(PromoRedemption.email_normalized, PromoRedemption.discount_cents).order_by(
            PromoRedemption.id
        )
    ).all()
    assert uses == [(f"anonymised:p{sold.id}", 800), (f"anonymised:r{registration.id}", 0)]


# --- Retention ---


def _aged_pass(db, desk, product, who, *, expired_days_ago: int | None, status=PassStatus.ACTIVE) -> Pass:
    pass_ = pass_admin.sell_at_desk(product.id, who[0], who[1], PaymentMethod.CASH, "", desk)
    pass_ = db.session.get_one(Pass, pass_.id)
    long_ago = utcnow() - timedelta(days=3 * 365)
    pass_.created_at = pass_.activated_at = long_ago
    pass_.expires_at = utcnow() - timedelta(days=expired_days_ago) if expired_days_ago is not None else None
    pass_.status = status
    db.session.commit()
    return pass_


def test_retention_anonymises_a_long_expired_pass_and_not_a_live_one(app, client, db, desk):
    product = make_product(db)
    months = app.config["RETENTION_MONTHS"]
    old_days = months * 31 + 10
    old = _aged_pass(db, desk, product, ANA, expired_days_ago=old_days)
    assert pass_admin.expire_due() == 1
    live = _aged_pass(db, desk, product, BO, expired_days_ago=-30)  # expires next month
    never_used = _aged_pass(db, desk, product, ("Cy Nguyen", "cy@example.com"), expired_days_ago=None)
    refunded = _aged_pass(
        db, desk, product, ("Di Park", "di@example.com"), expired_days_ago=None, status=PassStatus.REFUNDED
    )
    db.session.execute(
        sa.update(PassLedgerEntry)
        .where(PassLedgerEntry.pass_id == refunded.id)
        .values(created_at=utcnow() - timedelta(days=old_days))
    )
    # An old pass, but its holder booked recently: kept, as a person with a recent booking is.
    recent = _aged_pass(db, desk, product, ("Ed Ruiz", "ed@example.com"), expired_days_ago=old_days)
    offering = make_offering(make_location(), title="Posture Basics")
    make_session(offering, upcoming_day(5))
    db.session.commit()
    register(offering, None, Person("Ed Ruiz", "ed@example.com"))
    old_link = "/pass/" + links.sign(old.token, links.PASS_SALT)

    preview = retention.preview()
    assert (preview.due_now, preview.due_now_rows) == (2, 2)

    run = retention.anonymise_expired()

    assert run is not None and run.as_dict()["passes"] == 2
    db.session.expire_all()
    gone = {p.id for p in db.session.scalars(sa.select(Pass).where(Pass.anonymised_at.is_not(None)))}
    assert gone == {old.id, refunded.id}
    assert db.session.get(Pass, live.id).name == BO[0]
    assert db.session.get(Pass, never_used.id).email == "cy@example.com"
    assert db.session.get(Pass, recent.id).email == "ed@example.com"
    assert ledger_rows(db, old.id) == [("purchase", 10), ("expiry", -10)]
    assert client.get(old_link).status_code == 404  # its link stops working, as a booking's does
    assert rows_holding(list(ANA)) == {} and rows_holding(["di@example.com", "Di Park"]) == {}
    assert retention.anonymise_expired().as_dict()["passes"] == 0  # nothing twice
    entry = db.session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "privacy.retention_anonymised")
    )
    assert entry.details["passes"] == 2
    assert (retention.preview().due_now, retention.preview().due_now_rows) == (0, 0)


def test_the_preview_page_counts_passes(app, client, db, desk):
    product = make_product(db)
    _aged_pass(db, desk, product, ANA, expired_days_ago=app.config["RETENTION_MONTHS"] * 31 + 10)
    soon = _aged_pass(db, desk, product, BO, expired_days_ago=-3)
    # Valid from a first class not booked yet: no end, so no date to list (and never due).
    _aged_pass(db, desk, product, ("Cy Nguyen", "cy@example.com"), expired_days_ago=None)
    preview = retention.preview()
    assert (preview.due_now, [d.people for d in preview.days]) == (1, [1])
    login(client, db)
    page = client.get("/staff/admin/privacy").get_data(as_text=True)
    assert "1 person</strong> (1 registration, waitlist place or class pass)" in page
    assert "Registrations, waitlist places and class passes" in page
    day = soon.expires_at.date()
    assert f"{day.year}" in page  # Bo's day is listed: his pass expires then
    assert "9999" not in page


# --- At once ---


def test_delete_my_data_and_staff_refunds_at_once_refund_the_pass_once(app, db, desk):
    """Real threads, each its own transaction: two erasures (two links, staff for a caller) and
    two staff "refund unused credits" on the same pass at the same moment. Every path locks the
    pass, then its payments: one of them refunds, the others find it closed; none deadlocks."""
    import threading

    product = make_product(db, credits=4, price_cents=8000)
    pass_id = pass_admin.sell_at_desk(product.id, ANA[0], ANA[1], PaymentMethod.CASH, "", desk).id
    _take_off(pass_id, 1, desk, "used")
    desk_id = desk.id
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def erasing() -> None:
        with app.test_request_context():
            from events.extensions import db as thread_db

            start.wait()
            try:
                result = erase.erase(ANA[1], requests.staff_request(PrivacyAction.ERASE, utcnow()), utcnow())
                outcomes.append(f"erased {result.pass_refund_cents}")
            finally:
                thread_db.session.remove()

    def refunding() -> None:
        with app.app_context():
            from events.extensions import db as thread_db

            who = thread_db.session.get(User, desk_id)
            start.wait()
            try:
                outcomes.append(f"refunded {pass_admin.refund_unused(pass_id, 'leaving', who).cents}")
            except AdminError:
                outcomes.append("refused")
            finally:
                thread_db.session.remove()

    threads = [threading.Thread(target=t) for t in (erasing, erasing, refunding, refunding)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert len(outcomes) == 4, outcomes
    # 8000 for 4 credits, 3 unused: 6000, refunded by exactly one of the four.
    assert sorted(o for o in outcomes if o.endswith("6000")) in (["erased 6000"], ["refunded 6000"]), outcomes
    assert ledger_rows(db, pass_id) == [("purchase", 4), ("adjustment", -1), ("refund", -3)]
    assert [r.amount_cents for r in db.session.scalars(sa.select(Refund))] == [6000]
    closed = refreshed(db, Pass, pass_id)
    assert closed.anonymised_at is not None and closed.status is PassStatus.REFUNDED


def test_erasing_gives_a_pass_bookings_credits_back_then_refunds_them_with_the_rest(db, desk):
    """An upcoming booking paid with the pass is cancelled in time: its credit comes back to the
    pass first (main's rule for pass bookings), so the pro rata refund counts it as unused."""
    from events.passes import booking
    from tests.passbook_helpers import make_class

    product = make_product(db)  # 10 credits for $120, classes
    sold = pass_admin.sell_at_desk(product.id, ANA[0], ANA[1], PaymentMethod.CASH, "", desk)
    cls = make_class(days=7)
    db.session.commit()
    booked = booking.book_with_pass(cls, cls.sessions[0].id, Person(ANA[0], ANA[1])).registration
    assert booked is not None and ledger_rows(db, sold.id) == [("purchase", 10), ("spend", -1)]

    result = erase.erase(
        ANA[1], requests.staff_request(PrivacyAction.ERASE, utcnow()), utcnow(), actor_id=desk.id
    )

    assert (result.cancelled, result.passes_closed, result.pass_refund_cents) == (1, 1, 12000)
    assert ledger_rows(db, sold.id) == [("purchase", 10), ("spend", -1), ("return", 1), ("refund", -10)]
    assert [r.amount_cents for r in db.session.scalars(sa.select(Refund))] == [12000]  # cash: at the desk
    registration = refreshed(db, Registration, booked.id)
    assert registration.status.value == "cancelled" and registration.anonymised_at is not None
