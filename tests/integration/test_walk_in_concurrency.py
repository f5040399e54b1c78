"""Walk-ins take seats under the same lock as registrations: staff adding walk-ins and members
registering at the same moment for the last seats, over real HTTP, never oversell."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from events.extensions import db as _db
from events.models import OfferingKind, Registration, Role, SeatPool, User, utcnow
from events.registration import seats
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.load import TOKEN

pytestmark = pytest.mark.slow

LAST_SEATS = 3
WALK_INS = 8
MEMBERS = 8


def race(live_server, db, prefix: str, members: int = MEMBERS):
    """Walk-ins and member registrations, all at once, for the last LAST_SEATS seats of a
    workshop starting in half an hour. Returns (answers, seat pool, live registrations)."""
    teacher = User(email=f"{prefix}-teacher@clinic.example", name="Rae Teacher", role=Role.INSTRUCTOR)
    teacher.set_password("walk-in race pass")
    db.session.add(teacher)
    offering = make_offering(make_location(), OfferingKind.WORKSHOP, capacity=10, instructor=teacher)
    session = make_session(offering, upcoming_day(0))
    session.starts_at = utcnow() + timedelta(minutes=30)
    session.ends_at = session.starts_at + timedelta(hours=1)
    session.seat_pool.seats_taken = 10 - LAST_SEATS  # (seats taken by people not in this test)
    db.session.commit()
    base = live_server.url
    # Read before the threads start (they have no app context to load attributes in).
    session_id, slug, email = session.id, offering.slug, teacher.email
    start_line = threading.Barrier(WALK_INS + members, timeout=120)
    codes: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def staff(i: int) -> None:
        with requests.Session() as http:
            login = http.get(f"{base}/staff/login", timeout=60).text
            http.post(
                f"{base}/staff/login",
                data={
                    "csrf_token": TOKEN.search(login).group(1),
                    "email": email,
                    "password": "walk-in race pass",
                },
                timeout=60,
            )
            form = http.get(f"{base}/staff/sessions/{session_id}/walk-in", timeout=60).text
            token = TOKEN.search(form).group(1)
            start_line.wait()
            response = http.post(
                f"{base}/staff/sessions/{session_id}/walk-in",
                data={"csrf_token": token, "name": f"Walker {i}"},
                allow_redirects=False,
                timeout=120,
            )
            with lock:
                codes.append(("walk-in", response.status_code, response.text))

    def member(i: int) -> None:
        with requests.Session() as http:
            token = TOKEN.search(http.get(f"{base}/offerings/{slug}", timeout=60).text).group(1)
            start_line.wait()
            response = http.post(
                f"{base}/offerings/{slug}/register",
                data={"csrf_token": token, "name": f"Member {i}", "email": f"member{i}@example.com"},
                allow_redirects=False,
                timeout=120,
            )
            with lock:
                codes.append(("member", response.status_code, response.text))

    with ThreadPoolExecutor(max_workers=WALK_INS + members) as crowd:
        futures = [crowd.submit(staff, i) for i in range(WALK_INS)] + [
            crowd.submit(member, i) for i in range(members)
        ]
        for future in futures:
            future.result()

    db.session.expire_all()
    pool = db.session.get(SeatPool, session.seat_pool_id)
    live = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Registration)
        .where(Registration.offering_id == offering.id, Registration.status.in_(("confirmed", "held")))
    )
    return codes, pool, live


def test_walk_ins_and_registrations_at_once_for_the_last_seats(live_server, db):
    codes, pool, live = race(live_server, db, "race")
    assert all(code < 500 for _, code, _ in codes), codes
    added = sum(1 for who, code, _ in codes if code == 302)
    refused_walk_ins = [text for who, code, text in codes if who == "walk-in" and code == 400]
    assert added == LAST_SEATS
    assert all("The session is full" in text for text in refused_walk_ins)
    assert pool.seats_taken == pool.capacity == 10
    assert live == LAST_SEATS


def test_control_without_the_lock_walk_ins_oversell(live_server, db, monkeypatch):
    """If this control ever stops overselling, the test above proves nothing. Walk-ins only:
    members take their seats with a conditional UPDATE that is safe without the lock, and on a
    loaded machine they could fill the seats before any walk-in read the count (seen once)."""

    def lock_pool_without_locking(pool_id):
        pool = _db.session.execute(
            sa.select(SeatPool).where(SeatPool.id == pool_id).execution_options(populate_existing=True)
        ).scalar_one()
        time.sleep(0.2)  # widen the window between reading the count and writing it
        return pool

    monkeypatch.setattr(seats, "lock_pool", lock_pool_without_locking)
    _, _, live = race(live_server, db, "control", members=0)
    assert live > LAST_SEATS
