"""Security headers on every response.

The Content-Security-Policy allows only our own scripts and styles plus Stripe.js (the real
one, or the emulator's mock in development), so an injected <script> would not run.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import Flask, current_app, request
from flask.wrappers import Response
from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def stripe_js_url() -> str:
    cfg = current_app.config
    if cfg["STRIPE_JS_URL"]:
        return cfg["STRIPE_JS_URL"]
    base = cfg["STRIPE_API_BASE"]
    return f"{base}/js.stripe.com/v3/" if base else "https://js.stripe.com/v3/"


def content_security_policy() -> str:
    cfg = current_app.config
    return _policy(stripe_js_url(), cfg["STRIPE_API_BASE"] or "https://api.stripe.com")


@lru_cache(maxsize=8)
def _policy(stripe_js_url_value: str, stripe_api_base: str) -> str:
    """Built once per configuration, not on every response."""
    stripe_js = _origin(stripe_js_url_value)
    stripe_api = _origin(stripe_api_base)
    frames = (
        "https://js.stripe.com https://hooks.stripe.com"
        if stripe_js == "https://js.stripe.com"
        else stripe_js
    )
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' {stripe_js}",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": f"'self' {stripe_api} {stripe_js}",
        "frame-src": frames,
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def register(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", content_security_policy())
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        # Private links carry tokens in their path: never send them to other sites.
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(self)")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        if request.path.startswith(("/manage/", "/waitlist/", "/staff", "/my-data")):
            headers["Cache-Control"] = "no-store"
        return response


def behind_proxies(wsgi_app: WSGIApplication, count: int) -> WSGIApplication:
    """Behind `count` proxies, take the client's address (rate limits), scheme (HSTS, the CSRF
    referrer check) and host from their X-Forwarded-* headers; with none, ignore those headers,
    since anyone can send them."""
    if not count:
        return wsgi_app
    return ProxyFix(wsgi_app, x_for=count, x_proto=count, x_host=count)
