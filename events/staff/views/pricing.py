"""Admin pages for prices: an offering's sliding-scale tiers and the promo codes."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.catalog.scheduling import local_to_utc
from events.clinic import current_clinic
from events.forms import attempt
from events.models import Offering, PriceTier, PromoCode, PromoKind
from events.registration.forms import ConfirmForm
from events.staff import pricing
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import PriceTierForm, PromoCodeForm
from events.staff.errors import AdminError
from events.staff.parsers import dollars_to_cents
from events.staff.views.offerings import render_offering

# --- Tiers (on the offering's admin page, #tiers) ---


def _tier_data(form: PriceTierForm) -> pricing.TierData:
    return pricing.TierData(
        name=form.name.data,
        description=form.description.data or "",
        price_cents=dollars_to_cents(form.price.data or 0),
        position=form.position.data,
    )


def _tiers_url(offering_id: int) -> str:
    return url_for("staff.admin_offering", offering_id=offering_id) + "#tiers"


@bp.post("/admin/offerings/<int:offering_id>/tiers")
@admin_required
def admin_tier_add(offering_id: int) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    form = PriceTierForm(prefix="tier-new")
    if form.validate_on_submit():
        tier = attempt(form, lambda: pricing.add_tier(offering, _tier_data(form), current_user))
        if tier is not None:
            flash(f"Tier “{tier.name}” added.", "success")
            return redirect(_tiers_url(offering.id))
    return render_offering(offering, 400, tier_form=form)


@bp.route("/admin/tiers/<int:tier_id>/edit", methods=["GET", "POST"])
@admin_required
def admin_tier_edit(tier_id: int) -> ResponseReturnValue:
    tier = get_or_404(PriceTier, tier_id)
    form = PriceTierForm(obj=tier)
    if not form.is_submitted():
        form.price.data = Decimal(tier.price_cents) / 100
    if form.validate_on_submit():
        if attempt(form, lambda: pricing.update_tier(tier, _tier_data(form), current_user)):
            flash("Tier saved.", "success")
            return redirect(_tiers_url(tier.offering_id))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/tier_form.html", form=form, offering=tier.offering, tier=tier), status


@bp.post("/admin/tiers/<int:tier_id>/remove")
@admin_required
def admin_tier_remove(tier_id: int) -> ResponseReturnValue:
    tier = get_or_404(PriceTier, tier_id)
    offering_id = tier.offering_id
    form = ConfirmForm()
    if form.validate_on_submit():
        name = tier.name
        try:
            pricing.remove_tier(tier, current_user)
            flash(f"Tier “{name}” removed.", "success")
        except AdminError as error:
            flash(str(error), "error")
    return redirect(_tiers_url(offering_id))


# --- Promo codes ---


def _code_form(form: PromoCodeForm) -> PromoCodeForm:
    form.offering_ids.choices = pricing.offering_choices()
    form.pass_product_ids.choices = pricing.pass_product_choices()
    return form


def _zone() -> ZoneInfo:
    return ZoneInfo(current_clinic().timezone)


def _code_data(form: PromoCodeForm) -> pricing.CodeData:
    kind = PromoKind(form.kind.data)
    if kind == PromoKind.PERCENT_OFF:
        if form.percent.data is None:
            raise AdminError("Enter the percent off.", "percent")
        value = form.percent.data
    else:
        if form.amount.data is None:
            raise AdminError("Enter the amount in dollars.", "amount")
        value = dollars_to_cents(form.amount.data)
    valid_from: date | None = form.valid_from.data
    valid_until: date | None = form.valid_until.data
    zone = _zone()
    return pricing.CodeData(
        code=form.code.data,
        kind=kind,
        value=value,
        offering_kinds=list(form.offering_kinds.data or []),
        offering_ids=list(form.offering_ids.data or []),
        applies_to_passes=bool(form.applies_to_passes.data),
        pass_product_ids=list(form.pass_product_ids.data or []),
        # Whole days in the clinic's zone: from the first day's start to the last day's end.
        valid_from=local_to_utc(valid_from, time(0), zone) if valid_from else None,
        valid_until=local_to_utc(valid_until + timedelta(days=1), time(0), zone) if valid_until else None,
        max_uses=form.max_uses.data,
        max_uses_per_email=form.max_uses_per_email.data,
        partner_tag=form.partner_tag.data or "",
        is_active=bool(form.is_active.data),
    )


def _fill(form: PromoCodeForm, code: PromoCode) -> None:
    form.kind.data = code.kind.value
    if code.kind == PromoKind.PERCENT_OFF:
        form.percent.data = code.value
    else:
        form.amount.data = Decimal(code.value) / 100
    form.offering_kinds.data = [k for k in code.offering_kinds.split(",") if k]
    form.offering_ids.data = [o.id for o in code.offerings]
    form.pass_product_ids.data = [p.id for p in code.pass_products]
    zone = _zone()
    form.valid_from.data = code.valid_from.astimezone(zone).date() if code.valid_from else None
    form.valid_until.data = (
        (code.valid_until.astimezone(zone) - timedelta(days=1)).date() if code.valid_until else None
    )


@bp.get("/admin/promo-codes")
@admin_required
def admin_promo_codes() -> ResponseReturnValue:
    return render_template("staff/admin/promo_codes.html", lines=pricing.list_codes(), form=ConfirmForm())


@bp.route("/admin/promo-codes/new", methods=["GET", "POST"])
@admin_required
def admin_promo_code_new() -> ResponseReturnValue:
    form = _code_form(PromoCodeForm())
    if form.validate_on_submit():
        code = attempt(form, lambda: pricing.create_code(_code_data(form), current_user))
        if code is not None:
            flash(f"Code {code.code} created.", "success")
            return redirect(url_for("staff.admin_promo_codes"))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/promo_code_form.html", form=form, code=None), status


@bp.route("/admin/promo-codes/<int:code_id>/edit", methods=["GET", "POST"])
@admin_required
def admin_promo_code_edit(code_id: int) -> ResponseReturnValue:
    code = get_or_404(PromoCode, code_id)
    form = _code_form(PromoCodeForm(obj=code) if not PromoCodeForm().is_submitted() else PromoCodeForm())
    if not form.is_submitted():
        _fill(form, code)
    if form.validate_on_submit():
        if attempt(form, lambda: pricing.update_code(code, _code_data(form), current_user)):
            flash(f"Code {code.code} saved.", "success")
            return redirect(url_for("staff.admin_promo_codes"))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/promo_code_form.html", form=form, code=code), status


@bp.post("/admin/promo-codes/<int:code_id>/active")
@admin_required
def admin_promo_code_active(code_id: int) -> ResponseReturnValue:
    """Deactivate or bring back a code (the list's button)."""
    code = get_or_404(PromoCode, code_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        pricing.set_active(code, not code.is_active, current_user)
        flash(f"Code {code.code} {'brought back' if code.is_active else 'deactivated'}.", "success")
    return redirect(url_for("staff.admin_promo_codes"))
