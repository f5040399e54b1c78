"""SQLite settings for the embedded default.

Foreign keys on, WAL so readers don't block the writer, and transactions that take the
write lock up front (BEGIN IMMEDIATE): a seat check then runs with no other writer in
between, which is what SELECT ... FOR UPDATE gives us on PostgreSQL.
"""

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine


def configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
