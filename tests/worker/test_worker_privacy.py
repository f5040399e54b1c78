""" "Delete my data" end to end through the real services: a member registers and pays at the
desk, asks for the link on the public page, gets it from the worker over SMTP, opens it and
deletes; the confirmation arrives; then no table (every text column of every table), outbox
row, stored email file, uploaded file or log line (the app's and the worker's) holds her name,
address or phone. The same link a second time does nothing."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from events.models import (
    OutboxEmail,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Registration,
    RegistrationStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.privacy import requests
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token, wait_until
from tests.privacy_dump import rows_holding
from tests.worker.conftest import _TMP, send_task

pytestmark = pytest.mark.slow

NAME, EMAIL, PHONE = "Marisol Achterberg", "marisol.achterberg@example.com", "612-555-0187"


def _files_holding(folder: Path, needles: list[str]) -> list[Path]:
    found = []
    for path in folder.rglob("*") if folder.exists() else []:
        if path.is_file():
            data = path.read_bytes().decode("utf-8", errors="replace").lower()
            if any(n.lower() in data for n in needles):
                found.append(path)
    return found


def test_delete_my_data_leaves_nothing_of_her_anywhere(
    app, db, client, smtp, celery_worker, publish, redis_test_db, caplog
):
    caplog.set_level(logging.DEBUG)
    make_clinic(name="Revival PT", email="hello@revival.example")
    offering = make_offering(
        make_location(name="North Loop"), title="Back Spasms: What to Do First", price_cents=2500
    )
    make_session(offering, upcoming_day(6))
    db.session.commit()
    worker_log_start = len(celery_worker.output())

    # She registers on the public page (held while she pays), and pays cash at the desk.
    page = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    response = client.post(
        f"/offerings/{offering.slug}/register",
        data={"csrf_token": csrf_token(page), "name": NAME, "email": EMAIL, "phone": PHONE},
    )
    assert response.status_code == 302
    registration = db.session.scalar(sa.select(Registration).where(Registration.email == EMAIL))
    registration.status = RegistrationStatus.CONFIRMED
    registration.confirmed_at = registration.hold_expires_at = None
    registration.confirmed_at = utcnow()
    db.session.add(
        Payment(
            registration_id=registration.id,
            method=PaymentMethod.CASH,
            amount_cents=2500,
            currency="usd",
            status=PaymentStatus.SUCCEEDED,
            paid_at=utcnow(),
        )
    )
    db.session.commit()

    # She asks for the link; the worker sends it.
    page = client.get("/my-data").get_data(as_text=True)
    asked = client.post("/my-data", data={"csrf_token": csrf_token(page), "email": EMAIL, "action": "erase"})
    assert asked.status_code == 200
    [(rcpt, message)] = smtp.wait_for(1)
    assert rcpt == EMAIL and message["Subject"] == "Your data at Revival PT"
    text = message.get_body(("plain",)).get_content()
    [link] = re.findall(r"http://clinic\.test(/my-data/\S+)", text)

    confirm = client.get(link).get_data(as_text=True)
    assert "Back Spasms: What to Do First" in confirm and "$25 refunded" in confirm
    done = client.post(link, data={"csrf_token": csrf_token(confirm)})
    assert done.status_code == 200 and "Your data has been deleted" in done.get_data(as_text=True)
    again = client.post(link, data={"csrf_token": csrf_token(confirm)})
    assert again.status_code == 410  # used once, recorded in the database

    # The confirmation arrives (sent before the address is forgotten)...
    [_, (rcpt, confirmation)] = smtp.wait_for(2)
    assert rcpt == EMAIL and confirmation["Subject"] == "Your data at Revival PT has been deleted"
    assert "A refund of $25" in confirmation.get_body(("plain",)).get_content()
    # ...and the worker's housekeeping forgets the address on its row.
    send_task(redis_test_db, "worker.tasks.housekeeping")

    def nothing_left():
        db.session.rollback()
        return rows_holding([NAME, EMAIL, PHONE]) == {}

    wait_until(nothing_left, timeout=30, what="no table to hold her name, address or phone")
    db.session.expire_all()
    row = db.session.get(Registration, registration.id)
    assert row.status == RegistrationStatus.CANCELLED and row.price_cents == 2500  # still counted
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.kind == EmailKind.DATA_ERASED)
        )
        == 1
    )

    # No stored email file, uploaded file or log line holds her.
    for folder in (Path(app.instance_path), _TMP / "worker-instance", Path(app.config["MAIL_OUTBOX_DIR"])):
        assert _files_holding(folder, [NAME, EMAIL, PHONE]) == [], folder
    worker_log = celery_worker.output()[worker_log_start:]
    for secret in (NAME, EMAIL, PHONE, link.rsplit("/", 1)[1]):
        assert secret.lower() not in worker_log.lower(), secret
        assert secret.lower() not in caplog.text.lower(), secret
    assert requests.tidy() == 0  # nothing more to forget
