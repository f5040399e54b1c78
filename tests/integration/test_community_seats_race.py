"""Class passes and general registrations racing for the last general seat while community
seats are kept, over real HTTP against the live server (real threads, each its own browser
session, on PostgreSQL): exactly one takes it, everyone else is told the seats left are
community seats, the kept seats stay kept, and nothing is oversold or spent twice."""

from __future__ import annotations

import threading

import pytest
import requests
import sqlalchemy as sa

from events import pricing
from events.extensions import db as _db
from events.models import Registration, RegistrationStatus, SeatPool, utcnow
from events.passes import booking, ledger
from tests.factories import make_clinic
from tests.load import TOKEN
from tests.passbook_helpers import make_class, make_pass

pytestmark = pytest.mark.slow

ONLY_COMMUNITY = "The seats left are community seats."
PASSES = 5
GENERAL = 5


def test_passes_and_general_registrations_racing_for_the_last_general_seat_take_exactly_one(
    live_server, app, db
):
    # Four seats, three kept for the community ($5) until a day before the start: one general seat.
    make_clinic()
    cls = make_class(capacity=4, days=5, community_seats=3, community_price_cents=500)
    session = cls.sessions[0]
    holders = [f"holder{i}@example.com" for i in range(PASSES)]
    pass_ids = [make_pass(email).id for email in holders]
    db.session.commit()
    pool_id, slug = session.seat_pool_id, cls.slug
    with app.test_request_context():
        pass_paths = [
            "/pass-booking/"
            + booking.sign_request(booking.BookingRequest(cls.id, session.id, "Holder", email, "", "en"))
            for email in holders
        ]

    start_line = threading.Barrier(PASSES + GENERAL, timeout=120)
    answers: list[tuple[str, int, str, str]] = []
    lock = threading.Lock()

    def with_pass(path: str) -> None:
        with requests.Session() as http:
            token = TOKEN.search(http.get(live_server.url + path, timeout=60).text).group(1)
            start_line.wait()
            response = http.post(
                live_server.url + path, data={"csrf_token": token}, allow_redirects=False, timeout=120
            )
        with lock:
            answers.append(
                ("pass", response.status_code, response.headers.get("Location", ""), response.text)
            )

    def registering(i: int) -> None:
        with requests.Session() as http:
            page = http.get(f"{live_server.url}/offerings/{slug}?session={session.id}", timeout=60)
            token = TOKEN.search(page.text).group(1)
            start_line.wait()
            response = http.post(
                f"{live_server.url}/offerings/{slug}/register",
                data={
                    "csrf_token": token,
                    "session_id": str(session.id),
                    "name": "Racer",
                    "email": f"general{i}@example.com",
                },
                allow_redirects=False,
                timeout=120,
            )
        with lock:
            answers.append(
                ("general", response.status_code, response.headers.get("Location", ""), response.text)
            )

    threads = [threading.Thread(target=with_pass, args=(p,)) for p in pass_paths]
    threads += [threading.Thread(target=registering, args=(i,)) for i in range(GENERAL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    took = [(who, location) for who, code, location, _ in answers if code == 302]
    told = [
        who for who, code, _, text in answers if code == 409 and ONLY_COMMUNITY in text.replace("&#34;", '"')
    ]
    print(f"\nlast general seat, {PASSES} passes and {GENERAL} registrations at once: took {took}")
    assert len(answers) == PASSES + GENERAL
    assert len(took) == 1, answers
    who, location = took[0]
    assert ("/manage/" if who == "pass" else "/pay") in location
    assert len(told) == PASSES + GENERAL - 1  # every other one, in the registration form's words

    _db.session.expire_all()
    pool = _db.session.get(SeatPool, pool_id)
    assert (pool.seats_taken, pool.capacity) == (1, 4)  # one seat taken, never more
    seated = _db.session.scalars(
        sa.select(Registration).where(
            Registration.seat_pool_id == pool_id,
            Registration.status.in_((RegistrationStatus.CONFIRMED, RegistrationStatus.HELD)),
        )
    ).all()
    assert len(seated) == 1 and seated[0].community_seat is False
    assert pricing.community_seats(cls, pool, utcnow()).kept == 3  # the community's three still kept
    spent = sorted(10 - ledger.balance(pass_id) for pass_id in pass_ids)
    assert spent == ([0] * (PASSES - 1) + [1] if who == "pass" else [0] * PASSES)
