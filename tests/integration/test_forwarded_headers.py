"""Forwarded headers under gunicorn as production runs it (gunicorn.conf.py): with PROXY_COUNT=0
no header changes the scheme or host, even from 127.0.0.1 (which gunicorn trusts by default);
behind a configured proxy the app's ProxyFix honours them."""

import pytest
import requests

from tests.factories import make_location
from tests.gunicorn_server import GunicornServer, web_env

# gunicorn, a process of its own, reads what the test wrote.
pytestmark = [pytest.mark.slow, pytest.mark.real_commits]

FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-For": "203.0.113.9",
}


@pytest.mark.parametrize("proxy_count", [0, 1])
def test_forwarded_headers_change_nothing_without_a_configured_proxy(app, db, proxy_count):
    make_location(slug="north-loop")
    db.session.commit()
    server = GunicornServer(web_env(app, PROXY_COUNT=proxy_count, RATELIMIT_ENABLED=0), "forwarded").start()
    try:
        page = requests.get(f"{server.url}/staff/login", headers=FORWARDED, timeout=10)
        api = requests.get(f"{server.url}/api/v1/locations", headers=FORWARDED, timeout=10)
        plain = requests.get(f"{server.url}/staff/login", timeout=10)
    finally:
        server.stop()
    assert page.status_code == api.status_code == 200
    url = api.json()["data"][0]["url"]  # built from the request's scheme and host
    if proxy_count:
        assert "Strict-Transport-Security" in page.headers
        assert url == "https://evil.example/locations/north-loop"
    else:
        assert "Strict-Transport-Security" not in page.headers
        assert url == f"http://127.0.0.1:{server.port}/locations/north-loop"
    assert "Strict-Transport-Security" not in plain.headers
