"""A class pass bought by card, end to end: the buy page, the card charged at the Stripe
emulator, the real worker sending "Your class pass" through SMTP in the buyer's language, and
the link in that email opening the pass page with its balance."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
import stripe

from events.models import Pass, PassProduct, PassStatus, PassValidityStart
from tests.helpers import csrf_token, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("localstripe")]

SUCCESS = "4242424242424242"


def product(db) -> PassProduct:
    row = PassProduct(
        name="10-class pass",
        credits=10,
        price_cents=12000,
        validity_days=90,
        validity_starts=PassValidityStart.PURCHASE,
        offering_kinds="class",
    )
    db.session.add(row)
    db.session.commit()
    return row


def buy(client, stripe_client, product_id: int, email: str, lang: str = "en") -> str:
    client.set_cookie("lang", lang)
    url = f"/passes/{product_id}/buy"
    form = client.get(url)
    response = client.post(
        url,
        data={"name": "Ana Lopez", "email": email, "csrf_token": csrf_token(form.get_data(as_text=True))},
    )
    assert response.status_code == 302
    pay_url = response.headers["Location"]
    page = client.get(pay_url)
    token = stripe_client.v1.tokens.create(
        params={"card": {"number": SUCCESS, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    ).id
    paid = client.post(
        pay_url, json={"token": token}, headers={"X-CSRFToken": csrf_token(page.get_data(as_text=True))}
    )
    assert paid.json["status"] == "succeeded"
    return pay_url


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_emailed_link_opens_the_pass_page_with_its_balance(
    client, db, smtp, celery_worker, publish, localstripe, lang
):
    stripe_client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": localstripe})
    email = f"ana-{lang}@example.com"
    buy(client, stripe_client, product(db).id, email, lang)
    held = db.session.scalar(sa.select(Pass).where(Pass.email_normalized == email))
    assert held.status is PassStatus.ACTIVE and held.language == lang

    wait_until(lambda: smtp.to(email), timeout=30, what="the pass email")
    [message] = smtp.to(email)
    # Written in the buyer's language (the words follow once the catalogues are updated).
    assert f'<html lang="{lang}">' in message.get_body(("html",)).get_content()
    if lang == "en":
        assert message["Subject"].startswith("Your class pass at ")
    text = message.get_body(("plain",)).get_content()
    assert "10-class pass" in text and "$120" in text
    [link] = re.findall(r"https?://\S+/pass/\S+", text)
    path = "/" + link.split("/", 3)[3]
    client.set_cookie("lang", "en")
    page = client.get(path)
    assert page.status_code == 200
    assert "10 of 10 credits left" in page.get_data(as_text=True)
