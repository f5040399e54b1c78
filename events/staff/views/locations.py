"""Admin pages for the clinic's locations."""

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.forms import attempt
from events.models import Location
from events.staff import locations
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import LocationForm


@bp.get("/admin/locations")
@admin_required
def admin_locations() -> ResponseReturnValue:
    return render_template("staff/admin/locations.html", locations=locations.locations_for_admin())


def _location_data(form: LocationForm) -> dict:
    data = {k: (getattr(form, k).data or "") for k in locations.LOCATION_FIELDS if k != "is_active"}
    data["is_active"] = bool(form.is_active.data)
    data["slug"] = form.slug.data or ""
    return data


@bp.route("/admin/locations/new", methods=["GET", "POST"])
@admin_required
def admin_location_new() -> ResponseReturnValue:
    return _location_page(None)


@bp.route("/admin/locations/<int:location_id>/edit", methods=["GET", "POST"])
@admin_required
def admin_location_edit(location_id: int) -> ResponseReturnValue:
    return _location_page(get_or_404(Location, location_id))


def _location_page(location: Location | None) -> ResponseReturnValue:
    form = LocationForm(obj=location) if request.method == "GET" and location else LocationForm()
    if form.validate_on_submit():
        saved = attempt(form, lambda: locations.save_location(location, _location_data(form), current_user))
        if saved is not None:
            flash(f"{saved.name} saved.", "success")
            return redirect(url_for("staff.admin_locations"))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/location_form.html", form=form, location=location), status
