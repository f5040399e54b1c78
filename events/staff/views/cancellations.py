"""The clinic calls off a session (from its roster) or a whole offering (from its admin page).

Each goes through a confirmation page that says what will happen: the roster's and the offering
page's forms post here without `confirmed`, which shows that page and changes nothing (a GET
shows it too); only its own button, carrying confirmed=yes, cancels."""

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.filters import dollars, plural, staff_time
from events.models import Offering, Session, SessionStatus
from events.staff import cancellations, moves
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import CancelOfferingForm, CancelSessionForm
from events.staff.cancellations import CancelTotals
from events.staff.forms import CancelForm
from events.staff.views.rosters import session_or_404


def _desk_list(totals: CancelTotals) -> str:
    """'Ana Lopez $15.00 (cash), Ben Ode $20.00 (check)': who is handed money back at the desk."""
    return ", ".join(f"{d.name} {dollars(d.amount_cents)} ({d.method})" for d in totals.desk_refunds)


def _what_will_happen(totals: CancelTotals) -> list[str]:
    """The confirmation page's sentences for a cancellation's quote: card refunds go to Stripe,
    cash and check ones are handed back at the desk, by name."""
    lines = []
    people = plural(totals.people, "person", "people")
    refunded = (
        f"{plural(totals.refunds, 'person', 'people')} will be refunded {dollars(totals.refund_cents)} in all"
    )
    if totals.people == 0:
        lines.append("Nobody is registered, so nobody is emailed or refunded.")
    elif totals.refunds and not totals.desk_refunds:
        lines.append(f"{people} will be emailed; {refunded} (queued now, sent to Stripe in the background).")
    elif totals.refunds:
        lines.append(f"{people} will be emailed; {refunded}.")
        if totals.card_refunds:
            lines.append(
                f"Card refunds: {plural(totals.card_refunds, 'refund')} of "
                f"{dollars(totals.card_refund_cents)} in all, queued now and sent to Stripe in the "
                "background."
            )
        lines.append(
            "Paid at the desk, so recorded as refunded at once (never sent to Stripe). "
            f"Hand back at the desk: {_desk_list(totals)}."
        )
    else:
        lines.append(f"{people} will be emailed; nobody is due a refund.")
    if totals.waitlist:
        lines.append(f"The waitlist ({plural(totals.waitlist, 'person', 'people')}) will be cleared.")
    lines.append("This can't be undone.")
    return lines


def _what_happened(totals: CancelTotals) -> str:
    """The honest result: what was queued for Stripe (not what will have arrived), and what
    staff must now hand back at the desk."""
    told = f"{plural(totals.people, 'person', 'people')} being emailed"
    if not totals.refunds:
        return f"{told}; no refunds were due."
    if not totals.desk_refunds:
        return (
            f"{told}; {plural(totals.refunds, 'refund')} ({dollars(totals.refund_cents)} in all) queued. "
            "Each shows as issued on its registration's page when Stripe confirms it."
        )
    parts = [told]
    if totals.card_refunds:
        parts.append(
            f"{plural(totals.card_refunds, 'card refund')} ({dollars(totals.card_refund_cents)} in all) "
            "queued; each shows as issued on its registration's page when Stripe confirms it"
        )
    parts.append(
        f"{plural(len(totals.desk_refunds), 'desk refund')} recorded as returned. "
        f"Hand back at the desk: {_desk_list(totals)}"
    )
    return "; ".join(parts) + "."


@bp.route("/sessions/<int:session_id>/cancel", methods=["GET", "POST"])
@admin_required
def cancel_session(session_id: int) -> ResponseReturnValue:
    session = session_or_404(session_id)
    roster_url = url_for("staff.roster", session_id=session.id)
    if session.status == SessionStatus.CANCELLED:
        flash("This session is already cancelled.", "error")
        return redirect(roster_url)
    form = CancelForm()
    when = staff_time(session.starts_at, session.location)
    if form.validate_on_submit() and form.confirmed.data == "yes":
        totals = cancellations.cancel_session_totals(session.id, current_user, form.reason.data)
        gone = f"{session.offering.title} (all dates)" if totals.whole_offering else when
        flash(f"{gone} cancelled: {_what_happened(totals)}", "success")
        return redirect(roster_url)
    totals = cancellations.preview_session_cancel(session)
    lines = _what_will_happen(totals)
    if totals.whole_offering:
        lines.insert(
            0, f"It is the last date of {session.offering.title}, so the whole offering is cancelled."
        )
    return render_template(
        "staff/admin/confirm.html",
        heading=f"Cancel {when} of {session.offering.title}?",
        lines=lines,
        form=form,
        fields=[form.reason],
        hidden={},
        action=url_for("staff.cancel_session", session_id=session.id),
        button="Cancel this session",
        back_url=roster_url,
        back_label="Keep it: back to the roster",
        nav=None,
    ), 400 if form.errors else 200


@bp.route("/admin/offerings/<int:offering_id>/cancel", methods=["GET", "POST"])
@admin_required
def admin_offering_cancel(offering_id: int) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    offering_url = url_for("staff.admin_offering", offering_id=offering.id)
    if offering.is_cancelled:
        flash("This offering is already cancelled.", "error")
        return redirect(offering_url)
    form = CancelOfferingForm()
    if form.validate_on_submit() and form.confirmed.data == "yes":
        totals = cancellations.cancel_offering_totals(offering.id, current_user, form.reason.data)
        flash(f"{offering.title} cancelled: {_what_happened(totals)}", "success")
        return redirect(offering_url)
    lines = ["Every date is cancelled.", *_what_will_happen(cancellations.preview_offering_cancel(offering))]
    return render_template(
        "staff/admin/confirm.html",
        heading=f"Cancel {offering.title}?",
        lines=lines,
        form=form,
        fields=[form.reason],
        hidden={},
        action=url_for("staff.admin_offering_cancel", offering_id=offering.id),
        button="Cancel the offering",
        back_url=offering_url,
        back_label="Keep it: back to the offering",
        nav="staff.admin_offerings",
    ), 400 if form.errors else 200


@bp.route("/admin/sessions/<int:session_id>/cancel", methods=["GET", "POST"])
@admin_required
def admin_session_cancel(session_id: int) -> ResponseReturnValue:
    """One date called off from the offering's dates table, after a page saying what happens."""
    session = get_or_404(Session, session_id)
    form = CancelSessionForm() if request.method == "POST" else CancelSessionForm(formdata=None)
    cancelled = session.status == SessionStatus.CANCELLED or session.offering.is_cancelled
    if not cancelled and form.validate_on_submit():
        if form.is_confirmed:
            totals = cancellations.cancel_session_totals(session.id, current_user, form.reason.data)
            flash(
                f"Cancelled {session.offering.title} on {moves.session_when(session)}: "
                f"{_what_happened(totals)}",
                "success",
            )
            return redirect(url_for("staff.admin_offering", offering_id=session.offering_id) + "#sessions")
        return render_template(
            "staff/admin/session_cancel_confirm.html",
            session=session,
            form=form,
            when=moves.session_when(session),
            preview=cancellations.preview_session_cancel(session),
        )
    status = 400 if form.is_submitted() else 200
    return render_template(
        "staff/admin/session_cancel.html",
        session=session,
        form=form,
        when=moves.session_when(session),
        cancelled=cancelled,
    ), status
