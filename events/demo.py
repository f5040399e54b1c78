"""The demo clinic: Revival Physical Therapy and Wellness, its two locations, and the next
eight weeks of workshops and classes drawn from its three-phase approach to back pain:
relief first, then root causes (posture, strength), then prevention (body mechanics).

seed_demo() is idempotent: everything is looked up by its slug or email first.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from events.catalog.scheduling import add_session, add_weekly_series
from events.demo_history import seed_past_year
from events.extensions import Base, db
from events.models import (
    Clinic,
    ConsentDocument,
    ConsentTranslation,
    ConsentVersion,
    Location,
    Offering,
    OfferingKind,
    PassProduct,
    PassValidityStart,
    PriceTier,
    PromoCode,
    PromoKind,
    Registration,
    RegistrationStatus,
    Resource,
    ResourceKind,
    Role,
    Session,
    User,
    utcnow,
)

CLINIC = dict(
    name="Revival Physical Therapy and Wellness",
    tagline="Community workshops and small group classes for moving well and staying out of pain.",
    email="hello@revival-pt.example",
    phone="(612) 555-0142",
    website_url="",
    currency="usd",
    timezone="America/Chicago",
)

LOCATIONS = [
    dict(
        slug="north-loop",
        name="North Loop",
        address_line1="800 N Washington Ave",
        address_line2="Suite 5",
        city="Minneapolis",
        region="MN",
        postal_code="55401",
        timezone="America/Chicago",
        directions="Street parking on Washington Ave; the entrance is on the 8th Ave side.",
    ),
    dict(
        slug="robbinsdale",
        name="Robbinsdale",
        address_line1="4123 W Broadway",
        city="Robbinsdale",
        region="MN",
        postal_code="55422",
        timezone="America/Chicago",
        directions="Free parking behind the building.",
    ),
]

INSTRUCTORS = [
    dict(
        email="maya.lindqvist@revival-pt.example",
        name="Maya Lindqvist, PT, DPT",
        bio="Orthopedic physical therapist; helps people get moving again after back pain.",
    ),
    dict(
        email="jordan.okafor@revival-pt.example",
        name="Jordan Okafor, PT, DPT",
        bio="Strength and conditioning specialist; makes lifting feel safe again.",
    ),
    dict(
        email="sam.reyes@revival-pt.example",
        name="Sam Reyes, PTA",
        bio="Leads our mobility classes; former office worker turned movement coach.",
    ),
]


@dataclass
class OfferingPlan:
    slug: str
    kind: OfferingKind
    topic: str
    title: str
    summary: str
    description: str
    what_to_bring: str
    location: str
    instructor: str
    price_cents: int
    capacity: int
    weekday: int  # 0 = Monday
    start: time
    minutes: int
    weeks: int  # how many weekly sessions (1 for a one-off)
    first_week: int = 0  # weeks from now of the first session
    seats_taken: int = 0  # demo registrations already in


PLANS = [
    OfferingPlan(
        slug="back-spasms-what-to-do-first",
        kind=OfferingKind.WORKSHOP,
        topic="Back pain relief",
        title="Back Spasms: What to Do First",
        summary="Calm a back spasm fast and know when to get help. Phase 1 of our approach: relief.",
        description=(
            "A back spasm can stop you in your tracks. In this free hour with a physical therapist "
            "you'll learn positions that ease a spasm, gentle movements for the first 48 hours, "
            "when heat or ice helps, and the warning signs that mean you should see someone. "
            "Plenty of time for questions."
        ),
        what_to_bring="Comfortable clothes you can lie down in. Mats are provided.",
        location="north-loop",
        instructor=INSTRUCTORS[0]["email"],
        price_cents=0,
        capacity=12,
        weekday=5,
        start=time(10, 0),
        minutes=75,
        weeks=1,
        first_week=1,
        seats_taken=12,
    ),
    OfferingPlan(
        slug="back-spasms-what-to-do-first-robbinsdale",
        kind=OfferingKind.WORKSHOP,
        topic="Back pain relief",
        title="Back Spasms: What to Do First (Robbinsdale)",
        summary="The same free relief workshop, at our Robbinsdale clinic.",
        description=(
            "Positions that ease a spasm, gentle movement for the first days, heat or ice, and "
            "the warning signs that mean you should be seen."
        ),
        what_to_bring="Comfortable clothes. Mats are provided.",
        location="robbinsdale",
        instructor=INSTRUCTORS[0]["email"],
        price_cents=0,
        capacity=16,
        weekday=3,
        start=time(18, 30),
        minutes=75,
        weeks=1,
        first_week=3,
    ),
    OfferingPlan(
        slug="posture-reset",
        kind=OfferingKind.COURSE,
        topic="Posture",
        title="Posture Reset",
        summary="A four-week course on the root causes of neck and back strain.",
        description=(
            "Four evenings that get at why your back and neck hurt: how you sit, stand and "
            "breathe, which muscles have gone quiet, and a short daily routine to change it. "
            "Each week builds on the last; register once for all four sessions."
        ),
        what_to_bring="Comfortable clothes and a water bottle.",
        location="robbinsdale",
        instructor=INSTRUCTORS[0]["email"],
        price_cents=12000,
        capacity=10,
        weekday=1,
        start=time(18, 30),
        minutes=60,
        weeks=4,
        first_week=1,
    ),
    OfferingPlan(
        slug="core-hip-strength-north-loop",
        kind=OfferingKind.CLASS,
        topic="Strength",
        title="Core & Hip Strength",
        summary="A weekly drop-in class building the strength that protects your back.",
        description=(
            "Forty-five minutes of guided strength work for the trunk and hips, scaled to every "
            "level by a physical therapist. Drop in to any week."
        ),
        what_to_bring="Athletic shoes and a water bottle.",
        location="north-loop",
        instructor=INSTRUCTORS[1]["email"],
        price_cents=1500,
        capacity=12,
        weekday=0,
        start=time(18, 0),
        minutes=45,
        weeks=8,
    ),
    OfferingPlan(
        slug="core-hip-strength-robbinsdale",
        kind=OfferingKind.CLASS,
        topic="Strength",
        title="Core & Hip Strength",
        summary="The weekly strength drop-in, at our Robbinsdale clinic.",
        description="Guided strength work for the trunk and hips, scaled to every level.",
        what_to_bring="Athletic shoes and a water bottle.",
        location="robbinsdale",
        instructor=INSTRUCTORS[1]["email"],
        price_cents=1500,
        capacity=12,
        weekday=3,
        start=time(7, 0),
        minutes=45,
        weeks=8,
    ),
    OfferingPlan(
        slug="mobility-for-desk-workers-north-loop",
        kind=OfferingKind.CLASS,
        topic="Mobility",
        title="Mobility for Desk Workers",
        summary="A lunchtime drop-in to undo a morning at the desk.",
        description=(
            "Thirty-five minutes of mobility for hips, upper back and neck, done in work clothes. "
            "Back at your desk by 1."
        ),
        what_to_bring="Nothing special; come as you are.",
        location="north-loop",
        instructor=INSTRUCTORS[2]["email"],
        price_cents=0,
        capacity=14,
        weekday=2,
        start=time(12, 10),
        minutes=35,
        weeks=8,
    ),
    OfferingPlan(
        slug="mobility-for-desk-workers-robbinsdale",
        kind=OfferingKind.CLASS,
        topic="Mobility",
        title="Mobility for Desk Workers",
        summary="Saturday morning mobility at Robbinsdale.",
        description="Forty-five minutes of mobility for hips, upper back and neck.",
        what_to_bring="Comfortable clothes.",
        location="robbinsdale",
        instructor=INSTRUCTORS[2]["email"],
        price_cents=1000,
        capacity=14,
        weekday=5,
        start=time(9, 0),
        minutes=45,
        weeks=8,
    ),
    OfferingPlan(
        slug="lift-smart-body-mechanics",
        kind=OfferingKind.WORKSHOP,
        topic="Body mechanics",
        title="Lift Smart: Body Mechanics",
        summary="Lift kids, groceries and boxes without hurting your back. Phase 3: prevention.",
        description=(
            "A hands-on workshop on how to bend, lift, carry and twist in daily life and at work. "
            "Practice with real loads and get coached by a physical therapist."
        ),
        what_to_bring="Athletic shoes.",
        location="north-loop",
        instructor=INSTRUCTORS[1]["email"],
        price_cents=2500,
        capacity=12,
        weekday=5,
        start=time(13, 0),
        minutes=90,
        weeks=1,
        first_week=2,
    ),
    OfferingPlan(
        slug="desk-set-up-clinic",
        kind=OfferingKind.WORKSHOP,
        topic="Ergonomics",
        title="Desk Set-Up Clinic",
        summary="Bring a photo of your desk; leave with a set-up that fits you.",
        description=(
            "Chair height, screen distance, keyboard and mouse, standing desks and laptop set-ups. "
            "We'll look at photos of your own desk together."
        ),
        what_to_bring="A photo of your desk set-up on your phone.",
        location="robbinsdale",
        instructor=INSTRUCTORS[2]["email"],
        price_cents=0,
        capacity=10,
        weekday=2,
        start=time(17, 30),
        minutes=60,
        weeks=1,
        first_week=1,
        seats_taken=8,
    ),
]

RESOURCES = {
    "back-spasms-what-to-do-first": [
        ("Back pain: symptoms, causes and self-care (MedlinePlus)", "https://medlineplus.gov/backpain.html"),
        ("Low back pain: acute (MedlinePlus)", "https://medlineplus.gov/ency/article/007425.htm"),
    ],
    "back-spasms-what-to-do-first-robbinsdale": [
        ("Back pain: symptoms, causes and self-care (MedlinePlus)", "https://medlineplus.gov/backpain.html"),
    ],
    "posture-reset": [
        ("Guide to good posture (MedlinePlus)", "https://medlineplus.gov/guidetogoodposture.html"),
    ],
    "lift-smart-body-mechanics": [
        ("Preventing back injuries at work (OSHA)", "https://www.osha.gov/ergonomics"),
    ],
    "desk-set-up-clinic": [
        ("Computer workstations eTool (OSHA)", "https://www.osha.gov/etools/computer-workstations"),
    ],
    "mobility-for-desk-workers-north-loop": [
        (
            "Exercise and physical fitness (MedlinePlus)",
            "https://medlineplus.gov/exerciseandphysicalfitness.html",
        ),
    ],
}

DEMO_FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farah",
    "Gus",
    "Hana",
    "Ivan",
    "Jade",
    "Kofi",
    "Lena",
]


# The consent document the demo's group classes require (issue 15, item 10).
DEMO_CONSENT_TITLE = "Exercise class participation and release"
# One line per paragraph: the text is shown as written (line breaks kept), so a hard wrap here
# would break lines mid-sentence on a phone.
DEMO_CONSENT_TEXT = "\n\n".join(
    (
        "Group exercise classes involve physical activity. Our physical therapists plan each class "
        "to be safe for most people, but any exercise carries some risk of soreness, strain or injury.",
        "Please tell the instructor before class if you have pain that is getting worse, a recent "
        "injury or surgery, heart or breathing problems, or if your doctor has told you to limit "
        "activity. You don't have to tell us the details.",
        "Stop and tell the instructor if anything hurts, if you feel dizzy or short of breath, or if "
        "you need to rest. Every exercise can be made easier; you decide how much to do.",
        "A group class is not a one-to-one treatment and does not replace care from your own doctor "
        "or physical therapist.",
        "By agreeing, you say that you take part by your own choice, that you will follow the "
        "instructor's directions and go at your own pace, and that you accept the risks of taking part.",
    )
)


# Its Spanish translation (Somali is left untranslated: a Somali reader sees the English, noted).
DEMO_CONSENT_TRANSLATIONS = {
    "es": (
        "Participación en clases de ejercicio y exoneración",
        "\n\n".join(
            (
                "Las clases de ejercicio en grupo incluyen actividad física. Nuestros fisioterapeutas "
                "planifican cada clase para que sea segura para la mayoría de las personas, pero todo "
                "ejercicio conlleva algún riesgo de dolor muscular, distensión o lesión.",
                "Antes de la clase, dígale al instructor si tiene un dolor que está empeorando, una lesión "
                "o cirugía reciente, problemas del corazón o de la respiración, o si su médico le ha dicho "
                "que limite la actividad. No tiene que contarnos los detalles.",
                "Pare y avise al instructor si algo le duele, si se siente mareado o le falta el aire, o si "
                "necesita descansar. Todo ejercicio se puede hacer más fácil; usted decide cuánto hacer.",
                "Una clase en grupo no es un tratamiento individual y no sustituye la atención de su propio "
                "médico o fisioterapeuta.",
                "Al aceptar, usted declara que participa por decisión propia, que seguirá las indicaciones "
                "del instructor a su propio ritmo y que acepta los riesgos de participar.",
            )
        ),
    ),
}


M = TypeVar("M", bound=Base)


def _demo_consent_document() -> ConsentDocument:
    """The demo's consent document with its first version (made once; a re-seed keeps it)."""
    document = db.session.scalar(
        sa.select(ConsentDocument).where(ConsentDocument.title == DEMO_CONSENT_TITLE)
    )
    if document is None:
        document = ConsentDocument(title=DEMO_CONSENT_TITLE)
        db.session.add(document)
        db.session.flush()
        db.session.add(ConsentVersion(document_id=document.id, number=1, body=DEMO_CONSENT_TEXT))
        db.session.flush()
    first = db.session.scalar(
        sa.select(ConsentVersion).where(ConsentVersion.document_id == document.id, ConsentVersion.number == 1)
    )
    if first is not None and first.body == DEMO_CONSENT_TEXT:
        have = {t.language for t in first.translations}
        for language, (title, body) in DEMO_CONSENT_TRANSLATIONS.items():
            if language not in have:  # (a translation is added once and never changed)
                db.session.add(
                    ConsentTranslation(version_id=first.id, language=language, title=title, body=body)
                )
    return document


def _upsert(model: type[M], key: str, values: dict[str, Any]) -> tuple[M, bool]:
    row = db.session.scalar(sa.select(model).where(getattr(model, key) == values[key]))
    if row is None:
        row = model(**values)
        db.session.add(row)
        return row, True
    return row, False


def _next_weekday(start: date, weekday: int) -> date:
    return start + timedelta(days=(weekday - start.weekday()) % 7)


DEMO_ADMIN_EMAIL = "admin@revival-pt.example"


def _demo_accounts(instructors: dict[str, User], accounts_file: str | os.PathLike[str]) -> list[str]:
    """A demo admin, and sign-in for the first instructor, with random passwords kept in
    instance/ (never fixed in the code: a seeded database must not share a known password)."""
    import json
    from pathlib import Path

    path = Path(accounts_file)
    saved = json.loads(path.read_text()) if path.exists() else {}
    admin, _ = _upsert(User, "email", {"email": DEMO_ADMIN_EMAIL, "name": "Clinic Admin", "role": Role.ADMIN})
    lines = []
    for user in (admin, instructors[INSTRUCTORS[0]["email"]]):
        password = saved.get(user.email)
        if not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            saved[user.email] = password
        lines.append(f"{user.role.value:10s} {user.email}  password: {password}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=2))
    path.chmod(0o600)
    return lines


def seed_demo(today: date | None = None, accounts_file: str | os.PathLike[str] | None = None) -> str:
    clinic = db.session.scalar(sa.select(Clinic).limit(1))
    if clinic is None:
        db.session.add(Clinic(**CLINIC))

    locations = {}
    for values in LOCATIONS:
        locations[values["slug"]], _ = _upsert(Location, "slug", values)
    instructors = {}
    for values in INSTRUCTORS:
        instructors[values["email"]], _ = _upsert(User, "email", {**values, "role": Role.INSTRUCTOR})
    db.session.flush()

    consent_document = _demo_consent_document()

    zone = ZoneInfo(CLINIC["timezone"])
    today = today or datetime.now(zone).date()
    # Start tomorrow so every demo session is still upcoming when the demo is opened.
    start_day = today + timedelta(days=1)
    created = 0
    for plan in PLANS:
        existing = db.session.scalar(sa.select(Offering).where(Offering.slug == plan.slug))
        if existing is not None:
            continue
        offering = Offering(
            slug=plan.slug,
            kind=plan.kind,
            topic=plan.topic,
            title=plan.title,
            summary=plan.summary,
            description=plan.description,
            what_to_bring=plan.what_to_bring,
            location=locations[plan.location],
            instructor=instructors[plan.instructor],
            price_cents=plan.price_cents,
            currency=CLINIC["currency"],
            capacity=plan.capacity,
            # The group classes ask everyone booking to accept the participation release.
            consent_document_id=consent_document.id if plan.kind is OfferingKind.CLASS else None,
        )
        db.session.add(offering)
        first_day = _next_weekday(start_day, plan.weekday) + timedelta(weeks=plan.first_week)
        duration = timedelta(minutes=plan.minutes)
        if plan.weeks == 1:
            sessions = [add_session(offering, first_day, plan.start, duration)]
        else:
            sessions = add_weekly_series(offering, first_day, plan.start, duration, plan.weeks)
        for position, (title, url) in enumerate(RESOURCES.get(plan.slug, [])):
            db.session.add(
                Resource(offering=offering, kind=ResourceKind.LINK, title=title, url=url, position=position)
            )
        if plan.seats_taken:
            _add_demo_registrations(offering, sessions[0], plan.seats_taken)
        created += 1
    by_slug = {
        o.slug: o
        for o in db.session.scalars(sa.select(Offering).where(Offering.slug.in_([p.slug for p in PLANS])))
    }
    _demo_pass_product()
    _demo_pricing(by_slug)
    past_sessions = seed_past_year([by_slug[p.slug] for p in PLANS if p.slug in by_slug], today, zone)
    accounts = _demo_accounts(instructors, accounts_file) if accounts_file else []
    db.session.commit()
    summary = (
        f"Demo clinic ready: {len(locations)} locations, {len(instructors)} instructors, "
        f"{created} new offerings"
        + (f", a past year of {past_sessions} sessions for the reports." if past_sessions else ".")
    )
    if accounts:
        summary += "\nStaff sign-in at /staff/login (demo accounts):\n  " + "\n  ".join(accounts)
    return summary


DEMO_PASS = {
    "name": "10-class pass",
    "description": "Ten drop-in classes at either location, for the price of eight.",
    "credits": 10,
    "price_cents": 12000,
    "validity_days": 90,
}


def _demo_pass_product() -> None:
    """A 10-class pass for the drop-in classes, valid 90 days from purchase, $120 (once)."""
    if db.session.scalar(sa.select(PassProduct.id).where(PassProduct.name == DEMO_PASS["name"])) is not None:
        return
    db.session.add(
        PassProduct(
            **DEMO_PASS,
            currency=CLINIC["currency"],
            validity_starts=PassValidityStart.PURCHASE,
            offering_kinds=OfferingKind.CLASS.value,
            is_on_sale=True,
        )
    )


# A sliding scale on one workshop (chosen without proof), two free community seats on it, and
# a partner employer's code (events/pricing.py prices them).
DEMO_TIERS = {
    "lift-smart-body-mechanics": [
        ("Supported", "Helps fund community seats", 3500),
        ("Standard", "", 2500),
        ("Community", "No questions asked", 1000),
    ],
}
DEMO_COMMUNITY_SEATS = {"lift-smart-body-mechanics": (2, 0, 48)}  # seats, price, release hours
DEMO_CODES = [
    {
        "code": "NORTHLOOP-WELL",
        "code_normalized": "NORTHLOOP-WELL",
        "kind": PromoKind.PERCENT_OFF,
        "value": 20,
        "partner_tag": "north-loop-employers",
        "max_uses_per_email": 4,
    },
]


def _demo_pricing(by_slug: dict[str, Offering]) -> None:
    """Tiers, community seats and the partner code, added once (a re-seed leaves them be)."""
    for slug, tiers in DEMO_TIERS.items():
        offering = by_slug.get(slug)
        if offering is None or offering.price_tiers:
            continue
        offering.price_tiers = [
            PriceTier(name=name, description=description, price_cents=price, position=position)
            for position, (name, description, price) in enumerate(tiers)
        ]
        if slug in DEMO_COMMUNITY_SEATS:
            seats, price, hours = DEMO_COMMUNITY_SEATS[slug]
            offering.community_seats = seats
            offering.community_price_cents = price
            offering.community_release_hours = hours
    for values in DEMO_CODES:
        if (
            db.session.scalar(
                sa.select(PromoCode.id).where(PromoCode.code_normalized == values["code_normalized"])
            )
            is None
        ):
            db.session.add(PromoCode(**values))


def _add_demo_registrations(offering: Offering, session: Session, count: int) -> None:
    """Free demo attendees, so the schedule shows a full and a nearly full offering."""
    db.session.flush()
    pool = session.seat_pool
    for i in range(count):
        name = DEMO_FIRST_NAMES[i % len(DEMO_FIRST_NAMES)]
        email = f"{name.lower()}.{offering.id}.{i}@attendee.example"
        db.session.add(
            Registration(
                seat_pool=pool,
                offering=offering,
                session=session if offering.kind.per_session else None,
                name=f"{name} Demo",
                email=email,
                email_normalized=email,
                status=RegistrationStatus.CONFIRMED,
                price_cents=offering.price_cents,
                currency=offering.currency,
                token=secrets.token_urlsafe(24),
                source="staff",
                confirmed_at=utcnow(),
            )
        )
    pool.seats_taken += count
    pool.version += 1
