"""Staff accounts: sessions (Flask-Login), sign-in, password reset links, instructors' accounts."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import sqlalchemy as sa

from events import audit
from events.extensions import db, login_manager
from events.inputs import text_problem
from events.models import (
    Role,
    User,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_email
from events.staff.errors import AdminError

login_manager.login_view = "staff.login"
login_manager.login_message = "Please sign in to see that page."
login_manager.session_protection = "strong"


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


def set_password(user: User, password: str) -> None:
    user.set_password(password)
    audit.record(user.id, "user.password_changed", "user", user.id)
    db.session.commit()


def request_password_reset(email: str) -> bool:
    """Queue a reset email if the address belongs to an active staff account."""
    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active:
        return False
    # The link itself is signed when the email is rendered, so no live token sits in the database.
    queue_email(EmailKind.PASSWORD_RESET, user=user, key_parts=(utcnow().strftime("%Y%m%d%H%M%S"),))
    db.session.commit()
    return True


def save_instructor(user: User | None, data: dict, actor: User) -> User:
    """An instructor account has no password until they set one via "Forgot your password".
    It starts active; set_staff_active deactivates and reactivates it."""
    email = data["email"].strip().lower()
    clash = db.session.scalar(sa.select(User.id).where(User.email == email))
    if clash is not None and (user is None or clash != user.id):
        raise AdminError("Another staff account uses that email.", "email")
    created = user is None
    if user is None:
        user = User(role=Role.INSTRUCTOR, password_hash="")
        db.session.add(user)
    elif user.role is not Role.INSTRUCTOR:
        raise AdminError("Only instructor accounts are edited here.")
    user.email, user.name, user.bio = email, data["name"], data["bio"]
    db.session.flush()
    audit.record(
        actor.id, "instructor.created" if created else "instructor.updated", "user", user.id, name=user.name
    )
    db.session.commit()
    return user


def set_staff_active(user: User, active: bool, actor: User) -> bool:
    """Deactivate a staff account (signed out everywhere at once; no sign-in or reset link works
    until it is reactivated) or reactivate it (its old sessions stay ended). Offerings and rosters
    keep pointing at the account either way. Returns whether anything changed."""
    if not active:
        if user.id == actor.id:
            raise AdminError("You can't deactivate your own account.")
        # Locked, so two admins deactivating each other at once can't leave the clinic with none.
        active_admins = db.session.scalars(
            sa.select(User.id).where(User.role == Role.ADMIN, User.is_active.is_(True)).with_for_update()
        ).all()
        if user.is_admin and set(active_admins) <= {user.id}:
            raise AdminError("This is the last active admin account; it can't be deactivated.")
    db.session.refresh(user, with_for_update=True)
    if user.is_active == active:
        db.session.commit()
        return False
    if not active:
        user.end_sessions()
    user.is_active = active
    audit.record(
        actor.id, "user.reactivated" if active else "user.deactivated", "user", user.id, name=user.name
    )
    db.session.commit()
    return True


def instructors(active_only: bool = False) -> list[User]:
    query = sa.select(User).where(User.role == Role.INSTRUCTOR).order_by(sa.func.lower(User.name))
    if active_only:
        query = query.where(User.is_active.is_(True))
    return list(db.session.scalars(query))
