"""Class passes for people without accounts: the passes on sale, buying one by card, and the
holder's page reached through its signed link. Each view reads input, calls a service, renders."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from events import pricing
from events.extensions import config_limit, limiter
from events.inputs import is_stripe_id
from events.languages import current_language
from events.models import Pass, PassProduct, PassStatus
from events.passes import buying
from events.passes.forms import BuyPassForm
from events.payments.pay_endpoint import card_payment_answer
from events.registration import links
from events.security import stripe_js_url

bp = Blueprint("passes", __name__)


@bp.get("/passes")
def products() -> ResponseReturnValue:
    return render_template("passes/products.html", products=buying.products_on_sale(), buying=buying)


def _product_or_404(product_id: int) -> PassProduct:
    return buying.product_on_sale(product_id) or abort(
        404, description=gettext("This pass is not on sale any more.")
    )


@bp.route("/passes/<int:product_id>/buy", methods=["GET", "POST"])
@limiter.limit(config_limit("REGISTER_RATE_LIMIT"), methods=["POST"])
def buy(product_id: int) -> ResponseReturnValue:
    product = _product_or_404(product_id)
    form = BuyPassForm()
    if request.method == "POST":
        if form.validate():
            buyer = buying.Buyer(form.name.data, form.email.data, current_language())
            try:
                pass_ = buying.start_purchase(product, buyer, code=form.code.data)
            except pricing.PricingError as error:
                form.code.errors = [*form.code.errors, str(error)]
            else:
                signed = links.sign(pass_.token, links.PASS_SALT)
                if pass_.status is PassStatus.ACTIVE:  # nothing to pay: issued at once
                    return redirect(url_for("passes.pass_page", signed=signed))
                return redirect(url_for("passes.pay", signed=signed))
        status = 400
    else:
        status = 200
    return render_template("passes/buy.html", product=product, form=form, buying=buying), status


def _pass_from_link(signed: str) -> Pass:
    token = links.token_from_link(signed, links.PASS_SALT)
    return buying.pass_by_token(token) or abort(404)


@bp.get("/pass/<signed>/pay")
def pay(signed: str) -> ResponseReturnValue:
    pass_ = _pass_from_link(signed)
    if not buying.hold_is_live(pass_):
        return redirect(url_for("passes.pass_page", signed=signed))
    return render_template(
        "passes/pay.html",
        class_pass=pass_,
        product=pass_.product,
        signed=signed,
        buying=buying,
        retry=request.args.get("retry") == "1",
        stripe_js_url=stripe_js_url(),
        publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
    )


@bp.post("/pass/<signed>/pay")
@limiter.limit(config_limit("PAY_RATE_LIMIT"))
def pay_submit(signed: str) -> ResponseReturnValue:
    pass_ = _pass_from_link(signed)
    return card_payment_answer(buying.pay_pass_with_card, pass_.id)


@bp.get("/pass/<signed>/pay/complete")
def pay_complete(signed: str) -> ResponseReturnValue:
    """Where the browser lands after paying: applied from Stripe's state, as the webhook would."""
    pass_ = _pass_from_link(signed)
    intent_id = request.args.get("payment_intent", "")
    pass_ = buying.complete_after_return(pass_.id, intent_id if is_stripe_id(intent_id, "pi_") else None)
    if pass_.status is PassStatus.ACTIVE:
        flash(
            gettext("Payment received: your pass is ready. We've emailed you the link to this page."),
            "success",
        )
    elif buying.payment_processing(pass_):
        flash(gettext("Your payment is processing. We'll email you as soon as it completes."), "success")
    elif buying.hold_is_live(pass_):
        return redirect(url_for("passes.pay", signed=signed, retry="1"))
    return redirect(url_for("passes.pass_page", signed=signed))


@bp.get("/pass/<signed>")
def pass_page(signed: str) -> ResponseReturnValue:
    pass_ = _pass_from_link(signed)
    if buying.hold_is_live(pass_) and not buying.payment_processing(pass_):
        return redirect(url_for("passes.pay", signed=signed))
    return render_template(
        "passes/pass.html",
        page=buying.pass_page(pass_),
        class_pass=pass_,
        signed=signed,
        buying=buying,
        processing=buying.payment_processing(pass_),
    )
