"""Every text a database holds, to search for a person's name, address or phone."""

from __future__ import annotations

import sqlalchemy as sa

from events.extensions import db

TEXT_TYPES = (sa.String, sa.Text, sa.JSON, sa.Enum)


def dump_text(connection: sa.Connection | None = None) -> dict[str, list[tuple[object, str]]]:
    """{table: [(row id, the row's text columns joined)]} for every table in the database (not
    only the models': whatever a migration made too), read through `connection` or db.session."""
    bind = connection if connection is not None else db.session.connection()
    inspector = sa.inspect(bind)
    dumped: dict[str, list[tuple[object, str]]] = {}
    for table_name in inspector.get_table_names():
        columns = inspector.get_columns(table_name)
        text_columns = [c["name"] for c in columns if isinstance(c["type"], TEXT_TYPES)]
        if not text_columns:
            continue
        key = "id" if any(c["name"] == "id" for c in columns) else text_columns[0]
        table = sa.table(table_name, *(sa.column(name) for name in {key, *text_columns}))
        rows = bind.execute(
            sa.select(table.c[key], *(sa.cast(table.c[name], sa.Text) for name in text_columns))
        ).all()
        dumped[table_name] = [(row[0], " | ".join(str(v) for v in row[1:] if v is not None)) for row in rows]
    return dumped


def rows_holding(needles: list[str], connection: sa.Connection | None = None) -> dict[str, list]:
    """The rows (table: [(id, text)]) whose text holds any of the needles, any case."""
    lowered = [n.lower() for n in needles if n]
    found: dict[str, list] = {}
    for table, rows in dump_text(connection).items():
        hits = [(row_id, text) for row_id, text in rows if any(n in text.lower() for n in lowered)]
        if hits:
            found[table] = hits
    return found
