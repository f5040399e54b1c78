"""The embedded default's page cache (issue 17, goal 5): on SQLite a cached page's hit takes no
write lock and runs no query; any commit, by any connection of any process, is noticed
(PRAGMA data_version) and the fingerprint read again, so no page is served stale."""

from __future__ import annotations

import re
import sqlite3

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from events.app import create_app
from events.demo import seed_demo
from events.extensions import db


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "events.sqlite3"
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SECRET_KEY": "test",
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade()
        seed_demo()
        db.session.remove()
    app.config["database_path"] = str(path)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def sql_sent(sqlite_app):
    """Everything the app sends to SQLite meanwhile, BEGIN IMMEDIATE included."""
    with sqlite_app.app_context():
        engine = db.engine
    sent: list[str] = []

    def statement(conn, cursor, text, parameters, context, executemany):
        sent.append(text)

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "begin", lambda conn: sent.append("BEGIN"))
    yield sent
    sa.event.remove(engine, "before_cursor_execute", statement)


def first_seats_badge(body: str) -> str:
    return re.search(r'<span class="badge badge-(?:open|few|full)">([^<]+)</span>', body).group(1)


def test_a_hit_takes_no_lock_and_runs_no_query(sqlite_app, sql_sent):
    client = sqlite_app.test_client()
    paths = ("/", "/api/v1/sessions", "/?per_page=100")
    for path in paths:
        assert client.get(path).status_code == 200  # rendered and kept
    with_cookie = sqlite_app.test_client()
    with_cookie.get(
        "/offerings/" + re.search(r'/offerings/([^"?#]+)', client.get("/").get_data(as_text=True)).group(1)
    )
    for path in paths:
        sql_sent.clear()
        assert client.get(path).status_code == 200
        assert with_cookie.get(path).status_code == 200  # (served by Flask, not the replay)
        assert sql_sent == [], path


def test_a_commit_by_another_process_is_seen_on_the_next_page(sqlite_app, sql_sent):
    client = sqlite_app.test_client()
    before = client.get("/").get_data(as_text=True)
    badge = first_seats_badge(before)
    # Another process (a Celery worker, `flask sweep`) takes a seat in the first class shown.
    slug = re.search(r'<h3 class="session-title"><a href="/offerings/([^"?#]+)', before).group(1)
    with sqlite3.connect(sqlite_app.config["database_path"]) as other:
        other.execute(
            "UPDATE seat_pools SET seats_taken = capacity, version = version + 1 WHERE id IN ("
            " SELECT s.seat_pool_id FROM sessions s JOIN offerings o ON o.id = s.offering_id"
            # (the first still to come: the demo also has a past year, for the reports)
            " WHERE o.slug = ? AND s.starts_at > datetime('now') ORDER BY s.starts_at LIMIT 1)",
            (slug,),
        )
    sql_sent.clear()
    after = client.get("/").get_data(as_text=True)
    assert first_seats_badge(after) == "Full - join waitlist" != badge
    assert "BEGIN" in sql_sent  # the fingerprint was read again, and the page rendered


def test_a_commit_that_changes_no_page_costs_one_read_and_keeps_the_page(sqlite_app, sql_sent):
    client = sqlite_app.test_client()
    client.get("/")
    with sqlite3.connect(sqlite_app.config["database_path"]) as other:
        other.execute(
            "INSERT INTO audit_entries (action, target_type, target_id, details, created_at)"
            " VALUES ('test.nothing_public', 'none', 0, '{}', '2026-01-01 00:00:00')"
        )
    sql_sent.clear()
    client.get("/")
    reads = [text for text in sql_sent if not text.startswith("BEGIN")]
    assert len(reads) == 1 and "catalog_state" in reads[0], sql_sent  # the fingerprint, no render
    sql_sent.clear()
    client.get("/")
    assert sql_sent == []
