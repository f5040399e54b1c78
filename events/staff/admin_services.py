"""Admin business rules: offerings, sessions, places, instructors, resources, money and email.

Plain functions, no request objects: views parse forms and call these. Every change an admin
makes is written to the audit trail in the same transaction as the change.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from flask import url_for
from sqlalchemy.orm import joinedload
from werkzeug.utils import secure_filename

from events.catalog.scheduling import add_session, add_weekly_series, local_to_utc
from events.extensions import db
from events.models import (
    EmailStatus,
    Location,
    Offering,
    OutboxEmail,
    Payment,
    Refund,
    Registration,
    Resource,
    ResourceKind,
    Role,
    SeatPool,
    Session,
    User,
    utcnow,
)
from events.registration import seats
from events.registration.services import (
    CapacityError,
    Outcome,
    Person,
    RegisterResult,
    register,
    resize_locked_pool,
    succeeded_payment,
)
from events.staff import audit
from events.staff.services import paid_and_refunded


class AdminError(Exception):
    """A rule stops this change; the message is for the admin. `field` names the form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- Small parsers ---


def slugify(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:100] or "item"


def unique_slug(model: type[Offering] | type[Location], wanted: str, exclude_id: int | None = None) -> str:
    """`wanted`, or `wanted-2`, `wanted-3`... whichever is free in this table."""
    base = slugify(wanted)
    candidate, n = base, 1
    while True:
        query = sa.select(model.id).where(model.slug == candidate)
        if exclude_id is not None:
            query = query.where(model.id != exclude_id)
        if db.session.scalar(query) is None:
            return candidate
        n += 1
        candidate = f"{base}-{n}"


_OFFSET = re.compile(r"^(\d+)\s*(m|min|h|d)?$")
_UNIT_MINUTES = {None: 1, "m": 1, "min": 1, "h": 60, "d": 1440}


def parse_reminder_offsets(text: str) -> str:
    """ "24h, 2h" -> "1440,120" (largest first). Units: d, h, m; a bare number is minutes."""
    minutes = set()
    for part in (p.strip().lower() for p in (text or "").split(",")):
        if not part:
            continue
        match = _OFFSET.match(part)
        if not match:
            raise AdminError(f'"{part}" isn\'t a time before the session; write e.g. "24h, 2h".', "reminders")
        value = int(match.group(1)) * _UNIT_MINUTES[match.group(2)]
        if not 0 < value <= 60 * 24 * 30:
            raise AdminError("Reminders go out between 1 minute and 30 days before.", "reminders")
        minutes.add(value)
    return ",".join(str(m) for m in sorted(minutes, reverse=True))


def format_reminder_offsets(stored: str) -> str:
    """ "1440,120" -> "24h, 2h"; whole days from 48 hours up ("2880" -> "2d")."""
    out = []
    for part in (stored or "").split(","):
        if not part.strip().isdigit():
            continue
        m = int(part)
        if m % 1440 == 0 and m >= 2 * 1440:
            out.append(f"{m // 1440}d")
        elif m % 60 == 0:
            out.append(f"{m // 60}h")
        else:
            out.append(f"{m}m")
    return ", ".join(out)


def dollars_to_cents(amount: Decimal | str | float) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


# --- Offerings ---

OFFERING_FIELDS = (
    "kind",
    "title",
    "topic",
    "summary",
    "description",
    "what_to_bring",
    "location_id",
    "instructor_id",
    "price_cents",
    "cancellation_cutoff_hours",
    "late_cancel_refund_percent",
    "reminder_offsets",
    "followup_delay_minutes",
    "is_published",
)


def offering_status(offering: Offering) -> str:
    if offering.is_cancelled:
        return "cancelled"
    if not offering.is_published:
        return "draft"
    last = max((s.starts_at for s in offering.sessions), default=None)
    if last is None:
        return "no dates"
    if last < utcnow():
        return "past"
    return "published"


def list_offerings() -> list[Offering]:
    return list(
        db.session.scalars(
            sa.select(Offering)
            .options(joinedload(Offering.location), joinedload(Offering.instructor))
            .order_by(Offering.is_cancelled, Offering.created_at.desc(), Offering.id.desc())
        )
    )


def _check_references(data: dict) -> None:
    if db.session.get(Location, data["location_id"]) is None:
        raise AdminError("Choose a location.", "location_id")
    if data.get("instructor_id"):
        user = db.session.get(User, data["instructor_id"])
        if user is None or user.role is not Role.INSTRUCTOR:
            raise AdminError("Choose an instructor.", "instructor_id")


def create_offering(data: dict, actor: User) -> Offering:
    """data: OFFERING_FIELDS plus slug (optional) and capacity, already typed."""
    _check_references(data)
    offering = Offering(
        slug=unique_slug(Offering, data.get("slug") or data["title"]),
        capacity=data["capacity"],
        **{k: data[k] for k in OFFERING_FIELDS},
    )
    db.session.add(offering)
    db.session.flush()
    audit.record(actor.id, "offering.created", "offering", offering.id, title=offering.title)
    db.session.commit()
    return offering


def update_offering(offering: Offering, data: dict, actor: User) -> Offering:
    """Edit an offering in one transaction. A new capacity applies to every seat pool, all of
    them locked until the commit (so no registration slips in between the check and the
    change); if any pool has more seats taken than the new capacity, nothing at all changes."""
    _check_references(data)
    if data["kind"] != offering.kind and offering.sessions:
        raise AdminError(
            "The kind can't change once the offering has dates (seats are counted differently).", "kind"
        )
    new_capacity = data["capacity"]
    if new_capacity != offering.capacity:
        now = utcnow()
        pools = seats.lock_offering_pools(offering.id)
        for pool in pools:
            try:
                resize_locked_pool(pool, new_capacity, now)
            except CapacityError as error:
                db.session.rollback()
                raise AdminError(str(error), "capacity") from error
            audit.record(actor.id, "seat_pool.capacity_changed", "seat_pool", pool.id, capacity=new_capacity)
    slug = data.get("slug") or ""
    changes: dict[str, list[Any]] = {}  # field: [old, new], for the audit trail
    if slug and slugify(slug) != offering.slug:
        changes["slug"] = [offering.slug, unique_slug(Offering, slug, exclude_id=offering.id)]
        offering.slug = changes["slug"][1]
    for key in OFFERING_FIELDS:
        old, new = getattr(offering, key), data[key]
        if old != new:
            changes[key] = [str(old), str(new)]
            setattr(offering, key, new)
    if new_capacity != offering.capacity:
        changes["capacity"] = [offering.capacity, new_capacity]
        offering.capacity = new_capacity
    audit.record(actor.id, "offering.updated", "offering", offering.id, changes=changes)
    db.session.commit()
    return offering


def seat_pools(offering: Offering) -> list[SeatPool]:
    return list(
        db.session.scalars(
            sa.select(SeatPool).where(SeatPool.offering_id == offering.id).order_by(SeatPool.id)
        )
    )


# --- Sessions ---


def add_sessions(
    offering: Offering,
    first_day: date,
    start: time,
    duration_minutes: int,
    weeks: int,
    location: Location | None,
    actor: User,
) -> list[Session]:
    """One session (weeks=1) or a weekly series, at local wall-clock time in the location's zone."""
    if offering.is_cancelled:
        raise AdminError("This offering is cancelled; it can't get new dates.")
    location = location or offering.location
    if local_to_utc(first_day, start, location.zone) <= utcnow():
        raise AdminError("The first date is in the past.", "first_day")
    duration = timedelta(minutes=duration_minutes)
    if weeks == 1:
        created = [add_session(offering, first_day, start, duration, location)]
    else:
        created = add_weekly_series(offering, first_day, start, duration, weeks, location)
    db.session.flush()
    for session in created:
        audit.record(
            actor.id,
            "session.created",
            "session",
            session.id,
            offering_id=offering.id,
            starts_at=session.starts_at.isoformat(),
        )
    db.session.commit()
    return created


# --- Locations and instructors ---

LOCATION_FIELDS = (
    "name",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "timezone",
    "phone",
    "directions",
    "is_active",
)


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise AdminError(
            f'"{name}" isn\'t a time zone; use a name like America/Chicago.', "timezone"
        ) from error


def save_location(location: Location | None, data: dict, actor: User) -> Location:
    _check_timezone(data["timezone"])
    created = location is None
    if location is None:
        location = Location(slug=unique_slug(Location, data.get("slug") or data["name"]))
        db.session.add(location)
    elif data.get("slug") and slugify(data["slug"]) != location.slug:
        location.slug = unique_slug(Location, data["slug"], exclude_id=location.id)
    for key in LOCATION_FIELDS:
        setattr(location, key, data[key])
    db.session.flush()
    audit.record(
        actor.id,
        "location.created" if created else "location.updated",
        "location",
        location.id,
        name=location.name,
    )
    db.session.commit()
    return location


def save_instructor(user: User | None, data: dict, actor: User) -> User:
    """An instructor account has no password until they set one via "Forgot your password".
    It starts active; set_staff_active deactivates and reactivates it."""
    email = data["email"].strip().lower()
    clash = db.session.scalar(sa.select(User.id).where(User.email == email))
    if clash is not None and (user is None or clash != user.id):
        raise AdminError("Another staff account uses that email.", "email")
    created = user is None
    if user is None:
        user = User(role=Role.INSTRUCTOR, password_hash="")
        db.session.add(user)
    elif user.role is not Role.INSTRUCTOR:
        raise AdminError("Only instructor accounts are edited here.")
    user.email, user.name, user.bio = email, data["name"], data["bio"]
    db.session.flush()
    audit.record(actor.id, "instructor.created" if created else "instructor.updated", "user", user.id)
    db.session.commit()
    return user


def set_staff_active(user: User, active: bool, actor: User) -> bool:
    """Deactivate a staff account (signed out everywhere at once; no sign-in or reset link works
    until it is reactivated) or reactivate it (its old sessions stay ended). Offerings and rosters
    keep pointing at the account either way. Returns whether anything changed."""
    if not active:
        if user.id == actor.id:
            raise AdminError("You can't deactivate your own account.")
        # Locked, so two admins deactivating each other at once can't leave the clinic with none.
        active_admins = db.session.scalars(
            sa.select(User.id).where(User.role == Role.ADMIN, User.is_active.is_(True)).with_for_update()
        ).all()
        if user.is_admin and set(active_admins) <= {user.id}:
            raise AdminError("This is the last active admin account; it can't be deactivated.")
    db.session.refresh(user, with_for_update=True)
    if user.is_active == active:
        db.session.commit()
        return False
    if not active:
        user.end_sessions()
    user.is_active = active
    audit.record(actor.id, "user.reactivated" if active else "user.deactivated", "user", user.id)
    db.session.commit()
    return True


def instructors(active_only: bool = False) -> list[User]:
    query = sa.select(User).where(User.role == Role.INSTRUCTOR).order_by(sa.func.lower(User.name))
    if active_only:
        query = query.where(User.is_active.is_(True))
    return list(db.session.scalars(query))


# --- Resources ---

MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def sniff_content_type(head: bytes) -> str | None:
    """What the first bytes say the file is; None unless it is a PDF or a common image."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


EXTENSIONS = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
}


def _next_position(offering: Offering) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.max(Resource.position)).where(Resource.offering_id == offering.id)
        )
        or 0
    ) + 1


def add_link(offering: Offering, title: str, url: str, description: str, actor: User) -> Resource:
    if not re.match(r"^https?://[^\s/]+", url.strip(), re.IGNORECASE):
        raise AdminError("The link must start with http:// or https://.", "url")
    resource = Resource(
        offering_id=offering.id,
        kind=ResourceKind.LINK,
        title=title,
        url=url.strip(),
        description=description,
        position=_next_position(offering),
    )
    db.session.add(resource)
    db.session.flush()
    audit.record(actor.id, "resource.created", "resource", resource.id, offering_id=offering.id, kind="link")
    db.session.commit()
    return resource


def add_file(
    offering: Offering,
    title: str,
    description: str,
    stream: IO[bytes],
    original_filename: str,
    upload_dir: Path,
    actor: User,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> Resource:
    """Store an uploaded PDF or image under a random name, after checking what it really is."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise AdminError(f"The file is larger than {max_bytes // (1024 * 1024)} MB.", "file")
    if not data:
        raise AdminError("The file is empty.", "file")
    content_type = sniff_content_type(data[:16])
    if content_type is None:
        raise AdminError("Only PDF files and images (PNG, JPEG, GIF, WebP) can be uploaded.", "file")
    upload_dir.mkdir(parents=True, exist_ok=True)
    stored = f"{secrets.token_hex(16)}.{EXTENSIONS[content_type]}"
    (upload_dir / stored).write_bytes(data)
    resource = Resource(
        offering_id=offering.id,
        kind=ResourceKind.FILE,
        title=title,
        description=description,
        stored_filename=stored,
        original_filename=(original_filename or stored)[:255],
        content_type=content_type,
        position=_next_position(offering),
    )
    db.session.add(resource)
    db.session.flush()
    audit.record(
        actor.id,
        "resource.created",
        "resource",
        resource.id,
        offering_id=offering.id,
        kind="file",
        content_type=content_type,
        size=len(data),
    )
    db.session.commit()
    return resource


def delete_resource(resource: Resource, upload_dir: Path, actor: User) -> None:
    audit.record(
        actor.id,
        "resource.deleted",
        "resource",
        resource.id,
        offering_id=resource.offering_id,
        title=resource.title,
    )
    stored = resource.stored_filename
    db.session.delete(resource)
    db.session.commit()
    if stored:
        (upload_dir / stored).unlink(missing_ok=True)


# --- Registrations and payments ---


@dataclass
class RegistrationLine:
    registration: Registration
    paid_cents: int
    refunded_cents: int

    @property
    def payment_label(self) -> str:
        if self.paid_cents == 0:
            return "unpaid" if self.registration.price_cents else "free"
        if self.refunded_cents >= self.paid_cents:
            return "refunded"
        if self.refunded_cents:
            return "partly refunded"
        return "paid"


def search_registrations(
    q: str = "", offering_id: int | None = None, status: str = "", limit: int = 200
) -> list[RegistrationLine]:
    query = (
        sa.select(Registration)
        .join(Registration.offering)
        .options(joinedload(Registration.offering), joinedload(Registration.session))
        .order_by(Registration.created_at.desc(), Registration.id.desc())
        .limit(limit)
    )
    if q.strip():
        escaped = q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            sa.or_(
                sa.func.lower(Registration.name).like(pattern, escape="\\"),
                Registration.email_normalized.like(pattern, escape="\\"),
                sa.func.lower(Offering.title).like(pattern, escape="\\"),
            )
        )
    if offering_id:
        query = query.where(Registration.offering_id == offering_id)
    if status:
        query = query.where(Registration.status == status)
    registrations = list(db.session.scalars(query))
    ids = [r.id for r in registrations]
    money = paid_and_refunded(ids)
    return [RegistrationLine(r, *money.get(r.id, (0, 0))) for r in registrations]


def refundable_cents(payment: Payment | None) -> int:
    """What can still be refunded: paid, minus refunds issued or on their way."""
    from events.payments.refunds import refundable_remaining

    return refundable_remaining(payment)


def manual_refund(registration: Registration, amount_cents: int, reason: str, actor: User) -> Refund:
    """Queue a refund of part or all of what is left (the worker sends it to Stripe after
    commit, and the "refund issued" email once Stripe has accepted it)."""
    from events.payments.refunds import lock_for_refund, queue_refund, refundable_remaining

    payment = succeeded_payment(registration)
    if payment is None:
        raise AdminError("There is no successful payment to refund.")
    if amount_cents <= 0:
        raise AdminError("Enter an amount above zero.", "amount")
    # The refund locks (seat pool, then payment) before reading what is left: a cancellation
    # or another refund of this payment waits for this one, and then counts it.
    payment = lock_for_refund(payment.id)
    left = refundable_remaining(payment)
    if left == 0:
        raise AdminError("Nothing is left to refund on this payment.")
    if amount_cents > left:
        raise AdminError(f"At most ${left / 100:.2f} is left to refund.", "amount")
    n = (
        db.session.execute(
            sa.select(sa.func.count())
            .select_from(Refund)
            .where(Refund.idempotency_key.like(f"manual-refund-{registration.id}-%"))
        ).scalar_one()
        + 1
    )
    refund, _ = queue_refund(
        payment.id,
        amount_cents,
        key=f"manual-refund-{registration.id}-{n}",
        reason=reason or "Manual refund",
        actor_id=actor.id,
    )
    assert refund is not None  # a new key, and the amount was checked against what is left under the lock
    audit.record(
        actor.id,
        "refund.requested",
        "registration",
        registration.id,
        refund_id=refund.id,
        amount_cents=amount_cents,
        reason=reason[:200],
    )
    db.session.commit()
    return refund


def retry_refund(refund_id: int, actor: User) -> Refund:
    """Send a refund Stripe refused to the worker again (if the payment still covers it)."""
    from events.payments.refunds import RefundError, retry_failed_refund

    try:
        refund = retry_failed_refund(refund_id)
    except RefundError as error:
        db.session.rollback()
        raise AdminError(str(error)) from error
    audit.record(
        actor.id,
        "refund.retried",
        "registration",
        refund.payment.registration_id,
        refund_id=refund.id,
        amount_cents=refund.amount_cents,
    )
    db.session.commit()
    return refund


def registration_emails(registration: Registration) -> list[OutboxEmail]:
    return list(
        db.session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.registration_id == registration.id)
            .order_by(OutboxEmail.id)
        )
    )


def resend_email(email: OutboxEmail, actor: User) -> OutboxEmail:
    """Send an outbox email again by putting the same row back in the queue.

    The dedupe key names one email and is unique, so re-queuing the row (rather than copying it
    under a new key) keeps "one row per email": the worker sends it again, the row's status
    always tells the latest outcome, and each resend is in the audit trail.
    """
    from events.notifications.publish import mark_queued

    email = db.session.execute(
        sa.select(OutboxEmail).where(OutboxEmail.id == email.id).with_for_update()
    ).scalar_one()
    if email.status == EmailStatus.SENDING:
        db.session.commit()
        raise AdminError("That email is being sent right now.")
    previous = email.status.value
    email.status = EmailStatus.PENDING
    email.attempts = 0
    email.last_error = ""
    email.claimed_at = None
    email.sent_at = None
    email.send_after = utcnow()
    audit.record(
        actor.id, "email.resent", "outbox_email", email.id, kind=email.kind, previous_status=previous
    )
    mark_queued(db.session())
    db.session.commit()
    return email


def failed_emails(limit: int = 300) -> list[OutboxEmail]:
    return list(
        db.session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.status == EmailStatus.FAILED)
            .order_by(OutboxEmail.id.desc())
            .limit(limit)
        )
    )


def register_on_behalf(
    offering: Offering, session_id: int | None, person: Person, actor: User
) -> RegisterResult:
    """Register someone as staff: the same rules and emails as the public form."""
    result = register(offering, session_id, person, source="staff")
    if result.outcome in (Outcome.CONFIRMED, Outcome.HELD):
        assert result.registration is not None  # both outcomes come with their registration
        audit.record(
            actor.id,
            "registration.created_by_staff",
            "registration",
            result.registration.id,
            outcome=result.outcome.value,
        )
        db.session.commit()
    return result


def upcoming_sessions(offering: Offering) -> list[Session]:
    now = utcnow()
    return [s for s in offering.sessions if s.starts_at > now and s.status.value == "scheduled"]


# --- Resource files: unguessable public addresses ---

FILE_KEY = re.compile(r"[0-9a-f]{32}")


def public_filename(resource: Resource) -> str:
    name = secure_filename(resource.original_filename) or resource.stored_filename
    ext = EXTENSIONS.get(resource.content_type, "")
    if ext and not name.lower().endswith("." + ext) and not (ext == "jpg" and name.lower().endswith(".jpeg")):
        name = f"{name}.{ext}"
    return name


def file_key(resource: Resource) -> str:
    """A file's address is its random stored name (128 bits), not its sequential id: handouts
    are shared with the people who came, not with anyone who counts upwards."""
    return resource.stored_filename.split(".", 1)[0]


def file_resource_by_key(key: str) -> Resource | None:
    if not FILE_KEY.fullmatch(key):
        return None
    return db.session.scalar(
        sa.select(Resource).where(
            Resource.kind == ResourceKind.FILE,
            Resource.stored_filename.startswith(key + ".", autoescape=True),
        )
    )


def resource_href(resource: Resource, external: bool = True) -> str:
    """Where a resource is opened: its link, or its uploaded file's address."""
    if resource.kind is ResourceKind.FILE and resource.stored_filename:
        return url_for(
            "resources.resource_file",
            key=file_key(resource),
            filename=public_filename(resource),
            _external=external,
        )
    return resource.url
