"""Prices through a real `celery -A worker.app worker` process on Redis and the SMTP recorder:
a 100% code's free confirmation says how it was priced; the worker's housekeeping sweep gives
back the code use of a hold that ran out."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from events.models import PromoCode, PromoKind, PromoRedemption, RegistrationStatus, utcnow
from events.pricing import PriceChoice
from events.registration.services import Person, register
from tests.factories import workshop
from tests.helpers import wait_until
from tests.worker.conftest import send_task

pytestmark = pytest.mark.slow


def test_a_free_confirmation_by_code_says_how_it_was_priced(db, smtp, celery_worker, publish):
    offering = workshop(price_cents=2000, title="Strong Knees")
    db.session.add(
        PromoCode(code="FREEDAY", code_normalized="FREEDAY", kind=PromoKind.PERCENT_OFF, value=100)
    )
    db.session.commit()

    result = register(
        offering, None, Person("Ana", "ana@example.com"), price_choice=PriceChoice(code="freeday")
    )
    assert result.registration.status == RegistrationStatus.CONFIRMED

    [(rcpt, msg)] = smtp.wait_for(1)
    text = msg.get_body(("plain",)).get_content()
    assert rcpt == "ana@example.com"
    assert "Your price: Price $20, code FREEDAY -$20, nothing to pay" in text


def test_the_housekeeping_sweep_gives_back_a_lapsed_holds_code_use(db, celery_worker, redis_test_db):
    offering = workshop(price_cents=2000)
    db.session.add(
        PromoCode(code="ONCE", code_normalized="ONCE", kind=PromoKind.AMOUNT_OFF, value=500, max_uses=1)
    )
    db.session.commit()
    held = register(offering, None, Person("Bo", "bo@example.com"), price_choice=PriceChoice(code="ONCE"))
    registration_id = held.registration.id
    held.registration.hold_expires_at = utcnow() - timedelta(hours=1)
    db.session.commit()

    send_task(redis_test_db, "worker.tasks.housekeeping")

    def released() -> bool:
        db.session.expire_all()
        return (
            db.session.scalar(
                sa.select(PromoRedemption.released_at).where(
                    PromoRedemption.registration_id == registration_id
                )
            )
            is not None
        )

    wait_until(released, what="the code's use given back")
