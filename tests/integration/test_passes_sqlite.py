"""Class passes on the embedded default (SQLite, as `make run` starts it): the demo's 10-class
pass on sale once, a purchase held then voided by the sweep, a desk sale, staff changes, expiry
and the holder's page."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from events.extensions import db
from events.models import LedgerKind, Pass, PassProduct, PassStatus, PaymentMethod, Role, User, utcnow
from events.passes import admin as pass_admin
from events.passes import ledger
from events.passes.buying import Buyer, start_purchase
from events.passes.purchase import void_lapsed_holds
from events.registration import links
from tests.integration.test_sqlite import seeded, sqlite_app  # noqa: F401 (the fixtures)


def test_passes_work_on_sqlite(sqlite_app, seeded):  # noqa: F811
    client = sqlite_app.test_client()
    listing = client.get("/passes").get_data(as_text=True)
    assert "10-class pass" in listing and "$120" in listing and "drop-in classes" in listing
    with sqlite_app.app_context():
        [product] = db.session.scalars(sa.select(PassProduct)).all()  # seeded twice, one product
        assert (product.credits, product.price_cents, product.validity_days, product.offering_kinds) == (
            10,
            12000,
            90,
            "class",
        )
        held = start_purchase(product, Buyer("Ana", "ana@example.com"))
        assert void_lapsed_holds(utcnow()) == 0
        assert void_lapsed_holds(utcnow() + timedelta(minutes=16)) == 1
        assert db.session.get(Pass, held.id).status is PassStatus.VOID

        desk = User(email="desk@revival.example", name="Desk", role=Role.ADMIN)
        db.session.add(desk)
        db.session.commit()
        sold = pass_admin.sell_at_desk(product.id, "Bo", "bo@example.com", PaymentMethod.CHECK, "#1043", desk)
        pass_admin.adjust(sold.id, -2, "used twice", desk)
        pass_admin.freeze(sold.id, "knee", desk)
        pass_admin.unfreeze(sold.id, "better", desk, now=utcnow() + timedelta(days=3))
        assert [line.balance for line in pass_admin.search_passes("bo@", None).lines] == [8]
        signed = links.sign(db.session.get(Pass, sold.id).token, links.PASS_SALT)
        expires = db.session.get(Pass, sold.id).expires_at
        assert pass_admin.expire_due(expires + timedelta(seconds=1)) == 1
        assert ledger.balance(sold.id) == 0
        kinds = [e.kind for e in db.session.get(Pass, sold.id).ledger]
        assert kinds == [LedgerKind.PURCHASE, LedgerKind.ADJUSTMENT, LedgerKind.EXPIRY]
    page = client.get(f"/pass/{signed}").get_data(as_text=True)
    assert "0 of 10 credits left" in page and "8 credits expired" in page


def test_flask_expire_passes_on_sqlite(sqlite_app, seeded):  # noqa: F811
    result = sqlite_app.test_cli_runner().invoke(args=["expire-passes"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Expired 0 class passes."
