"""Readable admin (issue 13, items 9 and 10): local times with the zone named, names and links
instead of ids, plurals, a confirmation step before refunds and cancellations; the audit trail's
filters, paging (the same statements for 10 entries as for 500) and bad filter input."""

import re
from datetime import UTC, datetime, time, timedelta
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from events import audit
from events.models import (
    AuditEntry,
    EmailStatus,
    OfferingKind,
    OutboxEmail,
    Payment,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundStatus,
    Registration,
    RegistrationStatus,
    Resource,
    ResourceKind,
    Role,
    Session,
    SessionStatus,
    User,
    utcnow,
)
from events.registration.services import Person, register
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.integration.test_staff_admin import fresh, login, token_from


def paid(db, offering, session_id, name, cents=1500, last4="4242") -> Registration:
    """A confirmed registration with a succeeded card payment (as the webhook would leave it)."""
    registration = register(
        offering, session_id, Person(name, f"{name.split()[0].lower()}@example.com")
    ).registration
    registration.status, registration.confirmed_at, registration.hold_expires_at = (
        RegistrationStatus.CONFIRMED,
        utcnow(),
        None,
    )
    db.session.add(
        Payment(
            registration_id=registration.id,
            stripe_payment_intent_id=f"pi_{registration.id}_{name.split()[0]}",
            amount_cents=cents,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
            card_brand="visa",
            card_last4=last4,
            paid_at=utcnow(),
        )
    )
    db.session.commit()
    return registration


@pytest.fixture
def strength(db):
    """A $15 class in Chicago with a session on 1 Dec 2026 at 6 pm, and two people paid."""
    location = make_location(name="North Loop", timezone="America/Chicago")
    offering = make_offering(location, OfferingKind.CLASS, title="Core & Hip Strength", price_cents=1500)
    session = make_session(offering, upcoming_day(3), time(18, 0))
    db.session.commit()
    ana = paid(db, offering, session.id, "Ana Lopez")
    ben = paid(db, offering, session.id, "Ben Ode")
    return {"offering": offering, "session": session, "ana": ana, "ben": ben, "location": location}


def _local(session: Session) -> str:
    from events.filters import staff_time

    return staff_time(session.starts_at, session.location)


# --- Confirmations ---


def test_cancelling_a_session_shows_what_will_happen_and_a_post_without_confirmation_does_nothing(
    client, db, strength
):
    login(client, db)
    session = strength["session"]
    url = f"/staff/sessions/{session.id}/cancel"
    when = _local(session)
    assert when.endswith(" CST") and ", 6:00 pm " in when

    page = client.get(url).get_data(as_text=True)
    assert f"Cancel {when} of Core &amp; Hip Strength?" in page
    assert "2 people will be emailed; 2 people will be refunded $30.00 in all" in page

    # The roster's form posts here without `confirmed`: the same summary, nothing cancelled.
    token = token_from(client, f"/staff/sessions/{session.id}")
    shown = client.post(url, data={"csrf_token": token, "reason": "Instructor ill"})
    assert shown.status_code == 200
    assert 'name="confirmed" value="yes"' in shown.get_data(as_text=True)
    assert fresh(db, Session, session.id).status == SessionStatus.SCHEDULED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0

    done = client.post(url, data={"csrf_token": token, "reason": "Instructor ill", "confirmed": "yes"})
    assert done.status_code == 302
    message = client.get(done.location).get_data(as_text=True)
    assert f"{when} cancelled: 2 people being emailed; 2 refunds ($30.00 in all) queued." in message
    assert "refund(s)" not in message
    assert fresh(db, Session, session.id).status == SessionStatus.CANCELLED
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "session.cancelled"))
    assert entry.details == {
        "reason": "Instructor ill",
        "offering_id": strength["offering"].id,
        "offering_title": "Core & Hip Strength",
        "starts_local": when,
        "people": 2,
        "refunds": 2,
        "refund_cents": 3000,
        "desk_refund_cents": 0,
    }


def test_one_refund_is_singular(client, db):
    location = make_location()
    offering = make_offering(location, OfferingKind.CLASS, title="Yoga", price_cents=1000)
    session = make_session(offering, upcoming_day(3))
    db.session.commit()
    paid(db, offering, session.id, "Ana Lopez", cents=1000)
    login(client, db)
    page = client.get(f"/staff/sessions/{session.id}/cancel").get_data(as_text=True)
    assert "1 person will be emailed; 1 person will be refunded $10.00 in all" in page
    token = token_from(client, f"/staff/sessions/{session.id}")
    done = client.post(
        f"/staff/sessions/{session.id}/cancel", data={"csrf_token": token, "reason": "x", "confirmed": "yes"}
    )
    assert "1 person being emailed; 1 refund ($10.00 in all) queued." in client.get(done.location).get_data(
        as_text=True
    )


def test_cancelling_an_offering_confirms_first(client, db, strength):
    login(client, db)
    offering = strength["offering"]
    url = f"/staff/admin/offerings/{offering.id}/cancel"
    token = token_from(client, f"/staff/admin/offerings/{offering.id}")
    shown = client.post(url, data={"csrf_token": token, "reason": "Room flooded"})
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    assert "Cancel Core &amp; Hip Strength?" in text and "$30.00 in all" in text
    assert not fresh(db, type(offering), offering.id).is_cancelled
    missing_reason = client.post(url, data={"csrf_token": token, "confirmed": "yes"})
    assert missing_reason.status_code == 400 and "Say why, briefly." in missing_reason.get_data(as_text=True)
    assert not fresh(db, type(offering), offering.id).is_cancelled
    done = client.post(url, data={"csrf_token": token, "reason": "Room flooded", "confirmed": "yes"})
    assert done.status_code == 302
    assert fresh(db, type(offering), offering.id).is_cancelled


def test_a_refund_is_confirmed_with_the_amount_and_the_person_then_honestly_reported(client, db, strength):
    login(client, db)
    ana = strength["ana"]
    url = f"/staff/admin/registrations/{ana.id}"
    token = token_from(client, url)
    shown = client.post(
        f"{url}/refund", data={"csrf_token": token, "amount": "15", "reason": "double charged"}
    )
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    assert "Refund $15.00 to Ana Lopez?" in text
    assert "Refund $15.00 to Ana Lopez&#39;s Visa card ending 4242, for Core &amp; Hip Strength." in text
    assert "That is all that is left of the payment" in text
    partial = client.post(f"{url}/refund", data={"csrf_token": token, "amount": "4.50", "reason": "late"})
    assert "$10.50 will be left to refund after this." in partial.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0

    too_much = client.post(f"{url}/refund", data={"csrf_token": token, "amount": "16", "reason": "x"})
    assert too_much.status_code == 400 and "At most $15.00 is left to refund." in too_much.get_data(
        as_text=True
    )

    done = client.post(
        f"{url}/refund",
        data={"csrf_token": token, "amount": "15.00", "reason": "double charged", "confirmed": "yes"},
    )
    assert done.status_code == 302
    result = client.get(done.location).get_data(as_text=True)
    assert "Refund of $15.00 to Ana Lopez queued; it shows as issued when Stripe confirms it." in result
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert (refund.amount_cents, refund.status) == (1500, RefundStatus.PENDING)


def test_retrying_a_failed_refund_confirms_first(client, db, strength):
    login(client, db)
    ana = strength["ana"]
    payment = db.session.scalar(sa.select(Payment).where(Payment.registration_id == ana.id))
    refund = Refund(
        payment_id=payment.id,
        idempotency_key="manual-x",
        kind=RefundKind.MANUAL,
        amount_cents=600,
        status=RefundStatus.FAILED,
        last_error="Your account cannot refund right now.",
    )
    db.session.add(refund)
    db.session.commit()
    url = f"/staff/admin/refunds/{refund.id}/retry"
    page = client.get(url).get_data(as_text=True)
    assert "Retry the refund of $6.00 to Ana Lopez?" in page
    assert "Stripe refused it: “Your account cannot refund right now.”" in page
    token = token_from(client, f"/staff/admin/registrations/{ana.id}")
    assert client.post(url, data={"csrf_token": token}).status_code == 200
    assert fresh(db, Refund, refund.id).status == RefundStatus.FAILED
    done = client.post(url, data={"csrf_token": token, "confirmed": "yes"})
    assert "Refund of $6.00 to Ana Lopez queued again" in client.get(done.location).get_data(as_text=True)
    assert fresh(db, Refund, refund.id).status == RefundStatus.PENDING


def test_removing_a_resource_confirms_first(client, db, strength):
    login(client, db)
    resource = Resource(
        offering_id=strength["offering"].id,
        kind=ResourceKind.LINK,
        title="Warm-up video",
        url="https://e.x/v",
    )
    db.session.add(resource)
    db.session.commit()
    url = f"/staff/admin/resources/{resource.id}/delete"
    token = token_from(client, f"/staff/admin/offerings/{strength['offering'].id}")
    shown = client.post(url, data={"csrf_token": token})
    assert shown.status_code == 200 and "Remove “Warm-up video”?" in shown.get_data(as_text=True)
    assert fresh(db, Resource, resource.id) is not None
    client.post(url, data={"csrf_token": token, "confirmed": "yes"})
    assert fresh(db, Resource, resource.id) is None


# --- Times, names, plurals on the lists ---


def test_registration_pages_show_local_times_and_names(client, db, strength):
    login(client, db)
    when = _local(strength["session"])
    listing = client.get("/staff/admin/registrations").get_data(as_text=True)
    assert "2 registrations" in listing and when in listing and " UTC" not in listing
    assert f'href="/staff/admin/offerings/{strength["offering"].id}">Core &amp; Hip Strength</a>' in listing
    one = client.get("/staff/admin/registrations?q=ana").get_data(as_text=True)
    assert "1 registration<" in one or "1 registration " in one
    detail = client.get(f"/staff/admin/registrations/{strength['ana'].id}").get_data(as_text=True)
    assert when in detail and " UTC" not in detail


def test_dates_added_are_counted_in_words(client, db, strength):
    login(client, db)
    offering = strength["offering"]
    token = token_from(client, f"/staff/admin/offerings/{offering.id}")
    done = client.post(
        f"/staff/admin/offerings/{offering.id}/sessions",
        data={
            "csrf_token": token,
            "first_day": upcoming_day(10).isoformat(),
            "start": "18:00",
            "duration_minutes": "60",
            "weeks": "1",
            "location_id": "",
        },
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    assert "1 date added." in client.get(done.location).get_data(as_text=True)


# --- The audit trail ---


def _entry(db, actor, action, target_type, target_id, created_at=None, **details) -> AuditEntry:
    entry = audit.record(actor.id if actor else None, action, target_type, target_id, **details)
    if created_at is not None:
        entry.created_at = created_at
    return entry


def test_audit_entries_read_as_sentences_with_local_times_and_links(client, db, strength):
    admin = login(client, db)
    ana, offering, session = strength["ana"], strength["offering"], strength["session"]
    # An older entry, recorded before names were: the trail looks Ana up.
    _entry(db, admin, "refund.requested", "registration", ana.id, amount_cents=1500, reason="double charged")
    _entry(db, admin, "attendance.present", "registration", ana.id, session_id=session.id)
    _entry(db, None, "session.renamed", "session", session.id, old_local="Tue 6 pm", new_local="Wed 6 pm")
    db.session.commit()
    page = client.get("/staff/audit").get_data(as_text=True)
    assert "Sam admin refunded $15.00 to Ana Lopez: “double charged”." in page
    assert f"Sam admin marked Ana Lopez present at Core &amp; Hip Strength, {_local(session)}." in page
    # An action with no sentence of its own (none is recorded today) still reads as words.
    assert "The system: session renamed, Core &amp; Hip Strength" in page and "old local Tue 6 pm" in page
    assert f'href="/staff/admin/registrations/{ana.id}">Ana Lopez</a>' in page
    assert f'href="/staff/sessions/{session.id}">Roster, {_local(session)}</a>' in page
    assert f'href="/staff/admin/offerings/{offering.id}">Core &amp; Hip Strength</a>' in page
    assert " UTC" not in page and "{&#34;" not in page and '{"' not in page
    assert " CST" in page or " CDT" in page


def test_audit_filters_by_person_kind_offering_and_local_dates(client, db, strength):
    admin = login(client, db)
    other = User(email="jo@clinic.example", name="Jo Desk", role=Role.ADMIN)
    db.session.add(other)
    yoga = make_offering(strength["location"], OfferingKind.WORKSHOP, title="Yoga")
    db.session.flush()
    ana = strength["ana"]
    # 23:30 on 2 Nov in Chicago is 05:30 UTC on 3 Nov: it belongs to 2 Nov locally.
    late_evening = datetime(2026, 11, 3, 5, 30, tzinfo=UTC)
    _entry(
        db, admin, "refund.requested", "registration", ana.id, late_evening, amount_cents=100
    )  # no offering_id
    _entry(
        db,
        other,
        "offering.created",
        "offering",
        yoga.id,
        datetime(2026, 11, 5, 15, tzinfo=UTC),
        title="Yoga",
    )
    _entry(
        db,
        other,
        "resource.deleted",
        "resource",
        99,
        datetime(2026, 11, 6, 15, tzinfo=UTC),
        offering_id=yoga.id,
    )
    db.session.commit()

    def shown(**args):
        query = "&".join(f"{k}={quote(str(v))}" for k, v in args.items())
        response = client.get(f"/staff/audit?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        text = response.get_data(as_text=True)
        return [s for s in ("refunded $1.00", "created the offering Yoga", "removed a resource") if s in text]

    everything = ["refunded $1.00", "created the offering Yoga", "removed a resource"]
    assert shown() == everything
    assert shown(actor_id=admin.id) == ["refunded $1.00"]
    assert shown(actor_id=other.id) == ["created the offering Yoga", "removed a resource"]
    assert shown(action="refund.requested") == ["refunded $1.00"]
    assert shown(offering_id=yoga.id) == ["created the offering Yoga", "removed a resource"]
    assert shown(offering_id=strength["offering"].id) == ["refunded $1.00"]  # through its registration
    assert shown(date_from="2026-11-02", date_to="2026-11-02") == ["refunded $1.00"]
    assert shown(date_from="2026-11-03", date_to="2026-11-05") == ["created the offering Yoga"]
    assert shown(date_from="2026-11-06") == ["removed a resource"]
    assert shown(actor_id=other.id, offering_id=yoga.id, date_to="2026-11-05") == [
        "created the offering Yoga"
    ]


def test_audit_pages_of_fifty_newest_first(client, db, strength):
    admin = login(client, db)
    for n in range(120):
        _entry(db, admin, "offering.created", "offering", strength["offering"].id, title=f"Title {n:03d}")
    db.session.commit()

    def titles(html):  # in the page's order
        found = [n for n in range(120) if f"the offering Title {n:03d}." in html]
        return sorted(found, key=lambda n: html.index(f"the offering Title {n:03d}."))

    first = client.get("/staff/audit").get_data(as_text=True)
    assert titles(first) == list(range(119, 69, -1))
    older = re.search(r'href="(/staff/audit\?before=\d+)">Older entries', first).group(1)
    assert "Newer entries" not in first
    second = client.get(older).get_data(as_text=True)
    assert titles(second) == list(range(69, 19, -1))
    third = client.get(re.search(r'href="(/staff/audit\?before=\d+)">Older', second).group(1)).get_data(
        as_text=True
    )
    assert titles(third) == list(range(19, -1, -1)) and "Older entries" not in third
    back = re.search(r'href="(/staff/audit\?after=\d+)">Newer entries', third).group(1)
    assert titles(client.get(back).get_data(as_text=True)) == list(range(69, 19, -1))
    # The filters stay on the paging links.
    filtered = client.get("/staff/audit?action=offering.created").get_data(as_text=True)
    assert re.search(r'href="/staff/audit\?before=\d+&amp;action=offering.created"', filtered)


def _fill_audit(db, n, admin, strength):
    kinds = [
        ("refund.requested", "registration", strength["ana"].id, {"amount_cents": 100}),
        ("session.cancelled", "session", strength["session"].id, {"reason": "x"}),
        ("offering.updated", "offering", strength["offering"].id, {"changes": {"capacity": [1, 2]}}),
        ("user.deactivated", "user", admin.id, {}),
        ("email.resent", "outbox_email", 1, {"kind": "reminder"}),
        ("waitlist.cleared", "seat_pool", strength["session"].seat_pool_id, {"entries": 2}),
    ]
    rows = []
    for i in range(n):
        action, target_type, target_id, details = kinds[i % len(kinds)]
        rows.append(
            {
                "actor_id": admin.id,
                "action": action,
                "target_type": target_type,
                "target_id": target_id,
                "details": details,
                "created_at": utcnow() - timedelta(minutes=i),
            }
        )
    db.session.execute(sa.insert(AuditEntry), rows)
    db.session.commit()


def test_an_audit_page_runs_the_same_statements_for_10_entries_and_500(client, db, strength, count_queries):
    admin = login(client, db)
    _fill_audit(db, 10, admin, strength)
    client.get("/staff/audit")  # warm: the first request of a client loads more than later ones
    with count_queries() as small:
        assert client.get("/staff/audit").status_code == 200
    _fill_audit(db, 490, admin, strength)
    client.get("/staff/audit")  # warm again: the commit above expired what the first one loaded
    with count_queries() as large:
        page = client.get("/staff/audit")
    assert page.status_code == 200 and "Older entries" in page.get_data(as_text=True)
    assert len(large) == len(small), "\n\n".join(s[:120] for s in large)
    with count_queries() as filtered:
        assert client.get(f"/staff/audit?offering_id={strength['offering'].id}&before=400").status_code == 200
    assert len(filtered) <= len(small)  # at most one query per kind of record; fewer kinds here


@pytest.mark.parametrize(
    "query",
    [
        "before=" + "9" * 400,
        "before=-1",
        "before=9223372036854775808",
        "after=abc",
        "actor_id=%00",
        "actor_id=" + "9" * 30,
        "offering_id=99999999999999999999999",
        "action=%00",
        "action=refund.requested%0D%0Ax",
        "date_from=2026-13-45",
        "date_from=99999-01-01",
        "date_from=0001-01-01",
        "date_to=%00",
        "date_from=2026-11-05&date_to=2026-11-01",
        "date_from=" + "2" * 100_000,
        "action=%ED%A0%80",
    ],
)
def test_bad_audit_filters_are_form_errors_never_a_500(client, db, query):
    login(client, db)
    response = client.get(f"/staff/audit?{query}")
    assert response.status_code == 400, response.get_data(as_text=True)[:2000]
    assert "There is a problem" in response.get_data(as_text=True)


def test_failed_emails_name_the_person_and_refunds_the_staff_member(client, db, strength):
    admin = login(client, db)
    ana = strength["ana"]
    db.session.add(
        OutboxEmail(
            dedupe_key="test-failed-1",
            kind="registration_confirmed",
            registration_id=ana.id,
            to_email=ana.email,
            status=EmailStatus.FAILED,
            attempts=1,
            last_error="550 no such user",
            created_at=datetime(2026, 11, 30, 0, 30, tzinfo=UTC),
        )
    )
    db.session.commit()
    failed = client.get("/staff/admin/emails/failed").get_data(as_text=True)
    assert f'<a href="/staff/admin/registrations/{ana.id}">Ana Lopez</a>, Core &amp; Hip Strength' in failed
    assert "Sun Nov 29, 2026, 6:30 pm CST" in failed and "1 attempt<" in failed

    url = f"/staff/admin/registrations/{ana.id}"
    token = token_from(client, url)
    client.post(f"{url}/refund", data={"csrf_token": token, "amount": "5", "reason": "x", "confirmed": "yes"})
    assert f"CST by {admin.name}</td>" in client.get(url).get_data(as_text=True)


def test_a_workshop_date_cancel_says_who_is_told_and_the_last_date_takes_the_offering(client, db):
    location = make_location()
    workshop = make_offering(location, OfferingKind.WORKSHOP, title="Posture Day", price_cents=2000)
    first = make_session(workshop, upcoming_day(3))
    second = make_session(workshop, upcoming_day(10))
    db.session.commit()
    paid(db, workshop, None, "Ana Lopez", cents=2000)
    login(client, db)
    page = client.get(f"/staff/sessions/{first.id}/cancel").get_data(as_text=True)
    assert "1 person will be emailed; nobody is due a refund." in page
    assert "whole offering" not in page
    token = token_from(client, f"/staff/sessions/{first.id}")
    client.post(
        f"/staff/sessions/{first.id}/cancel", data={"csrf_token": token, "reason": "x", "confirmed": "yes"}
    )
    last = client.get(f"/staff/sessions/{second.id}/cancel").get_data(as_text=True)
    assert "It is the last date of Posture Day, so the whole offering is cancelled." in last
    assert "1 person will be emailed; 1 person will be refunded $20.00 in all" in last
    done = client.post(
        f"/staff/sessions/{second.id}/cancel", data={"csrf_token": token, "reason": "x", "confirmed": "yes"}
    )
    assert "Posture Day (all dates) cancelled: 1 person being emailed; 1 refund ($20.00 in all) queued." in (
        client.get(done.location).get_data(as_text=True)
    )
    # Already cancelled: the page says so instead of offering to cancel again.
    again = client.get(f"/staff/sessions/{second.id}/cancel")
    assert again.status_code == 302
    assert "already cancelled" in client.get(again.location).get_data(as_text=True)
