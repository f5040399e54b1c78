"""A promo code's limits hold however many people use it at once: real threads, each its own
browser, against the app on a real port, on PostgreSQL. Each use is counted under the code
row's lock (after the seat pool's), so a 5-use code is used exactly 5 times.

A control takes the lock away (the count and the insert race, the window widened) to show that
the test beside it would catch an overuse."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from events import pricing
from events.models import PromoCode, PromoKind, PromoRedemption, Registration
from tests.factories import workshop

pytestmark = pytest.mark.slow

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def race(base_url: str, attempts: list[tuple[str, str]], code: str) -> dict[str, int]:
    """Each (offering slug, email) opens its page in its own browser, then all press Register with
    `code` at the same moment. Counts: registered (redirected on), refused (a form error about
    the code), other, errors (5xx or no answer)."""
    start_line = threading.Barrier(len(attempts), timeout=120)
    lock = threading.Lock()
    outcome = {"registered": 0, "refused": 0, "other": 0, "errors": 0}

    def attempt(item: tuple[str, str]) -> None:
        slug, email = item
        with requests.Session() as http:
            try:
                page = http.get(f"{base_url}/offerings/{slug}", timeout=60)
                token = TOKEN.search(page.text).group(1)
            except Exception:
                start_line.abort()
                raise
            start_line.wait()
            try:
                response = http.post(
                    f"{base_url}/offerings/{slug}/register",
                    data={"csrf_token": token, "name": "Racer", "email": email, "code": code},
                    allow_redirects=False,
                    timeout=120,
                )
                status, body = response.status_code, response.text
            except requests.RequestException:
                status, body = 599, ""
        with lock:
            if status == 302:
                outcome["registered"] += 1
            elif status == 409 and ("used up" in body or "already been used with this email" in body):
                outcome["refused"] += 1
            elif status >= 500:
                outcome["errors"] += 1
            else:
                outcome["other"] += 1

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        list(pool.map(attempt, attempts))
    return outcome


def make_code(db, text: str, **kw) -> PromoCode:
    promo = PromoCode(
        code=text, code_normalized=text, kind=PromoKind.PERCENT_OFF, value=kw.pop("value", 20), **kw
    )
    db.session.add(promo)
    return promo


def uses_written(db, code_id: int) -> int:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.count()).where(
            PromoRedemption.promo_code_id == code_id, PromoRedemption.released_at.is_(None)
        )
    )


@pytest.mark.parametrize("spread", ["one offering", "twenty offerings"])
def test_twenty_at_once_for_a_five_use_code_exactly_five(live_server, db, spread):
    """On one offering they also queue on its pool's lock; on twenty, only the code's row
    lock stands between them."""
    if spread == "one offering":
        offering = workshop(price_cents=2000, capacity=40)
        attempts = [(offering.slug, f"racer{i}@example.com") for i in range(20)]
    else:
        attempts = [(workshop(price_cents=2000, capacity=3).slug, f"racer{i}@example.com") for i in range(20)]
    promo = make_code(db, "FIVEUSES", max_uses=5)
    db.session.commit()

    started = time.perf_counter()
    result = race(live_server.url, attempts, "fiveuses")
    elapsed = time.perf_counter() - started

    print(f"\npromo race ({spread}): 20 at once for a 5-use code -> {result} in {elapsed:.2f}s")
    assert result == {"registered": 5, "refused": 15, "other": 0, "errors": 0}
    assert uses_written(db, promo.id) == 5
    priced = db.session.scalars(
        sa.select(Registration.price_cents).where(Registration.promo_code_id == promo.id)
    )
    assert list(priced) == [1600] * 5  # $20 - 20%
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 5


def test_the_per_email_limit_holds_across_offerings_at_once(live_server, db):
    """One address on ten offerings at once with a once-per-email code: one use."""
    offerings = [workshop(price_cents=1500, capacity=5) for _ in range(10)]
    promo = make_code(db, "ONCEEACH", max_uses_per_email=1)
    db.session.commit()

    result = race(live_server.url, [(o.slug, "same.person@example.com") for o in offerings], "ONCEEACH")

    print(f"\npromo race: one email, ten offerings, once per email -> {result}")
    assert result == {"registered": 1, "refused": 9, "other": 0, "errors": 0}
    assert uses_written(db, promo.id) == 1


def check_uses_without_the_lock(code_id: int, email_normalized: str, now):
    """lock_for_use() as read-then-write: no row lock, the window between count and insert widened."""
    from events.extensions import db as _db

    code = _db.session.get(PromoCode, code_id)
    pricing.check_uses(code, email_normalized)
    time.sleep(0.05)
    return code


def test_control_without_the_code_lock_the_same_crowd_overuses_it(live_server, db, monkeypatch):
    """If this control ever stops overusing, the five-use test above proves nothing."""
    monkeypatch.setattr(pricing, "lock_for_use", check_uses_without_the_lock)
    offering = workshop(price_cents=2000, capacity=40)
    # A class per person would serialise them on one pool's lock: a pool each keeps them apart.
    others = [workshop(price_cents=2000, capacity=5) for _ in range(11)]
    promo = make_code(db, "CONTROL", max_uses=5)
    db.session.commit()

    attempts = [(offering.slug, "first@example.com")] + [
        (o.slug, f"control{i}@example.com") for i, o in enumerate(others)
    ]
    result = race(live_server.url, attempts, "CONTROL")

    print(f"\ncontrol: no code lock -> {result}")
    assert result["errors"] == 0
    assert uses_written(db, promo.id) > 5


def test_community_seats_never_oversold_when_many_ask_at_once(live_server, db):
    """Three community seats ($0) kept in a class of six, with two general seats already taken:
    twenty choosing a community seat at once -> three; the general seat left stays general."""
    from events.models import SeatPool

    offering = workshop(price_cents=1500, capacity=6, community_seats=3, community_price_cents=0)
    offering.community_release_hours = 24
    db.session.commit()
    pool_id, slug = offering.sessions[0].seat_pool_id, offering.slug
    db.session.execute(sa.update(SeatPool).where(SeatPool.id == pool_id).values(seats_taken=2))
    db.session.commit()

    start_line = threading.Barrier(20, timeout=120)
    outcome = {"confirmed": 0, "refused": 0, "other": 0}
    lock = threading.Lock()

    def attempt(i: int) -> None:
        with requests.Session() as http:
            page = http.get(f"{live_server.url}/offerings/{slug}", timeout=60)
            token = TOKEN.search(page.text).group(1)
            start_line.wait()
            response = http.post(
                f"{live_server.url}/offerings/{slug}/register",
                data={
                    "csrf_token": token,
                    "name": "Racer",
                    "email": f"community{i}@example.com",
                    "price_choice": "community",
                },
                allow_redirects=False,
                timeout=120,
            )
        with lock:
            if response.status_code == 302 and "/manage/" in response.headers["Location"]:
                outcome["confirmed"] += 1
            elif response.status_code == 409 and "community seats are all taken" in response.text:
                outcome["refused"] += 1
            else:
                outcome["other"] += 1

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(attempt, range(20)))

    print(f"\ncommunity race: 20 at once for 3 community seats -> {outcome}")
    assert outcome == {"confirmed": 3, "refused": 17, "other": 0}
    db.session.expire_all()
    pool = db.session.get(SeatPool, pool_id)
    assert (pool.seats_taken, pool.capacity) == (5, 6)
    community = db.session.scalar(
        sa.select(sa.func.count()).where(
            Registration.seat_pool_id == pool_id, Registration.community_seat.is_(True)
        )
    )
    assert community == 3


def test_ten_buying_a_pass_at_once_with_a_three_use_code_exactly_three_and_no_deadlock(live_server, db):
    """A pass purchase locks the code's row before it writes the pass that names it: written the
    other way round, the foreign key's share lock on the code makes two buyers deadlock (a 500)."""
    from events.models import Pass, PassProduct

    product = PassProduct(name="5-class pass", credits=5, price_cents=5000, validity_days=60)
    db.session.add(product)
    promo = make_code(db, "THREEPASS", max_uses=3, applies_to_passes=True)
    db.session.commit()
    url = f"{live_server.url}/passes/{product.id}/buy"
    start_line = threading.Barrier(10, timeout=120)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        with requests.Session() as http:
            token = TOKEN.search(http.get(url, timeout=60).text).group(1)
            start_line.wait()
            data = {
                "csrf_token": token,
                "name": "Racer",
                "email": f"racer{i}@example.com",
                "code": "threepass",
            }
            status = http.post(url, data=data, allow_redirects=False, timeout=120).status_code
        with lock:
            statuses.append(status)

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(attempt, range(10)))

    assert sorted(statuses) == [302] * 3 + [400] * 7
    assert uses_written(db, promo.id) == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Pass)) == 3
