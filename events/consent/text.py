"""A consent version's words in the language being written: staff's translation of that version
when there is one (ConsentTranslation), else the version's own English text with `fallback` set,
so the page marks it lang="en" and says it is in English. What a member is shown is what their
acceptance records: the version and this text's `language`."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import g, has_app_context

from events.extensions import db
from events.languages import DEFAULT_LANGUAGE, current_language
from events.models import ConsentTranslation, ConsentVersion

READ_CONSENT_TRANSLATIONS = "read_consent_translations"  # g's cache of rows read


@dataclass(frozen=True)
class ConsentText:
    version: ConsentVersion
    title: str
    body: str
    language: str  # the language this text is in ("en": the version's own text)
    fallback: bool  # the page's language has no translation of this version: this is the English


def translation_of(version_id: int, language: str) -> ConsentTranslation | None:
    """The translation of a version into `language` (read once per request or email batch)."""
    if language == DEFAULT_LANGUAGE:
        return None
    cache = g.setdefault(READ_CONSENT_TRANSLATIONS, {}) if has_app_context() else {}
    key = (version_id, language)
    if key not in cache:
        cache[key] = db.session.scalar(
            sa.select(ConsentTranslation).where(
                ConsentTranslation.version_id == version_id, ConsentTranslation.language == language
            )
        )
    found: ConsentTranslation | None = cache[key]
    return found


def consent_text(version: ConsentVersion, language: str | None = None) -> ConsentText:
    language = language or current_language()
    english = ConsentText(version, version.document.title, version.body, DEFAULT_LANGUAGE, fallback=False)
    if language == DEFAULT_LANGUAGE or not has_app_context():
        return english
    row = translation_of(version.id, language)
    if row is None:
        return ConsentText(version, version.document.title, version.body, DEFAULT_LANGUAGE, fallback=True)
    return ConsentText(version, row.title, row.body, language, fallback=False)


def forget_read_consent_translations() -> None:
    """After staff publish a translation in this app context."""
    if has_app_context():
        g.pop(READ_CONSENT_TRANSLATIONS, None)
