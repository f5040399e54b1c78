"""Read-your-writes across processes: whoever changed something sees it on their next public
page even when another process serves it before its NOTIFY listener has heard of the change.

Two app instances share the PostgreSQL database, each with its own page cache, as two gunicorn
workers do. The second one's listener is held still (connected, not counting), as a listener
that has not yet received the notification; a visitor who did not make the change is the
control: they get that process's page as it was, which is the bound the README states.
"""

import re

import pytest
import requests

from events.catalog.cache import KnownSeats
from events.extensions import db as _db
from events.models import Role, User
from tests.conftest import LiveServer, make_test_app
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.helpers import csrf_token
from tests.integration.test_page_cache import listening, seats_shown
from tests.integration.test_staff_admin import PASSWORD, form_of


class HeldListener:
    """A listener that is connected but has not received the latest NOTIFY yet."""

    connected = True
    version = 0

    def __init__(self) -> None:
        self.seats = KnownSeats()  # (what it knew before: nothing, here)


@pytest.fixture
def lagging_server(app, pg_database_url):
    other = make_test_app(pg_database_url)
    other.extensions["catalog_listener"] = HeldListener()
    server = LiveServer(other)
    server.start()
    yield server
    server.stop()
    with other.app_context():
        _db.session.remove()
        _db.engine.dispose()


def offering_with_seats(db, capacity=5):
    offering = make_offering(make_location(), title="Knee Care", capacity=capacity)
    make_session(offering, upcoming_day(3))
    db.session.commit()
    return offering


def test_the_person_who_registers_sees_their_seat_on_any_process(
    app, db, live_server, lagging_server, rate_limits_enforced
):
    listening(app)
    offering = offering_with_seats(db)
    page_path = f"/offerings/{offering.slug}"
    with requests.Session() as member, requests.Session() as bystander:
        assert seats_shown(member.get(lagging_server.url + page_path).text) == "5 seats left"
        assert seats_shown(bystander.get(lagging_server.url + page_path).text) == "5 seats left"

        form = member.get(live_server.url + page_path).text
        response = member.post(
            f"{live_server.url}{page_path}/register",
            data={"csrf_token": csrf_token(form), "name": "Ada", "email": "ada@example.com"},
            allow_redirects=False,
        )
        assert response.status_code == 302 and "/manage/" in response.headers["Location"]
        member.get(live_server.url + response.headers["Location"])  # the redirect (shows the flash)

        # The member's next page comes from the process whose listener is behind: fresh anyway.
        assert seats_shown(member.get(lagging_server.url + page_path).text) == "4 seats left"
        assert seats_shown(member.get(lagging_server.url + "/").text) == "4 seats left"
        # Someone else on that process still gets its page as it was until its listener hears.
        assert seats_shown(bystander.get(lagging_server.url + page_path).text) == "5 seats left"
        # The process that committed the change shows it to everyone at once.
        assert seats_shown(bystander.get(live_server.url + page_path).text) == "4 seats left"


def test_an_admin_sees_their_own_edit_on_any_process(
    app, db, live_server, lagging_server, rate_limits_enforced
):
    listening(app)
    offering = offering_with_seats(db)
    admin = User(email="admin-ryw@clinic.example", name="Sam Admin", role=Role.ADMIN)
    admin.set_password(PASSWORD)
    db.session.add(admin)
    db.session.commit()
    page_path = f"/offerings/{offering.slug}"
    edit_path = f"/staff/admin/offerings/{offering.id}/edit"
    with requests.Session() as staff, requests.Session() as bystander:
        login = staff.get(live_server.url + "/staff/login").text
        signed_in = staff.post(
            live_server.url + "/staff/login",
            data={"csrf_token": csrf_token(login), "email": admin.email, "password": PASSWORD},
            allow_redirects=False,
        )
        assert signed_in.status_code == 302
        assert "Knee Care" in staff.get(lagging_server.url + page_path).text
        assert "Knee Care" in bystander.get(lagging_server.url + page_path).text

        edit = staff.get(live_server.url + edit_path).text
        saved = staff.post(
            live_server.url + edit_path,
            data=form_of(offering, title="Knee Care, Renamed", capacity="8", csrf_token=csrf_token(edit)),
        )
        assert saved.status_code == 200 and "Saved." in saved.text  # followed the redirect

        mine = staff.get(lagging_server.url + page_path).text
        assert "Knee Care, Renamed" in mine and seats_shown(mine) == "8 seats left"
        theirs = bystander.get(lagging_server.url + page_path).text
        assert not re.search("Knee Care, Renamed", theirs) and seats_shown(theirs) == "5 seats left"
