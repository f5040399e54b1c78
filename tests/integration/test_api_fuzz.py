"""The JSON API fuzzed with schemathesis against its own OpenAPI document.

Schemathesis reads /api/v1/openapi.json from the app (over WSGI, no server needed), generates
requests for every operation from the documented parameters - valid ones and, in negative
mode, ones that break the schema - and checks each response: never a 5xx, always a
documented status, a documented content type and a body that matches the documented schema.
The examples are derandomized, so a run is repeatable and a failure reproduces.
"""

from __future__ import annotations

import collections

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from events.models import OfferingKind, SessionStatus
from tests.factories import make_clinic, make_instructor, make_location, make_offering, make_session
from tests.integration.conftest import day

MAX_EXAMPLES = 100

# Every built-in check runs - no 5xx, a documented status, content type and headers, a body
# matching the schema, schema-violating input rejected with a 4xx - except one:
# - positive_data_acceptance wants every schema-valid request answered 2xx. Some filters are
#   refused on purpose with the documented 400 although JSON Schema cannot say so: `to` before
#   `from`, control characters inside a text filter (PostgreSQL cannot store NUL). Those 400s
#   are still checked against the Error schema.
# (unsupported_method runs too: a 405 carries its Allow header, see test_405_carries_the_allow_header.)
EXCLUDED_CHECKS = [positive_data_acceptance]
_tally: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@pytest.fixture
def seeded_catalog(db):
    """Enough data that listings, filters and lookups return something real."""
    make_clinic(name="Fuzz Clinic")
    north = make_location(slug="north-loop", name="North Loop")
    robb = make_location(slug="robbinsdale", name="Robbinsdale")
    teacher = make_instructor(name="Maya Lindqvist")
    offerings = [
        make_offering(
            north, OfferingKind.WORKSHOP, slug="back-spasms", title="Back Spasms", topic="Back pain"
        ),
        make_offering(robb, OfferingKind.COURSE, slug="posture", title="Posture", price_cents=12000),
        make_offering(
            north,
            OfferingKind.CLASS,
            slug="core",
            title='Core <b>&</b> "Strength"',
            price_cents=1500,
            instructor=teacher,
            topic="Strength",
        ),
        make_offering(robb, OfferingKind.WORKSHOP, slug="desk", title="100% Desk Check", capacity=0),
    ]
    hidden = make_offering(north, OfferingKind.WORKSHOP, slug="draft", title="Draft", is_published=False)
    sessions = []
    for n in range(1, 25):
        sessions.append(make_session(offerings[n % len(offerings)], day(n)))
    sessions[3].status = SessionStatus.CANCELLED
    past = make_session(offerings[0], day(-2))
    unpublished = make_session(hidden, day(3))
    db.session.commit()
    return {"upcoming": sessions, "past": past, "unpublished": unpublished}


@pytest.fixture
def api_schema(app, seeded_catalog):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_every_generated_request_as_documented(case):
    label = case.operation.label
    if case.method.upper() != case.operation.method.upper():
        label += " (undeclared methods)"
    response = case.call_and_validate(excluded_checks=EXCLUDED_CHECKS)
    tally = _tally[label]
    tally["requests"] += 1
    tally[f"{response.status_code}"] += 1
    assert response.status_code < 500


def test_every_seeded_session_is_served_as_documented(api_schema, seeded_catalog, client):
    """Random ids mostly miss; look up every real one (scheduled, cancelled, past, unpublished)."""
    operation = api_schema["/sessions/{session_id}"]["GET"]
    found = [s.id for s in seeded_catalog["upcoming"]] + [seeded_catalog["past"].id]
    missing = [seeded_catalog["unpublished"].id, max(found) + 1000, 2**31 - 1, 2**31, 10**30]
    statuses = collections.Counter()
    for session_id in found + missing:
        response = operation.Case(path_parameters={"session_id": session_id}).call_and_validate(
            excluded_checks=EXCLUDED_CHECKS
        )
        statuses[response.status_code] += 1
    assert statuses == {200: len(found), 404: len(missing)}
    print(f"\n[api fuzz] GET /sessions/{{id}} for {sum(statuses.values())} known ids: {dict(statuses)}")


def test_405_carries_the_allow_header(client):
    response = client.open("/api/v1/locations", method="TRACE")
    assert response.status_code == 405
    assert response.headers.get("Allow"), "RFC 9110: a 405 must list the allowed methods"


def teardown_module(module):
    for label, tally in sorted(_tally.items()):
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(tally.items()) if k != "requests")
        print(f"\n[api fuzz] {label}: {tally['requests']} requests, 0 failures ({statuses})")
