"""The development outbox in Chromium: the email's HTML is rendered with its own styles in a
sandboxed frame, and nothing on the page breaks our Content-Security-Policy (the fixture fails
the test on any violation)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from events.notifications.delivery import deliver_due
from tests.factories import make_clinic, workshop

pytestmark = pytest.mark.browser


def test_an_email_is_shown_as_the_member_sees_it_beside_its_text_and_invite(
    page, live_server, app, db, book, tmp_path, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIL_SERVER", None)
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    # Titled subjects (the clinic's choice; neutral ones name only the date): the link is the subject.
    make_clinic(name="Revival PT", email="hello@revival.example", email_subjects="titled")
    offering = workshop(title="Desk Set-up")
    db.session.commit()
    book(offering, "ana@example.com")
    assert deliver_due().sent == 1

    page.goto(live_server.url + "/_dev/outbox/")
    page.get_by_role("link", name="You're registered: Desk Set-up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You're registered: Desk Set-up")
    # The page is styled (our stylesheet applies: it was unstyled under our own CSP).
    expect(page.locator(".site-header")).to_have_css("background-color", "rgb(14, 90, 95)")
    email = page.frame_locator("iframe.devmail-frame")
    expect(email.get_by_text("You're registered for")).to_be_visible()
    # The email's inline styles apply inside the frame: its button, its type.
    expect(email.get_by_role("link", name="See or change your registration")).to_have_css(
        "background-color", "rgb(47, 111, 102)"
    )
    expect(email.locator("body")).to_have_css(
        "font-family", 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
    )
    expect(email.get_by_role("link", name="Add to Google Calendar")).to_be_visible()
    expect(page.get_by_role("region", name="Text part")).to_contain_text("Hello Ana,")
    expect(page.get_by_role("link", name="invite.ics")).to_be_visible()
    expect(page.locator(".devmail-event")).to_contain_text("Desk Set-up")
