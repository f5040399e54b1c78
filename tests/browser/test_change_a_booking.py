"""An admin on a desktop changes a booking: transfers it to another date through its
confirmation, and takes a held seat's payment at the desk. Each page is axe clean (WCAG 2.2 AA
tags). SCREENSHOT_DIR=docs/screenshots writes the screenshots the docs show."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.models import (
    OfferingKind,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Registration,
    RegistrationStatus,
    Role,
    User,
    utcnow,
)
from events.registration.services import Person, register
from events.staff import bookings
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]}}


def assert_accessible(page: Page) -> None:
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def section_shot(section, name: str) -> None:
    """One part of a page, for the docs."""
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        section.screenshot(path=str(Path(folder) / name))


@pytest.fixture
def front_desk(db):
    make_clinic(name="Revival Physical Therapy and Wellness")
    location = make_location(slug="north-loop", name="North Loop", timezone="America/Chicago")
    admin = User(email="sam@clinic.example", name="Sam Rivera", role=Role.ADMIN)
    admin.set_password(PASSWORD)
    db.session.add(admin)
    core = make_offering(
        location, OfferingKind.CLASS, title="Core & Hip Strength", price_cents=1500, capacity=8
    )
    tuesday = make_session(core, upcoming_day(6))
    wednesday = make_session(core, upcoming_day(7))
    db.session.commit()
    ana = register(core, tuesday.id, Person("Ana Lopez", "ana@example.com", "612-555-0100")).registration
    db.session.add(
        Payment(
            registration_id=ana.id,
            stripe_payment_intent_id="pi_browser_ana",
            amount_cents=1500,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
            card_brand="visa",
            card_last4="4242",
            paid_at=utcnow(),
        )
    )
    ana.status, ana.confirmed_at, ana.hold_expires_at = RegistrationStatus.CONFIRMED, utcnow(), None
    ben = register(core, tuesday.id, Person("Ben Okafor", "ben@example.com")).registration
    db.session.commit()
    return {"admin": admin, "ana": ana, "ben": ben, "core": core, "wednesday": wednesday}


def sign_in(page: Page, base_url: str, email: str) -> None:
    page.goto(base_url + "/staff/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()


def test_admin_transfers_a_booking_through_its_confirmation(page, live_server, front_desk, db):
    ana, wednesday = front_desk["ana"], front_desk["wednesday"]
    # Something in the booking's history before the transfer.
    bookings.correct_details(
        ana.id,
        Person("Ana Lopez", "ana.lopez@example.com", "612-555-0100"),
        "New address",
        front_desk["admin"],
    )
    sign_in(page, live_server.url, front_desk["admin"].email)
    page.goto(f"{live_server.url}/staff/admin/registrations/{ana.id}")
    expect(page.get_by_role("heading", name="Change this booking")).to_be_visible()
    assert_accessible(page)
    shot(page, "staff-registration-actions.png")

    page.get_by_role("link", name="Transfer to another date or offering").click()
    expect(page.get_by_role("heading", name="Transfer Ana Lopez's booking")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Move to").select_option(f"{front_desk['core'].id}-{wednesday.id}")
    page.get_by_label("Reason (kept in the audit trail)").fill("Can't make Tuesdays any more")
    page.get_by_role("button", name="Review the transfer").click()

    confirmation = page.locator("#confirm-transfer")
    expect(confirmation).to_contain_text("Move Ana Lopez from Core & Hip Strength")
    expect(confirmation).to_contain_text("same price, nothing to pay or refund")
    assert_accessible(page)
    shot(page, "staff-transfer-confirmation.png")
    db.session.expire_all()
    assert db.session.get(Registration, ana.id).status == RegistrationStatus.CONFIRMED  # not yet

    page.get_by_role("button", name="Transfer the booking").click()
    expect(
        page.get_by_text(
            re.compile(r"Ana Lopez is moved to Core & Hip Strength, .* the new confirmation is emailed")
        )
    ).to_be_visible()
    assert_accessible(page)
    db.session.expire_all()
    moved = db.session.scalar(
        sa.select(Registration).where(
            Registration.session_id == wednesday.id, Registration.status == RegistrationStatus.CONFIRMED
        )
    )
    assert moved is not None and moved.name == "Ana Lopez"
    assert db.session.get(Registration, ana.id).status == RegistrationStatus.CANCELLED

    # The new booking's page: its history tells the transfer and links back to the old booking.
    expect(page.locator("#history")).to_contain_text(
        re.compile(r"Sam Rivera transferred Ana Lopez from .* to .*Can't make Tuesdays")
    )
    expect(page.locator("#history")).not_to_contain_text("corrected")  # the old booking's
    page.get_by_role("link", name=re.compile("^Transferred from ")).click()
    expect(page).to_have_url(f"{live_server.url}/staff/admin/registrations/{ana.id}")
    history = page.locator("#history")
    expect(history.locator("tbody tr").first).to_contain_text(
        "Sam Rivera transferred Ana Lopez"
    )  # newest first
    expect(history.locator("tbody tr").nth(1)).to_contain_text("Sam Rivera corrected Ana Lopez's email")
    assert_accessible(page)
    section_shot(history, "admin-registration-history.png")
    page.get_by_role("link", name=re.compile("^Transferred to ")).click()
    expect(page).to_have_url(f"{live_server.url}/staff/admin/registrations/{moved.id}")


def test_admin_takes_a_held_seats_payment_in_cash(page, live_server, front_desk, db):
    ben = front_desk["ben"]
    sign_in(page, live_server.url, front_desk["admin"].email)
    page.goto(f"{live_server.url}/staff/admin/registrations/{ben.id}")
    page.get_by_role("link", name="Take payment at the desk").first.click()
    expect(page.get_by_role("heading", name="Take payment at the desk")).to_be_visible()
    page.get_by_label("Cash").check()
    page.get_by_label("Note (optional)").fill("Receipt book #12")
    assert_accessible(page)
    shot(page, "staff-desk-payment.png")
    page.get_by_role("button", name="Record the payment and book the seat").click()
    expect(page.get_by_text("$15.00 cash recorded: Ben Okafor is booked")).to_be_visible()
    expect(
        page.get_by_text(re.compile("Paid \\$15.00 by cash at the desk, recorded by Sam Rivera"))
    ).to_be_visible()
    assert_accessible(page)
    shot(page, "staff-registration-paid-at-desk.png")
    db.session.expire_all()
    payment = db.session.scalar(sa.select(Payment).where(Payment.registration_id == ben.id))
    assert payment.method == PaymentMethod.CASH and payment.note == "Receipt book #12"


def test_admin_cancels_a_booking_with_a_refund_after_seeing_it(page, live_server, front_desk, db):
    ana = front_desk["ana"]
    sign_in(page, live_server.url, front_desk["admin"].email)
    page.goto(f"{live_server.url}/staff/admin/registrations/{ana.id}/cancel")
    page.get_by_label("Full refund").check()
    page.get_by_label("Reason (kept in the audit trail)").fill("Injured; can't come")
    assert_accessible(page)
    shot(page, "staff-cancel-choose-refund.png")
    page.get_by_role("button", name="Review the cancellation").click()
    expect(page.locator("#confirm-cancel")).to_contain_text(
        re.compile(
            r"Cancel Ana Lopez's booking for Core & Hip Strength, .* CST; refund \$15.00 to their card"
        )
    )
    assert_accessible(page)
    shot(page, "staff-cancel-confirmation.png")
    page.get_by_role("button", name="Cancel the booking and refund $15.00").click()
    expect(page.get_by_text("A refund of $15.00 to their card is queued")).to_be_visible()
    assert_accessible(page)
    db.session.expire_all()
    assert db.session.get(Registration, ana.id).status == RegistrationStatus.CANCELLED


def test_cancelling_a_date_names_the_cash_to_hand_back_and_roster_names_link(
    page, live_server, front_desk, db
):
    """Ana paid by card, Ben in cash: the roster links each name to the registration; the
    cancellation's confirmation and result say which refund goes to Stripe and whom to pay back."""
    ana, ben, admin = front_desk["ana"], front_desk["ben"], front_desk["admin"]
    bookings.take_desk_payment(ben.id, PaymentMethod.CASH, "", admin)
    session_id = ana.session_id
    sign_in(page, live_server.url, admin.email)
    page.goto(f"{live_server.url}/staff/sessions/{session_id}")
    page.get_by_role("link", name="Ben Okafor").click()
    expect(page).to_have_url(f"{live_server.url}/staff/admin/registrations/{ben.id}")

    page.goto(f"{live_server.url}/staff/sessions/{session_id}")
    page.get_by_label(re.compile("Reason")).fill("Flooded studio")
    page.get_by_role("button", name="Cancel the session").click()
    expect(
        page.get_by_text("Card refunds: 1 refund of $15.00 in all, queued now and sent to Stripe")
    ).to_be_visible()
    expect(
        page.get_by_text(re.compile(r"Hand back at the desk: Ben Okafor \$15\.00 \(cash\)\."))
    ).to_be_visible()
    assert_accessible(page)
    shot(page, "admin-cancel-session-desk-refunds.png")
    page.get_by_role("button", name="Cancel this session").click()
    expect(
        page.get_by_text(
            re.compile(r"1 card refund \(\$15\.00 in all\) queued; .* Hand back at the desk: Ben Okafor")
        )
    ).to_be_visible()
    assert_accessible(page)
