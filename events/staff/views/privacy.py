"""Privacy for staff: what retention anonymises next, and a caller's data downloaded or erased
from their registration's page (audited: privacy.exported, privacy.erased)."""

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.filters import dollars, format_short_day
from events.models import Registration
from events.privacy import export, for_staff, retention
from events.registration.forms import ConfirmForm
from events.staff.access import admin_required, bp, get_or_404


@bp.get("/admin/privacy")
@admin_required
def admin_privacy() -> ResponseReturnValue:
    after = for_staff.preview_page_after(request.args.get("after"))
    return render_template("staff/admin/privacy.html", preview=retention.preview(after=after), after=after)


@bp.post("/admin/registrations/<int:registration_id>/privacy/export")
@admin_required
def admin_privacy_export(registration_id: int) -> ResponseReturnValue:
    """Everything held about this person's address, as the file they would download themselves."""
    registration = get_or_404(Registration, registration_id)
    if not ConfirmForm().validate():
        flash("The form expired. Please try again.", "error")
        return redirect(url_for("staff.admin_registration", registration_id=registration_id))
    document = for_staff.export_for(registration, current_user)
    return current_app.response_class(
        export.as_json(document),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="registration-{registration_id}-data.json"'},
    )


@bp.route("/admin/registrations/<int:registration_id>/privacy/erase", methods=["GET", "POST"])
@admin_required
def admin_privacy_erase(registration_id: int) -> ResponseReturnValue:
    """Says what erasing does (a POST without confirmed=yes too), then does it."""
    registration = get_or_404(Registration, registration_id)
    back_url = url_for("staff.admin_registration", registration_id=registration_id)
    if registration.anonymised_at is not None:
        flash("This person's data has already been deleted.", "success")
        return redirect(back_url)
    form = ConfirmForm()
    if request.method == "POST" and request.form.get("confirmed") == "yes" and form.validate():
        result = for_staff.erase_for(registration, current_user)
        refunded = f", {dollars(result.total_refund_cents)} refunded" if result.total_refund_cents else ""
        flash(
            f"Their data is deleted: {result.registrations} registration(s) and "
            f"{result.waitlist_places} waitlist place(s) anonymised, {result.cancelled} upcoming "
            f"booking(s) cancelled, {result.passes} class pass(es) anonymised ({result.passes_closed} "
            f"closed){refunded}. A confirmation email is on its way to them.",
            "success",
        )
        return redirect(back_url)
    plan = for_staff.erase_plan(registration)
    who = registration.email or "this walk-in (no email given)"
    lines = [
        f"Everything held about {who} is anonymised: name, email, phone and the notes about "
        f"them, in {plan.registrations} registration(s) and their emails and history. Counts, "
        "attendance and money stay for the reports.",
    ]
    for c in plan.cancellations:
        refund = f", refunding {dollars(c.refund_cents)} by the policy" if c.refund_cents else ""
        when = f" ({format_short_day(c.starts_at)})" if c.starts_at else ""
        lines.append(f"Cancels {c.title}{when}{refund}.")
    if plan.waitlist_places:
        lines.append(f"Takes them off {plan.waitlist_places} waitlist(s).")
    for p in plan.passes:
        if p.held:
            lines.append(f"Voids their class pass “{p.product}” (#{p.pass_id}), not paid yet.")
        elif p.credits_left:
            lines.append(
                f"Closes their class pass “{p.product}” (#{p.pass_id}), refunding its {p.credits_left} "
                f"unused credit(s) pro rata: {dollars(p.refund_cents)}."
            )
        else:
            lines.append(f"Closes their class pass “{p.product}” (#{p.pass_id}): no credits are left on it.")
    if registration.email:
        lines.append("One email confirms it to them; then the address is forgotten. This can't be undone.")
    else:
        lines.append("This can't be undone.")
    return render_template(
        "staff/admin/confirm.html",
        heading=f"Delete {registration.name}'s data?",
        lines=lines,
        form=form,
        fields=[],
        hidden={},
        action=url_for("staff.admin_privacy_erase", registration_id=registration_id),
        button="Delete their data",
        back_url=back_url,
        back_label="Don't delete: back to the registration",
        nav="staff.admin_registrations",
    ), (400 if request.method == "POST" and not form.validate() else 200)
