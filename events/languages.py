"""The languages members read the site and their emails in, and how each request picks one.

The languages offered are data: the LANGUAGES setting lists their codes (English first, the
default), and a language's text comes from its gettext catalogue (translations/<code>/).
Dates, times and money are written by Babel for a language Babel knows (es, so); a language
Babel has no data for (Hmong, `hmn`) is written with the explicit names and patterns declared
beside it in CATALOGUE_ONLY_LANGUAGES, so adding it is a catalogue and a setting, not code.

Which language a request is in (`choose_language`) is a plain function of the `lang` cookie and
the Accept-Language header, so the page cache's middleware decides it for a replayed page
without Flask. Staff pages are always English. The worker renders each email in the language
stored with its person (`in_language`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations
from flask import current_app, g, has_app_context, has_request_context, request
from flask_babel import Domain
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "lang"
LANGUAGE_KEY = "events.language"  # the request's language, kept in its WSGI environ
# The cookie lasts a year: the choice is remembered on this device.
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


@dataclass(frozen=True)
class Language:
    code: str  # the catalogue's folder, the cookie's value, the <html lang>
    name: str  # in its own language: "Español"
    babel_locale: Locale | None  # None: Babel has no data for it; `patterns` write its dates
    patterns: Mapping[str, Any] | None = None
    money_locale: Locale | None = None  # how it writes money, when not babel_locale's way


def _language(
    code: str, catalogue_only: Mapping[str, Mapping[str, Any]], money_locales: Mapping[str, str] | None = None
) -> Language:
    if code in catalogue_only:
        patterns = catalogue_only[code]
        return Language(code, str(patterns["name"]), None, patterns)
    try:
        locale = Locale.parse(code)
    except (UnknownLocaleError, ValueError) as error:
        raise ValueError(
            f"language {code!r}: Babel has no data for it; declare its name and patterns "
            "in CATALOGUE_ONLY_LANGUAGES"
        ) from error
    name = locale.get_display_name(locale) or code
    money = (money_locales or {}).get(code)
    return Language(
        code, name[:1].upper() + name[1:], locale, money_locale=Locale.parse(money) if money else None
    )


def languages_of(config: Mapping[str, Any]) -> dict[str, Language]:
    """The languages offered, by code, in the order the setting lists them (English first)."""
    codes = [code.strip() for code in str(config["LANGUAGES"]).split(",") if code.strip()]
    if DEFAULT_LANGUAGE not in codes:
        codes.insert(0, DEFAULT_LANGUAGE)
    catalogue_only = config["CATALOGUE_ONLY_LANGUAGES"]
    money_locales = config["MONEY_LOCALES"]
    return {code: _language(code, catalogue_only, money_locales) for code in codes}


def languages() -> dict[str, Language]:
    ext = current_app.extensions
    if "languages" not in ext:
        ext["languages"] = languages_of(current_app.config)
    return ext["languages"]


_choices: dict[tuple[str, str, tuple[str, ...]], str] = {}
_choices_lock = threading.Lock()


def choose_language(cookie_value: str | None, accept_language: str | None, codes: tuple[str, ...]) -> str:
    """The language of a public page: the `lang` cookie when it names one offered, else the
    browser's Accept-Language best match, else English. Plain data in, so the page cache's
    middleware can ask it before Flask; answers are remembered (few distinct headers)."""
    if cookie_value in codes:
        return cookie_value
    header = (accept_language or "")[:200]
    key = ("", header, codes)
    found = _choices.get(key)
    if found is None:
        accept = parse_accept_header(header, LanguageAccept)
        found = accept.best_match(codes) or DEFAULT_LANGUAGE
        # es-MX, es-419 match "es" by their primary tag (best_match does "es-MX" -> "es").
        if found not in codes:
            found = found.split("-")[0].lower() if found.split("-")[0].lower() in codes else DEFAULT_LANGUAGE
        with _choices_lock:
            if len(_choices) > 2048:  # a backstop against headers made up to fill memory
                _choices.clear()
            _choices[key] = found
    return found


def is_staff_path(path: str) -> bool:
    return path == "/staff" or path.startswith("/staff/")


def environ_language(environ: Mapping[str, Any], codes: tuple[str, ...]) -> str:
    """The language a raw request asks for (the one rule, for Flask and the page cache's
    middleware alike): staff pages English; the API's `?lang=`; the `lang` cookie; the
    browser's Accept-Language; English."""
    path = environ.get("PATH_INFO", "")
    if is_staff_path(path):
        return DEFAULT_LANGUAGE
    query = environ.get("QUERY_STRING", "")
    if path.startswith("/api/") and "lang=" in query:
        asked = parse_qs(query).get("lang", [""])[0]
        if asked in codes:
            return asked
    return choose_language(
        cookie_value(environ.get("HTTP_COOKIE", ""), LANG_COOKIE), environ.get("HTTP_ACCEPT_LANGUAGE"), codes
    )


def cookie_value(header: str, name: str) -> str | None:
    """One cookie's value from a Cookie header, read without parsing the rest (a language
    code is plain ASCII; anything else simply matches no language)."""
    if name not in header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip('"')
    return None


def request_language() -> str:
    """This request's language (remembered with the request: an app context may outlive it)."""
    chosen = request.environ.get(LANGUAGE_KEY)
    if chosen is None:
        chosen = request.environ[LANGUAGE_KEY] = environ_language(request.environ, tuple(languages()))
    return chosen


def current_language() -> str:
    """The language being written in: forced (an email being rendered), else the request's,
    else English (outside a request: the CLI, a unit test)."""
    if not has_app_context():
        return DEFAULT_LANGUAGE
    forced = g.get("forced_language")
    if forced is not None:
        return forced
    if has_request_context():
        return request_language()
    return DEFAULT_LANGUAGE


def current_language_details() -> Language:
    if not has_app_context():
        return Language(DEFAULT_LANGUAGE, "English", Locale.parse(DEFAULT_LANGUAGE))
    known = languages()
    return known.get(current_language()) or known[DEFAULT_LANGUAGE]


@contextmanager
def in_language(code: str | None) -> Iterator[None]:
    """Text and formatting in `code` (a stored registration's language) for what runs inside,
    whatever language the request around it is in. An unknown code (a language since removed
    from the setting) falls back to English."""
    code = code if code in languages() else DEFAULT_LANGUAGE
    previous = g.get("forced_language")
    g.forced_language = code
    try:
        yield
    finally:
        g.forced_language = previous


def babel_locale_selector() -> str:
    """Flask-Babel's own locale (its format_* helpers): the language's Babel locale, or English
    for a catalogue-only language (our filters write those from its patterns)."""
    details = current_language_details()
    return str(details.babel_locale) if details.babel_locale is not None else DEFAULT_LANGUAGE


class LanguageDomain(Domain):
    """Flask-Babel's domain, with the catalogue picked by our language code rather than a
    babel.Locale, so a language Babel has no data for (hmn) still gets its translations."""

    def get_translations(self) -> NullTranslations:
        if not has_app_context():
            return NullTranslations()
        code = current_language()
        if code == DEFAULT_LANGUAGE:
            return _ENGLISH  # the msgids are the English text
        directories = tuple(self.translation_directories)
        key = (code, directories)
        found = self.cache.get(key)
        if found is None:
            found = Translations()
            for directory in directories:
                # Never fails: a missing .mo gives NullTranslations (the English text).
                catalogue = Translations.load(directory, [code], self.domain[0])
                found.merge(catalogue)  # type: ignore[arg-type]
                if hasattr(catalogue, "plural"):  # (merge does not copy the plural rule)
                    found.plural = catalogue.plural
            self.cache[key] = found
        return found


_ENGLISH = NullTranslations()


def catalogue_missing(directory: str, codes: tuple[str, ...]) -> list[str]:
    """The languages offered whose compiled catalogue (.mo) is missing: their pages would be
    English without a word, so start-up says so (run `make translations`)."""
    return [
        code
        for code in codes
        if code != DEFAULT_LANGUAGE and not (Path(directory) / code / "LC_MESSAGES" / "messages.mo").is_file()
    ]


def switch_url(code: str) -> str:
    """The language switch's link: back to this very page, in `code`."""
    from flask import url_for

    here = request.full_path.rstrip("?") if request.query_string else request.path
    return url_for("language.choose", code=code, next=here)


def safe_next(target: str | None) -> str:
    """Where to go back to after choosing: a path on this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 32 for ch in target):
        return "/"
    return target


def register(app: Any) -> None:
    """The switch's route, the templates' language globals, and Vary on public responses."""
    from flask import Blueprint, Response, redirect
    from flask.typing import ResponseReturnValue

    bp = Blueprint("language", __name__)

    @bp.get("/language/<code>")
    def choose(code: str) -> ResponseReturnValue:
        response = redirect(safe_next(request.args.get("next")), code=303)
        if code in languages():
            response.set_cookie(
                LANG_COOKIE,
                code,
                max_age=LANG_COOKIE_MAX_AGE,
                secure=current_app.config["SESSION_COOKIE_SECURE"],
                httponly=True,
                samesite="Lax",
            )
        return response

    app.register_blueprint(bp)

    # A language offered without its compiled catalogue would show English without a word.
    missing = catalogue_missing(
        str(Path(app.root_path).parent / "translations"), tuple(languages_of(app.config))
    )
    if missing:
        app.logger.warning(
            "No compiled catalogue for %s: run `make translations` (those pages show English)",
            ", ".join(missing),
        )

    @app.after_request
    def vary_on_language(response: Response) -> Response:
        # A public page's language comes from the cookie or Accept-Language: shared caches
        # must keep one copy per language.
        if has_request_context() and not is_staff_path(request.path):
            response.vary.add("Cookie")
            response.vary.add("Accept-Language")
        return response

    app.jinja_env.globals.update(
        current_language=current_language,
        language_choices=lambda: list(languages().values()),
        language_switch_url=switch_url,
    )
