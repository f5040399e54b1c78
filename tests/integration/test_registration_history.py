"""Issue 13 follow-ups: a registration's history on its admin page (with the links a transfer
makes), roster names linking admins to registrations, and cancellations that say which refunds
go to Stripe and which are handed back at the desk, by name. On PostgreSQL."""

import html
import re

import sqlalchemy as sa

from events import audit
from events.filters import staff_time
from events.models import AuditEntry, PaymentMethod, Refund, RefundStatus, Registration, Role
from events.registration.services import Person
from events.staff import bookings, cancellations
from events.staff.cancellations import DeskRefund
from tests.helpers import csrf_token
from tests.integration import test_bookings
from tests.integration.test_bookings import card_booked, desk_booked
from tests.integration.test_staff import make_user, sign_in

desk = test_bookings.desk  # the fixture: a signed-in admin and a $15 class with two dates


def text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def history_section(response) -> str:
    page = response.get_data(as_text=True)
    return page[page.index('id="history"') : page.index('id="emails"')]


# --- 1. History ---


def test_history_tells_a_registrations_entries_newest_first_and_links_a_transfer_both_ways(
    client, db, desk, count_queries
):
    ana = card_booked(db, desk)
    ben = card_booked(db, desk, "Ben Bell", "ben@example.com")
    bookings.correct_details(ben.id, Person("Ben Bell", "ben@example.org"), "Typo", desk.admin)
    result = bookings.transfer_booking(ana.id, desk.core.id, desk.second.id, "Can't make it", desk.admin, 0)
    new = result.new
    bookings.correct_details(new.id, Person("Ana López", "ana@example.com"), "Accent", desk.admin)
    # An entry about another record that names the registration in its details.
    audit.record(desk.admin.id, "email.resent", "outbox_email", 999_999, registration_id=new.id)
    db.session.commit()

    old_page = client.get(f"/staff/admin/registrations/{ana.id}")
    assert old_page.status_code == 200
    old_history = " ".join(html.unescape(history_section(old_page)).split())
    assert "Sam Admin transferred Ana Lopez from" in old_history
    assert "corrected" not in old_history  # the new booking's, and Ben's, are not this one's
    assert f'href="/staff/admin/registrations/{new.id}">Transferred to ' in old_page.get_data(as_text=True)
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "registration.transferred"))
    assert staff_time(entry.created_at, desk.location) in old_history  # local time, zone named

    new_page = client.get(f"/staff/admin/registrations/{new.id}")
    new_body = new_page.get_data(as_text=True)
    assert f'href="/staff/admin/registrations/{ana.id}">Transferred from ' in new_body
    new_history = " ".join(html.unescape(history_section(new_page)).split())
    corrected = new_history.index("Sam Admin corrected")
    resent = new_history.index("resent")
    transferred = new_history.index("Sam Admin transferred")
    assert resent < corrected < transferred  # newest first
    assert "Ben Bell" not in new_history
    assert f'href="/staff/admin/registrations/{ana.id}">The booking before</a>' in new_history
    assert f'href="/staff/admin/registrations/{new.id}">' not in new_history  # not to itself
    assert f'href="/staff/admin/registrations/{new.id}">The new booking</a>' in old_history
    assert "Transferred to" not in new_body

    # The same statements however many entries there are: no query per entry. (The test's
    # session is the requests' too: expire it before each, so both load the same rows.)
    db.session.expire_all()
    with count_queries() as few:
        client.get(f"/staff/admin/registrations/{new.id}")
    for n in range(30):
        audit.record(desk.admin.id, "email.resent", "outbox_email", 1_000_000 + n, registration_id=new.id)
    db.session.commit()
    with count_queries() as many:
        grown = client.get(f"/staff/admin/registrations/{new.id}")
    assert history_section(grown).count("<tr>") == 1 + 3 + 30
    assert len(many) == len(few)


def test_a_registration_without_entries_says_so(client, db, desk):
    ana = card_booked(db, desk)
    assert "No staff or system actions recorded yet." in text(
        client.get(f"/staff/admin/registrations/{ana.id}")
    )


# --- 2. Roster names link admins to the registration ---


def test_roster_names_link_to_the_registration_for_admins_only(app, client, db, desk):
    ana = card_booked(db, desk)
    teacher = make_user(db, "tia@clinic.example", Role.INSTRUCTOR, name="Tia Teach")
    desk.first.instructor_id = teacher.id
    db.session.commit()
    link = f'<a href="/staff/admin/registrations/{ana.id}">Ana Lopez</a>'

    assert link in client.get(f"/staff/sessions/{desk.first.id}").get_data(as_text=True)

    instructor = app.test_client()
    assert sign_in(instructor, teacher.email).status_code == 302
    roster = instructor.get(f"/staff/sessions/{desk.first.id}").get_data(as_text=True)
    assert "Ana Lopez" in roster
    assert "/staff/admin/registrations/" not in roster


# --- 3. Desk refunds named when a session is cancelled ---


def test_preview_counts_desk_refunds_by_name_apart_from_card_ones(db, desk):
    card_booked(db, desk)
    desk_booked(db, desk, PaymentMethod.CASH, "Ben Bell", "ben@example.com")
    totals = cancellations.preview_session_cancel(desk.first)
    assert (totals.people, totals.refunds, totals.refund_cents) == (2, 2, 3000)
    assert totals.desk_refunds == [DeskRefund("Ben Bell", 1500, "cash")]
    assert (totals.card_refunds, totals.card_refund_cents, totals.desk_refund_cents) == (1, 1500, 1500)


def test_cancelling_from_the_roster_names_desk_refunds_before_and_after(client, db, desk):
    ana = card_booked(db, desk)
    ben = desk_booked(db, desk, PaymentMethod.CHECK, "Ben Bell", "ben@example.com")
    url = f"/staff/sessions/{desk.first.id}/cancel"
    roster = client.get(f"/staff/sessions/{desk.first.id}")
    assert "handed back at the desk" in text(roster)

    review = client.post(
        url, data={"csrf_token": csrf_token(roster.get_data(as_text=True)), "reason": "Flood"}
    )
    said = text(review)
    assert "Card refunds: 1 refund of $15.00 in all, queued now and sent to Stripe" in said
    assert "Hand back at the desk: Ben Bell $15.00 (check)." in said
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0  # only a quote

    done = client.post(
        url,
        data={"csrf_token": csrf_token(review.get_data(as_text=True)), "reason": "Flood", "confirmed": "yes"},
        follow_redirects=True,
    )
    result = text(done)
    assert "1 card refund ($15.00 in all) queued; each shows as issued" in result
    assert "1 desk refund recorded as returned. Hand back at the desk: Ben Bell $15.00 (check)." in result
    db.session.expire_all()
    statuses = {r.payment.registration_id: r.status for r in db.session.scalars(sa.select(Refund)).all()}
    assert statuses == {ana.id: RefundStatus.PENDING, ben.id: RefundStatus.SUCCEEDED}
    cancelled = db.session.scalar(
        sa.select(AuditEntry).where(
            AuditEntry.action == "registration.cancelled", AuditEntry.target_id == ben.id
        )
    )
    assert cancelled.details["method"] == "check"
    session_entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "session.cancelled"))
    assert session_entry.details["desk_refund_cents"] == 1500


def test_an_all_card_cancellation_says_nothing_of_the_desk(client, db, desk):
    card_booked(db, desk)
    url = f"/staff/sessions/{desk.first.id}/cancel"
    roster = client.get(f"/staff/sessions/{desk.first.id}")
    review = text(
        client.post(url, data={"csrf_token": csrf_token(roster.get_data(as_text=True)), "reason": "Ice"})
    )
    assert "sent to Stripe" in review
    assert "Hand back" not in review


def test_the_offering_dates_cancel_page_lists_desk_refunds(client, db, desk):
    card_booked(db, desk)
    desk_booked(db, desk, PaymentMethod.CASH, "Ben Bell", "ben@example.com")
    url = f"/staff/admin/sessions/{desk.first.id}/cancel"
    form = client.get(url)
    review = client.post(url, data={"csrf_token": csrf_token(form.get_data(as_text=True)), "reason": "Flood"})
    said = text(review)
    assert "1 card refund of $15.00 in all will be queued and sent to Stripe" in said
    assert "Hand back at the desk: Ben Bell $15.00 (cash)" in said
    assert (
        db.session.scalar(sa.select(Registration.status).where(Registration.name == "Ben Bell")).value
        == "confirmed"
    )
