"""An instructor signs in on a phone, opens today's roster and checks two people in."""

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from events.models import Attendance, AttendanceStatus, OfferingKind, Role, User, utcnow
from events.registration import services
from events.registration.services import Person
from tests.factories import make_location, make_offering, make_session

pytestmark = pytest.mark.browser


def assert_accessible(page):
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_instructor_checks_two_people_in_on_a_phone(phone_page, live_server, db):
    from datetime import date, time, timedelta

    instructor = User(email="maya@clinic.example", name="Maya Lindqvist", role=Role.INSTRUCTOR)
    instructor.set_password("phone check-in pass")
    db.session.add(instructor)
    location = make_location(name="North Loop")
    offering = make_offering(location, OfferingKind.CLASS, title="Core & Hip Strength", instructor=instructor)
    # Starting in half an hour: today's roster, with check-in open (from an hour before).
    session = make_session(offering, date.today(), time(23, 0), minutes=45)
    session.starts_at = utcnow() + timedelta(minutes=30)
    session.ends_at = session.starts_at + timedelta(minutes=45)
    db.session.commit()
    people = [
        services.register(offering, session.id, Person(name, f"{name.lower()}@example.com")).registration
        for name in ("Ana", "Ben", "Cy")
    ]
    page = phone_page

    page.goto(f"{live_server.url}/staff/login")
    assert_accessible(page)
    page.get_by_label("Email").fill("maya@clinic.example")
    page.get_by_label("Password").fill("phone check-in pass")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My upcoming sessions")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Core & Hip Strength").click()
    expect(page.get_by_role("heading", name="Core & Hip Strength")).to_be_visible()
    assert_accessible(page)
    for name in ("Ana", "Ben"):
        button = page.get_by_role("button", name=f"Here - {name}")
        button.click()
        expect(button).to_have_attribute("aria-pressed", "true")  # saved without a reload
    expect(page.locator("#checkin-status")).to_have_text("Saved: present. 2 of 3 here.")

    db.session.expire_all()
    marks = dict(db.session.execute(sa.select(Attendance.registration_id, Attendance.status)).all())
    assert marks == {people[0].id: AttendanceStatus.PRESENT, people[1].id: AttendanceStatus.PRESENT}
    # After a reload the marks are still shown.
    page.reload()
    expect(page.get_by_role("button", name="Here - Ana")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Here - Cy")).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # fits the phone
