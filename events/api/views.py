"""The read-only JSON API for the clinic's website, described by openapi.json."""

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from events import pricing
from events.api.openapi import openapi_document
from events.catalog import services
from events.catalog.cache import cached
from events.clinic import current_clinic
from events.extensions import db
from events.models import Location, PassProduct, PriceTier, Session, utcnow
from events.offering_text import offering_text, tier_text
from events.passes import buying
from events.reports.exports import report_json
from events.reports.forms import report_form
from events.reports.report import build_report

bp = Blueprint("api", __name__)


def location_json(location: Location) -> dict:
    return {
        "id": location.id,
        "slug": location.slug,
        "name": location.name,
        "address": location.full_address,
        "timezone": location.timezone,
        "url": url_for("catalog.location", slug=location.slug, _external=True),
    }


def tier_json(tier: PriceTier) -> dict:
    """A sliding-scale tier, its name and description in the language asked for (as the
    offering's title: staff's translation, else the English, saying so in name_language)."""
    text = tier_text(tier)
    return {
        "name": text.name,
        "description": text.description,
        "name_language": text.language,
        "price_cents": tier.price_cents,
    }


def tiers_of(offering_ids: set[int]) -> dict[int, list[PriceTier]]:
    """The sliding-scale tiers of these offerings, in their order, in one query."""
    tiers: dict[int, list[PriceTier]] = {offering_id: [] for offering_id in offering_ids}
    if offering_ids:
        for tier in db.session.scalars(
            sa.select(PriceTier)
            .where(PriceTier.offering_id.in_(offering_ids))
            .order_by(PriceTier.offering_id, PriceTier.position, PriceTier.id)
        ):
            tiers[tier.offering_id].append(tier)
    return tiers


def community_kept(sessions: list[Session]) -> dict[int, int]:
    """Community seats still kept in each session's pool, for every session listed in one query
    (none when no offering among them keeps any)."""
    return pricing.community_kept_by_pool(((s.offering, s.seat_pool) for s in sessions), utcnow())


def session_json(
    session: Session, tiers: dict[int, list[PriceTier]] | None = None, kept: dict[int, int] | None = None
) -> dict:
    offering = session.offering
    kept = kept if kept is not None else community_kept([session])
    offering_tiers = tiers[offering.id] if tiers is not None else offering.price_tiers
    instructor = session.instructor or offering.instructor
    text = offering_text(offering)  # in the language asked for (?lang= or Accept-Language)
    return {
        "id": session.id,
        "offering": {
            "id": offering.id,
            "slug": offering.slug,
            "title": text.title,
            # The title's language: "en" when the language asked for has no translation yet.
            "title_language": text.language,
            "kind": offering.kind.value,
            "topic": offering.topic,
            # Sliding-scale prices a member may choose without proof (empty: price_cents for all).
            "price_tiers": [tier_json(t) for t in offering_tiers] if not offering.is_free else [],
            "community_seats": offering.community_seats if not offering.is_free else 0,
            "community_price_cents": offering.community_price_cents,
        },
        "location": location_json(session.location),
        "instructor": instructor.name if instructor else None,
        "starts_at": session.local_start.isoformat(),
        "ends_at": session.local_end.isoformat(),
        "timezone": session.location.timezone,
        "status": session.status.value,
        "price_cents": offering.price_cents,
        "currency": offering.currency,
        "capacity": session.seat_pool.capacity,
        "seats_left": session.seat_pool.seats_left,
        # Of seats_left, how many are kept at the community price now (0 once taken or released
        # to general sale): per date for a drop-in class, for the whole workshop or course.
        "community_seats_left": kept[session.seat_pool_id],
        "url": url_for("catalog.offering", slug=offering.slug, _external=True),
    }


@bp.get("/sessions")
def sessions() -> ResponseReturnValue:
    def render() -> Response:
        f = services.parse_schedule_filter(request.args, current_app.config["SCHEDULE_PAGE_SIZE"])
        page = services.list_schedule(f)
        tiers = tiers_of({s.offering_id for s in page.sessions})
        kept = community_kept(page.sessions)
        # (A language asked for stays in the links.)
        lang = {"lang": request.args["lang"]} if request.args.get("lang") else {}
        links = {"self": url_for("api.sessions", _external=True, **f.as_args(), per_page=f.per_page, **lang)}
        if page.has_next:
            links["next"] = url_for(
                "api.sessions", _external=True, **f.as_args(page=f.page + 1), per_page=f.per_page, **lang
            )
        if page.has_prev:
            links["prev"] = url_for(
                "api.sessions", _external=True, **f.as_args(page=f.page - 1), per_page=f.per_page, **lang
            )
        return jsonify(
            data=[session_json(s, tiers, kept) for s in page.sessions],
            meta={"page": f.page, "per_page": f.per_page, "total": page.total, "pages": page.pages},
            links=links,
        )

    return cached(render)


@bp.get("/sessions/<int:session_id>")
def session_detail(session_id: int) -> ResponseReturnValue:
    session = services.published_session(session_id)
    if session is None:
        abort(404, description=f"No session with id {session_id}.")
    return jsonify(data=session_json(session))


@bp.get("/locations")
def locations() -> ResponseReturnValue:
    return cached(lambda: jsonify(data=[location_json(loc) for loc in services.active_locations()]))


def pass_product_json(product: PassProduct) -> dict:
    """A pass on sale, as the public sees it (never a holder's pass or balance)."""
    return {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "credits": product.credits,
        "price_cents": product.price_cents,
        "currency": product.currency,
        "validity_days": product.validity_days,
        "validity_starts": product.validity_starts.value,
        "offering_kinds": sorted(k for k in product.offering_kinds.split(",") if k),
        "offering_ids": sorted(o.id for o in product.offerings),
        "location_slugs": sorted(loc.slug for loc in product.locations),
        "good_for": buying.good_for(product),
        "buy_url": url_for("passes.buy", product_id=product.id, _external=True),
    }


@bp.get("/pass-products")
def pass_products() -> ResponseReturnValue:
    """The class passes on sale, with their prices (not cached: staff change them rarely, and
    the list is one short query)."""
    return jsonify(data=[pass_product_json(p) for p in buying.products_on_sale()])


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document(request.host_url.rstrip("/") + "/api/v1"))


@bp.get("/reports")
def reports() -> ResponseReturnValue:
    """The report figures for admins signed in to the staff side; never public, never cached."""
    if not current_user.is_authenticated:
        abort(401, description="Sign in to the staff side as an admin to read reports.")
    if not current_user.is_admin:
        abort(403, description="Reports through the API are for admins.")
    args = MultiDict(request.args)
    for api_name, form_name in (("from", "date_from"), ("to", "date_to")):
        if api_name in args:
            args.setlist(form_name, args.poplist(api_name))
    form = report_form(args)
    if not form.validate():
        names = {"date_from": "from", "date_to": "to"}
        problems = "; ".join(f"{names.get(name, name)}: {errors[0]}" for name, errors in form.errors.items())
        abort(400, description=f"The report's choices could not be understood ({problems}).")
    today = datetime.now(ZoneInfo(current_clinic().timezone)).date()
    first_day, last_day = form.chosen_range(today)
    report = build_report(first_day, last_day, form.by.data or "offering", current_user)
    response = jsonify(data=report_json(report))
    response.headers["Cache-Control"] = "no-store"
    return response
