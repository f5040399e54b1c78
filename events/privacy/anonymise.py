"""Replacing a person's data with placeholders, in the caller's transaction, set-based.

Rows are never deleted: an anonymised registration still counts in totals, keeps its
attendance, its price and its payments (amounts, dates, methods and Stripe's ids are what
accounting needs). What goes is what names or reaches the person, and what staff typed about
them: name, email, phone, notes and reasons, card details, the browser key, the link token;
the addresses on their outbox rows, and the stored copy of each email (.eml, the embedded
mail default). An email's body is never stored in the database: it is rendered from these rows
when sent, so what remains renders with the placeholders.

Each anonymised row gets its own placeholder address key ("anonymised:r123"): it can never
equal a real address (no "@"), so it neither blocks a new registration by a real person (the
one-per-email rule) nor collides with another anonymised row in a unique index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from flask import current_app

from events.extensions import db
from events.models import (
    AuditEntry,
    EmailStatus,
    OutboxEmail,
    Pass,
    PassLedgerEntry,
    Payment,
    PrivacyRequest,
    PromoRedemption,
    Refund,
    Registration,
    WaitlistEntry,
)
from events.notifications.outbox import PASS_KINDS

PLACEHOLDER_NAME = "Anonymised"
PLACEHOLDER_TEXT = "[removed]"
# Emails about an address rather than a registration: their rows carry the address itself.
ADDRESS_EMAIL_KINDS = ("find_registrations", "privacy_link", "data_erased")
# Keys of an audit entry's details that hold a person's name or words typed about them.
PERSONAL_DETAIL_KEYS = ("name", "email", "phone", "reason", "note", "old_name", "new_name", "to_email")
# Ids per statement: well under SQLite's limit on bound parameters.
CHUNK = 1000

T = TypeVar("T")


def _count(statement: Any) -> int:
    """Run an UPDATE; how many rows it changed."""
    result = cast("sa.CursorResult[Any]", db.session.execute(statement))
    return int(result.rowcount or 0)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _placeholder_key(prefix: str, column: Any) -> sa.ColumnElement[str]:
    return sa.literal(prefix, sa.String) + sa.cast(column, sa.String)


def _text_or_placeholder(column: Any) -> sa.ColumnElement[str]:
    return sa.case((column == "", ""), else_=PLACEHOLDER_TEXT)


def anonymise_registrations(ids: Sequence[int], now: datetime) -> int:
    """Anonymise these registrations and everything hanging off them. Returns how many changed."""
    if not ids:
        return 0
    changed = _count(
        sa.update(Registration)
        .where(Registration.id.in_(ids), Registration.anonymised_at.is_(None))
        .values(
            name=PLACEHOLDER_NAME,
            email="",
            email_normalized=_placeholder_key("anonymised:r", Registration.id),
            phone="",
            cancel_reason=_text_or_placeholder(Registration.cancel_reason),
            browser_key="",
            # Changed, so every manage link sent for it stops working (links are signed with the
            # app's secret: knowing this value does not let anyone make one).
            token=_placeholder_key("anonymised-r", Registration.id),
            anonymised_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    payment_ids = sa.select(Payment.id).where(Payment.registration_id.in_(ids)).scalar_subquery()
    db.session.execute(
        sa.update(Payment)
        .where(Payment.registration_id.in_(ids))
        .values(note=_text_or_placeholder(Payment.note), card_brand="", card_last4="", last_error="")
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Refund)
        .where(Refund.payment_id.in_(payment_ids))
        .values(reason=_text_or_placeholder(Refund.reason), last_error="")
        .execution_options(synchronize_session=False)
    )
    _forget_code_uses(
        PromoRedemption.registration_id.in_(ids), "anonymised:r", PromoRedemption.registration_id
    )
    _anonymise_outbox(OutboxEmail.registration_id.in_(ids))
    _anonymise_audit(
        sa.or_(
            AuditEntry.registration_id.in_(ids),
            sa.and_(AuditEntry.target_type == "registration", AuditEntry.target_id.in_(ids)),
        )
    )
    return changed


def anonymise_waitlist_entries(ids: Sequence[int], now: datetime) -> int:
    if not ids:
        return 0
    changed = _count(
        sa.update(WaitlistEntry)
        .where(WaitlistEntry.id.in_(ids), WaitlistEntry.anonymised_at.is_(None))
        .values(
            name=PLACEHOLDER_NAME,
            email="",
            email_normalized=_placeholder_key("anonymised:w", WaitlistEntry.id),
            phone="",
            token=_placeholder_key("anonymised-w", WaitlistEntry.id),
            anonymised_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    _anonymise_outbox(OutboxEmail.waitlist_entry_id.in_(ids))
    _anonymise_audit(sa.and_(AuditEntry.target_type == "waitlist_entry", AuditEntry.target_id.in_(ids)))
    return changed


def anonymise_passes(ids: Sequence[int], now: datetime, keep_link: bool = False) -> int:
    """Anonymise these class passes and what hangs off them: the holder's name and address,
    their payments' card details and notes, the words staff typed on the ledger, the emails
    about the pass, the audit entries' names. The ledger's credits, the pass's status, price
    and dates, and the payments' amounts stay (the reports count them). A pass anonymised is
    never usable again (ledger.is_usable). `keep_link`: the holder's own request, so the link
    they hold still opens the page, which then says the pass was closed at their request;
    otherwise (retention) the link stops working, as a registration's does."""
    if not ids:
        return 0
    values: dict[str, Any] = {
        "name": PLACEHOLDER_NAME,
        "email": "",
        "email_normalized": _placeholder_key("anonymised:p", Pass.id),
        "anonymised_at": now,
    }
    if not keep_link:
        values["token"] = _placeholder_key("anonymised-p", Pass.id)
    changed = _count(
        sa.update(Pass)
        .where(Pass.id.in_(ids), Pass.anonymised_at.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(PassLedgerEntry)
        .where(PassLedgerEntry.pass_id.in_(ids), PassLedgerEntry.actor_id.is_not(None))
        .values(reason=_text_or_placeholder(PassLedgerEntry.reason))
        .execution_options(synchronize_session=False)
    )
    payment_ids = sa.select(Payment.id).where(Payment.pass_id.in_(ids)).scalar_subquery()
    db.session.execute(
        sa.update(Payment)
        .where(Payment.pass_id.in_(ids))
        .values(note=_text_or_placeholder(Payment.note), card_brand="", card_last4="", last_error="")
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Refund)
        .where(Refund.payment_id.in_(payment_ids))
        .values(reason=_text_or_placeholder(Refund.reason), last_error="")
        .execution_options(synchronize_session=False)
    )
    _forget_code_uses(PromoRedemption.pass_id.in_(ids), "anonymised:p", PromoRedemption.pass_id)
    _anonymise_outbox(pass_emails(ids))
    _anonymise_audit(sa.and_(AuditEntry.target_type == "pass", AuditEntry.target_id.in_(ids)))
    return changed


def pass_emails(ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """The emails about these passes: a pass's kinds of email name it in their context (no
    column of their own; the JSON path reads the same on PostgreSQL and SQLite)."""
    return sa.and_(
        OutboxEmail.kind.in_([str(kind) for kind in PASS_KINDS]),
        OutboxEmail.context["pass_id"].as_integer().in_(ids),
    )


def _forget_code_uses(condition: sa.ColumnElement[bool], prefix: str, owner: Any) -> None:
    """A code's uses keep their count and discount; the address they were counted under goes."""
    db.session.execute(
        sa.update(PromoRedemption)
        .where(condition, ~PromoRedemption.email_normalized.startswith("anonymised:"))
        .values(email_normalized=_placeholder_key(prefix, owner))
        .execution_options(synchronize_session=False)
    )


def anonymise_address_emails(condition: sa.ColumnElement[bool]) -> int:
    """The emails about an address alone (find my registrations, privacy links) that match."""
    return _anonymise_outbox(sa.and_(OutboxEmail.kind.in_(ADDRESS_EMAIL_KINDS), condition))


def address_matches(column: Any, email_normalized: str) -> sa.ColumnElement[bool]:
    """An address column (stored as typed) that is this normalized address."""
    return sa.func.lower(sa.func.trim(column)) == email_normalized


def forget_privacy_requests(condition: sa.ColumnElement[bool], now: datetime) -> int:
    """Empty the address of the privacy requests that match; an unused one can no longer be used."""
    return _count(
        sa.update(PrivacyRequest)
        .where(condition, PrivacyRequest.email != "")
        .values(email="", used_at=sa.func.coalesce(PrivacyRequest.used_at, now))
        .execution_options(synchronize_session=False)
    )


def _anonymise_outbox(condition: sa.ColumnElement[bool]) -> int:
    """Emails not sent yet are dropped (they would go to nobody); the rest lose their address
    and error text, and their stored copies are deleted."""
    db.session.execute(
        sa.delete(OutboxEmail)
        .where(condition, OutboxEmail.status.in_((EmailStatus.PENDING.value, EmailStatus.FAILED.value)))
        .where(~OutboxEmail.id.in_(_privacy_request_emails()))
        .execution_options(synchronize_session=False)
    )
    row_ids = list(
        db.session.scalars(
            sa.update(OutboxEmail)
            .where(condition, sa.or_(OutboxEmail.to_email != "", OutboxEmail.last_error != ""))
            .values(to_email="", last_error="")
            .returning(OutboxEmail.id)
            .execution_options(synchronize_session=False)
        )
    )
    delete_stored_emails(row_ids)
    return len(row_ids)


def _privacy_request_emails() -> sa.CompoundSelect[Any]:
    # A privacy request names its emails (a foreign key): those rows stay, emptied.
    return sa.union(
        sa.select(PrivacyRequest.link_email_id).where(PrivacyRequest.link_email_id.is_not(None)),
        sa.select(PrivacyRequest.confirmation_email_id).where(
            PrivacyRequest.confirmation_email_id.is_not(None)
        ),
    )


def delete_stored_emails(row_ids: Iterable[int]) -> int:
    """Delete the .eml copies the embedded mail default wrote for these outbox rows."""
    folder = Path(current_app.config["MAIL_OUTBOX_DIR"])
    if not folder.is_dir():
        return 0
    deleted = 0
    for row_id in row_ids:
        path = folder / f"outbox-{row_id:08d}.eml"
        if path.exists():
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def scrub_details(details: object) -> dict:
    """An audit entry's details with the person's name and typed words replaced."""
    if not isinstance(details, dict):
        return {}
    return {
        key: (PLACEHOLDER_NAME if key.endswith("name") else PLACEHOLDER_TEXT)
        if key in PERSONAL_DETAIL_KEYS and value not in ("", None)
        else value
        for key, value in details.items()
    }


def _anonymise_audit(condition: sa.ColumnElement[bool]) -> int:
    """Audit entries stay (who did what, when, for how much); the person's name and the words
    typed about them go. Few rows per person: read and rewritten, portable JSON."""
    rows = db.session.execute(sa.select(AuditEntry.id, AuditEntry.details).where(condition)).all()
    updates = []
    for entry_id, details in rows:
        scrubbed = scrub_details(details)
        if scrubbed != details:
            updates.append({"entry_id": entry_id, "details": scrubbed})
    if updates:
        table = cast(sa.Table, AuditEntry.__table__)
        db.session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("entry_id"))
            .values(details=sa.bindparam("details")),
            updates,
        )
    return len(updates)
