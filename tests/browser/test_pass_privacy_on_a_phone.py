""" "Delete my data" with a class pass, on a phone (390x844): the emailed link's page says the
pass is closed and what its unused credits bring back, the deleted page and the confirmation
email say it again, and the pass's own page then says it was closed at the holder's request,
showing nothing of what they booked. axe-core on every state. SCREENSHOT_DIR=docs/screenshots
saves pass-privacy-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from events.models import PassProduct, PassValidityStart, PaymentMethod, Role, User
from events.notifications.delivery import deliver_due
from events.passes import admin as pass_admin
from events.registration import links
from tests.browser.test_my_data_on_a_phone import _link, assert_accessible, shot
from tests.factories import make_clinic

pytestmark = pytest.mark.browser


def test_delete_my_data_closes_a_class_pass_on_a_phone(phone_page, live_server, db, smtp, app):
    page = phone_page
    make_clinic(name="Revival Physical Therapy and Wellness", email="hello@revival.example")
    product = PassProduct(
        name="10-class pass",
        credits=10,
        price_cents=12000,
        validity_days=90,
        validity_starts=PassValidityStart.PURCHASE,
        offering_kinds="class",
        is_on_sale=True,
    )
    desk = User(email="desk@clinic.example", name="Desk", role=Role.ADMIN)
    db.session.add_all([product, desk])
    db.session.commit()
    sold = pass_admin.sell_at_desk(product.id, "Zoë Smith", "zoe@example.com", PaymentMethod.CASH, "", desk)
    pass_admin.adjust(sold.id, -4, "came four times", desk)
    with app.test_request_context():
        pass_link = links.pass_url(sold, external=False)
    deliver_due()
    smtp.clear()

    page.goto(live_server.url + "/my-data")
    page.get_by_label("Delete my data").check()
    page.get_by_label("Your email address").fill("zoe@example.com")
    page.get_by_role("button", name="Email me the link").click()
    expect(page.get_by_role("status")).to_contain_text("zoe@example.com")
    assert deliver_due().sent == 1
    page.goto(live_server.url + _link(smtp, app, "zoe@example.com", 1))
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete your data?")
    # 6 of 10 credits unused, $120 paid: $72 back (handed back at the desk: paid in cash).
    expect(page.locator("main")).to_contain_text(
        "Your class pass “10-class pass” is closed and its 6 unused credits refunded: $72."
    )
    assert_accessible(page)
    shot(page, "pass-privacy-delete-confirm.png")
    page.get_by_role("button", name="Yes, delete my data").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data has been deleted")
    expect(page.locator("main")).to_contain_text(
        "We closed your class pass. Its unused credits are refunded: $72."
    )
    assert_accessible(page)
    shot(page, "pass-privacy-deleted.png")

    page.goto(live_server.url + pass_link)
    expect(page.locator("#pass-closed")).to_contain_text("This pass was closed at your request")
    expect(page.locator("main")).not_to_contain_text("Zoë")
    expect(page.locator("main")).not_to_contain_text("History")
    assert_accessible(page)
    shot(page, "pass-privacy-closed-pass.png")

    assert deliver_due().sent == 1  # the confirmation; no "refund issued" email to nobody
    [confirmation] = [m for m in smtp.to("zoe@example.com") if m["Subject"].endswith("has been deleted")]
    text = confirmation.get_body(("plain",)).get_content()
    assert "We closed your class pass. Its unused credits are refunded: $72." in text
