"""How each test's database writes are undone, and how each test-client request gets a clean `g`.

Most tests run inside one transaction that is rolled back at the end, the pattern of warehouse's
tests and pytest-flask-sqlalchemy: one connection, an outer transaction, and every `db.session`
the test's thread makes bound to that connection with join_transaction_mode="create_savepoint",
so the code's own commit() and rollback() act on a SAVEPOINT. The rollback at the end is the
whole cleanup. Ids keep counting up (sequences are not transactional), so Stripe idempotency
keys derived from them still never repeat within a run.

What the pattern cannot give: another connection sees none of the test's writes. A test whose
code talks to the database over a connection of its own (the live server and the browser, a
gunicorn or Celery process, a thread with its own app context, the outbox's autocommit marks and
lease renewals) commits for real instead, and its tables are emptied after it (TRUNCATE). Those
tests are found by their fixtures (REAL_COMMIT_FIXTURES) or marked @pytest.mark.real_commits.
So that none is missed, a rolled-back test fails at teardown, saying what happened, if
- a second connection to the test database is taken from the app's pool or opened with
  psycopg.connect (except the two that hold no data: the sweeps' advisory lock, events/locks.py,
  and the page cache's LISTEN thread, events/catalog/cache.py);
- another thread runs a statement on the test's connection;
- a process is started with the test database's name in its arguments or environment;
- the tables are not empty when it begins (something committed after an earlier test ended).
"""

from __future__ import annotations

import subprocess
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import sqlalchemy as sa
from flask.globals import _cv_app
from flask.testing import FlaskClient
from flask_sqlalchemy.session import Session as FlaskSession

from events.extensions import db as _db

# Fixtures whose processes or threads read and write the test database on connections of their
# own: the live server (and so localstripe, which delivers webhooks to it, and the browser), the
# Celery worker, and the recording SMTP servers (the outbox's sender writes each 'sent' mark on
# an autocommit connection of its own and renews its lease from a thread).
REAL_COMMIT_FIXTURES = frozenset(
    {"live_server", "celery_worker", "browser", "page", "phone_page", "smtp", "smtp_recorder"}
)

# Connections of their own that hold no data, allowed beside the test's: the sweeps' advisory
# lock (events/locks.py) and the page cache's LISTEN thread (events/catalog/cache.py).
_DATALESS_CONNECTIONS = ("events/locks.py", "events/catalog/cache.py")


def is_savepoint_statement(statement: str) -> bool:
    """SAVEPOINT, RELEASE SAVEPOINT or ROLLBACK TO SAVEPOINT: what a rolled-back test's sessions
    send in place of BEGIN, COMMIT and ROLLBACK, which the driver sends without a cursor (so
    statement counters never counted them). The app itself uses no savepoints."""
    return statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))


def needs_real_commits(item: pytest.Item) -> bool:
    return item.get_closest_marker("real_commits") is not None or not REAL_COMMIT_FIXTURES.isdisjoint(
        getattr(item, "fixturenames", ())
    )


class _ConnectionSession(FlaskSession):
    """Flask-SQLAlchemy's session, on the test's connection (its get_bind ignores `bind`)."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return bind if bind is not None else self.bind


def _dataless() -> bool:
    return any(f.filename.endswith(_DATALESS_CONNECTIONS) for f in traceback.extract_stack())


def _thread() -> str:
    return f"thread {threading.current_thread().name!r}"


def _short_stack() -> str:
    frames = [f for f in traceback.extract_stack()[:-2] if "site-packages" not in f.filename]
    return "".join(traceback.format_list(frames[-6:]))


def _nonempty_tables(connection: sa.Connection) -> list[str]:
    tables = [t for t in _db.metadata.sorted_tables if t.name != "catalog_state"]
    row = connection.execute(sa.select(*(sa.exists().select_from(t).label(t.name) for t in tables))).one()
    return [name for name, used in row._mapping.items() if used]


@contextmanager
def rolled_back(app) -> Iterator[None]:
    """Everything the current thread does through db.session inside, undone at the end."""
    with app.app_context():
        engine = _db.engine
    database = engine.url.database
    owner = threading.get_ident()
    problems: list[str] = []

    connection = engine.connect()
    leftovers = _nonempty_tables(connection)
    connection.rollback()
    if leftovers:  # reported below; emptied now, so that this test and the next run as meant
        truncate_tables(app)
    outer = connection.begin()

    def on_checkout(dbapi_connection, record, proxy) -> None:
        if not _dataless():
            problems.append(f"{_thread()} took a second connection from the pool:\n{_short_stack()}")

    real_connect = psycopg.connect

    def guarded_connect(conninfo="", *args, **kwargs):
        if database in repr((conninfo, kwargs)) and not _dataless():
            problems.append(f"{_thread()} opened a connection of its own:\n{_short_stack()}")
        return real_connect(conninfo, *args, **kwargs)

    # Each session keeps one savepoint at a time, and savepoints nest: if a session commits
    # (RELEASE) while another's is open below it, and that other one then rolls back, the first
    # one's commit is undone with it, which separate connections would never do.
    open_savepoints: list[str] = []
    holding_others_commits: set[str] = set()

    def close_savepoint(name: str) -> None:
        if name in open_savepoints:  # (closing one closes every one opened after it)
            del open_savepoints[open_savepoints.index(name) :]

    def on_statement(conn, cursor, statement, parameters, context, executemany) -> None:
        if threading.get_ident() != owner:
            problems.append(f"{_thread()} used the test's connection:\n{_short_stack()}")
        words = statement.split()
        if words[:1] == ["SAVEPOINT"]:
            open_savepoints.append(words[1])
        elif words[:2] == ["RELEASE", "SAVEPOINT"]:
            close_savepoint(words[2])
            if open_savepoints:
                holding_others_commits.add(open_savepoints[-1])
        elif words[:3] == ["ROLLBACK", "TO", "SAVEPOINT"]:
            close_savepoint(words[3])
            if words[3] in holding_others_commits:
                problems.append(
                    "a session rolled back after another one (of an app context of its own) had "
                    f"committed while the first one's was open, undoing that commit too:\n{_short_stack()}"
                )

    real_popen = subprocess.Popen

    class GuardedPopen(real_popen):
        def __init__(self, args, *rest, **kwargs):
            if database in repr(args) or database in repr(kwargs.get("env")):
                problems.append(f"a process was started on the test database: {args!r}")
            super().__init__(args, *rest, **kwargs)

    registry = _db.session.registry
    make_normal_session = registry.createfunc
    make_bound_session = sa.orm.sessionmaker(
        db=_db,
        class_=_ConnectionSession,
        query_cls=_db.Query,
        bind=connection,
        join_transaction_mode="create_savepoint",
    )
    registry.createfunc = lambda: (
        make_bound_session() if threading.get_ident() == owner else make_normal_session()
    )
    sa.event.listen(engine, "checkout", on_checkout)
    sa.event.listen(connection, "before_cursor_execute", on_statement)
    subprocess.Popen = GuardedPopen
    psycopg.connect = guarded_connect
    try:
        yield
    finally:
        psycopg.connect = real_connect
        subprocess.Popen = real_popen
        sa.event.remove(engine, "checkout", on_checkout)
        registry.createfunc = make_normal_session
        for scope, session in list(registry.registry.items()):
            if isinstance(session, _ConnectionSession):
                session.close()
                registry.registry.pop(scope, None)
        outer.rollback()
        connection.close()  # (its event listeners go with it)
        # Pages cached during the test were keyed by catalog versions the rollback has undone; a
        # later test reaching the same versions must not be served them.
        for name in ("page_cache", "schedule_pages"):
            cache = app.extensions.get(name)
            if cache is not None:
                cache.clear()
        listener = app.extensions.get("catalog_listener")
        if listener is not None:  # (and the seats it keeps were read from rows now gone)
            listener.seats.learn(None)
    if leftovers:
        pytest.fail(
            f"Rows were in {', '.join(leftovers)} when this test began: an earlier test's process or "
            "thread committed after that test had ended and its tables had been emptied (they are "
            "emptied again now).",
            pytrace=False,
        )
    if problems:
        pytest.fail(
            "This test's code reached the database outside the test's transaction, so it cannot "
            "be rolled back: mark it @pytest.mark.real_commits.\n\n" + "\n".join(problems),
            pytrace=False,
        )


def truncate_tables(app) -> None:
    """Empty every table after a test whose writes were committed.

    catalog_state keeps counting, as in production: a reset would let cached pages of an
    earlier test match a later one's fingerprint.
    """
    with app.app_context():
        _db.session.remove()
        tables = ", ".join(f'"{t.name}"' for t in _db.metadata.sorted_tables if t.name != "catalog_state")
        # A live worker process may still be finishing the test's last task (say, sending the
        # email a refund queued): its row locks and TRUNCATE's table locks can deadlock, and
        # PostgreSQL then aborts one side. Ours is the one to try again.
        for attempt in range(10):
            try:
                with _db.engine.begin() as conn:
                    conn.execute(sa.text(f"TRUNCATE {tables} CASCADE"))
                break
            except sa.exc.OperationalError as error:
                if "deadlock detected" not in str(error) or attempt == 9:
                    raise
                time.sleep(0.2)  # a pause before trying again, not a wait for an event


class FreshGlobalsClient(FlaskClient):
    """A test client whose every request (each hop of a followed redirect too) gets a clean `g`.

    When the test holds an app context, Flask runs the request in it rather than in one of its
    own, and so with its `g`: the signed-in user Flask-Login keeps there and the CSRF token
    Flask-WTF keeps there would pass from one request to the next, from one client to another.
    The request still shares the test's database session, as the app's requests in a test
    always have (and as pytest-flask-sqlalchemy does): what a request commits, the test sees."""

    def open(self, *args, **kwargs):
        current = _cv_app.get(None)
        if current is None or current.app is not self.application:
            return super().open(*args, **kwargs)  # the request pushes a context of its own
        kept, current.g = current.g, self.application.app_ctx_globals_class()
        try:
            return super().open(*args, **kwargs)
        finally:
            current.g = kept
