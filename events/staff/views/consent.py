"""Consent: the admin's documents and versions, and a person accepting on the instructor's
phone at check-in (an instructor on their own sessions only)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from events.consent import services as consent
from events.consent.text import consent_text
from events.forms import FieldError, attempt, show_form_error
from events.languages import in_language
from events.models import ConsentDocument, ConsentTranslation, ConsentVersion, Registration, Session
from events.registration.forms import ConsentForm
from events.staff import rosters
from events.staff.access import admin_required, bp, get_or_404, visible_session
from events.staff.admin_forms import ConsentDocumentForm, ConsentTranslationForm, ConsentVersionForm
from events.staff.errors import RosterError

# --- Admin: documents and their versions ---


@bp.get("/admin/consent")
@admin_required
def admin_consent_documents() -> ResponseReturnValue:
    return render_template("staff/admin/consent_documents.html", lines=consent.document_lines())


@bp.route("/admin/consent/new", methods=["GET", "POST"])
@admin_required
def admin_consent_document_new() -> ResponseReturnValue:
    form = ConsentDocumentForm()
    if form.validate_on_submit():
        document = attempt(
            form, lambda: consent.create_document(form.title.data, form.body.data, current_user)
        )
        if document is not None:
            flash(f"“{document.title}” created: version 1 is published.", "success")
            return redirect(url_for("staff.admin_consent_document", document_id=document.id))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/admin/consent_document_new.html", form=form), status


@dataclass(frozen=True)
class TranslationItem:
    code: str
    name: str
    form: ConsentTranslationForm
    saved: ConsentTranslation | None  # the current version's translation in this language


def _translation_items(
    current: ConsentVersion | None, posted: tuple[str, ConsentTranslationForm] | None = None
) -> list[TranslationItem]:
    """One form per language members read (English is the version itself), the posted one as sent."""
    saved = {t.language: t for t in current.translations} if current else {}
    items = []
    for code, name in consent.translation_languages().items():
        if posted and posted[0] == code:
            form = posted[1]
        else:
            form = ConsentTranslationForm(formdata=None, prefix=f"t-{code}")
            form.version_id.data = current.id if current else None
        items.append(TranslationItem(code, name, form, saved.get(code)))
    return items


def _render_document(
    document: ConsentDocument,
    form: ConsentVersionForm | None = None,
    status: int = 200,
    posted: tuple[str, ConsentTranslationForm] | None = None,
) -> tuple[str, int]:
    history = consent.document_history(document)
    if form is None:
        form = ConsentVersionForm(formdata=None)
        form.body.data = history[0].body if history else ""
    return render_template(
        "staff/admin/consent_document.html",
        document=document,
        history=history,
        counts=consent.acceptance_counts(document),
        offerings=[line.offerings for line in consent.document_lines() if line.document.id == document.id][0],
        form=form,
        translation_items=_translation_items(history[0] if history else None, posted),
    ), status


@bp.get("/admin/consent/<int:document_id>")
@admin_required
def admin_consent_document(document_id: int) -> ResponseReturnValue:
    return _render_document(get_or_404(ConsentDocument, document_id))


@bp.post("/admin/consent/<int:document_id>/versions")
@admin_required
def admin_consent_publish(document_id: int) -> ResponseReturnValue:
    document = get_or_404(ConsentDocument, document_id)
    form = ConsentVersionForm()
    if form.validate():
        version = attempt(form, lambda: consent.publish_version(document, form.body.data, current_user))
        if version is not None:
            flash(
                f"Version {version.number} published. Everyone booking from now on is asked to accept "
                "it; people already booked are flagged on their rosters.",
                "success",
            )
            return redirect(url_for("staff.admin_consent_document", document_id=document.id))
    return _render_document(document, form, 400)


@bp.post("/admin/consent/<int:document_id>/translations/<language>")
@admin_required
def admin_consent_translate(document_id: int, language: str) -> ResponseReturnValue:
    document = get_or_404(ConsentDocument, document_id)
    if language not in consent.translation_languages():
        abort(404)  # English is the version itself; other codes are no language offered
    form = ConsentTranslationForm(prefix=f"t-{language}")
    if form.validate():
        translation = attempt(
            form,
            lambda: consent.publish_translation(
                document, form.version_id.data, language, form.title.data, form.body.data, current_user
            ),
        )
        if translation is not None:
            flash(
                f"Translation published. Members reading {consent.translation_languages()[language]} "
                "see it from now on; it never changes (a correction is a new version).",
                "success",
            )
            back = url_for("staff.admin_consent_document", document_id=document.id)
            return redirect(back + "#translations")
    return _render_document(document, status=400, posted=(language, form))


# --- Check-in: accepting on the instructor's phone ---


def _roster_person(session_id: int, registration_id: int) -> tuple[Session, Registration]:
    """The session (if this user may run its roster) and the person on it; 404 otherwise."""
    session = visible_session(current_user, session_id) or abort(404)
    try:
        return session, rosters.roster_registration(session, registration_id)
    except RosterError:
        abort(404)


def _render_accept(
    session: Session,
    registration: Registration,
    form: ConsentForm,
    version: ConsentVersion | None,
    status: int = 200,
) -> tuple[str, int]:
    accepted = version is not None and registration.id in consent.accepted_current([registration.id], version)
    # Staff see which language the person reads (or read) it in.
    shown = consent_text(version, registration.language) if version is not None else None
    version_id = version.id if version is not None else None
    given = next(
        (a for a in consent.acceptances_of(registration.id) if a.consent_version_id == version_id),
        None,
    )
    # What the person reads, in the language they booked in; the staff page around it English.
    with in_language(registration.language):
        member_part = render_template(  # (autoescaped HTML: the page shows it as it is)
            "staff/_consent_accept_member.html",
            session=session,
            registration=registration,
            form=form,
            consent_version=version,
            accepted=accepted,
        )
    return render_template(
        "staff/consent_accept.html",
        session=session,
        registration=registration,
        member_part=member_part,
        accepted=accepted,
        shown=shown,
        given=given,
    ), status


@bp.route("/sessions/<int:session_id>/consent/<int:registration_id>", methods=["GET", "POST"])
@login_required
def accept_consent(session_id: int, registration_id: int) -> ResponseReturnValue:
    """The person reads the current version on this phone and ticks; recorded as given in
    person, with who handed the phone over."""
    session, registration = _roster_person(session_id, registration_id)
    version = consent.required_version(session.offering)
    form = ConsentForm() if request.method == "POST" else ConsentForm(formdata=None)
    if version is None:
        flash("This class doesn't ask for a consent document.", "success")
        return redirect(url_for("staff.roster", session_id=session.id))
    if request.method == "GET":
        return _render_accept(session, registration, form, version)
    if not form.validate():
        return _render_accept(session, registration, form, version, 400)
    try:
        # A refusal is said to the person holding the phone: in the language they booked in.
        with in_language(registration.language):
            outcome = consent.accept_in_person(
                registration,
                form.consent_version_id.data,
                bool(form.consent.data),
                current_user,
                session_id=session.id,
                session_when=rosters.local_when(session),
                shown_language=form.consent_language.data or "en",
            )
    except consent.ConsentError as error:
        if isinstance(error, consent.ConsentChanged):
            form.consent.data = False
        show_form_error(form, error)
        return _render_accept(session, registration, form, error.version, 409)
    except FieldError as error:
        show_form_error(form, error)
        return _render_accept(session, registration, form, version, 409)
    if outcome == consent.InPersonOutcome.RECORDED:
        flash(f"Thank you. {registration.name}'s consent is recorded.", "success")
    else:
        flash(f"{registration.name} had already accepted this version.", "success")
    return redirect(url_for("staff.roster", session_id=session.id) + f"#r{registration.id}")
