"""Reports on PostgreSQL: the hand-worked January, who sees what, the page, CSV and API agreeing,
the month boundary in the location's zone, hostile choices, and a cross-check on random data."""

from __future__ import annotations

import csv
import html
import io
import random
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from events.extensions import db as _db
from events.models import (
    Attendance,
    AttendanceStatus,
    OfferingKind,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundStatus,
    Registration,
    RegistrationStatus,
    Role,
    Session,
    SessionStatus,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from events.reports.figures import Ratio
from events.reports.report import build_report
from tests import report_scenario
from tests.factories import make_clinic, make_instructor, make_location, make_offering, make_session
from tests.helpers import csrf_token

PASSWORD = "correct horse battery"
JANUARY = {"preset": "custom", "date_from": "2026-01-01", "date_to": "2026-01-31"}
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def value_of(report, key):
    value = report.value(key)
    return (value.part, value.whole) if isinstance(value, Ratio) else value


def sign_in(client, user: User) -> None:
    user.set_password(PASSWORD)
    _db.session.commit()
    page = client.get("/staff/login").get_data(as_text=True)
    response = client.post(
        "/staff/login", data={"csrf_token": csrf_token(page), "email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302


@pytest.fixture
def scenario(db):
    return report_scenario.build()


def test_january_figures_match_the_hand_worked_answers(scenario):
    report = build_report(date(2026, 1, 1), date(2026, 1, 31), "offering", scenario.admin, NOW)
    got = {key: value_of(report, key) for key in report_scenario.EXPECTED_JANUARY}
    assert got == report_scenario.EXPECTED_JANUARY


def test_the_class_at_1130_pm_on_january_31_belongs_to_january(scenario):
    by_month = build_report(date(2026, 1, 1), date(2026, 2, 28), "month", scenario.admin, NOW)
    months = {row.label: {v.figure.key: v.value for v in row.values} for row in by_month.rows}
    assert list(months) == ["January 2026", "February 2026"]
    # January: Jan 10, Jan 31 at 11:30 pm, the workshop twice. February: Feb 1 at 00:30 alone.
    assert months["January 2026"]["sessions_held"] == 4
    assert months["February 2026"]["sessions_held"] == 1
    assert months["February 2026"]["visits"] == 1
    february = build_report(date(2026, 2, 1), date(2026, 2, 28), "offering", scenario.admin, NOW)
    assert february.value("sessions_held") == 1 and february.value("visits") == 1
    # The control: in UTC the 11:30 pm class is on February 1, so a UTC bucket would move it.
    assert scenario.s2.starts_at.astimezone(UTC).date() == date(2026, 2, 1)


def test_instructors_see_their_own_sessions_and_the_ones_they_cover(scenario):
    ada = build_report(date(2026, 1, 1), date(2026, 1, 31), "offering", scenario.teacher_a, NOW)
    bo = build_report(date(2026, 1, 1), date(2026, 1, 31), "offering", scenario.teacher_b, NOW)
    # Ada: Jan 10 (held) and Jan 20 (cancelled); Jan 31 went to Bo, her substitute.
    assert (ada.value("sessions_held"), ada.value("sessions_cancelled")) == (1, 1)
    assert ada.value("card_payments") == 4500 and ada.value("late_cancellations") == 1
    # Bo: Jan 31 and the workshop's two dates.
    assert (bo.value("sessions_held"), bo.value("sessions_cancelled")) == (3, 0)
    assert bo.value("card_payments") == 0 and bo.value("waitlist_joined") == 2
    # People at Bo's sessions: Ann and Eve (Jan 31), Fay and Gus. Ann first came on Ada's
    # Jan 10 class, so she is not Bo's first-timer.
    assert (bo.value("unique_attendees"), bo.value("first_timers")) == (4, 3)


def test_the_page_shows_every_figure_with_its_definition_and_charts(client, scenario):
    sign_in(client, scenario.admin)
    page = client.get("/staff/reports", query_string=JANUARY)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', body))
    assert figures["sessions_held"] == "4"
    assert figures["fill_rate_at_start"] == "75% (9 of 12)"
    assert figures["net_income"] == "$55.00"
    assert figures["return_rate"] == "40% (2 of 5)"
    assert figures["days_filled_before_start"] == "12.0 days"
    assert "Of the seats offered, how many were booked at the start" in body
    # Three charts with their tables, the breakdown, and the code table (an admin's page).
    assert body.count('<svg class="chart"') == 3 and body.count("<caption") == 5
    assert 'role="img"' in body and "<title id=" in body and "style=" not in body.split("<main")[1]
    assert "<script" not in body.split("<main")[1]
    assert "ann@example.com" not in body and "Person " not in body  # counts, never names
    assert "Reports" in body.split("<main")[0]  # in the staff nav


def test_an_instructor_page_is_their_own(client, scenario):
    sign_in(client, scenario.teacher_a)
    body = client.get("/staff/reports", query_string=JANUARY).get_data(as_text=True)
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', body))
    assert figures["sessions_held"] == "1" and "Back Spasms" not in body
    assert "Reports for my sessions" in body


def _csv(client, table, args):
    response = client.get(f"/staff/reports/{table}.csv", query_string=args)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_and_api_agree_with_the_page(client, scenario):
    sign_in(client, scenario.admin)
    args = {**JANUARY, "by": "location"}
    body = client.get("/staff/reports", query_string=args).get_data(as_text=True)
    page_figures = {k: html.unescape(v) for k, v in re.findall(r'data-figure="(\w+)">([^<]*)<', body)}

    api = client.get(
        "/api/v1/reports", query_string={"from": "2026-01-01", "to": "2026-01-31", "by": "location"}
    )
    assert api.status_code == 200
    data = api.get_json()["data"]
    every = {**data["figures"], **data["people"], **data["passes"]}
    rows = _csv(client, "figures", args)
    assert rows[0] == ["figure", "value", "definition"]
    labels = {row[0]: row[1] for row in rows[1:]}
    for key, shown in page_figures.items():
        value = every[key]
        if isinstance(value, dict):  # a share: "75% (9 of 12)" on the page
            assert (
                shown
                == f"{round(value['part'] / value['whole'] * 100)}% ({value['part']} of {value['whole']})"
            )
        elif value is None:  # nothing to divide
            assert shown == "–"
        elif key in (
            "card_payments",
            "desk_payments",
            "refunds",
            "net_income",
            "pass_revenue",
            "code_discounts",
        ):
            assert shown == f"${value / 100:,.2f}"
        elif key == "days_filled_before_start":
            assert shown == f"{value} days"
        else:
            assert shown == f"{value:,}"
    assert labels["Sessions held"] == "4" and labels["Net (USD)"] == "55.00"
    assert labels["Fill rate at start (%)"] == "75.0"

    breakdown = _csv(client, "breakdown", args)
    assert breakdown[0][0] == "Location" and breakdown[-1][0] == "All"
    held = breakdown[0].index("Sessions held")
    assert [row[held] for row in breakdown[1:]] == ["4", "4"]  # one location, then the total
    assert data["rows"][0]["label"] == "North Loop" and data["rows"][0]["figures"]["sessions_held"] == 4
    for table in ("trend", "fill", "attendance"):
        assert len(_csv(client, table, args)) >= 2
    attendance = _csv(client, "attendance", args)
    assert attendance[1] == ["North Loop", "75.0"]


def test_the_api_is_for_admins_only(client, scenario):
    anonymous = client.get("/api/v1/reports")
    assert anonymous.status_code == 401 and anonymous.get_json()["error"]["status"] == 401
    sign_in(client, scenario.teacher_a)
    forbidden = client.get("/api/v1/reports")
    assert forbidden.status_code == 403 and forbidden.get_json()["error"]["status"] == 403
    assert client.get("/staff/reports").status_code == 200  # the page is theirs, the API is not


@pytest.mark.parametrize(
    "args",
    [
        {"preset": "custom", "date_from": "2026-02-30", "date_to": "2026-03-01"},
        {"preset": "custom", "date_from": "2026-03-01", "date_to": "2026-02-01"},
        {"preset": "custom", "date_from": "1900-01-01", "date_to": "2026-01-01"},
        {"preset": "custom", "date_from": "2000-01-01", "date_to": "2100-12-31"},
        {"preset": "custom", "date_from": "99999999-01-01", "date_to": ""},
        {"preset": "custom"},
        {"preset": "forever"},
        {"by": "shoe size"},
        {"preset": "custom", "date_from": "2026-01-01\x00", "date_to": "2026-01-02"},
        "preset=%ED%A0%80&by=month",  # a lone surrogate, as its UTF-8 bytes
        "preset=custom&date_from=%C0%80&date_to=2026-01-01",  # an overlong NUL
        {"date_from": "x" * 100_000},
    ],
)
def test_hostile_choices_are_form_errors_not_500s(client, scenario, args):
    sign_in(client, scenario.admin)
    page = client.get("/staff/reports", query_string=args)
    assert page.status_code == 400
    assert "error-summary" in page.get_data(as_text=True)
    assert client.get("/staff/reports/breakdown.csv", query_string=args).status_code == 400
    assert client.get("/api/v1/reports", query_string=args).status_code == 400


def test_presets_answer(client, scenario):
    sign_in(client, scenario.admin)
    for preset in ("last_4_weeks", "this_month", "last_month", "this_year"):
        for by in ("offering", "kind", "topic", "location", "instructor", "week", "month"):
            assert client.get("/staff/reports", query_string={"preset": preset, "by": by}).status_code == 200


# --- The cross-check: random data, the totals rebuilt from raw rows by plain Python ---


OFFERED = (WaitlistStatus.OFFERED, WaitlistStatus.CLAIMED, WaitlistStatus.EXPIRED)


def _random_clinic(
    rng: random.Random, zones: tuple[str, ...] = ("America/Chicago", "America/New_York")
) -> User:
    make_clinic()
    locations = [make_location(timezone=tz) for tz in zones]
    teachers = [make_instructor() for _ in range(3)]
    admin = make_instructor(role=Role.ADMIN)
    people = [f"p{n}@example.com" for n in range(25)] + [""] * 5
    n = 0
    for _ in range(8):
        kind = rng.choice([OfferingKind.CLASS, OfferingKind.CLASS, OfferingKind.WORKSHOP])
        offering = make_offering(
            rng.choice(locations), kind, capacity=rng.randint(2, 6), price_cents=rng.choice([0, 1500]),
            instructor=rng.choice(teachers), topic=rng.choice(["Back", "Balance"]),
        )  # fmt: skip
        for d in range(rng.randint(1, 4)):
            day = date(2026, 1, 1) + timedelta(days=rng.randint(-20, 80))
            session = make_session(
                offering, day, time(rng.choice([0, 9, 18, 23]), rng.choice([0, 30])),
                instructor=rng.choice([None, *teachers]),
            )  # fmt: skip
            if rng.random() < 0.15:
                session.status = SessionStatus.CANCELLED
            _db.session.flush()
            if kind is OfferingKind.WORKSHOP and d > 0:
                continue  # a workshop's people register once, on its pool
            for email in rng.sample(people, rng.randint(0, 7)):
                n += 1
                status = rng.choice([RegistrationStatus.CONFIRMED] * 4 + [RegistrationStatus.CANCELLED])
                confirmed_at = session.starts_at - timedelta(hours=rng.randint(-2, 200))
                cancelled_at = (
                    confirmed_at + timedelta(hours=rng.randint(1, 100))
                    if status is RegistrationStatus.CANCELLED
                    else None
                )
                reg = report_scenario.registration(
                    session, email or "", status, confirmed_at, cancelled_at,
                    per_session=kind is OfferingKind.CLASS, price_cents=offering.price_cents,
                )  # fmt: skip
                if offering.price_cents:
                    method = rng.choice([PaymentMethod.CARD, PaymentMethod.CASH, PaymentMethod.CHECK])
                    refunded = rng.choice([0, 0, 500])
                    report_scenario.pay(reg, offering.price_cents, method, refunded)
            for _ in range(rng.randint(0, 3)):
                n += 1
                status = rng.choice(list(WaitlistStatus))
                _db.session.add(
                    WaitlistEntry(
                        seat_pool_id=session.seat_pool_id, name="W", email=f"w{n}@example.com",
                        email_normalized=f"w{n}@example.com", status=status, token=f"xw-{n}",
                        created_at=session.starts_at - timedelta(days=rng.randint(1, 9)),
                        offered_at=session.starts_at - timedelta(hours=5) if status in OFFERED else None,
                    )
                )  # fmt: skip
    _db.session.flush()
    # Attendance on a random half of the sessions, for their confirmed people.
    for session in _db.session.scalars(sa.select(Session)):
        if rng.random() < 0.5:
            continue
        for reg in _db.session.scalars(
            sa.select(Registration).where(
                Registration.seat_pool_id == session.seat_pool_id,
                Registration.status == RegistrationStatus.CONFIRMED,
            )
        ):
            if rng.random() < 0.9:
                report_scenario.mark(reg, session, rng.random() < 0.7)
    _db.session.commit()
    return admin


def _rebuilt_totals(first_day: date, last_day: date, now: datetime) -> dict:
    """The totals straight from the rows, one session at a time, as a person would count."""
    sessions = list(_db.session.scalars(sa.select(Session)))
    registrations = list(_db.session.scalars(sa.select(Registration)))
    marks = list(_db.session.scalars(sa.select(Attendance)))
    in_range = [
        s for s in sessions if first_day <= s.starts_at.astimezone(s.location.zone).date() <= last_day
    ]
    held = [s for s in in_range if s.status is SessionStatus.SCHEDULED and s.starts_at <= now]
    by_pool = defaultdict(list)
    for r in registrations:
        by_pool[r.seat_pool_id].append(r)
    marked_sessions = {m.session_id for m in marks}
    present = {(m.registration_id, m.session_id) for m in marks if m.status is AttendanceStatus.PRESENT}
    totals = defaultdict(int)
    for s in held:
        confirmed = [r for r in by_pool[s.seat_pool_id] if r.status is RegistrationStatus.CONFIRMED]
        totals["seats_offered"] += s.seat_pool.capacity
        came = [r for r in confirmed if (r.id, s.id) in present] if s.id in marked_sessions else confirmed
        totals["visits"] += len(came)
        if s.id in marked_sessions:
            totals["no_shows"] += len(confirmed) - len(came)
    totals["sessions_held"] = len(held)
    totals["sessions_cancelled"] = sum(1 for s in in_range if s.status is SessionStatus.CANCELLED)
    first_sessions = {}
    for s in sorted(sessions, key=lambda s: (s.starts_at, s.id)):
        first_sessions.setdefault(s.seat_pool_id, s)
    pools = {s.seat_pool_id for s in in_range if first_sessions[s.seat_pool_id] is s}
    for payment in _db.session.scalars(sa.select(Payment).where(Payment.status == PaymentStatus.SUCCEEDED)):
        if payment.registration.seat_pool_id in pools:
            key = "card_payments" if payment.method is PaymentMethod.CARD else "desk_payments"
            totals[key] += payment.amount_cents if payment.method is not PaymentMethod.COMP else 0
    for refund in _db.session.scalars(sa.select(Refund).where(Refund.status == RefundStatus.SUCCEEDED)):
        if refund.payment.registration.seat_pool_id in pools:
            totals["refunds"] += refund.amount_cents
    for entry in _db.session.scalars(sa.select(WaitlistEntry)):
        if entry.seat_pool_id in pools:
            totals["waitlist_joined"] += 1
            totals["offers_made"] += entry.offered_at is not None
            totals["offers_claimed"] += entry.status is WaitlistStatus.CLAIMED
            totals["offers_expired"] += entry.status is WaitlistStatus.EXPIRED
    # People: each visit of all time, a person being their address (or their registration).
    visits = defaultdict(list)
    for s in sessions:
        if s.status is not SessionStatus.SCHEDULED or s.starts_at > now:
            continue
        for r in by_pool[s.seat_pool_id]:
            if r.status is not RegistrationStatus.CONFIRMED:
                continue
            if s.id in marked_sessions and (r.id, s.id) not in present:
                continue
            who = r.email_normalized or f"registration {r.id}"
            visits[who].append((s.starts_at, s in in_range))
    came_in_range = {who: v for who, v in visits.items() if any(inside for _, inside in v)}
    totals["unique_attendees"] = len(came_in_range)
    totals["first_timers"] = sum(1 for v in came_in_range.values() if min(v)[1])
    return dict(totals)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_data_totals_rebuilt_from_raw_rows(db, seed):
    rng = random.Random(seed)
    admin = _random_clinic(rng)
    first_day, last_day = date(2026, 1, 1), date(2026, 2, 15)
    report = build_report(first_day, last_day, "week", admin, NOW)
    expected = _rebuilt_totals(first_day, last_day, NOW)
    got = {key: report.value(key) for key in expected}
    assert got == expected
    assert expected["sessions_held"] > 3 and expected["unique_attendees"] > 3  # the data was not empty
    # And the breakdown's rows add up to the totals.
    for key in ("sessions_held", "visits", "card_payments", "refunds", "waitlist_joined"):
        assert sum(
            next(v.value for v in row.values if v.figure.key == key) for row in report.rows
        ) == report.value(key)


def test_the_api_report_matches_its_openapi_schema(client, scenario):
    from tests.integration.test_api_openapi import assert_valid

    spec = client.get("/api/v1/openapi.json").get_json()
    sign_in(client, scenario.admin)
    for by in ("offering", "week"):
        payload = client.get(
            "/api/v1/reports", query_string={"from": "2026-01-01", "to": "2026-01-31", "by": by}
        )
        assert_valid(spec, "/reports", "200", payload.get_json())
    assert_valid(spec, "/reports", "400", client.get("/api/v1/reports?by=x").get_json())
    client.post(
        "/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/").get_data(as_text=True))}
    )
    assert_valid(spec, "/reports", "401", client.get("/api/v1/reports").get_json())


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_people_counted_in_sql_equal_the_definitions_over_records(db, seed):
    """The report counts the people figures in the database (facts.people_counts); the
    definitions count records (PeopleCounts.of over facts.people_histories). Random data, every
    scope (everyone, each instructor), ranges of a day to the whole history: the same counts."""
    from events.reports import facts
    from events.reports.figures import PeopleCounts

    rng = random.Random(seed)
    _random_clinic(rng)
    locations = facts.active_locations_for_reports()
    teachers = _db.session.scalars(sa.select(User.id).where(User.role == Role.INSTRUCTOR)).all()
    ranges = [(date(2026, 1, 1), date(2026, 1, 31)), (date(2026, 1, 10), date(2026, 1, 10)),
              (date(2025, 1, 1), date(2026, 12, 31)), (date(2026, 2, 1), date(2026, 3, 15))]  # fmt: skip
    seen = 0
    for scope in [facts.Scope(), *(facts.Scope(t) for t in teachers)]:
        for first_day, last_day in ranges:
            records = facts.people_histories(first_day, last_day, scope, NOW, locations)
            counted = facts.people_counts(first_day, last_day, scope, NOW, locations)
            assert counted == PeopleCounts.of(records), (scope, first_day, last_day)
            seen += counted.first_timers + counted.workshop_goers
    assert seen > 10  # the data was not empty
