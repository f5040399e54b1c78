"""Staff sessions (Flask-Login), sign-in and password reset links."""

from __future__ import annotations

import hashlib
import re
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

# What User.get_id() stores in the session (and a remember cookie): "<user id>:<session version>".
_SESSION_ID = re.compile(r"(\d{1,12}):(\d{1,12})", re.ASCII)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The signed-in user, unless the session predates their last sign-out, new password or
    deactivation (each raises the account's session version), or the account is inactive."""
    match = _SESSION_ID.fullmatch(user_id)
    if match is None:
        return None
    user = db.session.get(User, int(match[1]))
    if user is None or not user.is_active or user.session_version != int(match[2]):
        return None
    return user


def sign_out_everywhere(user: User) -> None:
    """End every session of this account, this one included."""
    user.end_sessions()
    db.session.commit()


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
