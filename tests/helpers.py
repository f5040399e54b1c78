"""Small helpers shared by tests."""

import re
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from events.extensions import db
from events.models import OutboxEmail, WebhookEvent

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, what: str = "the condition", every: float = 0.05
) -> T:
    """Ask `predicate` every `every` seconds until it answers something true, and return that
    answer; fail the test after `timeout` seconds. The one way tests wait for another thread or
    process: never a sleep of a guessed length."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'data-csrf-token="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def outbox_kinds(**filters) -> list[str]:
    query = sa.select(OutboxEmail.kind).order_by(OutboxEmail.id)
    for name, value in filters.items():
        query = query.where(getattr(OutboxEmail, name) == value)
    return list(db.session.scalars(query))


def charge_card(*, registration_id: int, card_token: str, amount: int, currency: str, description: str):
    """A card charged at Stripe without our pay page (another tab, a page that closed): the
    intent created and confirmed, and nothing recorded on our side."""
    from events.payments.gateway import IntentFor, get_gateway

    gateway = get_gateway()
    intent = gateway.create_intent(
        IntentFor(registration_id=registration_id, label=description),
        card_token=card_token,
        amount=amount,
        currency=currency,
    )
    return gateway.confirm_intent(intent.id)


def cancel_form(html: str) -> dict:
    """What the cancel confirmation page posts: its token and the refund it showed."""
    match = re.search(r'name="refund_cents" value="(\d+)"', html)
    assert match, "not the cancel confirmation page"
    return {"csrf_token": csrf_token(html), "refund_cents": match.group(1)}


def wait_for_webhooks(
    count: int, event_type: str = "payment_intent.succeeded", timeout: float = 15.0
) -> None:
    """Wait until the emulator has delivered `count` events of a type to the live app: a test
    that charges a card leaves no webhook in flight to land in the next test's tables."""

    def delivered() -> bool:
        db.session.rollback()  # a fresh snapshot each time
        query = sa.select(sa.func.count()).select_from(WebhookEvent).where(WebhookEvent.type == event_type)
        return (db.session.scalar(query) or 0) >= count

    wait_until(
        delivered, timeout=timeout, what=f"the emulator to deliver {count} {event_type} events", every=0.1
    )
