"""What the log redaction removes (events/redaction.py); the journey under gunicorn and a real
worker is tests/faults/test_log_privacy.py."""

import logging

from itsdangerous import URLSafeTimedSerializer

from events.redaction import RedactingFilter, redact_text, redact_url

SIGNED = URLSafeTimedSerializer("k", salt="registration-manage").dumps("Zx3-token_value_0123456789")
RESET = URLSafeTimedSerializer("k", salt="staff-password-reset").dumps({"u": 7, "p": "abcdef0123456789"})


def test_private_link_segments_and_query_strings_are_redacted_in_urls():
    assert redact_url(f"/manage/{SIGNED}/pay") == "/manage/[redacted]/pay"
    assert redact_url(f"/waitlist/{SIGNED}/claim") == "/waitlist/[redacted]/claim"
    assert redact_url(f"/staff/password-reset/{RESET}") == "/staff/password-reset/[redacted]"
    assert redact_url("/manage/anything-at-all") == "/manage/[redacted]"
    # A class pass's page and its payment (the products' pages name no one).
    assert redact_url("/pass/anything-at-all/pay") == "/pass/[redacted]/pay"
    assert redact_url("/passes/3/buy") == "/passes/3/buy"
    assert (
        redact_url(
            f"/manage/{SIGNED}/pay/complete?payment_intent=pi_1&payment_intent_client_secret=pi_1_secret_x"
        )
        == "/manage/[redacted]/pay/complete?[redacted]"
    )
    assert (
        redact_url(f"https://clinic.example/elsewhere/{SIGNED}")
        == "https://clinic.example/elsewhere/[redacted]"
    )
    assert redact_url("/offerings/knee-care?page=2") == "/offerings/knee-care?[redacted]"
    assert redact_url("/static/app.min.js") == "/static/app.min.js"
    assert redact_text("Task worker.tasks.queue_scheduled_emails[1] succeeded") == (
        "Task worker.tasks.queue_scheduled_emails[1] succeeded"
    )
    assert redact_url("-") == "-"


def test_addresses_secrets_and_what_database_errors_quote_are_redacted():
    text = (
        "outbox 12 failed permanently: 550 5.1.1 <ada.l@example.org>: Recipient address rejected\n"
        'psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "uq"\n'
        "DETAIL:  Key (email, seat_pool_id)=(ada.l@example.org, 3) already exists.\n"
        "DETAIL:  Failing row contains (5, 3, Ada Lovelace, ada.l@example.org, +1 612 555 0199, tok).\n"
        "[SQL: INSERT INTO registrations (name, email) VALUES (%(name)s, %(email)s)]\n"
        "[parameters: {'name': 'Ada Lovelace', 'email': 'x'}]\n"
        "(Background on this error at: https://sqlalche.me/e/20/gkpj)\n"
        "client secret pi_123_secret_abcDEF"
    )
    redacted = redact_text(text)
    for private in ("ada.l@example.org", "Ada Lovelace", "555 0199", "abcDEF"):
        assert private not in redacted
    assert "outbox 12 failed permanently: 550 5.1.1 <[email]>" in redacted
    assert "Key (email, seat_pool_id)=([redacted]) already exists." in redacted
    assert "[SQL: INSERT INTO registrations (name, email)" in redacted  # the statement stays
    assert "(Background on this error at: https://sqlalche.me/e/20/gkpj)" in redacted


def test_internationalized_addresses_are_redacted_too():
    text = "550 5.1.1 <zoë@exämple.com>: no such user; RCPT zoe@xn--exmple-cua.com; José.Núñez@clínica.mx"
    redacted = redact_text(text)
    assert redacted == "550 5.1.1 <[email]>: no such user; RCPT [email]; [email]"


def test_the_filter_redacts_arguments_and_tracebacks_of_a_record():
    try:
        raise ValueError(f"bad link /manage/{SIGNED} for ada@example.org")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "events",
            logging.ERROR,
            __file__,
            1,
            "Unhandled error on %s",
            (f"/manage/{SIGNED}/pay",),
            sys.exc_info(),
        )
    RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "Unhandled error on /manage/[redacted]/pay" in formatted
    assert "ValueError: bad link /manage/[redacted] for [email]" in formatted
    assert SIGNED not in formatted and "ada@example.org" not in formatted
