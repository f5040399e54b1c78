"""Reading the schedule's filters from a query string (pure: no database, no request)."""

from datetime import date

import pytest

from events.catalog.services import (
    MAX_PAGE_SIZE,
    ScheduleFilter,
    SchedulePage,
    parse_schedule_filter,
    quick_filters,
    read_schedule_filter,
)
from events.errors import BadFilter
from events.models import OfferingKind


def parse(**args):
    return parse_schedule_filter(args, default_per_page=20)


def test_no_arguments_means_everything_first_page():
    f = parse()
    assert f == ScheduleFilter(page=1, per_page=20)
    assert not f.is_filtered
    assert f.as_args() == {}


def test_every_filter_is_read():
    f = parse(
        location="north-loop",
        kind="class",
        topic="Posture",
        price="paid",
        q="  back pain  ",
        page="2",
        per_page="5",
        **{"from": "2027-03-01", "to": "2027-03-14"},
    )
    assert f == ScheduleFilter(
        location="north-loop",
        kind=OfferingKind.CLASS,
        topic="Posture",
        price="paid",
        date_from=date(2027, 3, 1),
        date_to=date(2027, 3, 14),
        q="back pain",
        page=2,
        per_page=5,
    )
    assert f.is_filtered


def test_blank_values_mean_any():
    f = parse(
        location="", kind=" ", topic="", price="", q="   ", page="", per_page="", **{"from": "", "to": ""}
    )
    assert f == ScheduleFilter(per_page=20)


def test_the_same_day_for_from_and_to_is_fine():
    f = parse(**{"from": "2027-11-07", "to": "2027-11-07"})
    assert f.date_from == f.date_to == date(2027, 11, 7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"from": "2026-13-45"}, "'from' must be a date written as YYYY-MM-DD"),
        ({"from": "2027-02-29"}, "'from' must be a date"),  # not a leap year
        ({"to": "03/14/2027"}, "'to' must be a date"),
        ({"to": "2027-W10-1"}, "'to' must be a date"),
        ({"to": "9999-12-31"}, "'to' must be between"),
        ({"from": "1066-10-14"}, "'from' must be between"),
        ({"from": "2027-03-14", "to": "2027-03-13"}, "'to' must be on or after 'from'"),
        ({"page": "-1"}, "'page' must be 1 or more"),
        ({"page": "0"}, "'page' must be 1 or more"),
        ({"page": "abc"}, "'page' must be a whole number"),
        ({"page": "2.0"}, "'page' must be a whole number"),
        ({"page": "+2"}, "'page' must be a whole number"),
        ({"page": "١٢"}, "'page' must be a whole number"),  # digits, but not ASCII ones
        ({"page": "100001"}, "'page' can be at most 100000"),
        ({"page": "9" * 5000}, "'page' can be at most 100000"),
        ({"per_page": "1000"}, f"'per_page' can be at most {MAX_PAGE_SIZE}"),
        ({"per_page": "0"}, "'per_page' must be 1 or more"),
        ({"kind": "yoga"}, "'kind' must be one of workshop, class, course; got 'yoga'"),
        ({"kind": "Class"}, "'kind' must be one of"),
        ({"price": "cheap"}, "'price' must be 'free' or 'paid'; got 'cheap'"),
        ({"q": "x" * 101}, "can be at most 100 characters"),
        ({"q": "a\x00b"}, "'q' must not contain control characters"),
        ({"location": "north\nloop"}, "'location' must not contain control characters"),
        ({"topic": "\x7f"}, "'topic' must not contain control characters"),
    ],
)
def test_bad_values_raise_a_message_that_names_the_problem(args, message):
    with pytest.raises(BadFilter) as info:
        parse(**args)
    assert message in str(info.value)


def test_a_hundred_character_search_is_fine():
    assert parse(q="x" * 100).q == "x" * 100


def test_long_bad_values_are_shortened_in_the_message():
    with pytest.raises(BadFilter) as info:
        parse(kind="y" * 5000)
    assert len(str(info.value)) < 200


def test_as_args_round_trips_and_drops_page_one():
    f = parse(location="robbinsdale", kind="course", q="100%", page="3", **{"from": "2027-01-02"})
    args = f.as_args()
    assert args == {
        "location": "robbinsdale",
        "kind": "course",
        "q": "100%",
        "from": "2027-01-02",
        "page": "3",
    }
    assert parse(**args) == f
    assert "page" not in f.as_args(page=1)
    assert f.as_args(page=4)["page"] == "4"


def test_a_page_number_alone_is_not_a_filter():
    assert not parse(page="3").is_filtered
    assert parse(price="free").is_filtered


@pytest.mark.parametrize(
    ("total", "page", "per_page", "pages", "has_prev", "has_next"),
    [
        (0, 1, 20, 1, False, False),
        (20, 1, 20, 1, False, False),
        (21, 1, 20, 2, False, True),
        (21, 2, 20, 2, True, False),
        (8, 2, 3, 3, True, True),
        (8, 3, 3, 3, True, False),
    ],
)
def test_schedule_page_arithmetic(total, page, per_page, pages, has_prev, has_next):
    result = SchedulePage(filter=ScheduleFilter(page=page, per_page=per_page), sessions=[], total=total)
    assert (result.pages, result.has_prev, result.has_next) == (pages, has_prev, has_next)


def read(**args):
    return read_schedule_filter(args, default_per_page=20)


def test_reading_for_the_form_collects_every_problem_and_keeps_the_rest():
    f, problems = read(
        location="robbinsdale",
        kind="yoga",
        q="a\x00b",
        page="abc",
        **{"from": "2027-01-10", "to": "2027-01-01"},
    )
    assert [p.name for p in problems] == ["kind", "to", "q", "page"]
    # The filter is what could be read: the location and the start date stay, the rest is dropped.
    assert f == ScheduleFilter(location="robbinsdale", date_from=date(2027, 1, 10), per_page=20)
    by_name = {p.name: p for p in problems}
    assert by_name["to"].for_person == "The 'To' date must be the same as or later than the 'From' date."
    assert by_name["to"].kept == "2027-01-01"
    assert by_name["q"].kept == "ab"  # control characters never go back into the page
    assert by_name["kind"].kept == ""
    # The API's reading raises the first of them, worded for a developer.
    with pytest.raises(BadFilter, match="'kind' must be one of"):
        parse(location="robbinsdale", kind="yoga", page="abc")


def test_a_long_bad_value_is_kept_shortened():
    _, problems = read(q="x" * 5000, **{"from": "y" * 5000})
    assert [len(p.kept) for p in problems] == [100, 100]


def test_quick_filters_turn_one_filter_on_or_off_and_keep_the_rest():
    class Place:
        def __init__(self, slug, name):
            self.slug, self.name = slug, name

    today = date(2026, 12, 2)
    places = [Place("north-loop", "North Loop"), Place("robbinsdale", "Robbinsdale")]
    f = parse(kind="class", q="core", page="3")
    chips = {chip.label: chip for chip in quick_filters(f, places, today)}
    assert list(chips) == [
        "This week",
        "Free",
        "North Loop",
        "Robbinsdale",
        "Workshops",
        "Drop-in classes",
        "Courses",
    ]
    assert [label for label, chip in chips.items() if chip.on] == ["Drop-in classes"]
    assert chips["Free"].target.as_args() == {"kind": "class", "price": "free", "q": "core"}  # back to page 1
    assert chips["Drop-in classes"].target.as_args() == {"q": "core"}  # on: a tap turns it off
    assert chips["Workshops"].target.as_args() == {"kind": "workshop", "q": "core"}  # one kind at a time
    assert chips["This week"].target.as_args() == {
        "kind": "class",
        "q": "core",
        "from": "2026-12-02",
        "to": "2026-12-08",
    }
    this_week = chips["This week"].target
    again = {chip.label: chip for chip in quick_filters(this_week, places, today)}
    assert again["This week"].on and again["This week"].target.as_args() == {"kind": "class", "q": "core"}
    north = {chip.label: chip for chip in quick_filters(parse(location="north-loop"), places, today)}
    assert north["North Loop"].on and north["Robbinsdale"].target.as_args() == {"location": "robbinsdale"}
