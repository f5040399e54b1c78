"""Staff sessions (Flask-Login), sign-in and password reset links."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from events.extensions import db, login_manager
from events.inputs import text_problem
from events.models import User

RESET_SALT = "staff-password-reset"
RESET_MAX_AGE_SECONDS = 3600

login_manager.login_view = "staff.login"
login_manager.login_message = "Please sign in to see that page."
login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    if not user_id.isdigit() or len(user_id) > 12:
        return None
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.is_active else None


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active:
        # Same work as a real check, so timing doesn't tell which emails exist.
        User(password_hash="").check_password(password)
        return None
    return user if user.check_password(password) else None


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: no scheme, no host, no '//' or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if text_problem(target):  # CR/LF or NUL cannot go in a Location header (it was a 500)
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def _password_fingerprint(user: User) -> str:
    # Changes when the password changes, so a reset link works once.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def reset_token(user: User) -> str:
    return _serializer().dumps({"u": user.id, "p": _password_fingerprint(user)})


def user_from_reset_token(token: str) -> User | None:
    try:
        data = _serializer().loads(token, max_age=RESET_MAX_AGE_SECONDS)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    user = db.session.get(User, data["u"])
    if user is None or not user.is_active or data.get("p") != _password_fingerprint(user):
        return None
    return user
