"""Who may see what on the staff side: the blueprint, the admin check, an instructor's sessions.

Every staff view is behind login_required; admin-only views also use admin_required.
An instructor asking for another instructor's session gets a 404, whatever the id."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Blueprint, abort
from flask_login import current_user, login_required

from events.extensions import Base, db
from events.models import (
    Session,
    User,
)

bp = Blueprint("staff", __name__, url_prefix="/staff")


P = ParamSpec("P")
R = TypeVar("R")


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    @wraps(view)
    @login_required
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def instructor_of(session: Session) -> int | None:
    return session.instructor_id or session.offering.instructor_id


def visible_session(user: User, session_id: int) -> Session | None:
    """The session if this user may see its roster: admins all, instructors their own."""
    session = db.session.get(Session, session_id)
    if session is None:
        return None
    if user.is_admin or instructor_of(session) == user.id:
        return session
    return None


M = TypeVar("M", bound=Base)


def get_or_404(model: type[M], id_: int) -> M:
    return db.session.get(model, id_) or abort(404)
