"""Public pages: the schedule, offerings, locations and iCal feeds."""

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue

from events import pricing
from events.calendar import build_calendar
from events.catalog import services
from events.catalog.cache import cached
from events.catalog.seat_slots import assembled_page
from events.clinic import current_clinic
from events.consent import services as consent
from events.models import Offering, utcnow

bp = Blueprint("catalog", __name__)


def _schedule_filter() -> services.ScheduleFilter:
    return services.parse_schedule_filter(request.args, current_app.config["SCHEDULE_PAGE_SIZE"])


@bp.get("/")
def schedule() -> ResponseReturnValue:
    def render_in_full() -> tuple[str, int]:
        f, problems = services.read_schedule_filter(request.args, current_app.config["SCHEDULE_PAGE_SIZE"])
        page = services.list_schedule(f, last_page_at_most=True)
        locations = services.active_locations()
        body = render_template(
            "catalog/schedule.html",
            page=page,
            problems=problems,
            locations=locations,
            topics=services.topics(),
            quick_filters=services.quick_filters(page.filter, locations, services.clinic_today()),
        )
        # A filter that could not be read: the form shows what to fix, with the visitor's values.
        return body, 400 if problems else 200

    def render() -> Response:
        # After a seat change only the seat badges are rendered (events/catalog/seat_slots.py).
        body, status = assembled_page(render_in_full)
        return current_app.response_class(body, status=status, mimetype="text/html")

    return cached(render)


def render_offering_page(offering: Offering, chosen_session_id: int | None = None, **extra: Any) -> str:
    """The offering page; the registration views add their form and messages through extra.
    chosen_session_id: the date to show chosen (a schedule card's, or the form's)."""
    upcoming, past = services.offering_sessions(offering)
    # The consent document booking asks for (a failed submit passes the one it showed).
    extra.setdefault("consent_version", consent.required_version(offering))
    # Community seats still kept, per date: the choice shows only while one is (the page is
    # cached by the seat pools' versions and the minute, so taking the last one or the release
    # time removes it).
    pools = list({s.seat_pool_id: s.seat_pool for s in upcoming}.values())
    left_by_pool = pricing.community_left_by_pool(offering, pools, utcnow())
    open_sessions = services.open_sessions(upcoming)
    chosen = services.chosen_date(offering, open_sessions, chosen_session_id)
    return render_template(
        "catalog/offering.html",
        offering=offering,
        upcoming=upcoming,
        past=past,
        open_sessions=open_sessions,
        chosen=chosen,
        community_left_by_pool=left_by_pool,
        community=pricing.community_seats_shown(offering, open_sessions, chosen, left_by_pool),
        map_url=services.map_url(offering.location),
        chosen_session_id=chosen_session_id,
        **extra,
    )


def _chosen_session_id() -> int | None:
    """The date a schedule card links to (?session=ID); anything else chooses none."""
    raw = request.args.get("session", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
        return None
    value = int(raw)
    return value if 0 < value < 2**31 else None


@bp.get("/offerings/<slug>")
def offering(slug: str) -> ResponseReturnValue:
    return cached(
        lambda: render_offering_page(
            services.get_offering(slug) or abort(404), chosen_session_id=_chosen_session_id()
        )
    )


@bp.get("/locations/<slug>")
def location(slug: str) -> ResponseReturnValue:
    def render() -> str:
        location = services.get_location(slug) or abort(404)
        f = _schedule_filter()
        page = services.list_schedule(
            services.ScheduleFilter(**{**f.__dict__, "location": slug}), last_page_at_most=True
        )
        return render_template(
            "catalog/location.html", location=location, page=page, map_url=services.map_url(location)
        )

    return cached(render)


@bp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """Browsers ask for /favicon.ico whatever the page links to (3 kB, answered from memory)."""
    assert current_app.static_folder is not None  # create_app sets it
    icon = Path(current_app.static_folder, "favicon.ico").read_bytes()
    return Response(
        icon, mimetype="image/vnd.microsoft.icon", headers={"Cache-Control": "public, max-age=86400"}
    )


def _ics_response(body: bytes, filename: str) -> Response:
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "max-age=300"},
    )


@bp.get("/calendar.ics")
def calendar_feed() -> ResponseReturnValue:
    def render() -> Response:
        clinic = current_clinic()
        sessions = services.upcoming_sessions_for_feed()
        return _ics_response(build_calendar(clinic, clinic.name, sessions), "calendar.ics")

    return cached(render)


@bp.get("/locations/<slug>/calendar.ics")
def location_calendar_feed(slug: str) -> ResponseReturnValue:
    def render() -> Response:
        location = services.get_location(slug) or abort(404)
        clinic = current_clinic()
        sessions = services.upcoming_sessions_for_feed(location_slug=slug)
        name = f"{clinic.name} - {location.name}"
        return _ics_response(build_calendar(clinic, name, sessions), f"{slug}.ics")

    return cached(render)
