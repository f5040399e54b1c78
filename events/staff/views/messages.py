"""Messages to the people of a session (from its roster) or of a whole offering (admins):
write, preview ("Send to 7 people"), confirm."""

import secrets

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from events.forms import attempt
from events.models import Offering, Session, utcnow
from events.staff import messages
from events.staff.access import admin_required, bp, get_or_404
from events.staff.forms import MessageForm
from events.staff.views.rosters import session_or_404


def people(n: int) -> str:
    return f"{n} {'person' if n == 1 else 'people'}"


def _message_page(offering: Offering, session: Session | None, back_url: str) -> ResponseReturnValue:
    form = MessageForm()
    step = request.form.get("step", "")
    if form.validate_on_submit() and step != "edit":
        include_waitlist = bool(form.include_waitlist.data)
        if step == "send" and form.request_key.data:
            request_key = form.request_key.data
            result = attempt(
                form,
                lambda: messages.send_message(
                    current_user,
                    offering,
                    session,
                    form.subject.data,
                    form.body.data,
                    include_waitlist,
                    request_key,
                ),
            )
            if result is not None:
                message, sent_now = result
                if sent_now:
                    flash(f"Message sent to {people(message.recipients)}.", "success")
                else:
                    flash("That message was already sent; it was not sent again.", "success")
                return redirect(back_url)
        else:
            audience = messages.audience(offering, session, include_waitlist, utcnow())
            form.request_key.data = secrets.token_urlsafe(24)
            return render_template(
                "staff/message.html",
                offering=offering,
                session=session,
                form=form,
                audience=audience,
                people=people,
                back_url=back_url,
                preview=True,
            )
    status = 400 if form.is_submitted() and step != "edit" else 200
    return render_template(
        "staff/message.html",
        offering=offering,
        session=session,
        form=form,
        people=people,
        back_url=back_url,
        preview=False,
    ), status


@bp.route("/sessions/<int:session_id>/message", methods=["GET", "POST"])
@login_required
def message_session(session_id: int) -> ResponseReturnValue:
    session = session_or_404(session_id)
    return _message_page(session.offering, session, url_for("staff.roster", session_id=session.id))


@bp.route("/admin/offerings/<int:offering_id>/message", methods=["GET", "POST"])
@admin_required
def admin_message_offering(offering_id: int) -> ResponseReturnValue:
    offering = get_or_404(Offering, offering_id)
    return _message_page(offering, None, url_for("staff.admin_offering", offering_id=offering.id))
