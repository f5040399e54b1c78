"""The JSON API answers what its OpenAPI document promises."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.factories import make_clinic, make_location, make_offering, make_session
from tests.integration.conftest import day

ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


@pytest.fixture
def spec(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def response_validator(spec: dict, path: str, status: str) -> Draft202012Validator:
    """A validator for one documented response, its "#/components/..." $refs resolved in the document."""
    registry = Registry().with_resource(
        "urn:openapi", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    pointer = "/".join(
        part.replace("~", "~0").replace("/", "~1")
        for part in ("paths", path, "get", "responses", status, "content", "application/json", "schema")
    )
    return Draft202012Validator(
        {"$ref": f"urn:openapi#/{pointer}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def assert_valid(spec, path, status, payload):
    errors = sorted(response_validator(spec, path, status).iter_errors(payload), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_document_is_valid_openapi(spec):
    validate_spec(spec)
    assert spec["openapi"].startswith("3.1")
    assert spec["servers"] == [{"url": "http://localhost/api/v1"}]
    assert set(spec["paths"]) == {
        "/sessions",
        "/sessions/{session_id}",
        "/locations",
        "/pass-products",
        "/reports",
    }


def test_pass_products_match_the_schema_and_say_nothing_of_anyone_s_pass(client, db, spec):
    from events.models import Location, PassProduct, PassValidityStart

    location = Location(
        slug="north-loop",
        name="North Loop",
        address_line1="1 Main St",
        city="Minneapolis",
        region="MN",
        postal_code="55401",
        timezone="America/Chicago",
    )
    db.session.add(location)
    db.session.add_all(
        [
            PassProduct(
                name="10-class pass",
                credits=10,
                price_cents=12000,
                validity_days=90,
                validity_starts=PassValidityStart.PURCHASE,
                offering_kinds="class",
                locations=[location],
            ),
            PassProduct(name="Old pass", credits=5, price_cents=5000, validity_days=30, is_on_sale=False),
        ]
    )
    db.session.commit()
    payload = client.get("/api/v1/pass-products").get_json()
    assert_valid(spec, "/pass-products", "200", payload)
    [item] = payload["data"]
    assert (item["name"], item["price_cents"], item["credits"], item["validity_starts"]) == (
        "10-class pass",
        12000,
        10,
        "purchase",
    )
    assert item["offering_kinds"] == ["class"] and item["location_slugs"] == ["north-loop"]
    assert item["good_for"] == "drop-in classes at North Loop"
    assert not {"balance", "email", "holder"} & set(item)


def test_the_validator_catches_a_wrong_payload(client, catalog, spec):
    """A control: the schema checks really bite (else every test below would pass vacuously)."""
    validator = response_validator(spec, "/sessions", "200")
    payload = client.get("/api/v1/sessions?per_page=2").get_json()
    assert not list(validator.iter_errors(payload))

    del payload["data"][0]["seats_left"]  # checked through the $ref to components/schemas/Session
    payload["data"][1]["starts_at"] = "next Tuesday at six"  # checked as a date-time
    payload["data"][1]["location"]["id"] = "two"  # a $ref inside a $ref
    messages = sorted(e.message for e in validator.iter_errors(payload))
    assert messages == [
        "'next Tuesday at six' is not a 'date-time'",
        "'seats_left' is a required property",
        "'two' is not of type 'integer'",
    ]
    bad_error = {"error": {"status": 404, "title": "x", "message": 3}}
    assert list(response_validator(spec, "/sessions/{session_id}", "404").iter_errors(bad_error))


def test_sessions_list_matches_the_schema(client, catalog, spec):
    payload = client.get("/api/v1/sessions?per_page=3").get_json()
    assert len(payload["data"]) == 3
    assert_valid(spec, "/sessions", "200", payload)


def test_every_item_has_what_the_website_needs(client, catalog, spec):
    payload = client.get("/api/v1/sessions?per_page=100").get_json()
    assert_valid(spec, "/sessions", "200", payload)
    assert [item["id"] for item in payload["data"]] == [s.id for s in catalog.visible]
    for item, session in zip(payload["data"], catalog.visible, strict=True):
        offering = session.offering
        assert item["offering"]["title"] == offering.title
        assert item["offering"]["kind"] == offering.kind.value
        assert item["offering"]["slug"] == offering.slug
        assert item["location"]["slug"] == session.location.slug
        assert item["location"]["address"] == session.location.full_address
        assert item["location"]["url"] == f"http://localhost/locations/{session.location.slug}"
        for key in ("starts_at", "ends_at"):
            assert ISO_WITH_OFFSET.match(item[key]), item[key]
        assert datetime.fromisoformat(item["starts_at"]) == session.starts_at
        assert datetime.fromisoformat(item["ends_at"]) == session.ends_at
        assert item["price_cents"] == offering.price_cents
        assert item["currency"] == "usd"
        assert item["seats_left"] == session.seat_pool.seats_left
        assert item["url"] == f"http://localhost/offerings/{offering.slug}"
        assert item["status"] == "scheduled"


def test_seats_left_and_instructor(client, catalog):
    posture = catalog.offerings["posture"]
    posture_pool = catalog.visible[1].seat_pool
    posture_pool.seats_taken = 7
    from events.extensions import db

    db.session.commit()
    items = client.get("/api/v1/sessions?kind=course").get_json()["data"]
    assert [i["seats_left"] for i in items] == [3, 3, 3]  # one pool for the whole course
    assert [i["capacity"] for i in items] == [posture.capacity] * 3
    assert {i["instructor"] for i in items} == {"Maya Lindqvist"}
    walk = client.get("/api/v1/sessions?q=steps").get_json()["data"]
    assert walk[0]["instructor"] is None


def test_session_detail_matches_the_schema(client, catalog, spec):
    session = catalog.visible[2]
    response = client.get(f"/api/v1/sessions/{session.id}")
    assert response.status_code == 200
    payload = response.get_json()
    assert_valid(spec, "/sessions/{session_id}", "200", payload)
    assert payload["data"]["id"] == session.id
    assert payload["data"]["offering"]["title"] == "Core Strength"


def test_locations_match_the_schema(client, catalog, spec):
    payload = client.get("/api/v1/locations").get_json()
    assert_valid(spec, "/locations", "200", payload)
    assert [loc["slug"] for loc in payload["data"]] == ["north-loop", "robbinsdale"]
    assert payload["data"][0]["address"] == "800 N Washington Ave, Minneapolis, MN 55401"


def test_inactive_locations_are_not_listed(client, db):
    make_clinic()
    make_location(slug="open-one", name="Open")
    make_location(slug="closed-one", name="Closed", is_active=False)
    db.session.commit()
    payload = client.get("/api/v1/locations").get_json()
    assert [loc["slug"] for loc in payload["data"]] == ["open-one"]


def test_not_found_matches_the_error_schema(client, catalog, spec):
    response = client.get("/api/v1/sessions/999999")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    payload = response.get_json()
    assert_valid(spec, "/sessions/{session_id}", "404", payload)
    assert payload["error"]["status"] == 404
    assert "999999" in payload["error"]["message"]


def test_unpublished_session_is_not_found(client, catalog, spec):
    from events.extensions import db
    from events.models import Session

    draft_session = db.session.scalar(
        db.select(Session).where(Session.offering_id == catalog.offerings["draft"].id)
    )
    response = client.get(f"/api/v1/sessions/{draft_session.id}")
    assert response.status_code == 404
    assert_valid(spec, "/sessions/{session_id}", "404", response.get_json())


def test_bad_filter_matches_the_error_schema(client, catalog, spec):
    response = client.get("/api/v1/sessions?kind=yoga")
    assert response.status_code == 400
    payload = response.get_json()
    assert_valid(spec, "/sessions", "400", payload)
    assert payload["error"]["status"] == 400
    assert "'kind'" in payload["error"]["message"]


def test_empty_schedule_matches_the_schema(client, db, spec):
    make_clinic()
    make_session(make_offering(make_location()), day(-2))
    db.session.commit()
    payload = client.get("/api/v1/sessions").get_json()
    assert_valid(spec, "/sessions", "200", payload)
    assert payload["data"] == []
    assert payload["meta"] == {"page": 1, "per_page": 20, "total": 0, "pages": 1}


def test_documented_filters_are_the_ones_the_api_reads(spec):
    documented = {p["name"] for p in spec["paths"]["/sessions"]["get"]["parameters"]}
    # (lang is read by events/languages.py: titles and errors in that language.)
    assert documented == {"location", "kind", "topic", "price", "from", "to", "q", "page", "per_page", "lang"}
