"""A waitlist claim priced with a limited promo code, raced over real HTTP on PostgreSQL: the
claimant double-clicks (two submissions from one browser) while others register elsewhere with
the same one-use code. The claim's use is counted under the code's row lock after its pool's,
like registering (events/registration/services.py claim_offer), so the code is used once, the
offer is claimed once, and nobody gets a 500."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from events.models import PromoRedemption, Registration, WaitlistEntry, WaitlistStatus
from events.registration import links
from tests.factories import workshop
from tests.integration.test_pricing import code
from tests.integration.test_pricing_claims_desk_community import offered_seat

pytestmark = pytest.mark.slow

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def test_a_double_clicked_claim_and_four_registrations_share_a_one_use_code_once(live_server, db):
    claimed = workshop(price_cents=2000, capacity=1)
    others = [workshop(price_cents=2000, capacity=3) for _ in range(4)]
    promo = code(db, "ONEUSE", value=50, max_uses=1)
    db.session.commit()
    entry = offered_seat(db, claimed)
    entry_id, promo_id = entry.id, promo.id
    slugs = [o.slug for o in others]  # (read here: the threads must not touch this session)
    claim_url = f"{live_server.url}/waitlist/{links.sign(entry.token, links.WAITLIST_SALT)}"

    start_line = threading.Barrier(6, timeout=120)
    answers: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    claimant = requests.Session()  # one browser, two clicks
    claim_token = TOKEN.search(claimant.get(claim_url, timeout=60).text).group(1)

    def claim(_: int) -> None:
        start_line.wait()
        response = claimant.post(
            claim_url + "/claim",
            data={"csrf_token": claim_token, "code": "oneuse"},
            allow_redirects=False,
            timeout=120,
        )
        with lock:
            answers.append(("claim", response.status_code, response.text))

    def register(i: int) -> None:
        with requests.Session() as http:
            slug = slugs[i]
            token = TOKEN.search(http.get(f"{live_server.url}/offerings/{slug}", timeout=60).text).group(1)
            start_line.wait()
            response = http.post(
                f"{live_server.url}/offerings/{slug}/register",
                data={
                    "csrf_token": token,
                    "name": "Racer",
                    "email": f"racer{i}@example.com",
                    "code": "ONEUSE",
                },
                allow_redirects=False,
                timeout=120,
            )
        with lock:
            answers.append(("register", response.status_code, response.text))

    with ThreadPoolExecutor(max_workers=6) as pool:
        jobs = [pool.submit(claim, n) for n in range(2)] + [pool.submit(register, i) for i in range(4)]
        for job in jobs:
            job.result()
    claimant.close()

    assert all(status < 500 for _, status, _ in answers), answers
    db.session.expire_all()
    uses = db.session.scalars(
        sa.select(PromoRedemption).where(
            PromoRedemption.promo_code_id == promo_id, PromoRedemption.released_at.is_(None)
        )
    ).all()
    assert len(uses) == 1
    with_code = db.session.scalar(
        sa.select(sa.func.count()).select_from(Registration).where(Registration.promo_code_id == promo_id)
    )
    assert with_code == 1 and uses[0].registration_id is not None
    entry = db.session.get_one(WaitlistEntry, entry_id)
    claims = db.session.scalar(
        sa.select(sa.func.count()).select_from(Registration).where(Registration.source == "waitlist")
    )
    if entry.status is WaitlistStatus.CLAIMED:
        # The double click is one claim (both answers lead to it), priced with the code or not.
        assert claims == 1
        assert [status for kind, status, _ in answers if kind == "claim"] == [302, 302]
    else:  # the code went elsewhere first: both clicks told so beside the field, the offer still open
        assert entry.status is WaitlistStatus.OFFERED and claims == 0
        assert all("used up" in body for kind, _, body in answers if kind == "claim")
