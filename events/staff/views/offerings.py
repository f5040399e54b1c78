"""Admin pages for offerings: the list, create and edit, their dates and their resources."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from events.consent import services as consent
from events.filters import plural
from events.forms import attempt
from events.languages import DEFAULT_LANGUAGE, languages
from events.models import Offering, OfferingKind, Resource, ResourceKind, utcnow
from events.registration.forms import ConfirmForm
from events.resources import services as resources
from events.staff import accounts, locations, offerings
from events.staff.access import admin_required, bp, get_or_404
from events.staff.admin_forms import (
    CancelOfferingForm,
    ConfirmStepForm,
    FileResourceForm,
    LinkResourceForm,
    OfferingForm,
    OfferingTranslationForm,
    PriceTierForm,
    SessionsForm,
    offering_translation_form,
)
from events.staff.parsers import (
    dollars_to_cents,
    format_reminder_offsets,
    page_number,
    parse_reminder_offsets,
)


def _offering_choices(form: OfferingForm) -> None:
    form.location_id.choices = [
        (loc.id, loc.name + ("" if loc.is_active else " (inactive)")) for loc in locations.all_locations()
    ]
    form.instructor_id.choices = [(None, "No instructor")] + [
        (u.id, u.name + ("" if u.is_active else " (inactive)")) for u in accounts.instructors()
    ]
    form.consent_document_id.choices = [(None, "None")] + [(d.id, d.title) for d in consent.documents()]


def _offering_data(form: OfferingForm) -> dict:
    return {
        "kind": OfferingKind(form.kind.data),
        "title": form.title.data,
        "slug": form.slug.data or "",
        "topic": form.topic.data,
        "summary": form.summary.data or "",
        "description": form.description.data or "",
        "what_to_bring": form.what_to_bring.data or "",
        "location_id": form.location_id.data,
        "instructor_id": form.instructor_id.data,
        "price_cents": dollars_to_cents(form.price.data or 0),
        "capacity": form.capacity.data,
        "credits_per_booking": form.credits_per_booking.data or 1,
        "cancellation_cutoff_hours": form.cancellation_cutoff_hours.data
        if form.cancellation_cutoff_hours.data is not None
        else 24,
        "late_cancel_refund_percent": form.late_cancel_refund_percent.data or 0,
        "reminder_offsets": parse_reminder_offsets(form.reminders.data or ""),
        "followup_delay_minutes": form.followup_delay_minutes.data
        if form.followup_delay_minutes.data is not None
        else 120,
        "is_published": bool(form.is_published.data),
        "consent_document_id": form.consent_document_id.data,
        "community_seats": form.community_seats.data or 0,
        "community_price_cents": dollars_to_cents(form.community_price.data or 0),
        "community_release_hours": form.community_release_hours.data
        if form.community_release_hours.data is not None
        else 24,
    }


@bp.get("/admin/offerings")
@admin_required
def admin_offerings() -> ResponseReturnValue:
    page = offerings.list_offerings(page_number(request.args.get("page")))
    return render_template("staff/admin/offerings.html", lines=page.lines, page=page)


@bp.route("/admin/offerings/new", methods=["GET", "POST"])
@admin_required
def admin_offering_new() -> ResponseReturnValue:
    form = OfferingForm()
    _offering_choices(form)
    if not form.location_id.choices:
        flash("Add a location first: every offering meets somewhere.", "error")
        return redirect(url_for("staff.admin_location_new"))
    if form.validate_on_submit():
        offering = attempt(form, lambda: offerings.create_offering(_offering_data(form), current_user))
        if offering is not None:
            flash(f"“{offering.title}” created. Now add its dates.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/offering_form.html", form=form, offering=None), status


@bp.route("/admin/offerings/<int:offering_id>/edit", methods=["GET", "POST"])
@admin_required
def admin_offering_edit(offering_id: int) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    form = OfferingForm(obj=offering) if request.method == "GET" else OfferingForm()
    _offering_choices(form)
    if request.method == "GET":
        form.kind.data = offering.kind.value
        form.price.data = Decimal(offering.price_cents) / 100  # what MoneyField holds (shown the same)
        form.community_price.data = Decimal(offering.community_price_cents) / 100
        form.reminders.data = format_reminder_offsets(offering.reminder_offsets)
    if form.validate_on_submit():
        if attempt(form, lambda: offerings.update_offering(offering, _offering_data(form), current_user)):
            flash("Saved.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/offering_form.html", form=form, offering=offering), status


def _sessions_form(offering: Offering, form: SessionsForm | None = None) -> SessionsForm:
    form = form or SessionsForm(formdata=None)
    form.location_id.choices = [(None, f"Usual: {offering.location.name}")] + [
        (loc.id, loc.name) for loc in locations.other_active_locations(offering.location_id)
    ]
    return form


def _translation_forms(
    offering: Offering, submitted: tuple[str, OfferingTranslationForm] | None = None
) -> list:
    """One form per language other than English, filled with what is saved (or as submitted):
    the offering's own text and its tiers' names."""
    saved = offerings.translations_of(offering)
    items = []
    for code, language in languages().items():
        if code == DEFAULT_LANGUAGE:
            continue
        tiers_saved = offerings.tier_translations_of(offering, code)
        tier_data = {}
        for tier in offering.price_tiers:
            if tier.id in tiers_saved:
                tier_data[f"tier_{tier.id}_name"] = tiers_saved[tier.id].name
                tier_data[f"tier_{tier.id}_description"] = tiers_saved[tier.id].description
        form = offering_translation_form(
            offering.price_tiers, formdata=None, obj=saved.get(code), prefix=f"t-{code}", **tier_data
        )
        if submitted is not None and submitted[0] == code:
            form = submitted[1]
        # Staff pages are English: the language's English name, and its own beside it.
        english = language.babel_locale.get_display_name("en") if language.babel_locale is not None else code
        items.append(
            {
                "code": code,
                "name": f"{english} ({language.name})",
                "saved": code in saved,
                "tiers_saved": len(tiers_saved),
                "form": form,
                "tier_fields": [
                    (form[f"tier_{tier.id}_name"], form[f"tier_{tier.id}_description"], tier)
                    for tier in offering.price_tiers
                ],
            }
        )
    return items


def render_offering(offering: Offering, status: int = 200, **forms: Any) -> tuple[str, int]:
    """The offering's admin page, with any of its forms given (a failed submit's, with errors)."""
    forms.setdefault("translation_forms", _translation_forms(offering))
    forms.setdefault("sessions_form", _sessions_form(offering))
    forms.setdefault("link_form", LinkResourceForm(formdata=None))
    forms.setdefault("file_form", FileResourceForm(formdata=None))
    forms.setdefault("cancel_form", CancelOfferingForm(formdata=None))
    forms.setdefault("tier_form", PriceTierForm(formdata=None, prefix="tier-new"))
    offerings.load_dates(offering)
    return render_template(
        "staff/admin/offering.html",
        offering=offering,
        pools=offerings.seat_pools(offering),
        status_label=offerings.offering_status(offering),
        confirm_form=ConfirmForm(),
        resource_href=resources.resource_href,
        now=utcnow(),
        **forms,
    ), status


@bp.get("/admin/offerings/<int:offering_id>")
@admin_required
def admin_offering(offering_id: int) -> ResponseReturnValue:
    return render_offering(get_or_404(Offering, offering_id))


@bp.post("/admin/offerings/<int:offering_id>/sessions")
@admin_required
def admin_sessions_add(offering_id: int) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    form = _sessions_form(offering, SessionsForm())
    if form.validate_on_submit():
        location = locations.find_location(form.location_id.data) if form.location_id.data else None
        created = attempt(
            form,
            lambda: offerings.add_sessions(
                offering,
                form.first_day.data,
                form.start.data,
                form.duration_minutes.data,
                form.weeks.data,
                location,
                current_user,
            ),
        )
        if created is not None:
            flash(f"{plural(len(created), 'date')} added.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id) + "#sessions")
    return render_offering(offering, 400, sessions_form=form)


@bp.post("/admin/offerings/<int:offering_id>/translations/<language>")
@admin_required
def admin_offering_translation(offering_id: int, language: str) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    if language == DEFAULT_LANGUAGE or language not in languages():
        abort(404)  # English is the offering itself; other codes are no language offered
    form = offering_translation_form(offering.price_tiers, prefix=f"t-{language}")
    if form.validate_on_submit():
        data = {key: form[key].data or "" for key in offerings.TRANSLATED_FIELDS}
        tier_texts = {
            tier.id: (form[f"tier_{tier.id}_name"].data or "", form[f"tier_{tier.id}_description"].data or "")
            for tier in offering.price_tiers
        }
        attempt(form, lambda: offerings.save_translation(offering, language, data, current_user, tier_texts))
        if not form.errors:
            flash("Translation saved." if data["title"] else "Translation removed.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id) + "#translations")
    return render_offering(offering, 400, translation_forms=_translation_forms(offering, (language, form)))


# --- Resources shared after the class (events/resources) ---


@bp.post("/admin/offerings/<int:offering_id>/resources/link")
@admin_required
def admin_resource_link(offering_id: int) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    form = LinkResourceForm()
    if form.validate_on_submit():
        if attempt(
            form,
            lambda: resources.add_link(
                offering, form.title.data, form.url.data, form.description.data or "", current_user
            ),
        ):
            flash("Link added.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id) + "#resources")
    return render_offering(offering, 400, link_form=form)


@bp.post("/admin/offerings/<int:offering_id>/resources/file")
@admin_required
def admin_resource_file(offering_id: int) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    form = FileResourceForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            added = attempt(
                form,
                lambda: resources.add_file(
                    offering,
                    form.title.data,
                    form.description.data or "",
                    upload.stream,
                    upload.filename or "",
                    resources.upload_dir(),
                    current_user,
                    max_bytes=current_app.config["RESOURCE_MAX_BYTES"],
                ),
            )
        finally:
            upload.close()  # a large upload is spooled to a temporary file
        if added is not None:
            flash("File added.", "success")
            return redirect(url_for("staff.admin_offering", offering_id=offering.id) + "#resources")
    return render_offering(offering, 400, file_form=form)


@bp.route("/admin/resources/<int:resource_id>/delete", methods=["GET", "POST"])
@admin_required
def admin_resource_delete(resource_id: int) -> ResponseReturnValue:
    """The Remove button posts here and gets a confirmation page; its button removes."""
    resource = get_or_404(Resource, resource_id)
    back_url = url_for("staff.admin_offering", offering_id=resource.offering_id) + "#resources"
    form = ConfirmStepForm()
    if form.validate_on_submit() and form.confirmed.data == "yes":
        title = resource.title
        resources.delete_resource(resource, resources.upload_dir(), current_user)
        flash(f"“{title}” removed: it is no longer in follow-up emails or on the offering.", "success")
        return redirect(back_url)
    is_file = resource.kind == ResourceKind.FILE
    return render_template(
        "staff/admin/confirm.html",
        heading=f"Remove “{resource.title}”?",
        lines=[
            f"The {'file' if is_file else 'link'} “{resource.title}” is removed from "
            f"{resource.offering.title}: follow-up emails sent from now on won't include it"
            + (", and the file's address in emails already sent stops working." if is_file else "."),
            "This can't be undone.",
        ],
        form=form,
        fields=[],
        hidden={},
        action=url_for("staff.admin_resource_delete", resource_id=resource.id),
        button="Remove it",
        back_url=back_url,
        back_label="Keep it: back to the offering",
        nav="staff.admin_offerings",
    ), 400 if form.errors else 200
