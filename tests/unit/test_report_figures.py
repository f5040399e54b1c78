"""Each report figure on hand-built rows, the answer worked out here (not read back from a query)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from events.reports import figures as f
from events.reports.figures import FIGURES, PersonHistory, Ratio, SessionFacts

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def session(**kw) -> SessionFacts:
    values = dict(
        session_id=1, offering_id=1, offering_title="Core", kind="class", topic="Strength",
        location_id=1, location_name="North Loop", instructor_id=1, instructor_name="Ada",
        starts_at=datetime(2026, 6, 1, 23, tzinfo=UTC), local_day=date(2026, 6, 1), cancelled=False,
        capacity=10, booked_at_start=0, confirmed=0, attendance_taken=False, present=0,
    )  # fmt: skip
    values.update(kw)
    return SessionFacts(**values)


# Three sessions held, one cancelled, one not started yet.
HELD_MARKED = session(capacity=10, booked_at_start=8, confirmed=9, attendance_taken=True, present=6)
HELD_UNMARKED = session(capacity=6, booked_at_start=6, confirmed=6)
HELD_OVERFULL = session(capacity=4, booked_at_start=5, confirmed=4, attendance_taken=True, present=4)
CANCELLED = session(cancelled=True, capacity=10, booked_at_start=3, confirmed=0, late_cancellations=0)
UPCOMING = session(starts_at=NOW + DAY, capacity=12, booked_at_start=0, confirmed=12)
ROWS = [HELD_MARKED, HELD_UNMARKED, HELD_OVERFULL, CANCELLED, UPCOMING]


def test_sessions_held_and_cancelled():
    assert f.sessions_held(ROWS, NOW) == 3  # the cancelled one and the upcoming one are not held
    assert f.sessions_cancelled(ROWS, NOW) == 1


def test_seats_offered_counts_held_sessions_only():
    assert f.seats_offered(ROWS, NOW) == 10 + 6 + 4


def test_fill_rate_at_start_caps_each_session_at_its_capacity():
    # 8 of 10, 6 of 6, and 4 of 4 (five booked of four: a capacity lowered later counts as full).
    assert f.fill_rate_at_start(ROWS, NOW) == Ratio(18, 20)
    assert str(Ratio(18, 20)) == "90%"


def test_attendance_only_where_it_was_taken():
    # 6 of 9 and 4 of 4; the unmarked session (6 confirmed) is left out, not counted as absent.
    assert f.attendance_rate(ROWS, NOW) == Ratio(10, 13)


def test_no_shows_are_confirmed_people_not_checked_in_where_attendance_was_taken():
    assert f.no_shows(ROWS, NOW) == (9 - 6) + (4 - 4)


def test_visits_count_check_ins_where_taken_and_bookings_where_not():
    assert f.visits(ROWS, NOW) == 6 + 6 + 4


def test_late_cancellations_and_waitlist_sums():
    rows = [
        session(late_cancellations=2, waitlist_joined=5, offers_made=3, offers_claimed=2, offers_expired=1),
        session(late_cancellations=1, waitlist_joined=1, offers_made=1, offers_claimed=0, offers_expired=1),
    ]
    assert f.late_cancellations(rows, NOW) == 3
    assert (f.waitlist_joined(rows, NOW), f.offers_made(rows, NOW)) == (6, 4)
    assert (f.offers_claimed(rows, NOW), f.offers_expired(rows, NOW)) == (2, 2)


def test_sessions_filled_and_the_median_days_before_the_start():
    start = datetime(2026, 6, 10, 18, tzinfo=UTC)
    rows = [
        session(starts_at=start, filled_at=start - 2 * DAY),
        session(starts_at=start, filled_at=start - 5 * DAY),
        session(starts_at=start, filled_at=start - 9 * DAY),
        session(starts_at=start, filled_at=start - 9 * DAY, cancelled=True),  # called off: not counted
        session(starts_at=start, filled_at=start - 1 * DAY, first_of_pool=False),  # a later date of a pool
        session(starts_at=start, filled_at=None),
    ]
    assert f.sessions_filled(rows, NOW) == 3
    assert f.days_filled_before_start(rows, NOW) == 5.0  # the median of 2, 5 and 9
    assert f.days_filled_before_start([session()], NOW) is None


def test_money_in_cents():
    rows = [
        session(card_cents=4500, desk_cents=1500, refund_cents=500),
        session(card_cents=1500, desk_cents=0, refund_cents=1500),
    ]
    assert f.card_payments(rows, NOW) == 6000
    assert f.desk_payments(rows, NOW) == 1500
    assert f.refunds(rows, NOW) == 2000
    assert f.net_income(rows, NOW) == 6000 + 1500 - 2000


def at(day: int) -> datetime:
    return datetime(2026, 1, 1, 18, tzinfo=UTC) + day * DAY


def test_people_figures():
    people = [
        # A first-timer in the range who came back 30 days later, after a workshop then a class.
        PersonHistory(at(10), at(10), at(40), first_workshop_in_range=at(10), last_class_visit=at(40)),
        # A first-timer who came back after 61 days: too late for the 60-day return.
        PersonHistory(at(12), at(12), at(73), first_workshop_in_range=None, last_class_visit=at(73)),
        # A first-timer who never came back; went to a workshop, the class was before it.
        PersonHistory(at(15), at(15), None, first_workshop_in_range=at(15), last_class_visit=None),
        # A regular from before the range: not a first-timer, whatever they did next.
        PersonHistory(at(-100), at(20), at(-90), first_workshop_in_range=at(20), last_class_visit=at(5)),
    ]
    assert f.unique_attendees(people) == 4
    assert f.first_timers(people) == 3
    assert f.return_rate(people) == Ratio(1, 3)
    # Three went to a workshop in the range; only the first came to a class after it.
    assert f.workshop_to_class(people) == Ratio(1, 3)


def test_exactly_60_days_counts_as_a_return():
    person = PersonHistory(at(0), at(0), at(60), None, None)
    assert f.return_rate([person]) == Ratio(1, 1)


def test_nothing_to_divide_shows_a_dash():
    assert f.attendance_rate([HELD_UNMARKED], NOW) == Ratio(0, 0)
    assert Ratio(0, 0).value is None and str(Ratio(0, 0)) == "–"


def test_every_figure_has_a_definition_and_a_function():
    for key, figure in FIGURES.items():
        assert figure.definition.endswith((".", ")")) and len(figure.definition) > 20, key
        assert figure.compute.__name__ == key


def test_pass_and_code_figures():
    passes = f.PassFacts(
        credits_sold=10 + 5,  # a 10-credit pass and a 5-credit pass bought in the range
        uses=(
            # $100 for 10 credits ($10 a credit), 4 used; $60 for 5 ($12 a credit), 2 used.
            f.CreditUse(price_cents=10000, credits=10, used=4),
            f.CreditUse(price_cents=6000, credits=5, used=2),
        ),
        pass_payments_cents=10000 + 6000,
        pass_refunds_cents=2400,
        codes=(f.PartnerCodes("", 1, 500), f.PartnerCodes("ymca", 3, 4500)),
    )
    assert f.credits_sold(passes) == 15
    assert f.credits_used(passes) == 6
    # (4 x $10 + 2 x $12) / 6 credits = $64 / 6 = $10.666... -> 1067 cents.
    assert f.revenue_per_credit_used(passes) == 1067
    assert f.pass_revenue(passes) == 16000 - 2400
    assert f.code_redemptions(passes) == 4
    assert f.code_discounts(passes) == 5000


def test_revenue_per_credit_with_none_used_is_empty():
    assert f.revenue_per_credit_used(f.PassFacts()) is None
    # Credits given back in the range for spends before it: net use below zero, nothing to divide.
    assert f.revenue_per_credit_used(f.PassFacts(uses=(f.CreditUse(5000, 5, -1),))) is None
