"""No personal data or private link token in anything the processes log.

A full journey under the production log settings: gunicorn with the real gunicorn.conf.py
(access log on stdout, error log on stderr), a Celery worker and beat at --loglevel=info, the
Stripe emulator delivering webhooks, an SMTP server that refuses one recipient. Along the way
the database refuses two writes (a trigger added for a moment), so the logs hold
real tracebacks of a registration and of a card payment (/manage/<signed>/pay) with the SQL
they ran. Then every byte the web, worker and beat processes wrote is searched for the
people's names, addresses and phone, their registration tokens, signed links, the Stripe client
secret and the staff reset token.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa
import stripe

from events.models import EmailStatus, OutboxEmail, Registration, Role, User, WaitlistEntry
from tests.factories import workshop
from tests.faults.conftest import PrivateLocalstripe, csrf_from, engine_of
from tests.faults.redis_private import PrivateRedis
from tests.gunicorn_server import GunicornServer, web_env
from tests.helpers import wait_until
from tests.worker.conftest import SmtpServer, WorkerProcess, worker_env

# gunicorn and Celery, processes of their own, read and write what the test does.
pytestmark = [pytest.mark.slow, pytest.mark.real_commits]

MEMBER = {
    "name": "Philippa Quince-Whitlock",
    "email": "philippa.quince@example.org",
    "phone": "+1 612 555 0199",
}
REFUSED = {"name": "Bartholomew Ashdown", "email": "bart.ashdown@example.net", "phone": "+1 763 555 0142"}
STAFF = {"name": "Imogen Staffwright", "email": "imogen.staff@clinic.example"}
PERSONAL = [
    *MEMBER.values(),
    *REFUSED.values(),
    *STAFF.values(),
    "Philippa",
    "Quince",
    "Bartholomew",
    "Ashdown",
    "Imogen",
    "Staffwright",
    "555 0199",
    "5550199",
    "555 0142",
    "philippa.quince",
    "bart.ashdown",
    "imogen.staff",
]


@pytest.fixture
def production_processes(app, db):
    """gunicorn, a worker and beat (sweeping every 2 s) on a private Redis, a private Stripe
    emulator posting webhooks to gunicorn, and an SMTP server that can refuse recipients."""
    redis_server = PrivateRedis()
    redis_server.start()
    smtp = SmtpServer()
    web = GunicornServer({}, "privacy-web")  # its port, for the emulator's webhooks
    emulator = PrivateLocalstripe(webhook_url=f"{web.url}/stripe/webhook")
    emulator.start()
    web.env = dict(
        web_env(
            app,
            REDIS_URL=redis_server.url,
            STRIPE_API_BASE=emulator.url,
            STRIPE_WEBHOOK_SECRET=emulator.webhook_secret,
            PUBLIC_BASE_URL="http://clinic.test",
        ),
        PORT=str(web.port),
    )
    web.start()
    env = worker_env(app, types.SimpleNamespace(port=smtp.port), redis_server.url)
    env.update(STRIPE_API_BASE=emulator.url, WORKER_SWEEP_SECONDS="2")
    worker = WorkerProcess(env, "privacy-worker").start()
    beat = WorkerProcess(env, "privacy-beat", beat=True).start()
    yield types.SimpleNamespace(web=web, worker=worker, beat=beat, smtp=smtp, stripe=emulator)
    for process in (beat, worker, web):
        process.stop()
    emulator.stop()
    smtp.stop()
    redis_server.stop()


def refuse_writes(app, name: str, table: str, condition: str):
    """A trigger that fails some writes with a data exception (SQLSTATE 22000: a DataError,
    as a value the column cannot take), until `allow()` removes it."""
    with engine_of(app).begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF {condition} THEN RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22000'; "
                "END IF; RETURN NEW; END $$"
            )
        )
        conn.execute(
            sa.text(
                f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        )

    def allow():
        with engine_of(app).begin() as conn:
            conn.execute(sa.text(f"DROP TRIGGER {name} ON {table}"))
            conn.execute(sa.text(f"DROP FUNCTION {name}()"))

    return allow


def post_form(http, base, page_path, action_path, data, expect=None):
    page = http.get(base + page_path, timeout=30)
    response = http.post(
        base + action_path,
        data={"csrf_token": csrf_from(page.text), **data},
        allow_redirects=False,
        timeout=30,
    )
    if expect is not None:
        assert response.status_code == expect, (action_path, response.status_code, response.text[:300])
    return response


def test_a_full_journey_logs_no_personal_data_or_private_token(app, db, production_processes):
    p = production_processes
    base = p.web.url
    paid = workshop(price_cents=2500, capacity=5, title="Paid Privacy Workshop")
    tiny = workshop(capacity=1, title="Tiny Privacy Workshop")
    staff = User(email=STAFF["email"], name=STAFF["name"], role=Role.ADMIN)
    staff.set_password("an old password, long enough")
    db.session.add(staff)
    db.session.commit()
    p.smtp.handler.reject[REFUSED["email"]] = f"550 5.1.1 <{REFUSED['email']}>: Recipient address rejected"
    secrets: list[str] = []
    emulator = stripe.StripeClient("sk_test_emulator", base_addresses={"api": p.stripe.url})

    def card():
        return emulator.v1.tokens.create(
            params={"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
        ).id

    with requests.Session() as member:
        # 1. Registering while the database refuses the row: a 500 whose traceback quotes it.
        allow = refuse_writes(
            app, "privacy_refuse_member", "registrations", f"NEW.phone = '{MEMBER['phone']}'"
        )
        try:
            post_form(
                member, base, f"/offerings/{paid.slug}", f"/offerings/{paid.slug}/register", MEMBER, 500
            )
        finally:
            allow()
        # 2. Registering (a seat held), then paying: the first card submission fails on our side.
        held = post_form(
            member, base, f"/offerings/{paid.slug}", f"/offerings/{paid.slug}/register", MEMBER, 302
        )
        pay_path = urlsplit(held.headers["Location"]).path
        assert pay_path.endswith("/pay")
        secrets.append(pay_path.split("/")[2])
        registration_id = db.session.scalar(
            sa.select(Registration.id).where(Registration.email == MEMBER["email"])
        )
        page = member.get(base + pay_path, timeout=30)
        allow = refuse_writes(
            app, "privacy_refuse_payment", "payments", f"NEW.registration_id = {registration_id}"
        )
        try:
            failed = member.post(
                base + pay_path,
                json={"token": card()},
                headers={"X-CSRFToken": csrf_from(page.text)},
                timeout=30,
            )
        finally:
            allow()
        assert failed.status_code == 500
        paid_now = member.post(
            base + pay_path, json={"token": card()}, headers={"X-CSRFToken": csrf_from(page.text)}, timeout=30
        )
        assert paid_now.status_code == 200 and paid_now.json()["status"] == "succeeded", paid_now.text
        intent_id, client_secret = paid_now.json()["intent_id"], paid_now.json()["client_secret"]
        if client_secret:
            secrets.append(client_secret)
        # The browser's return from Stripe, with the intent and its secret in the query string.
        done = member.get(
            f"{base}{pay_path}/complete",
            params={"payment_intent": intent_id, "payment_intent_client_secret": client_secret or ""},
            timeout=30,
        )
        assert done.status_code == 200
        wait_until(lambda: p.smtp.to(MEMBER["email"]), 60, "the member's confirmation")
        # 3. Cancelling through the manage link: refunded.
        manage_path = pay_path.removesuffix("/pay")
        post_form(
            member, base, f"{manage_path}/cancel", f"{manage_path}/cancel", {"refund_cents": "2500"}, 302
        )
    with requests.Session() as refused:
        # 5. Someone whose address the mail server refuses: the send fails for good.
        post_form(refused, base, f"/offerings/{tiny.slug}", f"/offerings/{tiny.slug}/register", REFUSED, 302)
    with requests.Session() as member:
        # 4. That workshop is now full: the member joins its waitlist.
        joined = post_form(
            member, base, f"/offerings/{tiny.slug}", f"/offerings/{tiny.slug}/waitlist", MEMBER, 302
        )
        waitlist_path = urlsplit(joined.headers["Location"]).path
        secrets.append(waitlist_path.split("/")[2])
        member.get(base + waitlist_path, timeout=30)
    # 6. A staff password reset, through the emailed link.
    with requests.Session() as desk:
        post_form(
            desk, base, "/staff/password-reset", "/staff/password-reset", {"email": STAFF["email"]}, 302
        )
        reset_mail = wait_until(lambda: p.smtp.to(STAFF["email"]), 60, "the reset email")[0]
        reset_url = re.search(
            r"https?://\S+/staff/password-reset/(\S+)", reset_mail.get_body(("plain",)).get_content()
        )
        reset_path = f"/staff/password-reset/{reset_url.group(1)}"
        secrets.append(reset_url.group(1))
        new_password = {"password": "a new password, long enough", "confirm": "a new password, long enough"}
        post_form(desk, base, reset_path, reset_path, new_password, 302)

    def settled():
        with engine_of(app).connect() as conn:
            rows = conn.execute(sa.select(OutboxEmail.to_email, OutboxEmail.status)).all()
        refused_rows = [status for to, status in rows if to == REFUSED["email"]]
        return refused_rows == [EmailStatus.FAILED] and all(
            status in (EmailStatus.SENT, EmailStatus.FAILED) for _, status in rows
        )

    wait_until(settled, 60, "every email sent, the refused one failed")
    with engine_of(app).connect() as conn:
        secrets += conn.execute(sa.select(Registration.token)).scalars().all()
        secrets += conn.execute(sa.select(WaitlistEntry.token)).scalars().all()
    for process in (p.web, p.worker, p.beat):
        process.stop()  # flushes every line they had to write

    logs = {
        "web": p.web.output(),
        "worker": Path(p.worker.log_path).read_text(errors="replace"),
        "beat": Path(p.beat.log_path).read_text(errors="replace"),
    }
    leaks = {
        (name, secret)
        for name, text in logs.items()
        for secret in [*PERSONAL, *filter(None, secrets)]
        if secret.lower() in text.lower()
    }
    assert not leaks, leaks
    # What happened was logged (so what is missing was redacted, not silent).
    web = logs["web"]
    assert f'"POST /offerings/{paid.slug}/register HTTP/1.1" 500' in web
    assert "Unhandled error on /offerings/" in web and "DataError" in web
    assert "Unhandled error on /manage/[redacted]/pay" in web
    assert '"POST /manage/[redacted]/pay HTTP/1.1" 500' in web
    assert '"GET /manage/[redacted]/pay/complete?[redacted] HTTP/1.1"' in web
    assert '"POST /staff/password-reset/[redacted] HTTP/1.1" 302' in web
    assert "failed permanently" in logs["worker"]
    print(
        f"\n[log privacy] web {len(web.splitlines())} lines, worker {len(logs['worker'].splitlines())}, "
        f"beat {len(logs['beat'].splitlines())}: none of {len(PERSONAL)} personal strings or "
        f"{len(secrets)} tokens/links/secrets"
    )
