"""Privacy covers class passes on the embedded default (SQLite): the export holds the pass,
erasing closes it and refunds its unused credits once (a cash sale: handed back at the desk),
and retention anonymises a pass long expired and not a live one (the JSON path that finds a
pass's emails, and the CASE that dates a pass, run on SQLite too)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from events.extensions import db
from events.models import (
    OutboxEmail,
    Pass,
    PassProduct,
    PassStatus,
    PaymentMethod,
    PrivacyAction,
    Refund,
    Role,
    User,
    utcnow,
)
from events.notifications.outbox import EmailKind
from events.passes import admin as pass_admin
from events.privacy import erase, export, requests, retention
from tests.integration.test_sqlite import seeded, sqlite_app  # noqa: F401 (the fixtures)
from tests.privacy_dump import rows_holding


def test_passes_are_exported_erased_and_retained_on_sqlite(sqlite_app, seeded):  # noqa: F811
    with sqlite_app.test_request_context():
        [product] = db.session.scalars(sa.select(PassProduct)).all()  # the demo's: 10 for $120
        desk = User(email="privacy-desk@revival.example", name="Desk", role=Role.ADMIN)
        db.session.add(desk)
        db.session.commit()
        ana = pass_admin.sell_at_desk(
            product.id, "Ana Sqlite", "ana.sqlite@example.com", PaymentMethod.CASH, "", desk
        )
        pass_admin.adjust(ana.id, -4, "Ana Sqlite used four", desk)

        document = export.data_for("ana.sqlite@example.com")
        [held] = document["passes"]
        assert (held["balance"], [h["what"] for h in held["history"]]) == (
            6,
            ["bought, 10 credits", "4 credits taken off by the clinic"],
        )
        assert [e["kind"] for e in document["emails"]] == [EmailKind.PASS_ISSUED]

        result = erase.erase(
            "ana.sqlite@example.com", requests.staff_request(PrivacyAction.ERASE, utcnow()), utcnow()
        )
        assert (result.passes_closed, result.pass_refund_cents) == (1, 12000 * 6 // 10)
        again = erase.erase(
            "ana.sqlite@example.com", requests.staff_request(PrivacyAction.ERASE, utcnow()), utcnow()
        )
        assert again.pass_refund_cents == 0
        refunds = db.session.scalars(
            sa.select(Refund).join(Refund.payment).where(Refund.payment.has(pass_id=ana.id))
        ).all()
        assert [r.amount_cents for r in refunds] == [7200]
        closed = db.session.get_one(Pass, ana.id)
        assert closed.status is PassStatus.REFUNDED and closed.anonymised_at is not None
        for row in db.session.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.kind == EmailKind.DATA_ERASED)
        ):
            row.status = "sent"
        db.session.commit()
        requests.tidy()
        assert rows_holding(["Ana Sqlite", "ana.sqlite@example.com"]) == {}

        # Retention: one pass expired long ago, one still live.
        old = pass_admin.sell_at_desk(
            product.id, "Old Sqlite", "old.sqlite@example.com", PaymentMethod.CASH, "", desk
        )
        live = pass_admin.sell_at_desk(
            product.id, "Live Sqlite", "live.sqlite@example.com", PaymentMethod.CASH, "", desk
        )
        old = db.session.get_one(Pass, old.id)
        old.expires_at = utcnow() - timedelta(days=sqlite_app.config["RETENTION_MONTHS"] * 31 + 5)
        db.session.commit()
        run = retention.anonymise_expired()
        assert run is not None and run.passes >= 1
        db.session.expire_all()
        assert db.session.get_one(Pass, old.id).anonymised_at is not None
        assert db.session.get_one(Pass, live.id).name == "Live Sqlite"
        assert rows_holding(["Old Sqlite", "old.sqlite@example.com"]) == {}
        assert retention.preview().due_now == 0
