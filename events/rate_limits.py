"""The limits on the public forms that email a link to an address ("Find my registrations", "My
data"): one per client and one per address, declared once, with what a refused member reads.

The limiter reads its message by calling these functions when it refuses: written in the
page's language.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from flask_babel import gettext
from flask_wtf import FlaskForm

from events.extensions import config_limit, limiter
from events.registration.services import address_digest

View = Callable[..., Any]


def asked_too_often_from_here() -> str:
    return gettext(
        "You've asked several times in the last few minutes. Please wait a few minutes, then try again."
    )


def limit_per_client(view: View) -> View:
    """What one client may ask in a few minutes (POST only)."""
    return limiter.limit(
        config_limit("FIND_REGISTRATIONS_RATE_LIMIT"),
        methods=["POST"],
        error_message=asked_too_often_from_here,  # type: ignore[arg-type]  # (a callable: documented)
    )(view)


def limit_link_requests(
    bucket: str, form: type[FlaskForm], asked_too_often_for_address: Callable[[], str]
) -> Callable[[View], View]:
    """Both limits on a form that emails a link (POST only): per client, and per address.

    `bucket`: names the per-address counters of this form, whose key is a keyed digest of the
    address, never the address. An empty or malformed address (or an expired `form`) sends
    nothing, so it counts against no address: otherwise every visitor's empty submissions
    would share one bucket and, after three, lock everyone out. The per-client limit still
    counts them."""

    def asked_address() -> str:
        return f"{bucket}:" + address_digest(request.form.get("email", "")[:254])

    def not_a_valid_request() -> bool:
        return not form().validate()

    def decorate(view: View) -> View:
        per_address = limiter.limit(
            config_limit("FIND_REGISTRATIONS_ADDRESS_RATE_LIMIT"),
            methods=["POST"],
            key_func=asked_address,
            exempt_when=not_a_valid_request,
            error_message=asked_too_often_for_address,  # type: ignore[arg-type]  # (a callable: documented)
        )
        return limit_per_client(per_address(view))

    return decorate
