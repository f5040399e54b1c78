"""A range read from the rollups covers each of its days exactly once (events/reports/rollups.py)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from events.reports.rollups import _pieces

DAY = timedelta(days=1)


def _days(pieces: list[tuple[str, date, date]]) -> list[date]:
    days = []
    for _, first, after in pieces:
        days += [first + n * DAY for n in range((after - first).days)]
    return sorted(days)


def test_every_day_of_a_range_is_in_one_piece_and_each_piece_is_a_whole_period():
    rng = random.Random(7)
    starts = {"week": lambda d: d.weekday() == 0, "month": lambda d: d.day == 1}
    starts["year"] = lambda d: (d.month, d.day) == (1, 1)
    for _ in range(2000):
        first = date(2015, 1, 1) + rng.randint(0, 4000) * DAY
        last = first + rng.randint(0, 4000) * DAY
        for grains in (("week",), ("month",), ("year", "month")):
            pieces = _pieces(first, last, grains)
            assert _days(pieces) == [first + n * DAY for n in range((last - first).days + 1)]
            for grain, period, after in pieces:
                if grain != "day":
                    assert starts[grain](period) and starts[grain](after), (grain, period, after)


def test_ten_years_are_nine_years_and_a_few_months_and_days():
    pieces = _pieces(date(2016, 12, 1), date(2026, 12, 1), ("year", "month"))
    assert pieces == [
        ("year", date(2017, 1, 1), date(2026, 1, 1)),
        ("month", date(2016, 12, 1), date(2017, 1, 1)),
        ("month", date(2026, 1, 1), date(2026, 12, 1)),
        ("day", date(2026, 12, 1), date(2026, 12, 2)),
    ]
    assert _pieces(date(2026, 3, 4), date(2026, 3, 9), ("year", "month")) == [
        ("day", date(2026, 3, 4), date(2026, 3, 10))
    ]
