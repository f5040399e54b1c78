"""Flask extensions, created unbound and initialised in create_app(). (Flask-Migrate is set up
when first used: events/migrating.py.)"""

from collections.abc import Callable
from functools import cached_property

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from events.languages import LanguageDomain


class Base(DeclarativeBase):
    # Named constraints, so Alembic migrations can alter them on SQLite and PostgreSQL alike.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)


class LanguageBabel(Babel):
    """Flask-Babel with its catalogues chosen by our language codes (events/languages.py)."""

    @cached_property
    def domain_instance(self) -> LanguageDomain:
        return LanguageDomain(domain=self.domain)


babel = LanguageBabel()


def config_limit(name: str) -> Callable[[], str]:
    """A rate limit read from app config on each request (e.g. LOGIN_RATE_LIMIT)."""
    from flask import current_app

    return lambda: current_app.config[name]
