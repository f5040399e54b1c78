"""`flask seed-demo` prints demo staff accounts that really sign in, with no fixed password."""

import re

from flask_migrate import upgrade

from tests.conftest import make_test_app
from tests.helpers import csrf_token


def test_seed_demo_prints_working_staff_accounts(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    app.instance_path = str(tmp_path)
    with app.app_context():
        upgrade()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"]).output
    second = runner.invoke(args=["seed-demo"]).output
    accounts = re.findall(r"(admin|instructor)\s+(\S+@\S+)\s+password: (\S+)", first)
    assert [role for role, _, _ in accounts] == ["admin", "instructor"]
    assert re.findall(r"password: (\S+)", first) == re.findall(r"password: (\S+)", second)  # stable

    other = make_test_app(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    other.instance_path = str(tmp_path / "other")
    with other.app_context():
        upgrade()
    third = other.test_cli_runner().invoke(args=["seed-demo"]).output
    assert re.findall(r"password: (\S+)", third) != re.findall(r"password: (\S+)", first)  # never fixed

    client = app.test_client()
    for role, email, password in accounts:
        page = client.get("/staff/login").get_data(as_text=True)
        response = client.post(
            "/staff/login", data={"csrf_token": csrf_token(page), "email": email, "password": password}
        )
        assert response.status_code == 302, role
        home = client.get("/staff/").get_data(as_text=True)
        assert ("Upcoming sessions" if role == "admin" else "My upcoming sessions") in home
        client.post("/staff/logout", data={"csrf_token": csrf_token(home)})
    with app.app_context():
        from events.extensions import db

        db.engine.dispose()
    with other.app_context():
        from events.extensions import db

        db.engine.dispose()
