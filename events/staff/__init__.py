"""The staff side: sign-in, instructor rosters and check-in, and the admin pages.

Every view here is behind login_required; admin-only views also use admin_required.
An instructor asking for another instructor's session gets a 404, whatever the id.
"""

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Blueprint, abort
from flask_login import current_user, login_required

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


from events.staff import admin, views  # noqa: E402,F401
