"""Consent documents, their versions and who accepted which.

A document's text lives in versions: publishing makes the next number, and a published text
never changes (an update of a version is refused below), so an acceptance names exactly the
words the person read. An offering may require a document; booking it asks for the current
version (the highest number), and the version the form showed must still be current when the
form comes back: otherwise the person is shown the new text, never recorded as accepting an
old one. Each booking asks again, so someone who accepted version 1 is asked for version 2 at
their next booking. People booked without the current version (by staff on the phone, walk-ins,
before the document existed or changed) are flagged on the roster and can accept on the
instructor's phone at check-in.

A version may be translated (ConsentTranslation, one per language, written by staff after the
version is published). A translation never changes either (updates and deletes are refused
below): members read the version in their page's language when it has one, else the English
text, marked as English (events/consent/text.py), and each acceptance records the language of
the text shown, so the version and that language name exactly the words accepted. A correction
of a translation is a new version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, object_session

from events import audit
from events.consent.text import consent_text, forget_read_consent_translations, translation_of
from events.extensions import db
from events.forms import FieldError
from events.languages import DEFAULT_LANGUAGE, languages
from events.models import (
    ConsentAcceptance,
    ConsentDocument,
    ConsentMethod,
    ConsentTranslation,
    ConsentVersion,
    Offering,
    OfferingConsent,
    Registration,
    User,
    utcnow,
)

TITLE_MAX = 200
BODY_MAX = 50_000


@event.listens_for(ConsentVersion, "before_update")
def _published_text_never_changes(_mapper: Any, _connection: Any, version: ConsentVersion) -> None:
    # (Called for every dirty version, also one whose columns did not change: only a change counts.)
    session = object_session(version)
    if session is not None and session.is_modified(version, include_collections=False):
        raise ValueError("a published consent version never changes; publish a new one instead")


@event.listens_for(ConsentTranslation, "before_update")
def _translation_never_changes(_mapper: Any, _connection: Any, translation: ConsentTranslation) -> None:
    session = object_session(translation)
    if session is not None and session.is_modified(translation, include_collections=False):
        raise ValueError("a consent translation never changes; publish a new version instead")


@event.listens_for(ConsentTranslation, "before_delete")
def _translation_never_removed(_mapper: Any, _connection: Any, _translation: ConsentTranslation) -> None:
    raise ValueError("a consent translation is never removed: acceptances name its words")


# --- What booking asks for ---


@dataclass(frozen=True)
class ConsentAnswer:
    """What a booking form sent: the id of the version it showed, whether the box was ticked,
    and the language of the text it showed ("en": the version's own text)."""

    shown_version_id: int | None
    agreed: bool
    shown_language: str | None = DEFAULT_LANGUAGE


@dataclass(frozen=True)
class ShownText:
    """A version to record as accepted, and the language of the text that was shown."""

    version: ConsentVersion
    language: str


class ConsentError(FieldError):
    """The consent asked for on a booking form was not given as it must be; the message is for
    the person and is shown beside the consent checkbox."""

    def __init__(self, message: str, version: ConsentVersion) -> None:
        super().__init__(message, "consent")
        self.version = version  # the current version, to show again


class ConsentNotGiven(ConsentError):
    pass


class ConsentChanged(ConsentError):
    """The version the form showed is no longer the current one."""


def current_version(document_id: int | None) -> ConsentVersion | None:
    if document_id is None:
        return None
    return db.session.scalar(
        sa.select(ConsentVersion)
        .where(ConsentVersion.document_id == document_id)
        .order_by(ConsentVersion.number.desc())
        .limit(1)
    )


def required_version(offering: Offering) -> ConsentVersion | None:
    """The version booking this offering asks to be accepted; None when it requires none."""
    return current_version(offering.consent_document_id)


def version_to_accept(
    offering: Offering,
    shown_version_id: int | None,
    agreed: bool,
    shown_language: str | None = DEFAULT_LANGUAGE,
) -> ShownText | None:
    """Check a booking form's consent answer: the version it showed (its id), the language of
    the text it showed, and the tick. Returns the version and language to record (None: the
    offering requires none). Raises ConsentChanged if a newer version was published since the
    form was shown (whatever the tick: they agreed to other words) or the form names a text that
    does not exist (a language with no translation of this version), ConsentNotGiven if the box
    was not ticked. A translation published after the form showed the English is no change:
    they read and accepted the English, and that is what is recorded."""
    current = required_version(offering)
    if current is None:
        return None
    language = shown_language or DEFAULT_LANGUAGE
    shown_exists = language == DEFAULT_LANGUAGE or (
        language in languages() and translation_of(current.id, language) is not None
    )
    if shown_version_id is not None and (shown_version_id != current.id or not shown_exists):
        raise ConsentChanged(
            _(
                "The %(title)s changed since you opened this page. Please read the new version "
                "below and tick the box to agree.",
                title=consent_text(current).title,
            ),
            current,
        )
    if not agreed or shown_version_id is None:
        raise ConsentNotGiven(
            _("Please read the %(title)s and tick the box to agree.", title=consent_text(current).title),
            current,
        )
    return ShownText(current, language)


def record_acceptance(
    registration: Registration,
    shown: ShownText,
    now: datetime,
    method: ConsentMethod = ConsentMethod.ONLINE,
    handed_by: User | None = None,
) -> ConsentAcceptance:
    """Add the acceptance in the caller's transaction (the one that makes the booking)."""
    acceptance = ConsentAcceptance(
        registration_id=registration.id,
        consent_version_id=shown.version.id,
        accepted_at=now,
        method=method,
        handed_by_id=handed_by.id if handed_by else None,
        language=shown.language,
    )
    db.session.add(acceptance)
    return acceptance


def accepted_current(registration_ids: Iterable[int], version: ConsentVersion) -> set[int]:
    """Which of these registrations accepted this version (one query)."""
    return set(accepted_languages(registration_ids, version))


def accepted_languages(registration_ids: Iterable[int], version: ConsentVersion) -> dict[int, str]:
    """Those of these registrations that accepted this version, with the language of the text
    they were shown (one query)."""
    ids = list(registration_ids)
    if not ids:
        return {}
    return dict(
        db.session.execute(
            sa.select(ConsentAcceptance.registration_id, ConsentAcceptance.language).where(
                ConsentAcceptance.consent_version_id == version.id,
                ConsentAcceptance.registration_id.in_(ids),
            )
        )
        .tuples()
        .all()
    )


def acceptances_of(registration_id: int) -> list[ConsentAcceptance]:
    """A registration's acceptances, newest first, with their versions and documents."""
    return list(
        db.session.scalars(
            sa.select(ConsentAcceptance)
            .where(ConsentAcceptance.registration_id == registration_id)
            .options(
                joinedload(ConsentAcceptance.version).joinedload(ConsentVersion.document),
                joinedload(ConsentAcceptance.handed_by),
            )
            .order_by(ConsentAcceptance.accepted_at.desc(), ConsentAcceptance.id.desc())
        )
    )


# --- Accepting on the instructor's phone ---


class InPersonOutcome:
    RECORDED = "recorded"
    ALREADY = "already"


def accept_in_person(
    registration: Registration,
    shown_version_id: int | None,
    agreed: bool,
    actor: User,
    session_id: int,
    session_when: str,
    now: datetime | None = None,
    shown_language: str | None = DEFAULT_LANGUAGE,
) -> str:
    """The person read the current version on a staff member's phone (in `shown_language`) and
    ticked: record it, naming whose phone it was, and audit it. The caller has checked the
    registration is on a roster this staff member may use. Accepting twice records once (ALREADY)."""
    now = now or utcnow()
    shown = version_to_accept(registration.offering, shown_version_id, agreed, shown_language)
    if shown is None:
        raise FieldError(_("This class doesn't ask for a consent document."))
    version = shown.version
    if registration.id in accepted_current([registration.id], version):
        db.session.commit()
        return InPersonOutcome.ALREADY
    record_acceptance(registration, shown, now, ConsentMethod.IN_PERSON, handed_by=actor)
    try:
        db.session.flush()
    except IntegrityError:  # the same tick sent twice at once: one acceptance
        db.session.rollback()
        return InPersonOutcome.ALREADY
    audit.record_about(
        actor.id,
        "consent.accepted_in_person",
        registration,
        session_id=session_id,
        session_start=session_when,
        document_title=version.document.title,
        version=version.number,
        consent_version_id=version.id,
        language=shown.language,
    )
    db.session.commit()
    return InPersonOutcome.RECORDED


# --- Admin: documents and versions ---


class ConsentAdminError(FieldError):
    """A rule stops this change to a consent document; the message is for the admin."""


def _clean_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise ConsentAdminError("Give the document a title.", "title")
    if len(title) > TITLE_MAX:
        raise ConsentAdminError(f"Keep the title under {TITLE_MAX} characters.", "title")
    return title


def _clean_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise ConsentAdminError("Write the text people will read and agree to.", "body")
    if len(body) > BODY_MAX:
        raise ConsentAdminError(f"Keep the text under {BODY_MAX:,} characters.", "body")
    return body


def create_document(title: str, body: str, actor: User, now: datetime | None = None) -> ConsentDocument:
    """A new document with its first version, published at once."""
    now = now or utcnow()
    document = ConsentDocument(title=_clean_title(title), created_at=now, created_by_id=actor.id)
    db.session.add(document)
    db.session.flush()
    version = ConsentVersion(
        document_id=document.id, number=1, body=_clean_body(body), published_at=now, published_by_id=actor.id
    )
    db.session.add(version)
    db.session.flush()
    audit.record(
        actor.id,
        "consent_document.created",
        "consent_document",
        document.id,
        title=document.title,
        version=1,
        consent_version_id=version.id,
    )
    db.session.commit()
    return document


def publish_version(
    document: ConsentDocument, body: str, actor: User, now: datetime | None = None
) -> ConsentVersion:
    """The next version of a document. Everyone booking from now on is asked to accept it;
    those already booked are flagged on their rosters. The document row is locked so two
    admins publishing at once get versions n+1 and n+2, not a clash."""
    now = now or utcnow()
    body = _clean_body(body)
    db.session.execute(
        sa.select(ConsentDocument.id).where(ConsentDocument.id == document.id).with_for_update()
    )
    current = current_version(document.id)
    if current is not None and current.body == body:
        raise ConsentAdminError(
            f"That is the same text as version {current.number}. Change the text to publish a new version.",
            "body",
        )
    number = (current.number if current else 0) + 1
    version = ConsentVersion(
        document_id=document.id, number=number, body=body, published_at=now, published_by_id=actor.id
    )
    db.session.add(version)
    db.session.flush()
    audit.record(
        actor.id,
        "consent_version.published",
        "consent_document",
        document.id,
        title=document.title,
        version=number,
        consent_version_id=version.id,
    )
    db.session.commit()
    return version


def translation_languages() -> dict[str, str]:
    """The languages a consent version may be translated into: every language members read but
    English, by code, with its name."""
    return {code: lang.name for code, lang in languages().items() if code != DEFAULT_LANGUAGE}


def publish_translation(
    document: ConsentDocument,
    version_id: int,
    language: str,
    title: str,
    body: str,
    actor: User,
    now: datetime | None = None,
) -> ConsentTranslation:
    """The translation of the document's current version into `language`. Written once: it
    never changes after (members may already have accepted it), so a version that already has a
    translation in this language is refused, and a correction is a new version. `version_id` is
    the version the admin's form showed: if a newer one was published since, this is refused
    (the translation would be of other words). The document row is locked as publish_version
    locks it, so a version and a translation published at once are ordered."""
    now = now or utcnow()
    names = translation_languages()
    if language not in names:
        raise ConsentAdminError("Choose a language members read.", "language")
    title, body = _clean_title(title), _clean_body(body)
    db.session.execute(
        sa.select(ConsentDocument.id).where(ConsentDocument.id == document.id).with_for_update()
    )
    current = current_version(document.id)
    if current is None or current.id != version_id:
        raise ConsentAdminError(
            "A newer version of this document was published since you opened the page: "
            "translate that version instead.",
            None,
        )
    if translation_of(current.id, language) is not None:
        raise ConsentAdminError(
            f"Version {current.number} already has its {names[language]} translation, and it never "
            "changes. To correct it, publish a new version and translate that.",
            None,
        )
    translation = ConsentTranslation(
        version_id=current.id,
        language=language,
        title=title,
        body=body,
        published_at=now,
        published_by_id=actor.id,
    )
    db.session.add(translation)
    try:
        db.session.flush()
    except IntegrityError:  # two admins at once on SQLite's lock-free read: the first one stands
        db.session.rollback()
        raise ConsentAdminError(
            f"Version {current.number} already has its {names[language]} translation.", None
        ) from None
    audit.record(
        actor.id,
        "consent_translation.published",
        "consent_document",
        document.id,
        title=document.title,
        version=current.number,
        consent_version_id=current.id,
        language=language,
    )
    db.session.commit()
    forget_read_consent_translations()
    return translation


@dataclass(frozen=True)
class DocumentLine:
    document: ConsentDocument
    current: ConsentVersion | None
    offerings: list[Offering]


def documents() -> list[ConsentDocument]:
    return list(db.session.scalars(sa.select(ConsentDocument).order_by(ConsentDocument.title)))


def document_lines() -> list[DocumentLine]:
    """Every document with its current version and the offerings that require it (3 queries)."""
    docs = documents()
    latest = (
        sa.select(ConsentVersion.document_id, sa.func.max(ConsentVersion.number).label("number"))
        .group_by(ConsentVersion.document_id)
        .subquery()
    )
    currents = {
        v.document_id: v
        for v in db.session.scalars(
            sa.select(ConsentVersion).join(
                latest,
                sa.and_(
                    ConsentVersion.document_id == latest.c.document_id,
                    ConsentVersion.number == latest.c.number,
                ),
            )
        )
    }
    by_document: dict[int, list[Offering]] = {}
    for document_id, offering in db.session.execute(
        sa.select(OfferingConsent.consent_document_id, Offering)
        .join(Offering, Offering.id == OfferingConsent.offering_id)
        .order_by(Offering.title)
    ).tuples():
        by_document.setdefault(document_id, []).append(offering)
    return [DocumentLine(d, currents.get(d.id), by_document.get(d.id, [])) for d in docs]


def document_history(document: ConsentDocument) -> list[ConsentVersion]:
    """Every version, newest first, with who published it."""
    return list(
        db.session.scalars(
            sa.select(ConsentVersion)
            .where(ConsentVersion.document_id == document.id)
            .options(joinedload(ConsentVersion.published_by))
            .order_by(ConsentVersion.number.desc())
        )
    )


def acceptance_counts(document: ConsentDocument) -> dict[int, int]:
    """How many registrations accepted each version of this document."""
    return dict(
        db.session.execute(
            sa.select(ConsentAcceptance.consent_version_id, sa.func.count())
            .join(ConsentVersion, ConsentVersion.id == ConsentAcceptance.consent_version_id)
            .where(ConsentVersion.document_id == document.id)
            .group_by(ConsentAcceptance.consent_version_id)
        )
        .tuples()
        .all()
    )
