"""The test harness itself (tests/isolation.py): a clean `g` per request, and rolled-back tests
that fail when their code reaches the database from elsewhere."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from events.extensions import db
from events.models import Location
from tests.factories import make_location
from tests.integration.test_staff_admin import login
from tests.isolation import rolled_back


def test_one_client_signed_in_leaves_another_signed_out_while_the_test_holds_an_app_context(app_ctx):
    first, second = app_ctx.test_client(), app_ctx.test_client()
    login(first, db)
    assert first.get("/staff/admin/offerings").status_code == 200
    # (Flask runs these requests in the test's app context: without a clean `g` for each, the
    # second client would be the user the first one signed in as.)
    assert second.get("/staff/admin/offerings").status_code == 302
    assert "/staff/login" in second.get("/staff/admin/offerings").headers["Location"]


@pytest.mark.real_commits  # (its own rolled-back transactions, below)
def test_what_a_rolled_back_test_writes_is_gone_and_ids_keep_counting(app):
    with rolled_back(app), app.app_context():
        first = make_location(slug="gone-after")
        db.session.commit()  # a SAVEPOINT released, nothing more
        first_id = first.id
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Location)) == 0
        kept = make_location(slug="kept")
        db.session.flush()
        assert kept.id > first_id
        db.session.rollback()


@pytest.mark.real_commits  # (its own rolled-back transaction, below)
def test_a_thread_using_the_database_fails_a_rolled_back_test(app):
    def elsewhere():
        with app.app_context():
            db.session.execute(sa.text("SELECT 1"))

    with pytest.raises(pytest.fail.Exception, match="mark it @pytest.mark.real_commits"):
        with rolled_back(app):
            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join()


@pytest.mark.real_commits  # (its own rolled-back transaction, below)
def test_a_rollback_that_would_undo_another_sessions_commit_fails_a_rolled_back_test(app):
    with pytest.raises(pytest.fail.Exception, match="undoing that commit too"):
        with rolled_back(app), app.app_context():
            db.session.scalar(sa.select(sa.func.count()).select_from(Location))  # its SAVEPOINT opens
            with app.app_context():  # another session, on the same connection: a SAVEPOINT inside
                make_location(slug="inner")
                db.session.commit()
            db.session.rollback()  # with separate connections, the inner commit would stay
