"""A "Delete my data" link works once, also when it is pressed several times at once (a double
tap, two tabs): real threads against the live server, on PostgreSQL. The control claims the
link without its row lock (and widens the window) to show this test would catch a second use."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime

import pytest
import requests as http
import sqlalchemy as sa

from events.extensions import db as _db
from events.models import AuditEntry, PrivacyAction, PrivacyRequest, Refund
from events.privacy import requests as privacy_requests
from events.registration.services import Person, register
from tests.factories import make_clinic, workshop

pytestmark = pytest.mark.slow
PRESSES = 6


def _erase_link(app, db) -> str:
    make_clinic()
    offering = workshop(title="Back Care")
    db.session.commit()
    register(offering, None, Person("Ana", "ana@example.com"))
    with app.test_request_context(base_url="http://x"):
        assert privacy_requests.request_link("ana@example.com", PrivacyAction.ERASE)
        request = db.session.scalar(sa.select(PrivacyRequest))
        return re.sub(r"^https?://[^/]+", "", privacy_requests.signed_link(request))


def _press_at_once(url: str) -> list[int]:
    """PRESSES browsers open the link, then all press "Yes, delete my data" at the same moment."""
    sessions = []
    for _ in range(PRESSES):
        browser = http.Session()
        page = browser.get(url, timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        sessions.append((browser, token))
    barrier = threading.Barrier(PRESSES)
    statuses: list[int] = []

    def press(browser: http.Session, token: str) -> None:
        barrier.wait()
        statuses.append(browser.post(url, data={"csrf_token": token}, timeout=60).status_code)

    threads = [threading.Thread(target=press, args=pair) for pair in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_a_link_pressed_at_once_from_several_tabs_works_once(app, db, live_server):
    path = _erase_link(app, db)
    statuses = _press_at_once(live_server.url + path)
    assert sorted(statuses) == [200] + [410] * (PRESSES - 1), statuses
    db.session.expire_all()
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "privacy.erased")
        )
        == 1
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0  # free: nothing to refund


def test_control_without_the_row_lock_a_link_works_twice(app, db, live_server, monkeypatch):
    """If this control ever stops using the link twice, the test above proves nothing."""

    def claim_without_lock(signed: str, now: datetime | None = None):
        request = _db.session.scalar(
            sa.select(PrivacyRequest)
            .where(PrivacyRequest.nonce == privacy_requests._nonce(signed))
            .execution_options(populate_existing=True)
        )
        request = privacy_requests._usable(request, now)
        email = request.email
        time.sleep(0.3)  # widen the window between reading "unused" and writing "used"
        request.used_at = now
        return request, email

    monkeypatch.setattr(privacy_requests, "claim", claim_without_lock)
    path = _erase_link(app, db)
    statuses = _press_at_once(live_server.url + path)
    db.session.expire_all()
    erased = db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "privacy.erased")
    )
    assert statuses.count(200) > 1 and erased > 1, statuses
