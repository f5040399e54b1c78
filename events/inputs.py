"""What we accept from people, decided once for every form, route, query and JSON body.

Hostile or pasted input must end in a clear 4xx, never a 500 and never a stored value that
breaks something later (PostgreSQL cannot store NUL; a title with CR/LF cannot go in an
email's Subject). So:
- every form field refuses NUL, lone surrogates and control characters; a multi-line field
  (a textarea) allows newlines and tabs only (see events.forms.Form);
- route ids fit the database's integer column, and path segments carry no control characters;
- request bodies are bounded (MAX_CONTENT_LENGTH, and much less for the small JSON routes);
- money amounts are finite, plain decimals of sane size; dates lie in a sane range;
- JSON bodies are parsed without letting their depth or encoding raise past the view.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import IO, Any, TypeGuard, cast

import flask
from flask import Flask, current_app, request
from flask_babel import gettext
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter, Map, PathConverter, UnicodeConverter
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

# PostgreSQL's `integer` (our id columns): a larger id can only be a 404, not a database error.
DB_INT_MAX = 2**31 - 1

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators (str.splitlines() breaks
# on those too, so they could start a new header line as CR/LF would).
_SINGLE_LINE_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MULTI_LINE_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")  # \t \n \r ok
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2100, 12, 31)

# A money amount as people type it: digits, an optional point and up to two decimals.
# No exponents ("1e400"), no "Infinity"/"NaN", no more than nine digits before the point.
_MONEY = re.compile(r"\$?\s*(\d{1,7}(?:,\d{3})*|\d{1,9})(?:\.(\d{0,2}))?")
MONEY_MAX = Decimal("1000000")

# Stripe object ids (tok_..., pi_...): letters, digits and underscores, nothing else.
_STRIPE_ID = re.compile(r"[A-Za-z0-9_]{1,250}")


# Longer than any field takes (the longest, a description, takes 20,000 characters).
MAX_FIELD_CHARS = 50_000


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Why this text can't be accepted, or None. Said to the person, next to the field."""
    if len(value) > MAX_FIELD_CHARS:
        return gettext("This is far too long.")
    if "\x00" in value:
        return gettext("This can't contain a NUL character.")
    if _LONE_SURROGATE.search(value):
        return gettext("This contains a character that isn't valid text.")
    if (_MULTI_LINE_FORBIDDEN if multiline else _SINGLE_LINE_FORBIDDEN).search(value):
        if multiline:
            return gettext("This can't contain control characters.")
        return gettext("This must be a single line without control characters.")
    return None


def parse_money(text: str) -> Decimal:
    """'12', '12.5', '$1,200.00' -> Decimal; ValueError (with a message to show) otherwise."""
    match = _MONEY.fullmatch(text.strip())
    if not match:
        raise ValueError("Enter an amount in dollars, like 25 or 25.50.")
    amount = Decimal(match.group(1).replace(",", "") + "." + (match.group(2) or "0"))
    if amount > MONEY_MAX:
        raise ValueError("That amount is too large.")
    return amount


def is_stripe_id(value: object, prefix: str) -> TypeGuard[str]:
    return (
        isinstance(value, str)
        and value.startswith(prefix)
        and len(value) > len(prefix)
        and _STRIPE_ID.fullmatch(value) is not None
    )


class JsonBodyError(ValueError):
    """A JSON body that cannot be used; the message is safe to show."""


def json_object_body(max_depth: int = 8) -> dict:
    """The request's JSON body as a dict of plain values, or JsonBodyError.

    Refuses bodies that are not UTF-8 JSON objects, are nested deeper than max_depth
    (checked before parsing: json.loads recurses and would raise RecursionError), or carry a
    lone surrogate ("\\ud800" decodes to a str that no encoder accepts later)."""
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonBodyError("The request body must be UTF-8 JSON.") from None
    if _nesting_depth(text) > max_depth:
        raise JsonBodyError("The request body is nested too deeply.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise JsonBodyError("The request body must be JSON.") from None
    if not isinstance(data, dict):
        raise JsonBodyError("The request body must be a JSON object.")
    if _has_lone_surrogate(data):
        raise JsonBodyError("The request body contains text that isn't valid.")
    return data


def _nesting_depth(text: str) -> int:
    """How deep [ and { nest, ignoring those inside strings (a cheap scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return bool(_LONE_SURROGATE.search(value))
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


# --- Routes ---


class DatabaseIntConverter(IntegerConverter):
    """<int:...> bounded to the integer column it looks up: 2**31 is a 404, not a DB error."""

    regex = r"\d{1,19}"  # longer digit runs never match (int() refuses over 4300 digits)

    def __init__(
        self,
        map: Map,  # noqa: A002
        fixed_digits: int = 0,
        min: int | None = None,  # noqa: A002
        max: int | None = DB_INT_MAX,  # noqa: A002
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class PlainStringConverter(UnicodeConverter):
    """<slug>, <signed>, <token>...: no control characters (a NUL would reach the database)."""

    def __init__(
        self,
        map: Map,  # noqa: A002
        minlength: int = 1,
        maxlength: int | None = None,
        length: int | None = None,
    ) -> None:
        super().__init__(map, minlength=minlength, maxlength=maxlength, length=length)
        self.regex = self.regex.replace("[^/]", "[^/\\x00-\\x1f\\x7f]")


class PlainPathConverter(PathConverter):
    regex = "[^/\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*?"


class _StrictMaxStream(LimitedStream):
    """A chunked body read to its end (request.get_data()) that goes past the maximum is a
    413. werkzeug's own stream stops there silently, so the view would see a truncated body."""

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted and self._stream.read(1):
            raise RequestEntityTooLarge()
        return data


class Request(flask.Request):
    def _get_file_stream(self, *args: Any, **kwargs: Any) -> IO[bytes]:
        stream = super()._get_file_stream(*args, **kwargs)
        self.__dict__.setdefault("_upload_streams", []).append(stream)
        return stream

    def close(self) -> None:
        """Also close the uploads' temporary files when parsing stopped half-way (a field past
        the size limit after a file): werkzeug only closes the files it finished parsing."""
        super().close()
        for stream in self.__dict__.pop("_upload_streams", ()):
            stream.close()

    @cached_property
    def stream(self) -> IO[bytes]:
        stream = super().stream
        if isinstance(stream, LimitedStream) and stream._limit_is_max:
            return cast(IO[bytes], _StrictMaxStream(stream._stream, stream.limit, is_max=True))
        return stream


# Routes whose bodies are small by nature get a much smaller limit than MAX_CONTENT_LENGTH,
# set before anything reads the body (the stream takes its limit when first opened).
SMALL_BODY_ROUTES = {
    "payments.stripe_webhook": "WEBHOOK_MAX_BYTES",
    "registration.pay_submit": "PAY_MAX_BYTES",
}


def install_converters(app: Flask) -> None:
    """Before any route is added: the converters are bound when a rule is. (And the request
    class, which refuses an oversized chunked body instead of truncating it.)"""
    app.request_class = Request
    app.url_map.converters.update(
        int=DatabaseIntConverter,
        default=PlainStringConverter,
        string=PlainStringConverter,
        path=PlainPathConverter,
    )


def register(app: Flask) -> None:
    def limit_request_body() -> None:
        setting = SMALL_BODY_ROUTES.get(request.endpoint or "")
        if setting:
            request.max_content_length = current_app.config[setting]
        elif request.mimetype == "application/x-www-form-urlencoded":
            # Parsed whole into memory (werkzeug applies MAX_FORM_MEMORY_SIZE to multipart
            # forms only): give it the same bound. Only file uploads need MAX_CONTENT_LENGTH.
            request.max_content_length = current_app.config["MAX_FORM_MEMORY_SIZE"]

    # First of all before_request functions: CSRF protection reads the form (and so opens the
    # body stream) in its own.
    app.before_request_funcs.setdefault(None, []).insert(0, limit_request_body)
