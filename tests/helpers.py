"""Small helpers shared by tests."""

import re

import sqlalchemy as sa

from events.extensions import db
from events.models import OutboxEmail


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
