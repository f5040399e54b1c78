""" "Download my data" and "Delete my data" go through a link emailed to the address: whoever
asks learns nothing about whether the address is known (the page and the work are the same for
every address, and the email is always sent), and only its inbox can act on it.

A link is signed (itsdangerous) and names a random nonce stored on a PrivacyRequest row; it
works for PRIVACY_LINK_MINUTES and once: using it records used_at in the same transaction as
the export or the erasure (a second use, even at the same moment, finds it used). The request
row keeps the address only while the link can be used; tidy() empties it after.
At most one link email per address and action per FIND_REGISTRATIONS_EMAIL_MINUTES.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from events.extensions import db
from events.models import EmailStatus, OutboxEmail, PrivacyAction, PrivacyRequest, utcnow
from events.notifications.outbox import EmailKind, dedupe_key, queue_email
from events.privacy import anonymise
from events.registration.services import address_digest

LINK_SALT = "privacy-request"


class LinkProblem(Exception):
    """Why a link can't be used, in words for the person holding it."""

    status = 404


class LinkNotValid(LinkProblem):
    pass


class LinkExpired(LinkProblem):
    status = 410


class LinkUsed(LinkProblem):
    status = 410


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=LINK_SALT)


def link_minutes() -> int:
    return int(current_app.config["PRIVACY_LINK_MINUTES"])


def signed_link(request: PrivacyRequest) -> str:
    return url_for("privacy.link", signed=_serializer().dumps(request.nonce), _external=True)


def _window(now: datetime) -> int:
    return int(now.timestamp() // (60 * current_app.config["FIND_REGISTRATIONS_EMAIL_MINUTES"]))


def request_link(
    email: str, action: PrivacyAction, now: datetime | None = None, language: str = "en"
) -> bool:
    """Email this address a link to export or erase its data, written in `language` (the page's
    it was asked from). Returns whether one was queued (False: one went in the last few
    minutes); callers say the same either way."""
    now = now or utcnow()
    owner = f"a{address_digest(email)}"
    key_parts = (action.value, f"t{_window(now)}")
    key = dedupe_key(EmailKind.PRIVACY_LINK, owner, *key_parts)
    if db.session.scalar(sa.select(OutboxEmail.id).where(OutboxEmail.dedupe_key == key)) is not None:
        db.session.commit()
        return False
    request = PrivacyRequest(
        action=action,
        email=email.strip(),
        nonce=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(minutes=link_minutes()),
    )
    db.session.add(request)
    db.session.flush()
    queued = queue_email(
        EmailKind.PRIVACY_LINK,
        to_email=email.strip(),
        owner=owner,
        key_parts=key_parts,
        context={"request_id": request.id},
        send_after=now,
        language=language,
    )
    if not queued:  # queued meanwhile by a concurrent request for the same address
        db.session.rollback()
        return False
    request.link_email_id = db.session.scalar(sa.select(OutboxEmail.id).where(OutboxEmail.dedupe_key == key))
    db.session.commit()
    return True


def _nonce(signed: str) -> str:
    try:
        nonce = _serializer().loads(signed, max_age=link_minutes() * 60)
    except SignatureExpired as error:
        raise LinkExpired from error
    except BadSignature as error:
        raise LinkNotValid from error
    if not isinstance(nonce, str):
        raise LinkNotValid
    return nonce


def peek(signed: str, now: datetime | None = None) -> PrivacyRequest:
    """The request a link names, if it can still be used (nothing is recorded)."""
    return _usable(
        db.session.scalar(sa.select(PrivacyRequest).where(PrivacyRequest.nonce == _nonce(signed))), now
    )


def claim(signed: str, now: datetime | None = None) -> tuple[PrivacyRequest, str]:
    """Use a link: its request, locked and marked used (the caller commits with its work), and
    the address it was for (emptied on the row; the caller forgets the link email's after its
    work, which an export lists). Raises LinkProblem."""
    now = now or utcnow()
    request = db.session.scalar(
        sa.select(PrivacyRequest)
        .where(PrivacyRequest.nonce == _nonce(signed))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    request = _usable(request, now)
    email = request.email
    request.used_at = now
    request.email = ""
    return request, email


def forget_link_email(request: PrivacyRequest) -> None:
    """Empty the address on the email that carried this request's link (once it is used)."""
    if request.link_email_id is not None:
        anonymise.anonymise_address_emails(OutboxEmail.id == request.link_email_id)


def _usable(request: PrivacyRequest | None, now: datetime | None = None) -> PrivacyRequest:
    now = now or utcnow()
    if request is None:
        raise LinkNotValid
    if request.used_at is not None:
        raise LinkUsed
    if request.expires_at <= now or not request.email:
        raise LinkExpired
    return request


def staff_request(action: PrivacyAction, now: datetime) -> PrivacyRequest:
    """A request made by staff for a caller (no link: it is used at once)."""
    request = PrivacyRequest(
        action=action, email="", nonce=secrets.token_urlsafe(32), created_at=now, expires_at=now, used_at=now
    )
    db.session.add(request)
    db.session.flush()
    return request


def tidy(now: datetime | None = None) -> int:
    """Forget the addresses nobody needs any more (run by housekeeping every minute): links
    used or expired, and erasure confirmations once sent (or given up on)."""
    now = now or utcnow()
    forgotten = anonymise.forget_privacy_requests(PrivacyRequest.expires_at <= now, now)
    finished = (EmailStatus.SENT.value, EmailStatus.FAILED.value)
    done_emails = sa.select(PrivacyRequest.link_email_id).where(
        PrivacyRequest.used_at.is_not(None) | (PrivacyRequest.expires_at <= now)
    )
    confirmations = sa.select(PrivacyRequest.confirmation_email_id)
    forgotten += anonymise.anonymise_address_emails(
        sa.and_(
            OutboxEmail.to_email != "",
            sa.or_(
                OutboxEmail.id.in_(done_emails),
                sa.and_(OutboxEmail.id.in_(confirmations), OutboxEmail.status.in_(finished)),
            ),
        )
    )
    db.session.commit()
    return forgotten
