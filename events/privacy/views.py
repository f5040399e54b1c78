"""The member's privacy pages: ask for a link, then use it to download or delete their data.

Every view reads input, calls one service and renders. The pages never say whether an address
is known: asking does the same work and shows the same answer for every address.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from events.extensions import config_limit, limiter
from events.languages import current_language
from events.models import PrivacyAction, Registration, utcnow
from events.privacy import erase, export, requests
from events.privacy.forms import ManageDataForm, MyDataForm
from events.rate_limits import limit_link_requests, limit_per_client
from events.registration import links
from events.registration.forms import ConfirmForm
from events.registration.services import registration_by_token

bp = Blueprint("privacy", __name__)


# The limiter reads it by calling it when it refuses: written in the page's language.
def ASKED_TOO_OFTEN_FOR_ADDRESS() -> str:  # noqa: N802 - a message, read when it is shown
    return _(
        "We've already sent a link for this email address several times recently. Please look for it "
        "in your inbox (and in your spam or junk folder); you can ask again in an hour."
    )


@bp.route("/my-data", methods=["GET", "POST"])
@limit_link_requests("my-data-address", MyDataForm, ASKED_TOO_OFTEN_FOR_ADDRESS)
def my_data() -> ResponseReturnValue:
    """Ask for a link to download or delete the data held about an address."""
    form = MyDataForm()
    if request.method == "GET" and request.args.get("action") in ("export", "erase"):
        form.action.data = request.args["action"]
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template("privacy/my_data.html", form=form, sent_to=None), status
    requests.request_link(form.email.data, PrivacyAction(form.action.data), language=current_language())
    return render_template(
        "privacy/my_data.html",
        form=MyDataForm(formdata=None),
        sent_to=form.email.data,
        action=form.action.data,
        minutes=requests.link_minutes(),
    )


def _registration(signed: str) -> Registration | None:
    try:
        return registration_by_token(links.unsign(signed, links.MANAGE_SALT))
    except links.LinkInvalid:
        return None


@bp.post("/manage/<signed>/my-data")
@limit_per_client
def manage_my_data(signed: str) -> ResponseReturnValue:
    """The manage page's "Download my data" and "Delete my data": the link goes to the
    booking's own address, like every other way in."""
    registration = _registration(signed)
    if registration is None:
        return render_template("privacy/link_problem.html", problem="invalid"), 404
    form = ManageDataForm()
    # One button pressed: exactly one action (a crafted body naming two is refused).
    pressed_one = len(request.form.getlist("action")) == 1
    if pressed_one and form.validate() and registration.email:
        requests.request_link(
            registration.email, PrivacyAction(form.action.data), language=registration.language
        )
        flash(
            _(
                "We've emailed a link to %(address)s. Open it within %(minutes)s minutes to continue.",
                address=registration.email,
                minutes=requests.link_minutes(),
            ),
            "success",
        )
    elif not (pressed_one and form.validate()):
        flash(_("The form expired. Please try again."), "error")
    return redirect(url_for("registration.manage", signed=signed) + "#my-data")


def _problem(error: requests.LinkProblem) -> tuple[str, int]:
    kind = {requests.LinkExpired: "expired", requests.LinkUsed: "used"}.get(type(error), "invalid")
    return render_template("privacy/link_problem.html", problem=kind), error.status


@bp.get("/my-data/<signed>")
def link(signed: str) -> ResponseReturnValue:
    """What the link will do, and one button (a link opened by a mail scanner changes nothing)."""
    try:
        privacy_request = requests.peek(signed)
    except requests.LinkProblem as error:
        return _problem(error)
    plan = (
        erase.plan(privacy_request.email, utcnow()) if privacy_request.action is PrivacyAction.ERASE else None
    )
    return render_template(
        "privacy/link.html",
        action=privacy_request.action.value,
        address=privacy_request.email,
        plan=plan,
        form=ConfirmForm(),
        signed=signed,
    )


@bp.post("/my-data/<signed>")
@limiter.limit(config_limit("REGISTER_RATE_LIMIT"))
def use_link(signed: str) -> ResponseReturnValue:
    """Download, or delete: the link is used up in the same transaction as the work."""
    if not ConfirmForm().validate():
        flash(_("The form expired. Please press the button again."), "error")
        return redirect(url_for("privacy.link", signed=signed))
    now = utcnow()
    try:
        privacy_request, email = requests.claim(signed, now)
    except requests.LinkProblem as error:
        return _problem(error)
    if privacy_request.action is PrivacyAction.EXPORT:
        document = export.data_for(email, now)
        export.record_export(privacy_request, document, actor_id=None)
        return current_app.response_class(
            export.as_json(document),
            mimetype="application/json",
            headers={"Content-Disposition": 'attachment; filename="my-data.json"'},
        )
    result = erase.erase(email, privacy_request, now)
    return render_template("privacy/erased.html", result=result)
