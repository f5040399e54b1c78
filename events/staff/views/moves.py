"""Per-date actions from an offering's dates table: move a date, give it a substitute.

Each goes through a confirmation page that says what will happen; the first submit only
checks the form and shows that page, whose button sends the same values back confirmed."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.forms import attempt
from events.models import Session
from events.staff import accounts, locations, moves, substitutes
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import MoveSessionForm, SubstituteForm


def _dates_url(session: Session) -> str:
    return url_for("staff.admin_offering", offering_id=session.offering_id) + "#sessions"


def _move_form(session: Session) -> MoveSessionForm:
    if request.method == "POST":
        form = MoveSessionForm()
    else:
        start, end = session.local_start, session.local_end
        form = MoveSessionForm(
            formdata=None,
            day=start.date(),
            start=start.time(),
            end=end.time(),
            location_id=session.location_id,
        )
    form.location_id.choices = [(session.location_id, f"{session.location.name} (where it is now)")] + [
        (loc.id, loc.name) for loc in locations.other_active_locations(session.location_id)
    ]
    return form


def _zones(session: Session) -> str:
    """The zones the times may be in, named for the form's hint."""
    places = [session.location, *locations.other_active_locations(session.location_id)]
    zones = sorted({loc.timezone for loc in places})
    return ", ".join(zones)


@bp.route("/admin/sessions/<int:session_id>/move", methods=["GET", "POST"])
@admin_required
def admin_session_move(session_id: int) -> ResponseReturnValue:
    session = get_or_404(Session, session_id)
    form = _move_form(session)
    if form.validate_on_submit():
        location = locations.find_location(form.location_id.data) if form.location_id.data else None
        day, start, end = form.day.data, form.start.data, form.end.data
        if form.is_confirmed:
            result = attempt(
                form, lambda: moves.move_session(session.id, day, start, end, location, current_user)
            )
            if result is not None:
                flash(
                    f"Moved {session.offering.title} to {result.plan.new_when} at {result.plan.new_place}. "
                    f"{moves.being_emailed(result.emailed)}",
                    "success",
                )
                return redirect(_dates_url(session))
        else:
            plan = attempt(form, lambda: moves.plan_move(session, day, start, end, location))
            if plan is not None:
                return render_template(
                    "staff/admin/session_move_confirm.html", session=session, form=form, plan=plan
                )
    status = 400 if form.is_submitted() else 200
    return render_template(
        "staff/admin/session_move.html",
        session=session,
        form=form,
        when=moves.session_when(session),
        zones=_zones(session),
    ), status


def _substitute_form(session: Session) -> SubstituteForm:
    form = (
        SubstituteForm()
        if request.method == "POST"
        else SubstituteForm(formdata=None, instructor_id=session.instructor_id)
    )
    regular = session.offering.instructor
    form.instructor_id.choices = [
        (None, f"{regular.name} (the regular instructor)" if regular else "No named instructor (the usual)")
    ] + [
        (u.id, u.name)
        for u in accounts.instructors(active_only=True)
        if regular is None or u.id != regular.id
    ]
    return form


@bp.route("/admin/sessions/<int:session_id>/substitute", methods=["GET", "POST"])
@admin_required
def admin_session_substitute(session_id: int) -> ResponseReturnValue:
    session = get_or_404(Session, session_id)
    form = _substitute_form(session)
    if form.validate_on_submit():
        instructor_id, notify = form.instructor_id.data, bool(form.notify.data)
        if form.is_confirmed:
            done = attempt(
                form, lambda: substitutes.substitute(session.id, instructor_id, notify, current_user)
            )
            if done is not None:
                plan, emailed = done
                who = plan.instructor.name if plan.instructor else "No named instructor"
                told = moves.being_emailed(emailed)
                flash(f"{who} now teaches {session.offering.title} on {plan.when}. {told}", "success")
                return redirect(_dates_url(session))
        else:
            sub_plan = attempt(form, lambda: substitutes.plan_substitute(session, instructor_id))
            if sub_plan is not None:
                return render_template(
                    "staff/admin/session_substitute_confirm.html",
                    session=session,
                    form=form,
                    plan=sub_plan,
                    sentence=sub_plan.sentence(notify),
                )
    status = 400 if form.is_submitted() else 200
    return render_template(
        "staff/admin/session_substitute.html",
        session=session,
        form=form,
        when=moves.session_when(session),
        teacher=substitutes.teacher(session),
    ), status
