"""Money, times and days as the public pages print them."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from events.filters import format_day, format_money, format_short_day, format_time, paragraphs, zone_name

CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("cents", "currency", "expected"),
    [
        (0, "usd", "Free"),
        (1500, "usd", "$15"),
        (1550, "usd", "$15.50"),
        (1505, "USD", "$15.05"),
        (1, "usd", "$0.01"),
        (123456789, "usd", "$1,234,567.89"),
        (100000, "usd", "$1,000"),
        (2500, "eur", "€25"),
        (999, "gbp", "£9.99"),
        (2000, "cad", "$20"),
        (2000, "jpy", "20 JPY"),
        (1234, "chf", "12.34 CHF"),
    ],
)
def test_format_money(cents, currency, expected):
    assert format_money(cents, currency) == expected


def test_format_money_defaults_to_dollars():
    assert format_money(4200) == "$42"


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (0, 0, "12 am"),
        (0, 30, "12:30 am"),
        (7, 0, "7 am"),
        (9, 5, "9:05 am"),
        (11, 59, "11:59 am"),
        (12, 0, "12 pm"),
        (12, 10, "12:10 pm"),
        (18, 0, "6 pm"),
        (18, 30, "6:30 pm"),
        (23, 45, "11:45 pm"),
    ],
)
def test_format_time(hour, minute, expected):
    assert format_time(datetime(2027, 1, 5, hour, minute, tzinfo=CHICAGO)) == expected


def test_format_time_uses_the_zone_it_is_given():
    utc = datetime(2027, 11, 8, 0, 0, tzinfo=UTC)  # 6 pm CST the evening before
    assert format_time(utc) == "12 am"
    assert format_time(utc.astimezone(CHICAGO)) == "6 pm"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2027, 3, 14, 1, 30, tzinfo=CHICAGO), "CST"),  # before the clocks go forward
        (datetime(2027, 3, 14, 18, 0, tzinfo=CHICAGO), "CDT"),
        (datetime(2027, 11, 7, 18, 0, tzinfo=CHICAGO), "CST"),
        (datetime(2027, 7, 1, 12, 0, tzinfo=CHICAGO), "CDT"),
        (datetime(2027, 7, 1, 12, 0, tzinfo=UTC), "UTC"),
    ],
)
def test_zone_name_shows_daylight_saving(moment, expected):
    assert zone_name(moment) == expected


def test_zone_name_of_a_naive_time_is_empty():
    assert zone_name(datetime(2027, 7, 1, 12, 0)) == ""


def test_days():
    assert format_day(date(2027, 3, 14)) == "Sunday, March 14"
    assert format_day(date(2027, 11, 1)) == "Monday, November 1"
    assert format_short_day(date(2027, 3, 4)) == "Thu Mar 4"
    assert format_day(datetime(2027, 3, 14, 18, 0, tzinfo=CHICAGO)) == "Sunday, March 14"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One.\r\n\r\nTwo.", ["One.", "Two."]),  # what browsers send
        ("One.\n\nTwo.", ["One.", "Two."]),
        ("One.\r\rTwo.", ["One.", "Two."]),  # old Mac line endings
        ("One.\r\n  \r\nTwo.", ["One.", "Two."]),  # a "blank" line of spaces
        ("One.\n\n\n\nTwo.", ["One.", "Two."]),
        ("Line one\r\nline two", ["Line one\nline two"]),  # a single break stays in its paragraph
        ("  Padded.  ", ["Padded."]),
        ("", []),
        (None, []),
        ("\r\n\r\n", []),
    ],
)
def test_paragraphs_from_any_newline_style(text, expected):
    assert paragraphs(text) == expected
