"""Every report figure, defined once: one plain function each, over plain rows.

The rows are gathered from the database by events/reports/facts.py; these functions only
count. Each function's definition (DEFINITIONS below) is shown on the report page beside its
number, so what staff read is what the code computes.

Two kinds of rows:
- SessionFacts: one per session in the range. What belongs to a whole seat pool (a workshop's
  or course's registrations, waitlist and money; a class has a pool per session) sits on the
  pool's first session only, so nothing is counted twice.
- PersonHistory: one per person who came to a session in the range, with their visits across
  all time reduced to the few moments the people figures need.

A person is their email address; a person with none (a walk-in who gave none, or anonymised
details) counts as one person per registration and is never named.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from fractions import Fraction
from statistics import median

RETURN_WINDOW = timedelta(days=60)


@dataclass(frozen=True)
class SessionFacts:
    session_id: int
    offering_id: int
    offering_title: str
    kind: str  # workshop | class | course
    topic: str
    location_id: int
    location_name: str
    instructor_id: int | None  # who teaches it: the substitute, else the offering's instructor
    instructor_name: str
    starts_at: datetime  # UTC
    local_day: date  # the day in its location's time zone
    cancelled: bool
    capacity: int
    booked_at_start: int  # registrations confirmed before the start and not cancelled before it
    confirmed: int  # confirmed now (walk-ins included)
    attendance_taken: bool  # anyone marked present or absent at this session
    present: int  # confirmed registrations marked present
    # Whole-pool figures, on the pool's first session only (zero elsewhere).
    first_of_pool: bool = True
    late_cancellations: int = 0
    waitlist_joined: int = 0
    offers_made: int = 0
    offers_claimed: int = 0
    offers_expired: int = 0
    filled_at: datetime | None = None  # when its last seat was taken, or its waitlist opened
    card_cents: int = 0
    desk_cents: int = 0
    refund_cents: int = 0

    def held(self, now: datetime) -> bool:
        return not self.cancelled and self.starts_at <= now


@dataclass(frozen=True)
class PersonHistory:
    """One person who came to a session in the range (UTC moments; None: never)."""

    first_visit: datetime  # their first visit ever
    first_visit_in_range: datetime  # their first visit in the range
    second_visit: datetime | None  # their next visit after the first ever
    first_workshop_in_range: datetime | None
    last_class_visit: datetime | None  # any time, in or after the range


@dataclass(frozen=True)
class Ratio:
    """A share, kept as its parts so a total is never an average of averages."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None

    def __str__(self) -> str:
        return "–" if self.value is None else f"{round(self.value * 100)}%"


# --- Sessions ---


@dataclass(frozen=True)
class SessionTotals:
    """The session figures' parts, summed over a group of sessions. of() is their definition
    over SessionFacts; the report reads the same parts summed in the database from the
    summaries (events/reports/rollups.py), which store of() of each session. Every part adds
    up, so a group's totals are the sum of its parts' (fill_leads, for the median, are kept
    one per session that filled)."""

    sessions: int = 0
    held: int = 0
    cancelled: int = 0
    seats_held: int = 0  # the capacity of the sessions held
    visits: int = 0
    booked_held: int = 0  # booked at the start, at most the capacity, at sessions held
    taken_present: int = 0  # at sessions held where attendance was taken
    taken_confirmed: int = 0
    no_shows: int = 0
    late_cancellations: int = 0
    waitlist_joined: int = 0
    offers_made: int = 0
    offers_claimed: int = 0
    offers_expired: int = 0
    sessions_filled: int = 0
    card_cents: int = 0
    desk_cents: int = 0
    refund_cents: int = 0
    fill_leads: tuple[float, ...] = ()  # days from filling to the start, one per session filled

    @classmethod
    def of(cls, facts: Iterable[SessionFacts], now: datetime) -> SessionTotals:
        return sum((cls.of_one(f, now) for f in facts), cls())

    @classmethod
    def of_one(cls, f: SessionFacts, now: datetime) -> SessionTotals:
        held = f.held(now)
        taken = held and f.attendance_taken
        filled = f.first_of_pool and not f.cancelled and f.filled_at is not None
        return cls(
            sessions=1,
            held=int(held),
            cancelled=int(f.cancelled),
            seats_held=f.capacity if held else 0,
            visits=(f.present if f.attendance_taken else f.confirmed) if held else 0,
            booked_held=min(f.booked_at_start, f.capacity) if held else 0,
            taken_present=f.present if taken else 0,
            taken_confirmed=f.confirmed if taken else 0,
            no_shows=max(f.confirmed - f.present, 0) if taken else 0,
            late_cancellations=f.late_cancellations,
            waitlist_joined=f.waitlist_joined,
            offers_made=f.offers_made,
            offers_claimed=f.offers_claimed,
            offers_expired=f.offers_expired,
            sessions_filled=int(filled),
            card_cents=f.card_cents,
            desk_cents=f.desk_cents,
            refund_cents=f.refund_cents,
            fill_leads=(fill_lead_days(f.starts_at - f.filled_at),) if filled and f.filled_at else (),
        )

    def parts(self) -> tuple[int, ...]:
        """The additive parts in ADDITIVE_PARTS' order."""
        return _additive_parts(self)

    @classmethod
    def from_parts(cls, parts: Iterable[int], fill_leads: tuple[float, ...] = ()) -> SessionTotals:
        """From the additive parts in ADDITIVE_PARTS' order (positionally: the fastest way)."""
        return cls(*parts, fill_leads=fill_leads)  # type: ignore[misc, arg-type]

    def __add__(self, other: SessionTotals) -> SessionTotals:
        return SessionTotals.from_parts(
            map(operator.add, self.parts(), other.parts()), self.fill_leads + other.fill_leads
        )


def fill_lead_days(lead: timedelta) -> float:
    """How long before the start a session filled, in days (none when it filled after)."""
    return max(lead.total_seconds(), 0) / 86400


SessionRows = SessionTotals | Iterable[SessionFacts]


def _totals(facts: SessionRows, now: datetime) -> SessionTotals:
    return facts if isinstance(facts, SessionTotals) else SessionTotals.of(facts, now)


def sessions_held(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).held


def sessions_cancelled(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).cancelled


def visits(facts: SessionRows, now: datetime) -> int:
    """Checked in where attendance was taken, confirmed where it was not, at sessions held."""
    return _totals(facts, now).visits


def seats_offered(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).seats_held


def fill_rate_at_start(facts: SessionRows, now: datetime) -> Ratio:
    totals = _totals(facts, now)
    return Ratio(totals.booked_held, totals.seats_held)


def attendance_rate(facts: SessionRows, now: datetime) -> Ratio:
    totals = _totals(facts, now)
    return Ratio(totals.taken_present, totals.taken_confirmed)


def no_shows(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).no_shows


def late_cancellations(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).late_cancellations


# --- Waitlist demand ---


def waitlist_joined(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).waitlist_joined


def offers_made(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).offers_made


def offers_claimed(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).offers_claimed


def offers_expired(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).offers_expired


def sessions_filled(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).sessions_filled


def days_filled_before_start(facts: SessionRows, now: datetime) -> float | None:
    leads = _totals(facts, now).fill_leads
    return round(median(leads), 1) if leads else None


# --- Money (integer cents, the clinic's currency) ---


def card_payments(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).card_cents


def desk_payments(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).desk_cents


def refunds(facts: SessionRows, now: datetime) -> int:
    return _totals(facts, now).refund_cents


def net_income(facts: SessionRows, now: datetime) -> int:
    totals = _totals(facts, now)
    return totals.card_cents + totals.desk_cents - totals.refund_cents


# --- People ---


@dataclass(frozen=True)
class PeopleCounts:
    """The people figures' parts. The database counts them in one statement at report time
    (facts.people_counts); of() is the same count over records, the definition the unit tests
    and the cross-check read."""

    people: int = 0
    first_timers: int = 0  # first visit ever is their first visit in the range
    came_back: int = 0  # of those, a second visit within RETURN_WINDOW of the first
    workshop_goers: int = 0  # came to a workshop in the range
    went_on: int = 0  # of those, came to a class after their first workshop in the range

    @classmethod
    def of(cls, people: Iterable[PersonHistory]) -> PeopleCounts:
        rows = list(people)
        firsts = [p for p in rows if p.first_visit == p.first_visit_in_range]
        workshop_goers = [p for p in rows if p.first_workshop_in_range is not None]
        return cls(
            people=len(rows),
            first_timers=len(firsts),
            came_back=sum(
                1
                for p in firsts
                if p.second_visit is not None and p.second_visit - p.first_visit <= RETURN_WINDOW
            ),
            workshop_goers=len(workshop_goers),
            went_on=sum(
                1
                for p in workshop_goers
                if p.last_class_visit is not None
                and p.first_workshop_in_range is not None
                and p.last_class_visit > p.first_workshop_in_range
            ),
        )


PeopleRows = PeopleCounts | Iterable[PersonHistory]


def _counts(people: PeopleRows) -> PeopleCounts:
    return people if isinstance(people, PeopleCounts) else PeopleCounts.of(people)


def unique_attendees(people: PeopleRows) -> int:
    return _counts(people).people


def first_timers(people: PeopleRows) -> int:
    return _counts(people).first_timers


def return_rate(people: PeopleRows) -> Ratio:
    counts = _counts(people)
    return Ratio(counts.came_back, counts.first_timers)


def workshop_to_class(people: PeopleRows) -> Ratio:
    counts = _counts(people)
    return Ratio(counts.went_on, counts.workshop_goers)


# --- Passes and codes (the clinic's, by date in the clinic's time zone; admins only) ---


@dataclass(frozen=True)
class CreditUse:
    """Credits used from passes bought at one price for one number of credits."""

    price_cents: int
    credits: int  # what such a pass gives
    used: int  # spent on bookings, less those given back, in the range


@dataclass(frozen=True)
class PartnerCodes:
    partner_tag: str  # "" for codes with no partner
    redemptions: int
    discount_cents: int


@dataclass(frozen=True)
class PassFacts:
    credits_sold: int = 0  # purchase rows of the ledger in the range
    uses: tuple[CreditUse, ...] = ()
    pass_payments_cents: int = 0  # pass payments that succeeded in the range (card and desk)
    pass_refunds_cents: int = 0  # refunds on pass payments that succeeded, made in the range
    codes: tuple[PartnerCodes, ...] = ()


def credits_sold(passes: PassFacts) -> int:
    return passes.credits_sold


def credits_used(passes: PassFacts) -> int:
    return sum(u.used for u in passes.uses)


def revenue_per_credit_used(passes: PassFacts) -> int | None:
    """Each credit used is worth its pass's price ÷ its credits; the average, in whole cents."""
    used = credits_used(passes)
    if used <= 0:
        return None
    value = sum(Fraction(u.used * u.price_cents, u.credits) for u in passes.uses if u.credits)
    return round(value / used)


def pass_revenue(passes: PassFacts) -> int:
    return passes.pass_payments_cents - passes.pass_refunds_cents


def code_redemptions(passes: PassFacts) -> int:
    return sum(c.redemptions for c in passes.codes)


def code_discounts(passes: PassFacts) -> int:
    return sum(c.discount_cents for c in passes.codes)


# --- The registry: what the pages, CSV and API show, in order, with each definition ---


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str  # count | percent | money | days
    definition: str
    compute: Callable[..., int | float | Ratio | None]
    group: str
    may_be_empty: bool = False  # None when there is nothing to divide (shown as "–")


SESSION_FIGURES = [
    Figure("sessions_held", "Sessions held", "count",
           "Sessions in the range that were not cancelled and have started.", sessions_held, "sessions"),
    Figure("sessions_cancelled", "Sessions cancelled", "count",
           "Sessions in the range that the clinic cancelled.", sessions_cancelled, "sessions"),
    Figure("seats_offered", "Seats offered", "count",
           "The capacity of every session held.", seats_offered, "sessions"),
    Figure("visits", "Visits", "count",
           "Places taken at sessions held: people checked in where attendance was taken, confirmed "
           "bookings where it was not. One person at three sessions is three visits.", visits, "sessions"),
    Figure("fill_rate_at_start", "Fill rate at start", "percent",
           "Of the seats offered, how many were booked at the start: registrations confirmed before "
           "the session began and not cancelled before it (walk-ins are not counted).",
           fill_rate_at_start, "sessions"),
    Figure("attendance_rate", "Attendance", "percent",
           "At sessions held where attendance was taken (anyone marked present or absent): "
           "checked in ÷ confirmed, walk-ins included. Sessions with no marks are left out.",
           attendance_rate, "sessions"),
    Figure("no_shows", "No-shows", "count",
           "At sessions held where attendance was taken: confirmed registrations not marked present.",
           no_shows, "sessions"),
    Figure("late_cancellations", "Late cancellations", "count",
           "Registrations the member cancelled after the offering's cut-off (e.g. within 24 hours of "
           "the first session), the clinic's own cancellations left out.", late_cancellations, "sessions"),
    Figure("waitlist_joined", "Joined a waitlist", "count",
           "Waitlist entries made for the sessions in the range.", waitlist_joined, "waitlist"),
    Figure("offers_made", "Waitlist offers made", "count",
           "Waitlist entries that were offered a freed seat.", offers_made, "waitlist"),
    Figure("offers_claimed", "Offers claimed", "count",
           "Offers taken up: the person booked the seat.", offers_claimed, "waitlist"),
    Figure("offers_expired", "Offers expired", "count",
           "Offers that passed unclaimed.", offers_expired, "waitlist"),
    Figure("sessions_filled", "Sessions that filled", "count",
           "Sessions (or whole workshops and courses) that were full at the start or had a waitlist.",
           sessions_filled, "waitlist"),
    Figure("days_filled_before_start", "Filled, days before start (median)", "days",
           "For the sessions that filled: how long before the start the waitlist opened or, with no "
           "waitlist, the last seat still booked at the start was taken. The median, in days.",
           days_filled_before_start, "waitlist"),
    Figure("card_payments", "Card payments", "money",
           "Card payments that succeeded for registrations to the sessions in the range (a workshop's "
           "on its first date).", card_payments, "money"),
    Figure("desk_payments", "Desk payments", "money",
           "Cash and check taken at the desk for the same registrations (comps are free: nothing).",
           desk_payments, "money"),
    Figure("refunds", "Refunds", "money",
           "Refunds that succeeded on those payments, whenever they were made.", refunds, "money"),
    Figure("net_income", "Net", "money", "Card plus desk payments, less refunds.", net_income, "money"),
]  # fmt: skip

PEOPLE_FIGURES = [
    Figure("unique_attendees", "People who came", "count",
           "Different people who came to a session held in the range: checked in where attendance was "
           "taken, booked where it was not. A person is an email address; someone whose details were "
           "removed counts once per booking.", unique_attendees, "people"),
    Figure("first_timers", "First-timers", "count",
           "Of them, people whose first visit ever was in the range.", first_timers, "people"),
    Figure("return_rate", "Came back within 60 days", "percent",
           "Of the first-timers, how many came to another session within 60 days of their first "
           "(recent first-timers may still come back).", return_rate, "people"),
    Figure("workshop_to_class", "Went on from a workshop to a class", "percent",
           "Of the people who came to a workshop in the range, how many came to a class after it "
           "(the path from relief to prevention).", workshop_to_class, "people"),
]  # fmt: skip

PASS_FIGURES = [
    Figure("credits_sold", "Pass credits sold", "count",
           "Credits in the passes that became active in the range (a card purchase once paid, a desk "
           "sale at once), on the day in the clinic's time zone.", credits_sold, "passes"),
    Figure("credits_used", "Pass credits used", "count",
           "Credits spent on bookings in the range, less the credits given back in the range (an on-time "
           "or clinic cancellation). Credits kept for a late cancellation or no-show count as used.",
           credits_used, "passes"),
    Figure("revenue_per_credit_used", "Revenue per credit used", "money",
           "What a credit used brought in on average: each credit used is worth its pass's price ÷ its "
           "number of credits (the price paid, after any code).", revenue_per_credit_used, "passes", True),
    Figure("pass_revenue", "Pass sales, net", "money",
           "Payments for passes that succeeded in the range (card and desk), less refunds on pass "
           "payments that succeeded in the range.", pass_revenue, "passes"),
    Figure("code_redemptions", "Code redemptions", "count",
           "Uses of discount codes in the range, for bookings and passes, not counting those given back "
           "(a hold that lapsed or a booking cancelled).", code_redemptions, "passes"),
    Figure("code_discounts", "Discount given by codes", "money",
           "The discount those uses gave, in total.", code_discounts, "passes"),
]  # fmt: skip

ADDITIVE_PARTS = tuple(f.name for f in fields(SessionTotals) if f.name != "fill_leads")
_additive_parts = operator.attrgetter(*ADDITIVE_PARTS)

FIGURES = {f.key: f for f in (*SESSION_FIGURES, *PEOPLE_FIGURES, *PASS_FIGURES)}
