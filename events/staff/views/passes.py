"""Class passes for staff: the products on sale, the passes sold, a pass's page and the changes
made to it (each asked with a reason, then confirmed on its own page), selling one at the desk."""

from collections.abc import Callable
from decimal import Decimal

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.extensions import db
from events.filters import dollars
from events.forms import attempt
from events.models import (
    Location,
    Offering,
    Pass,
    PassProduct,
    PassValidityStart,
    PaymentMethod,
)
from events.passes import admin as passes
from events.passes.refunding import RefundDecision
from events.payments import refunds
from events.registration import links
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import (
    ConfirmStepForm,
    DeskPassForm,
    PassAdjustForm,
    PassProductForm,
    PassReasonForm,
    PassSearchForm,
    language_choices,
)
from events.staff.errors import AdminError
from events.staff.parsers import dollars_to_cents, page_before

# --- Products ---


def _product_choices(form: PassProductForm) -> None:
    form.offering_ids.choices = [
        (o.id, o.title) for o in db.session.scalars(sa.select(Offering).order_by(Offering.title))
    ]
    form.location_ids.choices = [
        (loc.id, loc.name) for loc in db.session.scalars(sa.select(Location).order_by(Location.name))
    ]


def _product_data(form: PassProductForm) -> passes.ProductData:
    assert form.price.data is not None  # DataRequired
    return passes.ProductData(
        name=form.name.data,
        description=form.description.data or "",
        credits=form.credits.data,
        price_cents=dollars_to_cents(form.price.data),
        validity_days=form.validity_days.data,
        validity_starts=PassValidityStart(form.validity_starts.data),
        offering_kinds=list(form.offering_kinds.data or []),
        offering_ids=list(form.offering_ids.data or []),
        location_ids=list(form.location_ids.data or []),
        is_on_sale=bool(form.is_on_sale.data),
        position=form.position.data or 0,
    )


@bp.get("/admin/pass-products")
@admin_required
def admin_pass_products() -> ResponseReturnValue:
    return render_template("staff/admin/pass_products.html", products=passes.all_products())


@bp.route("/admin/pass-products/new", methods=["GET", "POST"])
@admin_required
def admin_pass_product_new() -> ResponseReturnValue:
    return _product_form(None)


@bp.route("/admin/pass-products/<int:product_id>", methods=["GET", "POST"])
@admin_required
def admin_pass_product(product_id: int) -> ResponseReturnValue:
    return _product_form(get_or_404(PassProduct, product_id))


def _product_form(product: PassProduct | None) -> ResponseReturnValue:
    if request.method == "GET" and product is not None:
        form = PassProductForm(
            formdata=None,
            obj=product,
            price=Decimal(product.price_cents) / 100,
            validity_starts=product.validity_starts.value,
            offering_kinds=sorted(k for k in product.offering_kinds.split(",") if k),
            offering_ids=[o.id for o in product.offerings],
            location_ids=[loc.id for loc in product.locations],
        )
    else:
        form = PassProductForm()
    _product_choices(form)
    if request.method == "POST":
        if form.validate():
            saved = attempt(form, lambda: passes.save_product(product, _product_data(form), current_user))
            if saved is not None:
                flash(f"Pass product “{saved.name}” saved.", "success")
                return redirect(url_for("staff.admin_pass_products"))
        return render_template("staff/admin/pass_product_form.html", form=form, product=product), 400
    return render_template("staff/admin/pass_product_form.html", form=form, product=product)


# --- Passes ---


@bp.get("/admin/passes")
@admin_required
def admin_passes() -> ResponseReturnValue:
    form = PassSearchForm(request.args)
    before = page_before(request.args.get("before"))
    page = passes.PassListPage([], None)
    if form.validate():
        page = passes.search_passes(form.q.data or "", before)
    return render_template("staff/admin/passes.html", form=form, page=page, before=before)


@bp.route("/admin/passes/sell", methods=["GET", "POST"])
@admin_required
def admin_pass_sell() -> ResponseReturnValue:
    form = DeskPassForm()
    form.product_id.choices = [(None, "Choose a pass")] + [
        (p.id, f"{p.name} ({dollars(p.price_cents)}){'' if p.is_on_sale else ' (not on sale)'}")
        for p in passes.all_products()
    ]
    form.language.choices = language_choices()
    if request.method == "POST":
        if form.validate():
            sold = attempt(
                form,
                lambda: passes.sell_at_desk(
                    form.product_id.data,
                    form.name.data,
                    form.email.data,
                    PaymentMethod(form.method.data),
                    form.note.data or "",
                    current_user,
                    language=form.language.data,
                ),
            )
            if sold is not None:
                flash(f"Pass sold to {sold.name}; its link is on its way to {sold.email}.", "success")
                return redirect(url_for("staff.admin_pass", pass_id=sold.id))
        return render_template("staff/admin/pass_sell.html", form=form), 400
    return render_template("staff/admin/pass_sell.html", form=form)


def _render_pass(
    pass_: Pass, status: int = 200, adjust_form: PassAdjustForm | None = None, **forms: PassReasonForm
) -> tuple[str, int]:
    detail = passes.pass_detail(pass_.id)
    assert detail is not None
    return render_template(
        "staff/admin/pass.html",
        d=detail,
        p=pass_,
        link=links.pass_url(pass_),
        adjust_form=adjust_form or PassAdjustForm(formdata=None),
        freeze_form=forms.get("freeze_form") or PassReasonForm(formdata=None, prefix="freeze"),
        refund_form=forms.get("refund_form") or PassReasonForm(formdata=None, prefix="refund"),
        resend_form=ConfirmStepForm(formdata=None),
        can_retry=refunds.can_retry,
    ), status


@bp.get("/admin/passes/<int:pass_id>")
@admin_required
def admin_pass(pass_id: int) -> ResponseReturnValue:
    return _render_pass(get_or_404(Pass, pass_id))


def _confirm_page(
    pass_: Pass,
    heading: str,
    lines: list[str],
    form: PassAdjustForm | PassReasonForm | ConfirmStepForm,
    hidden: dict[str, str],
    action: str,
    button: str,
) -> str:
    return render_template(
        "staff/admin/confirm.html",
        heading=heading,
        lines=lines,
        form=form,
        fields=[],
        hidden=hidden,
        action=action,
        button=button,
        back_url=url_for("staff.admin_pass", pass_id=pass_.id),
        back_label="Don't change it: back to the pass",
        nav="staff.admin_passes",
    )


def _do(
    form: PassAdjustForm | PassReasonForm | ConfirmStepForm, action: Callable[[], object]
) -> object | None:
    return attempt(form, action)


@bp.post("/admin/passes/<int:pass_id>/adjust")
@admin_required
def admin_pass_adjust(pass_id: int) -> ResponseReturnValue:
    pass_ = get_or_404(Pass, pass_id)
    form = PassAdjustForm()
    if not form.validate():
        return _render_pass(pass_, 400, adjust_form=form)
    credits, reason = form.credits.data, form.reason.data
    if form.confirmed.data == "yes":
        if _do(form, lambda: passes.adjust(pass_.id, credits, reason, current_user)) is None:
            return _render_pass(pass_, 400, adjust_form=form)
        flash(
            f"{abs(credits)} credits {'added to' if credits > 0 else 'taken off'} {pass_.name}'s pass.",
            "success",
        )
        return redirect(url_for("staff.admin_pass", pass_id=pass_.id))
    left = passes.pass_detail(pass_.id).balance  # type: ignore[union-attr]
    return _confirm_page(
        pass_,
        (
            f"Add {credits} credits to {pass_.name}'s pass?"
            if credits > 0
            else f"Take {-credits} credits off {pass_.name}'s pass?"
        ),
        [
            f"It has {left} credits now; it will have {left + credits}. Reason: “{reason}”.",
            "A pass can never go below zero.",
        ],
        form,
        {"credits": str(credits), "reason": reason},
        url_for("staff.admin_pass_adjust", pass_id=pass_.id),
        "Adjust the credits",
    )


@bp.post("/admin/passes/<int:pass_id>/freeze")
@admin_required
def admin_pass_freeze(pass_id: int) -> ResponseReturnValue:
    pass_ = get_or_404(Pass, pass_id)
    form = PassReasonForm(prefix="freeze")
    if not form.validate():
        return _render_pass(pass_, 400, freeze_form=form)
    reason = form.reason.data
    unfreezing = pass_.frozen_since is not None
    if form.confirmed.data == "yes":
        if unfreezing:
            days = _do(form, lambda: passes.unfreeze(pass_.id, reason, current_user))
            if days is None:
                return _render_pass(pass_, 400, freeze_form=form)
            flash(f"{pass_.name}'s pass restarted; its expiry moved on {days} days.", "success")
        else:
            if _do(form, lambda: passes.freeze(pass_.id, reason, current_user)) is None:
                return _render_pass(pass_, 400, freeze_form=form)
            flash(
                f"{pass_.name}'s pass is paused: nothing can be booked with it until it is restarted.",
                "success",
            )
        return redirect(url_for("staff.admin_pass", pass_id=pass_.id))
    if unfreezing:
        heading = f"Restart {pass_.name}'s pass?"
        lines = [
            "Its expiry moves on by the days it was paused, and it can be booked with again.",
            f"Reason: “{reason}”.",
        ]
        button = "Restart the pass"
    else:
        heading = f"Pause {pass_.name}'s pass?"
        lines = [
            "Nothing can be booked with it while it is paused. When restarted, its expiry moves on "
            "by the days it was paused.",
            f"Reason: “{reason}”.",
        ]
        button = "Pause the pass"
    return _confirm_page(
        pass_,
        heading,
        lines,
        form,
        {"freeze-reason": reason, "freeze-confirmed": "yes"},
        url_for("staff.admin_pass_freeze", pass_id=pass_.id),
        button,
    )


@bp.post("/admin/passes/<int:pass_id>/refund")
@admin_required
def admin_pass_refund(pass_id: int) -> ResponseReturnValue:
    pass_ = get_or_404(Pass, pass_id)
    form = PassReasonForm(prefix="refund")
    if not form.validate():
        return _render_pass(pass_, 400, refund_form=form)
    reason = form.reason.data
    if form.confirmed.data == "yes":
        decision = _do(
            form, lambda: passes.refund_unused(pass_.id, reason, current_user, form.expected_cents.data)
        )
        if decision is None:
            return _render_pass(pass_, 400, refund_form=form)
        assert isinstance(decision, RefundDecision)
        flash(
            f"{decision.credits} unused credits refunded: {dollars(decision.cents)} queued "
            "(it shows as issued when Stripe confirms it; cash or check is handed back at the desk).",
            "success",
        )
        return redirect(url_for("staff.admin_pass", pass_id=pass_.id))
    d = passes.pass_detail(pass_.id)
    assert d is not None
    return _confirm_page(
        pass_,
        f"Refund the {d.balance} unused credits of {pass_.name}'s pass?",
        [
            f"{dollars(passes.paid_cents(d.payments))} paid ÷ {pass_.credits} credits × "
            f"{min(d.balance, pass_.credits)} unused = {dollars(d.unused_refund_cents)} (rounded down)"
            + (
                f"; credits added on top of the {pass_.credits} bought are not refunded."
                if d.balance > pass_.credits
                else "."
            ),
            "The pass is then closed: nothing more can be booked with it.",
            f"Reason: “{reason}”.",
        ],
        form,
        {
            "refund-reason": reason,
            "refund-expected_cents": str(d.unused_refund_cents),
            "refund-confirmed": "yes",
        },
        url_for("staff.admin_pass_refund", pass_id=pass_.id),
        f"Refund {dollars(d.unused_refund_cents)}",
    )


@bp.post("/admin/passes/<int:pass_id>/resend")
@admin_required
def admin_pass_resend(pass_id: int) -> ResponseReturnValue:
    pass_ = get_or_404(Pass, pass_id)
    form = ConfirmStepForm()
    if form.validate() and form.confirmed.data == "yes":
        try:
            passes.resend(pass_.id, current_user)
        except AdminError as error:
            flash(str(error), "error")
        else:
            flash(f"The pass's email is on its way to {pass_.email} again.", "success")
        return redirect(url_for("staff.admin_pass", pass_id=pass_.id))
    return _confirm_page(
        pass_,
        f"Send {pass_.name} their pass's email again?",
        [f"It goes to {pass_.email}, with the link to the pass's page."],
        form,
        {},
        url_for("staff.admin_pass_resend", pass_id=pass_.id),
        "Send it again",
    )
