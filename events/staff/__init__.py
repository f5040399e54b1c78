"""The staff side: sign-in, instructor rosters and check-in, and the admin pages.

Every view here is behind login_required; admin-only views also use admin_required.
An instructor asking for another instructor's session gets a 404, whatever the id.
"""

from functools import wraps

from flask import Blueprint, abort
from flask_login import current_user, login_required

bp = Blueprint("staff", __name__, url_prefix="/staff")


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


from events.staff import admin, views  # noqa: E402,F401
