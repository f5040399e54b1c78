"""Bookings at the same moment on a pass's last credit, over real HTTP against the live server
(real threads, each its own browser session): exactly one is booked, the balance ends at 0 and
never below, and every other answer is a clear 409 with no seat taken."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import sqlalchemy as sa

from events.extensions import db as _db
from events.models import PassLedgerEntry, Registration, RegistrationStatus, SeatPool
from events.passes import booking, ledger
from tests.factories import make_clinic
from tests.load import TOKEN
from tests.passbook_helpers import ledger_sum, make_class, make_pass, make_product

pytestmark = pytest.mark.slow

ME = "last.credit@example.com"


def race(live_server, app, db, attempts: int, credits: int, per_class: int = 1):
    """`attempts` confirm links, one per class, posted at once by as many threads, on a pass
    with `credits` credits. Returns (status codes, pass id, class ids)."""
    make_clinic()
    classes = [make_class(days=3 + i % 5, credits=per_class) for i in range(attempts)]
    pass_ = make_pass(ME, make_product(credits=credits))
    db.session.commit()
    with app.test_request_context():
        paths = [
            "/pass-booking/"
            + booking.sign_request(
                booking.BookingRequest(c.id, c.sessions[0].id, "Last Credit", ME, "", "en")
            )
            for c in classes
        ]
    pass_id, class_ids = pass_.id, [c.id for c in classes]
    start_line = threading.Barrier(attempts, timeout=120)
    answers: list[tuple[int, float]] = []
    lock = threading.Lock()

    def attempt(path: str) -> None:
        with requests.Session() as http:
            token = TOKEN.search(http.get(live_server.url + path, timeout=60).text).group(1)
            start_line.wait()
            started = time.perf_counter()
            response = http.post(
                live_server.url + path, data={"csrf_token": token}, allow_redirects=False, timeout=120
            )
            with lock:
                answers.append((response.status_code, time.perf_counter() - started))

    threads = [threading.Thread(target=attempt, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _db.session.expire_all()
    return answers, pass_id, class_ids


@pytest.mark.parametrize("attempts", [2, 12])
def test_bookings_at_once_on_the_last_credit_book_exactly_one(live_server, app, db, attempts):
    answers, pass_id, class_ids = race(live_server, app, db, attempts, credits=1)
    codes = sorted(code for code, _ in answers)
    assert codes == [302] + [409] * (attempts - 1), codes
    booked = db.session.scalars(
        sa.select(Registration).where(Registration.status == RegistrationStatus.CONFIRMED)
    ).all()
    assert len(booked) == 1 and booked[0].pass_id == pass_id
    assert ledger.balance(pass_id) == 0 == ledger_sum(pass_id)
    # Never below zero at any point: the running sum of the ledger, in order.
    running = 0
    for credits in db.session.scalars(
        sa.select(PassLedgerEntry.credits)
        .where(PassLedgerEntry.pass_id == pass_id)
        .order_by(PassLedgerEntry.id)
    ):
        running += credits
        assert running >= 0
    taken = db.session.scalar(
        sa.select(sa.func.sum(SeatPool.seats_taken)).where(SeatPool.offering_id.in_(class_ids))
    )
    assert taken == 1
    slowest = max(seconds for _, seconds in answers)
    print(
        f"\n{attempts} at once on the last credit: 1 booked, {attempts - 1} refused; slowest {slowest:.3f}s"
    )


def test_a_two_credit_class_at_once_with_three_credits_left_books_one(live_server, app, db):
    answers, pass_id, _ = race(live_server, app, db, 6, credits=3, per_class=2)
    assert sorted(code for code, _ in answers) == [302] + [409] * 5
    assert ledger.balance(pass_id) == 1 == ledger_sum(pass_id)


def test_control_without_the_pass_lock_the_last_credit_is_spent_twice(live_server, app, db, monkeypatch):
    """The control: the same two bookings with the passes read without FOR UPDATE, and both made
    to choose before either spends. Both spend the last credit, and only the ledger's own check
    (which reads the balance without seeing the other's uncommitted spend) stands between them
    and -1: it doesn't. So the lock is what makes the test above pass."""
    both_chose = threading.Barrier(2, timeout=30)

    def unlocked_choose(email_normalized, offering, now, pass_id):
        found = booking.usable_pass(email_normalized, offering, now, pass_id)
        both_chose.wait()
        return found[0] if found else None

    both_read = threading.Barrier(2, timeout=30)
    read_balance = ledger.balance

    def balance_then_wait(pass_id):  # (ledger.write's check: both read it before either writes)
        found = read_balance(pass_id)
        both_read.wait()
        return found

    monkeypatch.setattr(booking, "_lock_and_choose", unlocked_choose)
    monkeypatch.setattr(ledger, "balance", balance_then_wait)
    answers, pass_id, _ = race(live_server, app, db, 2, credits=1)
    monkeypatch.undo()
    assert sorted(code for code, _ in answers) == [302, 302]
    assert ledger.balance(pass_id) == -1  # the race the lock prevents
