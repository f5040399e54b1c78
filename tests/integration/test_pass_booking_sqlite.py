"""Booking with a class pass on the embedded default (SQLite, writers serialised by BEGIN
IMMEDIATE): bookings at once on a pass's last credit over real HTTP book exactly one, and an
on-time cancel gives the credit back."""

from __future__ import annotations

import threading

import pytest
import requests
import sqlalchemy as sa
from flask_migrate import upgrade

from events.extensions import db
from events.models import Registration, RegistrationStatus
from events.passes import booking, ledger
from events.registration.services import cancel_registration
from tests.conftest import LiveServer, make_test_app
from tests.factories import make_clinic
from tests.load import TOKEN
from tests.passbook_helpers import ledger_sum, make_class, make_pass, make_product

pytestmark = pytest.mark.slow

ME = "sqlite.holder@example.com"
ATTEMPTS = 8


def test_the_last_credit_books_once_on_sqlite(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'passes.sqlite3'}")
    with app.app_context():
        upgrade()
        make_clinic()
        classes = [make_class(days=3 + i) for i in range(ATTEMPTS)]
        pass_ = make_pass(ME, make_product(credits=1))
        db.session.commit()
        pass_id = pass_.id
        with app.test_request_context():
            paths = [
                "/pass-booking/"
                + booking.sign_request(
                    booking.BookingRequest(c.id, c.sessions[0].id, "Sq Lite", ME, "", "en")
                )
                for c in classes
            ]

    server = LiveServer(app)
    server.start()
    codes: list[int] = []
    lock = threading.Lock()
    start_line = threading.Barrier(ATTEMPTS, timeout=60)

    def attempt(path: str) -> None:
        with requests.Session() as http:
            token = TOKEN.search(http.get(server.url + path, timeout=60).text).group(1)
            start_line.wait()
            response = http.post(
                server.url + path, data={"csrf_token": token}, allow_redirects=False, timeout=60
            )
            with lock:
                codes.append(response.status_code)

    try:
        threads = [threading.Thread(target=attempt, args=(p,)) for p in paths]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()

    assert sorted(codes) == [302] + [409] * (ATTEMPTS - 1)
    with app.app_context():
        [booked] = db.session.scalars(
            sa.select(Registration).where(Registration.status == RegistrationStatus.CONFIRMED)
        ).all()
        assert ledger.balance(pass_id) == 0 == ledger_sum(pass_id)
        cancel_registration(booked.id)
        assert ledger.balance(pass_id) == 1
        db.engine.dispose()
