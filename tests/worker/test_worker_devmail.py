"""The development outbox (/_dev/outbox/) shows each email as the member will see it: its HTML
in a sandboxed frame whose own policy allows the email's inline styles and nothing else, beside
the text part and the invite; the page around it keeps the site's strict policy."""

from __future__ import annotations

import re

import pytest

from events.notifications.delivery import deliver_due
from tests.factories import make_clinic, workshop

# Delivery marks rows sent on its own autocommit connection: these tests commit for real.
pytestmark = pytest.mark.real_commits


@pytest.fixture
def outbox(app, db, book, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SERVER", None)
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    # Titled subjects (the clinic's choice): the listing shows the subject, escaped.
    make_clinic(name="Revival PT", email="hello@revival.example", email_subjects="titled")
    offering = workshop(title="Desk <Set-up> & Posture")
    db.session.commit()
    book(offering, "file@example.com")
    assert deliver_due().sent == 1
    [eml] = list(tmp_path.glob("*.eml"))
    return eml.name


def test_the_email_page_frames_the_html_and_shows_the_text_and_the_invite(app, outbox):
    client = app.test_client()
    listing = client.get("/_dev/outbox/")
    assert listing.status_code == 200
    body = listing.get_data(as_text=True)
    assert f'href="/_dev/outbox/{outbox}"' in body and "Desk &lt;Set-up&gt; &amp; Posture" in body
    assert "<style" not in body and "style=" not in body  # nothing our own policy would block

    page = client.get(f"/_dev/outbox/{outbox}")
    policy = page.headers["Content-Security-Policy"]
    assert "frame-src 'self'" in policy and "unsafe-inline" not in policy and "script-src 'none'" in policy
    html = page.get_data(as_text=True)
    assert "<style" not in html and "style=" not in html
    assert f'src="/_dev/outbox/{outbox}/html"' in html and 'sandbox="allow-popups' in html
    assert "Reply-To" in html and "hello@revival.example" in html
    assert "Hello File," in html  # the text part
    assert "invite.ics" in html and "(PUBLISH)" in html and "Organizer: hello@revival.example" in html
    assert "<script" not in html

    frame = client.get(f"/_dev/outbox/{outbox}/html")
    assert frame.status_code == 200 and frame.mimetype == "text/html"
    policy = frame.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in policy and "default-src 'none'" in policy
    assert "sandbox" in policy and "allow-scripts" not in policy and "allow-same-origin" not in policy
    assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    email_html = frame.get_data(as_text=True)
    assert '<base target="_blank">' in email_html and "Desk &lt;Set-up&gt; &amp; Posture" in email_html

    invite = client.get(f"/_dev/outbox/{outbox}/attachments/0")
    assert invite.mimetype == "text/calendar" and b"BEGIN:VCALENDAR" in invite.data
    assert 'filename="invite.ics"' in invite.headers["Content-Disposition"]


@pytest.mark.parametrize(
    "path",
    [
        "/_dev/outbox/..%2Fx.eml",
        "/_dev/outbox/missing.eml",
        "/_dev/outbox/missing.eml/html",
        "/_dev/outbox/{name}/attachments/1",
        "/_dev/outbox/{name}/attachments/-1",
        "/_dev/outbox/{name}/attachments/99999999999999999999",
        "/_dev/outbox/{name}/attachments/%D9%A1",  # an Arabic-Indic digit one
    ],
)
def test_only_what_is_there_can_be_opened(app, outbox, path):
    response = app.test_client().get(path.format(name=outbox))
    assert response.status_code == 404


def test_the_page_lists_nothing_it_cannot_read_and_says_so_when_empty(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "none-yet"))
    body = app.test_client().get("/_dev/outbox/").get_data(as_text=True)
    assert "No emails yet." in body
    assert re.search(r"Emails written to <code>[^<]*none-yet</code>", body)
