"""An offering's own words (title, summary, description, what to bring, and its sliding-scale
tiers' names) in the language being written: staff's translation when there is one
(OfferingTranslation, PriceTierTranslation), else the English text with `fallback` set, so the
page or email can say the text is in English."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from flask import g, has_app_context

from events.extensions import db
from events.languages import DEFAULT_LANGUAGE, current_language
from events.models import Offering, OfferingTranslation, PriceTier, PriceTierTranslation

T = TypeVar("T")
READ_TRANSLATIONS = "read_translations"  # g's cache of the translation rows read


@dataclass(frozen=True)
class OfferingText:
    title: str
    summary: str
    description: str
    what_to_bring: str
    language: str  # the language this text is in
    fallback: bool  # the page's language has no translation: this is the English text


def _english(offering: Offering, fallback: bool) -> OfferingText:
    return OfferingText(
        offering.title,
        offering.summary,
        offering.description,
        offering.what_to_bring,
        DEFAULT_LANGUAGE,
        fallback,
    )


def _read_once(model: type[T], owner_id: str, language: str) -> dict[int, T]:
    """Every row of a translation table (`model`) in `language`, by its owner's id (`owner_id`),
    read once per request or email batch: one statement however many a page lists."""
    cache = g.setdefault(READ_TRANSLATIONS, {})
    key = (model.__name__, language)
    found = cache.get(key)
    if found is None:
        rows = db.session.scalars(sa.select(model).where(model.language == language))  # type: ignore[attr-defined]
        found = cache[key] = {getattr(row, owner_id): row for row in rows}
    return found


def offering_text(offering: Offering, language: str | None = None) -> OfferingText:
    language = language or current_language()
    if language == DEFAULT_LANGUAGE or not has_app_context():
        return _english(offering, fallback=False)
    row = _read_once(OfferingTranslation, "offering_id", language).get(offering.id)
    if row is None or not row.title.strip():
        return _english(offering, fallback=True)
    return OfferingText(
        row.title,
        row.summary or offering.summary,
        row.description or offering.description,
        row.what_to_bring or offering.what_to_bring,
        language,
        fallback=False,
    )


@dataclass(frozen=True)
class TierText:
    name: str
    description: str
    language: str
    fallback: bool  # the page's language has no translation of this tier: this is the English


def tier_text(tier: PriceTier, language: str | None = None) -> TierText:
    """A sliding-scale tier's name and description in the language being written."""
    language = language or current_language()
    if language == DEFAULT_LANGUAGE or not has_app_context():
        return TierText(tier.name, tier.description, DEFAULT_LANGUAGE, fallback=False)
    row = _read_once(PriceTierTranslation, "price_tier_id", language).get(tier.id)
    if row is None or not row.name.strip():
        return TierText(tier.name, tier.description, DEFAULT_LANGUAGE, fallback=True)
    return TierText(row.name, row.description or tier.description, language, fallback=False)


def forget_read_translations() -> None:
    """After staff save a translation (a long-lived app context, such as the worker's)."""
    if has_app_context():
        g.pop(READ_TRANSLATIONS, None)
