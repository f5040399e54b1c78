"""Flask-Migrate, loaded when it is used: `flask db ...`, or a caller of flask_migrate.upgrade().

Importing Flask-Migrate imports Alembic (and Mako and Pygments under it), about a sixth of the
app's start-up, which neither a web request nor `flask sweep` needs (issue 17, goal 6). So
create_app() leaves two stand-ins: a `db` command group that loads the real one when it is run
(`flask --help` lists it with no import), and an app.extensions["migrate"] entry that sets up
the real extension on first use (flask_migrate.upgrade(), downgrade() and friends read it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask import Flask

from events.extensions import db

DIRECTORY = Path(__file__).resolve().parent.parent / "migrations"


def install(app: Flask) -> None:
    app.extensions["migrate"] = _PendingMigrate(app)
    app.cli.add_command(_MigrateCommands(app))


def load(app: Flask) -> click.Group:
    """Set up Flask-Migrate on `app` (once), and return its `db` command group."""
    if isinstance(app.extensions.get("migrate"), _PendingMigrate):
        from flask_migrate import Migrate

        # Replaces both stand-ins: app.extensions["migrate"] and the `db` command.
        Migrate(app, db, directory=str(DIRECTORY), render_as_batch=True)
    from flask_migrate.cli import db as commands

    return commands


class _PendingMigrate:
    """app.extensions["migrate"] until Flask-Migrate is loaded: any attribute read loads it."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    def __getattr__(self, name: str) -> Any:
        load(self._app)
        return getattr(self._app.extensions["migrate"], name)


class _MigrateCommands(click.Group):
    """`flask db`: its help line without Alembic; parsing its arguments loads the real group."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="db", help="Perform database migrations.")
        self._app = app

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        # The context made is the real group's, so click invokes the real group and its commands.
        return load(self._app).make_context(info_name, args, parent=parent, **extra)
