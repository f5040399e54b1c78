"""The clinic calls off a session (from its roster) or a whole offering (from its admin page)."""

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.models import Offering, Session, SessionStatus
from events.staff import cancellations, moves
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import CancelOfferingForm, CancelSessionForm
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


@bp.route("/admin/sessions/<int:session_id>/cancel", methods=["GET", "POST"])
@admin_required
def admin_session_cancel(session_id: int) -> ResponseReturnValue:
    """One date called off from the offering's dates table, after a page saying what happens."""
    session = get_or_404(Session, session_id)
    form = CancelSessionForm() if request.method == "POST" else CancelSessionForm(formdata=None)
    cancelled = session.status == SessionStatus.CANCELLED or session.offering.is_cancelled
    if not cancelled and form.validate_on_submit():
        if form.is_confirmed:
            refunds = cancellations.cancel_session(session.id, current_user, form.reason.data)
            flash(
                f"Cancelled {session.offering.title} on {moves.session_when(session)}. Everyone registered "
                f"is being told; {refunds} {'refund' if refunds == 1 else 'refunds'} queued.",
                "success",
            )
            return redirect(url_for("staff.admin_offering", offering_id=session.offering_id) + "#sessions")
        return render_template(
            "staff/admin/session_cancel_confirm.html",
            session=session,
            form=form,
            when=moves.session_when(session),
            preview=cancellations.preview_cancel_session(session),
        )
    status = 400 if form.is_submitted() else 200
    return render_template(
        "staff/admin/session_cancel.html",
        session=session,
        form=form,
        when=moves.session_when(session),
        cancelled=cancelled,
    ), status
