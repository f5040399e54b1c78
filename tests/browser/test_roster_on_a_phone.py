"""The roster on a 390x844 phone during class (issue 13, items 6-8): the "N of M here" count
follows each check-in without a reload, the search filters as one types, a walk-in is added and
counted, a mark is undone; a message is previewed then sent; the print view. axe clean (WCAG 2.2
AA). Screenshots go to $SCREENSHOT_DIR when it is set (docs/screenshots/ holds the committed ones)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from events.models import (
    Attendance,
    OfferingKind,
    OutboxEmail,
    Registration,
    Role,
    StaffMessage,
    User,
    WaitlistEntry,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.registration.services import Person, cancel_registration, register
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

pytestmark = pytest.mark.browser

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]}}
PHONE_WIDTH = 390


def assert_accessible(page: Page) -> None:
    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, results.generate_report()


def fits_the_phone(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH


def shot(page: Page, name: str, full_page: bool = True) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=full_page)


def test_roster_count_search_walk_in_undo_message_and_print_on_a_phone(
    phone_page, live_server, db, app, monkeypatch
):
    make_clinic(name="Revival Physical Therapy", email="hello@revival.example")
    teacher = User(email="maya@clinic.example", name="Maya Lindqvist", role=Role.INSTRUCTOR)
    teacher.set_password("phone roster pass")
    db.session.add(teacher)
    offering = make_offering(
        make_location(name="North Loop"),
        OfferingKind.CLASS,
        title="Core & Hip Strength",
        instructor=teacher,
        capacity=5,
    )
    session = make_session(offering, upcoming_day(0))
    session.starts_at = utcnow() + timedelta(minutes=30)
    session.ends_at = session.starts_at + timedelta(minutes=45)
    db.session.commit()
    people = {
        name: register(
            offering, session.id, Person(name, f"{name.split()[0].lower()}@example.com")
        ).registration
        for name in ("Ana Lopez", "Ben Okafor", "Cy Nguyen", "Dot Early")
    }
    cancel_registration(people["Dot Early"].id, reason="Can't make it")
    db.session.add(
        WaitlistEntry(
            seat_pool_id=session.seat_pool_id,
            name="Wes Waiting",
            email="wes@example.com",
            email_normalized="wes@example.com",
            token="wes-token",
        )
    )
    db.session.commit()
    session_id = session.id
    page = phone_page
    base = live_server.url

    page.goto(f"{base}/staff/login")
    page.get_by_label("Email").fill("maya@clinic.example")
    page.get_by_label("Password").fill("phone roster pass")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Core & Hip Strength").click()
    expect(page.get_by_role("heading", name="Core & Hip Strength")).to_be_visible()
    count = page.locator("#here-count")
    expect(count).to_have_text("0 of 3 here")
    # Cancelled and waiting people are below, collapsed.
    expect(page.get_by_text("Dot Early")).to_be_hidden()
    expect(page.get_by_text("Cancelled (1)")).to_be_visible()
    expect(page.get_by_text("Waitlist (1)")).to_be_visible()
    assert_accessible(page)
    fits_the_phone(page)

    # Check-in updates the count without a reload (the marker set here survives).
    page.evaluate("window.stillThisPage = true")
    for name in ("Ana Lopez", "Ben Okafor"):
        page.get_by_role("button", name=f"Here - {name}").click()
        expect(page.get_by_role("button", name=f"Here - {name}")).to_have_attribute("aria-pressed", "true")
    expect(count).to_have_text("2 of 3 here")
    assert page.evaluate("window.stillThisPage === true")
    page.get_by_role("button", name="Absent - Cy Nguyen").click()
    expect(page.get_by_role("button", name="Absent - Cy Nguyen")).to_have_attribute("aria-pressed", "true")
    page.get_by_text("Cancelled (1)").click()
    shot(page, "roster-phone.png")
    page.get_by_text("Cancelled (1)").click()

    # Undo a mark: the count goes down, the buttons are unpressed, the undo hides.
    page.get_by_role("button", name="Undo mark for Ben Okafor").click()
    expect(count).to_have_text("1 of 3 here")
    expect(page.get_by_role("button", name="Here - Ben Okafor")).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_role("button", name="Undo mark for Ben Okafor")).to_be_hidden()
    assert page.evaluate("window.stillThisPage === true")
    db.session.expire_all()
    assert (
        db.session.scalar(
            sa.select(Attendance.status).where(Attendance.registration_id == people["Ben Okafor"].id)
        )
        is None
    )

    # The search filters as one types.
    page.get_by_label("Find a name").fill("ok")
    expect(page.locator(f"#r{people['Ben Okafor'].id}")).to_be_visible()
    expect(page.locator(f"#r{people['Ana Lopez'].id}")).to_be_hidden()
    expect(page.locator("#search-result")).to_have_text("1 matching “ok”")
    shot(page, "roster-phone-search.png", full_page=False)
    page.get_by_label("Find a name").fill("")
    expect(page.locator(f"#r{people['Ana Lopez'].id}")).to_be_visible()

    # A walk-in, with no email: added, checked in, counted.
    page.get_by_role("link", name="Add a walk-in").click()
    expect(page.get_by_role("heading", name="Add a walk-in")).to_be_visible()
    page.get_by_label("Name").fill("Walt Walkin")
    page.get_by_label("Phone (optional)").fill("612-555-0142")
    assert_accessible(page)
    shot(page, "roster-walk-in-form.png")
    page.get_by_label("Name").fill("")
    page.get_by_role("button", name="Add and check in").click()  # no name: told so
    expect(page.locator("#error-summary")).to_contain_text("Enter their name.")
    assert_accessible(page)
    page.get_by_label("Name").fill("Walt Walkin")
    page.get_by_role("button", name="Add and check in").click()
    expect(page.get_by_text("Walt Walkin added and checked in.")).to_be_visible()
    expect(count).to_have_text("2 of 4 here")
    expect(page.get_by_role("button", name="Here - Walt Walkin")).to_have_attribute("aria-pressed", "true")
    db.session.expire_all()
    walt = db.session.scalar(sa.select(Registration).where(Registration.name == "Walt Walkin"))
    assert walt.source == "walk_in" and walt.email == "" and walt.status.value == "confirmed"
    assert_accessible(page)

    # A message to the room: written, previewed ("Send to 3 people"), sent.
    page.get_by_role("link", name="Message everyone").click()
    page.get_by_label("Subject").fill("We're in room B today")
    page.get_by_label("Message").fill("Hi all,\nWe're in room B today (the door by the lift).\n\nMaya")
    assert_accessible(page)
    shot(page, "roster-message-form.png")
    page.get_by_role("button", name="Preview").click()
    send = page.get_by_role("button", name="Send to 3 people")
    expect(send).to_be_visible()
    expect(page.get_by_text("1 person gave no email and won't get it.")).to_be_visible()
    assert_accessible(page)
    fits_the_phone(page)
    shot(page, "roster-message-preview.png")
    send.click()
    expect(page.get_by_text("Message sent to 3 people.")).to_be_visible()
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StaffMessage)) == 1
    assert sorted(
        db.session.scalars(sa.select(OutboxEmail.to_email).where(OutboxEmail.kind == EmailKind.STAFF_MESSAGE))
    ) == ["ana@example.com", "ben@example.com", "cy@example.com"]

    # The print view: the count, a box per person, absences marked, no cancelled rows.
    page.get_by_role("link", name="Printable roster").click()
    expect(page.get_by_text("2 of 4 here")).to_be_visible()
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    expect(page.get_by_role("row", name="Cy Nguyen")).to_contain_text("(absent)")
    expect(page.get_by_text("Dot Early")).to_have_count(0)
    assert_accessible(page)
    fits_the_phone(page)
    shot(page, "roster-print-phone.png")

    # Check-in closing while the page is open: the tap is refused with why, on the page.
    page.get_by_role("link", name="Back to the roster").click()
    monkeypatch.setitem(app.config, "CHECKIN_OPENS_MINUTES_BEFORE", 0)
    page.get_by_role("button", name="Here - Cy Nguyen").click()
    expect(page.get_by_role("alert")).to_contain_text("Check-in opens")
    expect(page.get_by_role("button", name="Here - Cy Nguyen")).to_have_attribute("aria-pressed", "false")
    assert page.url.endswith(f"/staff/sessions/{session_id}")
