"""Everything held about an address, as one JSON document (a person's "Download my data").

What it holds is read from every table that keeps something about a person: their
registrations (with the sessions they cover, their attendance and the consent documents they
accepted, with the language of the text shown), waitlist places, class
passes (with their ledger in words), payments and refunds (of bookings and of passes), the
emails we sent them, the audit entries about their bookings and passes, and their privacy
requests. Nothing of anyone else's: rows are found by this address, or by the ids of the rows
found by it. Staff names are not included (the entries say "staff" or "the system").
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from events import audit
from events.audit import Facts, describe
from events.extensions import db
from events.models import (
    Attendance,
    AuditEntry,
    ConsentAcceptance,
    ConsentVersion,
    OutboxEmail,
    Pass,
    Payment,
    PrivacyRequest,
    Refund,
    Registration,
    Session,
    WaitlistEntry,
    utcnow,
)
from events.notifications.outbox import PASS_KINDS
from events.passes import buying
from events.privacy.anonymise import ADDRESS_EMAIL_KINDS, address_matches, pass_emails
from events.privacy.requests import forget_link_email
from events.registration.services import normalize_email

FORMAT_VERSION = 1


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _session(session: Session) -> dict[str, Any]:
    return {
        "session_id": session.id,
        "starts_at": _when(session.starts_at),
        "ends_at": _when(session.ends_at),
        "location": session.location.name,
        "status": session.status.value,
    }


def _registration(r: Registration, sessions: list[Session]) -> dict[str, Any]:
    return {
        "id": r.id,
        "offering": r.offering.title,
        "offering_kind": r.offering.kind.value,
        "sessions": [_session(s) for s in sessions],
        "name": r.name,
        "email": r.email,
        "phone": r.phone,
        "status": r.status.value,
        "source": r.source,
        "price_cents": r.price_cents,
        "currency": r.currency,
        "created_at": _when(r.created_at),
        "confirmed_at": _when(r.confirmed_at),
        "cancelled_at": _when(r.cancelled_at),
        "cancel_reason": r.cancel_reason,
    }


def _pass(p: Pass) -> dict[str, Any]:
    history = buying.ledger_history(p)
    return {
        "id": p.id,
        "product": p.product.name,
        "name": p.name,
        "email": p.email,
        "status": p.status.value,
        "credits": p.credits,
        "balance": sum(line.credits for line in history),
        "price_cents": p.price_cents,
        "discount_cents": p.discount_cents,
        "currency": p.currency,
        "created_at": _when(p.created_at),
        "activated_at": _when(p.activated_at),
        "expires_at": _when(p.expires_at),
        "paused_since": _when(p.frozen_since),
        "history": [
            {
                "when": _when(line.when),
                "kind": line.kind,
                "credits": line.credits,
                "what": buying.history_words(line),
            }
            for line in history
        ],
    }


def data_for(email: str, now: datetime | None = None) -> dict[str, Any]:
    """The document for this address (any spelling of it: it is normalized)."""
    address = normalize_email(email)
    registrations = list(
        db.session.scalars(
            sa.select(Registration).where(Registration.email_normalized == address).order_by(Registration.id)
        )
    )
    entries = list(
        db.session.scalars(
            sa.select(WaitlistEntry)
            .where(WaitlistEntry.email_normalized == address)
            .order_by(WaitlistEntry.id)
        )
    )
    passes = list(
        db.session.scalars(sa.select(Pass).where(Pass.email_normalized == address).order_by(Pass.id))
    )
    return _document(address, registrations, entries, now, passes)


def data_for_registration(registration: Registration, now: datetime | None = None) -> dict[str, Any]:
    """The document for one registration that has no address (a walk-in who gave none)."""
    return _document("", [registration], [], now)


def _document(
    address: str,
    registrations: list[Registration],
    entries: list[WaitlistEntry],
    now: datetime | None,
    passes: list[Pass] | None = None,
) -> dict[str, Any]:
    passes = passes or []
    pass_ids = [p.id for p in passes]
    reg_ids = [r.id for r in registrations]
    entry_ids = [e.id for e in entries]
    whole = {r.offering_id for r in registrations if r.session_id is None}
    class_ids = {r.session_id for r in registrations if r.session_id is not None}
    pools = {e.seat_pool_id for e in entries}
    sessions = (
        list(
            db.session.scalars(
                sa.select(Session)
                .where(
                    sa.or_(
                        Session.offering_id.in_(whole),
                        Session.id.in_(class_ids),
                        Session.seat_pool_id.in_(pools),
                    )
                )
                .order_by(Session.starts_at, Session.id)
            )
        )
        if whole or class_ids or pools
        else []
    )

    def sessions_of(r: Registration) -> list[Session]:
        if r.session_id is not None:
            return [s for s in sessions if s.id == r.session_id]
        return [s for s in sessions if s.offering_id == r.offering_id]

    payments = list(
        db.session.scalars(
            sa.select(Payment)
            .where(sa.or_(Payment.registration_id.in_(reg_ids), Payment.pass_id.in_(pass_ids)))
            .order_by(Payment.id)
        )
    )
    refunds = list(
        db.session.scalars(
            sa.select(Refund).where(Refund.payment_id.in_([p.id for p in payments])).order_by(Refund.id)
        )
    )
    attendance = list(
        db.session.scalars(
            sa.select(Attendance).where(Attendance.registration_id.in_(reg_ids)).order_by(Attendance.id)
        )
    )
    emails = list(
        db.session.scalars(
            sa.select(OutboxEmail)
            .where(
                sa.or_(
                    OutboxEmail.registration_id.in_(reg_ids),
                    OutboxEmail.waitlist_entry_id.in_(entry_ids),
                    pass_emails(pass_ids),
                    sa.and_(
                        sa.literal(bool(address)),
                        OutboxEmail.kind.in_(ADDRESS_EMAIL_KINDS),
                        address_matches(OutboxEmail.to_email, address),
                    ),
                )
            )
            .order_by(OutboxEmail.id)
        )
    )
    audit_entries = list(
        db.session.scalars(
            sa.select(AuditEntry)
            .where(
                sa.or_(
                    AuditEntry.registration_id.in_(reg_ids),
                    sa.and_(AuditEntry.target_type == "registration", AuditEntry.target_id.in_(reg_ids)),
                    sa.and_(AuditEntry.target_type == "pass", AuditEntry.target_id.in_(pass_ids)),
                )
            )
            .order_by(AuditEntry.id)
        )
    )
    requests = list(
        db.session.scalars(
            sa.select(PrivacyRequest)
            .where(sa.literal(bool(address)), address_matches(PrivacyRequest.email, address))
            .order_by(PrivacyRequest.id)
        )
    )
    acceptances = list(
        db.session.scalars(
            sa.select(ConsentAcceptance)
            .where(ConsentAcceptance.registration_id.in_(reg_ids))
            .options(joinedload(ConsentAcceptance.version).joinedload(ConsentVersion.document))
            .order_by(ConsentAcceptance.id)
        )
    )
    pool_titles = {e.seat_pool_id: e.seat_pool.offering.title for e in entries}
    return {
        "format_version": FORMAT_VERSION,
        "exported_at": _when(now or utcnow()),
        "email": address,
        "registrations": [_registration(r, sessions_of(r)) for r in registrations],
        # The consent documents they accepted: which version, and the language of the text shown.
        "consent_acceptances": [
            {
                "registration_id": a.registration_id,
                "document": a.version.document.title,
                "version": a.version.number,
                "language": a.language,
                "method": a.method.value,
                "accepted_at": _when(a.accepted_at),
            }
            for a in acceptances
        ],
        "waitlist_places": [
            {
                "id": e.id,
                "offering": pool_titles[e.seat_pool_id],
                "sessions": [_session(s) for s in sessions if s.seat_pool_id == e.seat_pool_id],
                "name": e.name,
                "email": e.email,
                "phone": e.phone,
                "status": e.status.value,
                "joined_at": _when(e.created_at),
                "offered_at": _when(e.offered_at),
                "offer_expires_at": _when(e.offer_expires_at),
                "registration_id": e.registration_id,
            }
            for e in entries
        ],
        "passes": [_pass(p) for p in passes],
        "attendance": [
            {
                "registration_id": a.registration_id,
                "session_id": a.session_id,
                "status": a.status.value,
                "marked_at": _when(a.marked_at),
            }
            for a in attendance
        ],
        "payments": [
            {
                "id": p.id,
                "registration_id": p.registration_id,
                "pass_id": p.pass_id,
                "method": p.method.value,
                "amount_cents": p.amount_cents,
                "amount_refunded_cents": p.amount_refunded_cents,
                "currency": p.currency,
                "status": p.status.value,
                "card_brand": p.card_brand,
                "card_last4": p.card_last4,
                "note": p.note,
                "stripe_payment_intent_id": p.stripe_payment_intent_id,
                "paid_at": _when(p.paid_at),
                "created_at": _when(p.created_at),
            }
            for p in payments
        ],
        "refunds": [
            {
                "id": x.id,
                "payment_id": x.payment_id,
                "amount_cents": x.amount_cents,
                "status": x.status.value,
                "kind": x.kind.value,
                "reason": x.reason,
                "created_at": _when(x.created_at),
            }
            for x in refunds
        ],
        "emails": [
            {
                "id": m.id,
                "kind": m.kind,
                "to": m.to_email,
                "status": m.status.value,
                "registration_id": m.registration_id,
                "waitlist_place_id": m.waitlist_entry_id,
                "pass_id": (m.context or {}).get("pass_id") if m.kind in PASS_KINDS else None,
                "created_at": _when(m.created_at),
                "sent_at": _when(m.sent_at),
            }
            for m in emails
        ],
        "history": [
            {
                "id": a.id,
                "when": _when(a.created_at),
                "by": "staff" if a.actor_id else "the system or you",
                "action": a.action,
                "what": describe(
                    Facts(
                        a.action,
                        "Staff" if a.actor_id else "The system",
                        a.target_type,
                        a.target_id,
                        a.details or {},
                    )
                ),
                "registration_id": a.registration_id,
                "pass_id": a.target_id if a.target_type == "pass" else None,
                "details": a.details or {},
            }
            for a in audit_entries
        ],
        "privacy_requests": [
            {
                "id": q.id,
                "action": q.action.value,
                "created_at": _when(q.created_at),
                "expires_at": _when(q.expires_at),
                "used_at": _when(q.used_at),
            }
            for q in requests
        ],
    }


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def counts(document: dict[str, Any]) -> dict[str, int]:
    """How many of each kind of record the document holds (the audit trail records these)."""
    return {key: len(value) for key, value in document.items() if isinstance(value, list)}


def record_export(
    request: PrivacyRequest,
    document: dict[str, Any],
    actor_id: int | None,
    registration_id: int | None = None,
) -> None:
    """Audit a download (what it held, in counts: never the data) and commit the link's use."""
    forget_link_email(request)
    audit.record(
        actor_id,
        "privacy.exported",
        "privacy_request",
        request.id,
        registration_id=registration_id,
        **counts(document),
    )
    db.session.commit()
