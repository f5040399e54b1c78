"""Private links for people without accounts: signed, expiring, and naming an unguessable token."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from flask import abort, current_app, session, url_for
from flask_babel import gettext
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

if TYPE_CHECKING:
    from events.models import Pass, Registration, WaitlistEntry

MANAGE_SALT = "registration-manage"
# Where Flask-WTF keeps its CSRF secret in the session (its default WTF_CSRF_FIELD_NAME, which
# this app does not change).
CSRF_SESSION_KEY = "csrf_token"
WAITLIST_SALT = "waitlist-entry"
# The payment link for what a booking still owes (a transfer onto a dearer date): its own salt,
# so a manage link can't be turned into one, and a shorter life (BALANCE_LINK_MAX_AGE_DAYS).
BALANCE_SALT = "registration-balance"
# A class pass's page (events/passes/): balance, history, booking with it. Its own salt.
PASS_SALT = "class-pass"


class LinkInvalid(Exception):
    pass


class LinkExpired(LinkInvalid):
    pass


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def sign(token: str, salt: str) -> str:
    return _serializer(salt).dumps(token)


def unsign(signed: str, salt: str) -> str:
    days_setting = "BALANCE_LINK_MAX_AGE_DAYS" if salt == BALANCE_SALT else "MANAGE_LINK_MAX_AGE_DAYS"
    max_age = current_app.config[days_setting] * 86400
    try:
        return _serializer(salt).loads(signed, max_age=max_age)
    except SignatureExpired as error:
        raise LinkExpired("This link has expired.") from error
    except BadSignature as error:
        raise LinkInvalid("This link is not valid.") from error


def token_from_link(signed: str, salt: str) -> str:
    """The token a private link names, for a page it opens: 404 when tampered, 410 when expired."""
    try:
        return unsign(signed, salt)
    except LinkExpired:
        abort(410, description=gettext("This link has expired. Please contact the clinic if you need help."))
    except LinkInvalid:
        abort(404, description=gettext("This link is not valid. Please use the link from your email."))


def manage_url(registration: Registration, external: bool = True) -> str:
    return url_for("registration.manage", signed=sign(registration.token, MANAGE_SALT), _external=external)


def waitlist_url(entry: WaitlistEntry, external: bool = True) -> str:
    return url_for("registration.waitlist_entry", signed=sign(entry.token, WAITLIST_SALT), _external=external)


# What stands for a signature while a link's address is built once (BatchLinks): like every
# signature (URL-safe base64 and dots), only characters a URL keeps as they are.
_SIGNATURE_STAND_IN = "signature-stand-in"


class BatchLinks:
    """manage_url() and waitlist_url() for many people in a row (an email batch, in one request
    context), the same strings at a fraction of the cost: each salt's serializer is made once
    and each page's address is built once around a stand-in for the signature, which is then
    replaced by each person's (url_for would leave a signature's characters as they are)."""

    def __init__(self) -> None:
        self._serializers: dict[str, URLSafeTimedSerializer] = {}
        self._addresses: dict[str, tuple[str, str] | None] = {}

    def _link(self, endpoint: str, token: str, salt: str) -> str:
        serializer = self._serializers.get(salt)
        if serializer is None:
            serializer = self._serializers[salt] = _serializer(salt)
        signed = serializer.dumps(token)
        if endpoint not in self._addresses:
            built = url_for(endpoint, signed=_SIGNATURE_STAND_IN, _external=True)
            before, _, after = built.partition(_SIGNATURE_STAND_IN)
            self._addresses[endpoint] = (before, after) if built.count(_SIGNATURE_STAND_IN) == 1 else None
        address = self._addresses[endpoint]
        if address is None:  # the stand-in is part of the site's own address: build each link
            return url_for(endpoint, signed=signed, _external=True)
        return address[0] + signed + address[1]

    def manage_url(self, registration: Registration) -> str:
        return self._link("registration.manage", registration.token, MANAGE_SALT)

    def waitlist_url(self, entry: WaitlistEntry) -> str:
        return self._link("registration.waitlist_entry", entry.token, WAITLIST_SALT)


def balance_url(registration: Registration, external: bool = True) -> str:
    """The member's page for paying what their booking still owes (signed, expiring)."""
    return url_for("registration.balance", signed=sign(registration.token, BALANCE_SALT), _external=external)


def pass_url(pass_: Pass, external: bool = True) -> str:
    """The holder's page of a class pass (signed; the blueprint "passes", endpoint "pass_page")."""
    return url_for("passes.pass_page", signed=sign(pass_.token, PASS_SALT), _external=external)


def pay_url(registration: Registration, external: bool = False, resumed: bool = False) -> str:
    """The payment page of a held registration (signed like its manage link); `resumed`: for
    someone brought back to it by registering again."""
    signed = sign(registration.token, MANAGE_SALT)
    if resumed:
        return url_for("registration.pay", signed=signed, back="1", _external=external)
    return url_for("registration.pay", signed=signed, _external=external)


def browser_key() -> str:
    """Who is asking, as a browser: a keyed hash of the random secret Flask-WTF keeps in this
    browser's session cookie (the one its CSRF tokens are made from). Stored on a registration
    it names the browser that made it (registering again there resumes it); it reveals nothing
    about the person and is useless without the cookie. "" for a browser without a session."""
    secret = session.get(CSRF_SESSION_KEY)
    if not isinstance(secret, str) or not secret:
        return ""
    key = f"{current_app.config['SECRET_KEY']}:browser-key".encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()
