"""gunicorn settings for production (`gunicorn -c gunicorn.conf.py wsgi:app`, see Procfile).

Forwarded headers: the app's ProxyFix (PROXY_COUNT, events/security.py) is the one place that
reads X-Forwarded-*. gunicorn itself never turns X-Forwarded-Proto into https (no
secure_scheme_headers), and trusts forwarded headers only from FORWARDED_ALLOW_IPS, and only
when PROXY_COUNT says there is a proxy: with PROXY_COUNT=0 no client, 127.0.0.1 included,
can change anything with a header.

Access log: the request line and referrer with private link tokens redacted and query
strings dropped (events/redaction.py); error log records are redacted by the app's filter.
"""

from gunicorn.glogging import Logger

from events.config import Config  # PORT, WEB_CONCURRENCY, WEB_THREADS, PROXY_COUNT, FORWARDED_ALLOW_IPS
from events.redaction import redact_url

bind = f"0.0.0.0:{Config.PORT}"
workers = Config.WEB_CONCURRENCY
threads = Config.WEB_THREADS
# How long an idle keep-alive connection stays open (gunicorn's default is 2 s). A visitor who
# opens a form and submits it a few seconds later, or a proxy's pooled connection, should not
# find it closed: a POST on a connection closed under it is not retried by every client (a
# crowd of 200 waiting on one class saw resets). Idle connections cost a socket, not a thread.
keepalive = 30
accesslog = "-"

# The proxy's own address(es), comma-separated, when there is one (PROXY_COUNT > 0).
forwarded_allow_ips = Config.FORWARDED_ALLOW_IPS if Config.PROXY_COUNT else ""
secure_scheme_headers = {}
forwarder_headers = ""


class RedactingAccessLogger(Logger):
    """gunicorn's logger with the access-log fields that can carry a token redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        method, protocol = environ.get("REQUEST_METHOD", "-"), environ.get("SERVER_PROTOCOL", "-")
        atoms["r"] = f"{method} {redact_url(environ.get('RAW_URI', ''))} {protocol}"
        atoms["U"] = redact_url(atoms.get("U") or "")
        atoms["q"] = ""
        atoms["f"] = redact_url(atoms.get("f") or "-")
        for name in list(atoms):  # headers and environ, should a custom format name them
            if name.startswith("{") and isinstance(atoms[name], str):
                atoms[name] = redact_url(atoms[name])
        return atoms


logger_class = RedactingAccessLogger
