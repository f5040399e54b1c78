from datetime import date, timedelta

from tests.factories import make_clinic, make_location, make_offering, make_session


def test_schedule_lists_a_new_session(client, db):
    make_clinic(name="Smoke Clinic")
    loc = make_location(slug="here", name="Here")
    offering = make_offering(loc, title="Gentle Stretch")
    make_session(offering, date.today() + timedelta(days=3))
    db.session.commit()

    html = client.get("/").get_data(as_text=True)
    assert "Gentle Stretch" in html
    assert "Smoke Clinic" in html
