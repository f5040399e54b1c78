"""The language switch on a phone: each language named in itself with its own `lang`, the page's
`<html lang>` following the choice, the choice remembered, axe clean in every language."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from events.models import OfferingKind
from tests.browser.test_phone_journeys import assert_accessible, day, no_sideways_scroll
from tests.factories import make_clinic, make_location, make_offering, make_session

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_choosing_spanish_then_somali_on_a_phone(db, live_server, phone_page):
    make_clinic(name="Revival Physical Therapy and Wellness", tagline="Community workshops and classes.")
    location = make_location(slug="north-loop", name="North Loop")
    offering = make_offering(location, OfferingKind.WORKSHOP, title="Back Basics", price_cents=1500)
    make_session(offering, day(4))
    db.session.commit()
    page = phone_page
    page.goto(live_server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    switch = page.get_by_role("navigation", name="Language")
    for code, name in (("en", "English"), ("es", "Español"), ("so", "Soomaali")):
        expect(switch.get_by_role("link", name=name)).to_have_attribute("lang", code)
    assert_accessible(page)

    switch.get_by_role("link", name="Español").click()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("h2.day-heading").first).to_contain_text(" de ")  # "jueves, 3 de diciembre"
    assert no_sideways_scroll(page)[0] <= no_sideways_scroll(page)[1]
    assert_accessible(page)
    page.screenshot(path=str(SCREENSHOTS / "schedule-spanish-phone.png"))

    page.get_by_role("link", name="Back Basics").click()  # the choice is remembered
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("h1")).to_have_attribute("lang", "en")  # not translated yet: said so
    assert_accessible(page)
    page.screenshot(path=str(SCREENSHOTS / "offering-spanish-fallback-phone.png"), full_page=False)

    page.locator("nav.language-switch").get_by_role(
        "link", name="Soomaali"
    ).click()  # (its label is translated)
    expect(page.locator("html")).to_have_attribute("lang", "so")
    expect(page).to_have_url(f"{live_server.url}/offerings/{offering.slug}")
    assert_accessible(page)
