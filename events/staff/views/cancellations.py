"""The clinic calls off a session (from its roster) or a whole offering (from its admin page)."""

from flask import flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.models import Offering
from events.staff import cancellations
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import CancelOfferingForm
from events.staff.forms import CancelForm
from events.staff.views.offerings import render_offering
from events.staff.views.rosters import session_or_404


@bp.post("/sessions/<int:session_id>/cancel")
@admin_required
def cancel_session(session_id: int) -> ResponseReturnValue:
    session = session_or_404(session_id)
    form = CancelForm()
    if not form.validate():
        flash("Give a reason to cancel (it is told to attendees).", "error")
        return redirect(url_for("staff.roster", session_id=session.id))
    refunds = cancellations.cancel_session(session.id, current_user, form.reason.data)
    flash(f"Session cancelled; everyone is being told. {refunds} refund(s) queued.", "success")
    return redirect(url_for("staff.roster", session_id=session.id))


@bp.post("/admin/offerings/<int:offering_id>/cancel")
@admin_required
def admin_offering_cancel(offering_id: int) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    form = CancelOfferingForm()
    if not form.validate_on_submit():
        return render_offering(offering, 400, cancel_form=form)
    refunds = cancellations.cancel_offering(offering.id, current_user, form.reason.data)
    flash(f"Offering cancelled; everyone is being told. {refunds} refund(s) queued.", "success")
    return redirect(url_for("staff.admin_offering", offering_id=offering.id))
