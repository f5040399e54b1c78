"""Jinja filters for money and local times."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from flask import Flask
from flask_babel import gettext

from events.clinic import current_clinic
from events.consent.text import consent_text
from events.forms import form_error_items
from events.languages import DEFAULT_LANGUAGE, Language, current_language_details, languages
from events.models import Location, Session
from events.offering_text import offering_text, tier_text
from events.payments.receipts import card_brand_name, receipt_number

if TYPE_CHECKING:
    from events.catalog.services import ScheduleFilter


def format_money(cents: int, currency: str = "usd") -> str:
    """'$15', '$15.50', 'Free' in English; in another language as it writes money, in the
    locale MONEY_LOCALES gives it ('$15.50' in es_US, not es's '15,50 US$')."""
    if cents == 0:
        return gettext("Free")
    language = current_language_details()
    if language.code != DEFAULT_LANGUAGE:
        return _money_in(language, cents, currency)
    symbol = {"usd": "$", "cad": "$", "eur": "€", "gbp": "£"}.get(currency.lower(), "")
    amount = f"{cents / 100:,.2f}".removesuffix(".00")
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


def _money_in(language: Language, cents: int, currency: str) -> str:
    whole = cents % 100 == 0
    if language.babel_locale is not None:
        return (
            babel_numbers.format_currency(
                cents / 100,
                currency.upper(),
                format=None,
                locale=language.money_locale or language.babel_locale,
                currency_digits=not whole,
                format_type="standard",
                decimal_quantization=not whole,
            )
            .replace(".00", "")
            .replace(",00", "")
        )
    patterns = language.patterns or {}
    symbol = {"usd": "$", "cad": "$", "eur": "€", "gbp": "£"}.get(currency.lower(), currency.upper() + " ")
    amount = f"{cents / 100:,.2f}".removesuffix(".00")
    amount = amount.replace(",", "\0").replace(".", str(patterns.get("decimal", ".")))
    amount = amount.replace("\0", str(patterns.get("group", ",")))
    return str(patterns.get("money", "{symbol}{amount}")).format(symbol=symbol, amount=amount)


def format_time(dt: datetime) -> str:
    """'6:30 pm', '9 am' (an aware datetime, already in the zone to show); in another language
    as it writes the time of day ('18:30')."""
    language = current_language_details()
    if language.code != DEFAULT_LANGUAGE:
        if language.babel_locale is not None:
            return babel_dates.format_time(dt, "short", tzinfo=dt.tzinfo, locale=language.babel_locale)
        return _pattern(language, "time", dt)
    hour = dt.strftime("%I").lstrip("0")
    minutes = "" if dt.minute == 0 else f":{dt.minute:02d}"
    return f"{hour}{minutes} {'am' if dt.hour < 12 else 'pm'}"


def format_day(d: date) -> str:
    """'Tuesday, March 3' ('martes, 3 de marzo')."""
    language = current_language_details()
    if language.code != DEFAULT_LANGUAGE:
        if language.babel_locale is not None:
            return babel_dates.format_skeleton("MMMMEEEEd", d, locale=language.babel_locale)
        return _pattern(language, "day", d)
    return f"{d:%A}, {d:%B} {d.day}"


def _pattern(language: Language, which: str, moment: date) -> str:
    """A date or time of a language Babel has no data for, from the names and patterns
    declared with it (CATALOGUE_ONLY_LANGUAGES)."""
    patterns = language.patterns or {}
    short = which == "short_day"
    days = patterns["short_days" if short else "days"]
    months = patterns["short_months" if short else "months"]
    hour = getattr(moment, "hour", 0)
    minute = getattr(moment, "minute", 0)
    return str(patterns[which]).format(
        weekday=days[moment.weekday()],
        day=moment.day,
        month=months[moment.month - 1],
        year=moment.year,
        hour24=hour,
        hour12=(hour % 12) or 12,
        minute=f"{minute:02d}",
    )


def format_long_date(moment: datetime | None) -> str:
    """'Jun 14, 2027' ('14 jun 2027'): the clinic's local day of a UTC moment, with its year
    (a pass's expiry, its history)."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(current_clinic().timezone))
    language = current_language_details()
    if language.code != DEFAULT_LANGUAGE and language.babel_locale is not None:
        return babel_dates.format_date(local.date(), "medium", locale=language.babel_locale)
    return f"{local:%b} {local.day}, {local.year}"


def relative_day(moment: datetime, now: datetime, on: str | None = None) -> str:
    """'today', 'tomorrow', else 'on Tuesday, March 3': the day of `moment` (aware, in the zone
    to show) as seen from `now` in that same zone, so it is true where the person is.
    on='': the bare date ('Tuesday, March 3')."""
    today = now.astimezone(moment.tzinfo).date()
    if moment.date() == today:
        return gettext("today")
    if moment.date() == today + timedelta(days=1):
        return gettext("tomorrow")
    if on == "":
        return format_day(moment)
    return gettext("on %(day)s", day=format_day(moment))


def relative_when(moment: datetime, now: datetime) -> str:
    """'today at 4:06 am', 'tomorrow at 6 pm', 'on Monday, November 30 at 4:06 am'."""
    return gettext("%(day)s at %(time)s", day=relative_day(moment, now), time=format_time(moment))


def format_short_day(d: date) -> str:
    """'Tue Mar 3' ('mar, 3 mar')."""
    language = current_language_details()
    if language.code != DEFAULT_LANGUAGE:
        if language.babel_locale is not None:
            return babel_dates.format_skeleton("MMMEd", d, locale=language.babel_locale)
        return _pattern(language, "short_day", d)
    return f"{d:%a} {d:%b} {d.day}"


def zone_name(dt: datetime) -> str:
    """The zone's abbreviation at that moment ('CST' or 'CDT'), so DST is visible."""
    return dt.tzname() or ""


def zone_long_name(timezone: str) -> str:
    """A place's zone as people name it, in the page's language: 'Central Time', 'hora
    central' (never the tz database's 'America/Chicago'). A language Babel has no data for
    uses the name declared with it (its patterns' "zones"), else the English."""
    language = current_language_details()
    zones = (language.patterns or {}).get("zones") or {}
    if timezone in zones:
        return str(zones[timezone])
    locale = language.babel_locale or Locale.parse(DEFAULT_LANGUAGE)
    try:
        return babel_dates.get_timezone_name(ZoneInfo(timezone), "long", locale=locale)
    except (LookupError, ValueError):  # a zone Babel does not know: its own words
        return timezone.rsplit("/", 1)[-1].replace("_", " ")


def _staff_zone(where: Location | Session | ZoneInfo | None) -> ZoneInfo:
    """The zone to show a staff page's time in: a location's, a session's location's, or (for
    what belongs to no place, such as an audit entry) the clinic's."""
    if isinstance(where, ZoneInfo):
        return where
    if where is None:
        return ZoneInfo(current_clinic().timezone)
    location = where.location if isinstance(where, Session) else where
    return ZoneInfo(location.timezone)


def staff_time(dt: datetime | None, where: Location | Session | ZoneInfo | None = None) -> str:
    """'Tue Dec 1, 2026, 6:00 pm CST': a UTC moment in the place's zone, the zone named, for
    staff pages (the year and minutes always shown: these are records, not invitations)."""
    if dt is None:
        return ""
    local = dt.astimezone(_staff_zone(where))
    hour = local.strftime("%I").lstrip("0")
    meridiem = "am" if local.hour < 12 else "pm"
    return f"{local:%a %b} {local.day}, {local.year}, {hour}:{local:%M} {meridiem} {zone_name(local)}"


def staff_date(dt: datetime | None, where: Location | Session | ZoneInfo | None = None) -> str:
    """'Tue Dec 1, 2026': the local day of a UTC moment, for staff pages."""
    if dt is None:
        return ""
    local = dt.astimezone(_staff_zone(where))
    return f"{local:%a %b} {local.day}, {local.year}"


def dollars(cents: int) -> str:
    """'$15.00', '$1,050.00': an amount on a staff page, always with its cents (never "Free")."""
    return f"${cents / 100:,.2f}"


def plural(count: int, singular: str, many: str | None = None) -> str:
    """'1 refund', '2 refunds', '0 refunds' (many: an irregular plural, 'people')."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


_BLANK_LINE = re.compile(r"\n[ \t\f\v\u00a0]*\n")


def paragraphs(text: str | None) -> list[str]:
    """Paragraphs of text typed in a form, whatever its line endings (CR/LF from browsers, CR,
    LF): a blank line (or one of spaces) ends a paragraph; single line breaks stay inside it
    (shown by CSS, white-space: pre-line)."""
    if not text:
        return []
    unified = text.replace("\r\n", "\n").replace("\r", "\n")
    return [part.strip() for part in _BLANK_LINE.split(unified) if part.strip()]


def page_url(schedule_filter: ScheduleFilter, page: int) -> str:
    """The current page's URL with the same filters, on another page number."""
    from flask import current_app, request, url_for

    args: dict[str, Any] = schedule_filter.as_args(page=page)
    # Keep a page size the visitor asked for, or "Later" would jump by the default size.
    if schedule_filter.per_page != current_app.config["SCHEDULE_PAGE_SIZE"]:
        args["per_page"] = str(schedule_filter.per_page)
    view_args = dict(request.view_args or {})
    if "slug" in view_args:  # a location page already names its location in the path
        args.pop("location", None)
    assert request.endpoint is not None  # only called while rendering a routed page
    return url_for(request.endpoint, **view_args, **args)


def language_name(code: str | None) -> str:
    """A language code as staff read it: "es" -> "Español (es)"; a code not offered as it is."""
    code = code or DEFAULT_LANGUAGE
    language = languages().get(code)
    return f"{language.name} ({code})" if language else code


def register(app: Flask) -> None:
    app.jinja_env.globals["page_url"] = page_url
    app.jinja_env.globals["form_error_items"] = form_error_items
    app.jinja_env.filters.update(
        money=format_money,
        long_date=format_long_date,
        time=format_time,
        day=format_day,
        short_day=format_short_day,
        zone_name=zone_name,
        zone_long_name=zone_long_name,
        staff_time=staff_time,
        staff_date=staff_date,
        plural=plural,
        dollars=dollars,
        paragraphs=paragraphs,
        card_brand=card_brand_name,
        receipt_number=receipt_number,
        text=offering_text,  # an offering's words in the page's language (or English, noted)
        tier_text=tier_text,  # a sliding-scale tier's name and description, the same way
        consent_text=consent_text,  # a consent version's title and text, the same way
        language_name=language_name,
    )
