"""The pass and code figures on an admin's phone (390 x 844), read from the report summaries
the worker keeps: the figures and the partner table fit the screen, the as-of note is shown,
axe (WCAG 2.2 AA tags) is clean. Screenshot: docs/screenshots/reports-passes-phone.png."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from events.models import Role, User
from events.reports import summaries
from tests import report_passes_scenario
from tests.browser.test_reports_ui import PASSWORD, SHOTS, assert_accessible, sign_in
from tests.factories import make_clinic

pytestmark = pytest.mark.browser
ADMIN = "passes-admin@clinic.example"


@pytest.fixture
def clinic(db, app):
    make_clinic()
    report_passes_scenario.build()
    admin = User(email=ADMIN, name="Clinic Admin", role=Role.ADMIN)
    admin.set_password(PASSWORD)
    db.session.add(admin)
    db.session.commit()
    with app.test_request_context():
        assert summaries.refresh() == {"rebuilt": True}


def test_an_admin_reads_pass_and_code_figures_on_a_phone(phone_page: Page, live_server, clinic):
    page = phone_page
    sign_in(page, live_server.url, ADMIN)
    page.goto(
        live_server.url + "/staff/reports?preset=custom&date_from=2026-01-01&date_to=2026-01-31&by=kind"
    )
    expect(page.get_by_role("heading", name="Passes and codes")).to_be_visible()
    expect(page.get_by_text(re.compile("Counted from the report summary"))).to_be_visible()
    expect(page.locator('[data-figure="credits_used"]')).to_have_text("5")
    expect(page.locator('[data-figure="revenue_per_credit_used"]')).to_have_text("$10.80")
    table = page.get_by_role("table", name="Code redemptions by partner")
    expect(table).to_contain_text("ymca")
    expect(table).to_contain_text("$20.00")
    widths = page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    assert_accessible(page)
    page.get_by_role("heading", name="Passes and codes").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "reports-passes-phone.png"), full_page=False)
