"""The data model: every table the product needs, with the invariants as constraints.

Times are stored as UTC (naive in SQLite, normalised by UTCDateTime) and shown in the
location's time zone. Money is integer cents plus an ISO currency code.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from events.extensions import db

if TYPE_CHECKING:
    # A type checker cannot use a variable (db.Model) as a base class; Base is its typed view.
    from events.extensions import Base as Model
else:
    Model = db.Model


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always returned timezone-aware (UTC).

    SQLite has no time zones; storing naive UTC on both databases keeps comparisons
    and indexes identical everywhere.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# Ids of tables that grow with every person and every email: 64-bit on PostgreSQL (a 32-bit
# sequence can run out). SQLite's INTEGER PRIMARY KEY is already 64-bit, and only INTEGER
# keeps its autoincrement there.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def postgresql_only_index(index: sa.Index) -> sa.Index:
    """An index that exists on PostgreSQL only (a kind SQLite lacks, e.g. a trigram GIN index):
    create_all makes it on PostgreSQL alone, the migrations likewise, and comparing the models
    with a SQLite database skips it (include_object, in migrations/env.py and the tests)."""
    index.info["postgresql_only"] = True
    return index.ddl_if(dialect="postgresql")


def include_object_on(dialect_name: str) -> Callable[[object, str | None, str, bool, object], bool]:
    """Alembic's include_object for comparing the models with a database of this dialect: a
    PostgreSQL-only index is not missing from a SQLite one."""

    def include_object(
        obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
    ) -> bool:
        return dialect_name == "postgresql" or not getattr(obj, "info", {}).get("postgresql_only")

    return include_object


class StrEnum(str, enum.Enum):
    def __str__(self) -> str:
        return self.value


def enum_column(enum_cls: type[enum.Enum], **kwargs: Any) -> sa.Enum:
    # Stored as plain strings with a CHECK constraint: portable and readable in SQL.
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=True,
        length=30,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        **kwargs,
    )


class OfferingKind(StrEnum):
    WORKSHOP = "workshop"
    CLASS = "class"
    COURSE = "course"

    @property
    def per_session(self) -> bool:
        """Drop-in classes are registered for one session at a time; the rest as a whole."""
        return self is OfferingKind.CLASS


class Role(StrEnum):
    ADMIN = "admin"
    INSTRUCTOR = "instructor"


class RegistrationStatus(StrEnum):
    HELD = "held"  # a seat held while payment completes
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # the hold ran out before payment


# Registrations in these states occupy a seat.
SEAT_TAKING_STATUSES = (RegistrationStatus.HELD.value, RegistrationStatus.CONFIRMED.value)


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # a seat is held for them until offer_expires_at
    CLAIMED = "claimed"
    EXPIRED = "expired"  # the offer passed unclaimed
    LEFT = "left"


WAITLIST_ACTIVE_STATUSES = (WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value)


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class AttendanceStatus(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"


class PaymentStatus(StrEnum):
    # Mirrors Stripe's PaymentIntent statuses, plus "failed" for the last attempt declining.
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class PaymentMethod(StrEnum):
    """How a payment was taken: by card through Stripe, or at the desk (never through Stripe)."""

    CARD = "card"
    CASH = "cash"
    CHECK = "check"
    COMP = "comp"  # free by the clinic's choice: a payment of nothing

    @property
    def at_desk(self) -> bool:
        return self is not PaymentMethod.CARD


class PaymentPurpose(StrEnum):
    """What a payment was for: the seat itself, or a booking's balance (what a transfer onto a
    dearer date left owing, paid through the member's payment link)."""

    REGISTRATION = "registration"
    BALANCE = "balance"
    PASS = "pass"  # buying a class pass (payments.pass_id; no registration)


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class RefundKind(StrEnum):
    """Why a refund was made."""

    CANCELLATION = "cancellation"  # the member cancelled (by the offering's policy)
    CLINIC_CANCELLATION = "clinic_cancellation"  # the clinic called off the session or offering
    MANUAL = "manual"  # staff refunded part or all of a payment
    UNPLACED_PAYMENT = "unplaced_payment"  # a payment arrived for a seat no longer held: sent back
    MIRRORED = "mirrored"  # made in Stripe's dashboard; recorded here, never sent by us


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class ResourceKind(StrEnum):
    LINK = "link"
    FILE = "file"


class Clinic(Model):
    """The organisation running the schedule. One row; everything shown about it is data."""

    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    tagline: Mapped[str] = mapped_column(sa.String(300), default="")
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    website_url: Mapped[str] = mapped_column(sa.String(500), default="")
    currency: Mapped[str] = mapped_column(sa.String(3), default="usd")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="America/Chicago")
    # What email subjects name: "neutral" (the date only, safe on a lock screen: "Your booking on
    # Thu Dec 3") or "titled" (the offering's title, which can say something about someone's health).
    email_subjects: Mapped[str] = mapped_column(sa.String(20), default="neutral", server_default="neutral")


class Location(Model):
    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    address_line1: Mapped[str] = mapped_column(sa.String(200))
    address_line2: Mapped[str] = mapped_column(sa.String(200), default="")
    city: Mapped[str] = mapped_column(sa.String(100))
    region: Mapped[str] = mapped_column(sa.String(100))
    postal_code: Mapped[str] = mapped_column(sa.String(20))
    country: Mapped[str] = mapped_column(sa.String(2), default="US")
    timezone: Mapped[str] = mapped_column(sa.String(64))
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    directions: Mapped[str] = mapped_column(sa.Text, default="")
    is_active: Mapped[bool] = mapped_column(default=True)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def street_address(self) -> str:
        return ", ".join(p for p in (self.address_line1, self.address_line2) if p)

    @property
    def full_address(self) -> str:
        return f"{self.street_address}, {self.city}, {self.region} {self.postal_code}"


class User(Model):
    """A staff member: an instructor or an admin. Community members have no account."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    role: Mapped[Role] = mapped_column(enum_column(Role, name="user_role"))
    password_hash: Mapped[str] = mapped_column(sa.String(256), default="")
    bio: Mapped[str] = mapped_column(sa.Text, default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    # Every sign-in stores the version it was made under (get_id); raising it ends them all.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method="scrypt")
        self.end_sessions()

    def end_sessions(self) -> None:
        """Sign this account out everywhere: every cookie made before now stops working."""
        if self.id is None:
            return  # not saved yet, so never signed in
        # Counted in SQL, so two concurrent bumps both land and neither can revive an old cookie.
        self.session_version = User.session_version + 1

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        # Checked on every request by the user_loader (events/staff/accounts.py).
        return f"{self.id}:{self.session_version}"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class Offering(Model):
    """A workshop, course or drop-in class, with one or more dated sessions."""

    __tablename__ = "offerings"
    __table_args__ = (
        sa.CheckConstraint("price_cents >= 0", name="price_not_negative"),
        sa.CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        sa.CheckConstraint("cancellation_cutoff_hours >= 0", name="cutoff_not_negative"),
        sa.CheckConstraint("late_cancel_refund_percent BETWEEN 0 AND 100", name="late_refund_percent_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(120), unique=True)
    kind: Mapped[OfferingKind] = mapped_column(enum_column(OfferingKind, name="offering_kind"))
    topic: Mapped[str] = mapped_column(sa.String(80), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    summary: Mapped[str] = mapped_column(sa.String(400), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    what_to_bring: Mapped[str] = mapped_column(sa.Text, default="")
    location_id: Mapped[int] = mapped_column(sa.ForeignKey("locations.id"), index=True)
    instructor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    price_cents: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(sa.String(3), default="usd")
    # Seats per registration unit: the whole offering (workshop, course) or each session (class).
    capacity: Mapped[int] = mapped_column(default=12)
    cancellation_cutoff_hours: Mapped[int] = mapped_column(default=24)
    # Refund after the cut-off, as a share of what was paid (0 = no late refund).
    late_cancel_refund_percent: Mapped[int] = mapped_column(default=0)
    # Minutes before each session that reminders go out, comma separated ("1440,120").
    reminder_offsets: Mapped[str] = mapped_column(sa.String(100), default="1440,120")
    followup_delay_minutes: Mapped[int] = mapped_column(default=120)
    is_published: Mapped[bool] = mapped_column(default=True)
    is_cancelled: Mapped[bool] = mapped_column(default=False)
    # What one booking costs on a class pass (a long class may cost 2 credits).
    credits_per_booking: Mapped[int] = mapped_column(default=1, server_default="1")
    # Seats of each pool kept for the community price until community_release_hours before the
    # start, when those still unclaimed join general sale (events/pricing.py).
    community_seats: Mapped[int] = mapped_column(default=0, server_default="0")
    community_price_cents: Mapped[int] = mapped_column(default=0, server_default="0")
    community_release_hours: Mapped[int] = mapped_column(default=24, server_default="24")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    location: Mapped[Location] = relationship()
    price_tiers: Mapped[list[PriceTier]] = relationship(
        back_populates="offering", order_by="[PriceTier.position, PriceTier.id]", cascade="all, delete-orphan"
    )
    # The consent document everyone booking must accept (its current version), if any: a row
    # of its own table, so adding consent changed no column of this much-referenced table.
    consent_requirement: Mapped[OfferingConsent | None] = relationship(cascade="all, delete-orphan")
    instructor: Mapped[User | None] = relationship()
    sessions: Mapped[list[Session]] = relationship(back_populates="offering", order_by="Session.starts_at")
    resources: Mapped[list[Resource]] = relationship(back_populates="offering", order_by="Resource.position")
    translations: Mapped[list[OfferingTranslation]] = relationship(
        back_populates="offering", order_by="OfferingTranslation.language", cascade="all, delete-orphan"
    )

    @property
    def is_free(self) -> bool:
        return self.price_cents == 0

    @property
    def consent_document_id(self) -> int | None:
        return self.consent_requirement.consent_document_id if self.consent_requirement else None

    @consent_document_id.setter
    def consent_document_id(self, document_id: int | None) -> None:
        if document_id is None:
            self.consent_requirement = None
        elif self.consent_requirement is None:
            self.consent_requirement = OfferingConsent(consent_document_id=document_id)
        else:
            self.consent_requirement.consent_document_id = document_id

    @property
    def reminder_offset_minutes(self) -> list[int]:
        return sorted({int(p) for p in self.reminder_offsets.split(",") if p.strip().isdigit()}, reverse=True)


class OfferingTranslation(Model):
    """An offering's own text in another language, written by staff (events/offering_text.py
    picks it for a page or an email, or the English with a note when there is none)."""

    __tablename__ = "offering_translations"
    __table_args__ = (
        sa.UniqueConstraint("offering_id", "language", name="uq_offering_translations_language"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    offering_id: Mapped[int] = mapped_column(sa.ForeignKey("offerings.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(sa.String(12))
    title: Mapped[str] = mapped_column(sa.String(200))
    summary: Mapped[str] = mapped_column(sa.String(400), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    what_to_bring: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    offering: Mapped[Offering] = relationship(back_populates="translations")


class Session(Model):
    """One dated meeting of an offering. Stored in UTC; shown in its location's zone."""

    __tablename__ = "sessions"
    __table_args__ = (sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    offering_id: Mapped[int] = mapped_column(sa.ForeignKey("offerings.id"), index=True)
    # A session may meet somewhere else than its offering usually does.
    location_id: Mapped[int] = mapped_column(sa.ForeignKey("locations.id"), index=True)
    instructor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    # Where this session's seats are counted: its own pool (class) or the offering's (workshop).
    seat_pool_id: Mapped[int] = mapped_column(sa.ForeignKey("seat_pools.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[SessionStatus] = mapped_column(
        enum_column(SessionStatus, name="session_status"), default=SessionStatus.SCHEDULED
    )
    cancel_reason: Mapped[str] = mapped_column(sa.String(400), default="")
    # How many times it has moved: the SEQUENCE of its calendar invites (calendars apply only a
    # higher one) and part of its reminders' dedupe keys (a new time gets its own reminders).
    sequence: Mapped[int] = mapped_column(default=0, server_default="0")
    # When it last moved: anyone registered before may cancel for a full refund.
    moved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    offering: Mapped[Offering] = relationship(back_populates="sessions")
    location: Mapped[Location] = relationship()
    instructor: Mapped[User | None] = relationship()
    seat_pool: Mapped[SeatPool] = relationship()

    @property
    def local_start(self) -> datetime:
        return self.starts_at.astimezone(self.location.zone)

    @property
    def local_end(self) -> datetime:
        return self.ends_at.astimezone(self.location.zone)


class SeatPool(Model):
    """What a person registers for, and the row the seat lock is taken on.

    A workshop or course has one pool shared by all its sessions; a drop-in class has one
    pool per session (each session points at its pool). We can never overbook a seat: seats_taken counts
    confirmed registrations plus live holds, is only changed while this row is locked, and
    the CHECK below is the backstop if code ever forgets.
    """

    __tablename__ = "seat_pools"
    __table_args__ = (
        sa.CheckConstraint("seats_taken >= 0", name="seats_taken_not_negative"),
        sa.CheckConstraint("seats_taken <= capacity", name="never_overbooked"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    offering_id: Mapped[int] = mapped_column(sa.ForeignKey("offerings.id"), index=True)
    capacity: Mapped[int] = mapped_column()
    seats_taken: Mapped[int] = mapped_column(default=0)
    # Bumped on every change to seats; lets cached pages be invalidated exactly.
    version: Mapped[int] = mapped_column(default=0)

    offering: Mapped[Offering] = relationship()

    @property
    def seats_left(self) -> int:
        return max(self.capacity - self.seats_taken, 0)


# The rows uq_registrations_active_email covers (migrations/versions/0010_walk_ins.py).
LIVE_WITH_EMAIL = "status IN ('held', 'confirmed') AND email_normalized <> ''"


class RegistrationSource:
    PUBLIC = "public"
    STAFF = "staff"
    WAITLIST = "waitlist"
    WALK_IN = "walk_in"  # added from the roster during class: confirmed and checked in at once


class Registration(Model):
    __tablename__ = "registrations"
    __table_args__ = (
        # One person (email) holds at most one live registration per thing. Walk-ins without an
        # email (email_normalized '') are several people, not one: the index leaves them out.
        sa.Index(
            "uq_registrations_active_email",
            "seat_pool_id",
            "email_normalized",
            unique=True,
            postgresql_where=sa.text(LIVE_WITH_EMAIL),
            sqlite_where=sa.text(LIVE_WITH_EMAIL),
        ),
        sa.CheckConstraint("price_cents >= 0", name="price_not_negative"),
        # The staff search (a part of a name or email, events/staff/registrations.py): trigram
        # indexes serve ILIKE/LIKE '%...%' on PostgreSQL. SQLite has no such index (and a
        # clinic's SQLite is small enough to scan), so they exist there only: see
        # postgresql_only_index and migration 0011.
        postgresql_only_index(
            sa.Index(
                "ix_registrations_name_trgm",
                "name",
                postgresql_using="gin",
                postgresql_ops={"name": "gin_trgm_ops"},
            )
        ),
        postgresql_only_index(
            sa.Index(
                "ix_registrations_email_trgm",
                "email_normalized",
                postgresql_using="gin",
                postgresql_ops={"email_normalized": "gin_trgm_ops"},
            )
        ),
        # A search by status (held, cancelled) read newest first, without walking every row.
        sa.Index("ix_registrations_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seat_pool_id: Mapped[int] = mapped_column(sa.ForeignKey("seat_pools.id"), index=True)
    offering_id: Mapped[int] = mapped_column(sa.ForeignKey("offerings.id"), index=True)
    # Set for a drop-in class; NULL when the registration covers every session of the offering.
    session_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sessions.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    # Empty for a walk-in who gave none: nothing is ever sent to it (queue_email skips it).
    email: Mapped[str] = mapped_column(sa.String(254))
    email_normalized: Mapped[str] = mapped_column(sa.String(254), index=True)
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    status: Mapped[RegistrationStatus] = mapped_column(
        enum_column(RegistrationStatus, name="registration_status")
    )
    price_cents: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(sa.String(3), default="usd")
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Random, unguessable; embedded in signed manage links.
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    source: Mapped[str] = mapped_column(sa.String(20), default="public")  # a RegistrationSource
    # Which browser made it: a keyed hash of the secret in that browser's session cookie
    # (events/registration/links.py browser_key). Registering again from that browser resumes
    # this registration; from any other, its link is emailed instead. Empty: made by staff.
    browser_key: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str] = mapped_column(sa.String(400), default="")
    # The language it was made in (events/languages.py): every email to this person uses it.
    language: Mapped[str] = mapped_column(sa.String(12), default="en", server_default="en")
    # When its personal data was replaced by placeholders (retention, or the person's request):
    # the row stays, so counts, attendance and money still add up (events/privacy/anonymise.py).
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How it was priced (events/pricing.py computes price_cents once, from these): the sliding-
    # scale tier chosen, the promo code used and what it took off, a community seat.
    price_tier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("price_tiers.id"))
    promo_code_id: Mapped[int | None] = mapped_column(sa.ForeignKey("promo_codes.id"), index=True)
    discount_cents: Mapped[int] = mapped_column(default=0, server_default="0")
    community_seat: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Booked with a class pass: which one and how many credits it took (the ledger has the rows).
    pass_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("passes.id"), index=True)
    credits_spent: Mapped[int] = mapped_column(default=0, server_default="0")

    seat_pool: Mapped[SeatPool] = relationship()
    offering: Mapped[Offering] = relationship()
    session: Mapped[Session | None] = relationship()
    payments: Mapped[list[Payment]] = relationship(back_populates="registration")
    price_tier: Mapped[PriceTier | None] = relationship()
    promo_code: Mapped[PromoCode | None] = relationship()
    class_pass: Mapped[Pass | None] = relationship(foreign_keys=[pass_id])


class WaitlistEntry(Model):
    """A person waiting for a seat in a full pool. Position is the order of joining."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        sa.Index(
            "uq_waitlist_active_email",
            "seat_pool_id",
            "email_normalized",
            unique=True,
            postgresql_where=sa.text("status IN ('waiting', 'offered')"),
            sqlite_where=sa.text("status IN ('waiting', 'offered')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seat_pool_id: Mapped[int] = mapped_column(sa.ForeignKey("seat_pools.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    email: Mapped[str] = mapped_column(sa.String(254))
    # Indexed: "find my registrations", an export and an erasure look a person up by address.
    email_normalized: Mapped[str] = mapped_column(sa.String(254), index=True)
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    status: Mapped[WaitlistStatus] = mapped_column(
        enum_column(WaitlistStatus, name="waitlist_status"), default=WaitlistStatus.WAITING
    )
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The registration created when the offer was claimed.
    registration_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("registrations.id"))
    # The language they joined in: the offer and every other email to them use it.
    language: Mapped[str] = mapped_column(sa.String(12), default="en", server_default="en")
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # as on Registration

    seat_pool: Mapped[SeatPool] = relationship()
    registration: Mapped[Registration | None] = relationship()


class Attendance(Model):
    """Check-in for one registration at one session (a course registration spans several)."""

    __tablename__ = "attendance"
    __table_args__ = (
        sa.UniqueConstraint("registration_id", "session_id", name="uq_attendance_registration_session"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registration_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("registrations.id"))
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("sessions.id"), index=True)
    status: Mapped[AttendanceStatus] = mapped_column(enum_column(AttendanceStatus, name="attendance_status"))
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    marked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class ConsentMethod(StrEnum):
    """Where a consent was given."""

    ONLINE = "online"  # ticked on the booking form or the waitlist claim
    IN_PERSON = "in_person"  # read and ticked on a staff member's phone at check-in


class ConsentDocument(Model):
    """A document people accept before booking ("Exercise class participation and release").
    Its text lives in its versions; the current one is the highest number."""

    __tablename__ = "consent_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    versions: Mapped[list[ConsentVersion]] = relationship(
        back_populates="document", order_by="ConsentVersion.number.desc()"
    )


class OfferingConsent(Model):
    """An offering requires this consent document: everyone booking accepts its current version."""

    __tablename__ = "offering_consents"

    offering_id: Mapped[int] = mapped_column(sa.ForeignKey("offerings.id"), primary_key=True)
    consent_document_id: Mapped[int] = mapped_column(sa.ForeignKey("consent_documents.id"), index=True)

    document: Mapped[ConsentDocument] = relationship()


class ConsentVersion(Model):
    """One published text of a consent document. Never changed once published (an update is
    refused, see events/consent/services.py): an acceptance names exactly the words accepted."""

    __tablename__ = "consent_versions"
    __table_args__ = (
        sa.UniqueConstraint("document_id", "number", name="uq_consent_versions_document_number"),
        sa.CheckConstraint("number >= 1", name="version_number_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(sa.ForeignKey("consent_documents.id"), index=True)
    number: Mapped[int] = mapped_column()
    body: Mapped[str] = mapped_column(sa.Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    document: Mapped[ConsentDocument] = relationship(back_populates="versions")
    published_by: Mapped[User | None] = relationship()
    translations: Mapped[list[ConsentTranslation]] = relationship(
        back_populates="version", order_by="ConsentTranslation.language"
    )


class ConsentTranslation(Model):
    """A consent version's title and text in another language, written by staff. Like the version
    it never changes once written (an update or delete is refused, see events/consent/services.py):
    an acceptance records its version and the language shown, which name exactly these words. One
    per version and language; a correction is a new version."""

    __tablename__ = "consent_translations"
    __table_args__ = (
        sa.UniqueConstraint("version_id", "language", name="uq_consent_translations_version_language"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("consent_versions.id"), index=True)
    language: Mapped[str] = mapped_column(sa.String(12))
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    version: Mapped[ConsentVersion] = relationship(back_populates="translations")
    published_by: Mapped[User | None] = relationship()


class ConsentAcceptance(Model):
    """A registration's acceptance of one consent version: when, and how. Its own table keyed
    by registration, so a person's data can be exported and anonymised with their bookings."""

    __tablename__ = "consent_acceptances"
    __table_args__ = (
        sa.UniqueConstraint(
            "registration_id", "consent_version_id", name="uq_consent_acceptances_registration_version"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registration_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("registrations.id"))
    consent_version_id: Mapped[int] = mapped_column(sa.ForeignKey("consent_versions.id"), index=True)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    method: Mapped[ConsentMethod] = mapped_column(enum_column(ConsentMethod, name="consent_method"))
    # In person: the staff member whose phone the person read it on.
    handed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # The language of the text they were shown: "en" (the version's own text) or the language
    # of its ConsentTranslation, which never changes once written.
    language: Mapped[str] = mapped_column(sa.String(12), default="en", server_default="en")

    registration: Mapped[Registration] = relationship()
    version: Mapped[ConsentVersion] = relationship()
    handed_by: Mapped[User | None] = relationship()


# A payment whose outcome we have not heard yet (Stripe may still charge, or has charged).
OPEN_PAYMENT_STATUSES = (
    PaymentStatus.REQUIRES_PAYMENT_METHOD,
    PaymentStatus.REQUIRES_ACTION,
    PaymentStatus.PROCESSING,
)


class Payment(Model):
    """Our mirror of one Stripe PaymentIntent (Stripe is the record; this follows it), or a
    payment taken at the desk (cash, check or comp), which has no PaymentIntent and never
    reaches Stripe."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
        # A card payment mirrors a PaymentIntent; a desk payment has none.
        sa.CheckConstraint(
            "(method = 'card') = (stripe_payment_intent_id IS NOT NULL)", name="stripe_id_only_for_card"
        ),
        sa.CheckConstraint(
            "amount_refunded_cents >= 0 AND amount_refunded_cents <= amount_cents",
            name="refund_within_amount",
        ),
        # A payment is for a registration (the seat or its balance) or for a class pass.
        sa.CheckConstraint("(registration_id IS NULL) <> (pass_id IS NULL)", name="for_registration_or_pass"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL for a pass purchase (purpose "pass"), which names its pass instead.
    registration_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("registrations.id"), index=True)
    pass_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("passes.id"), index=True)
    # NULL for a desk payment (several NULLs are allowed by the unique constraint).
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    method: Mapped[PaymentMethod] = mapped_column(
        enum_column(PaymentMethod, name="payment_method"), default=PaymentMethod.CARD, server_default="card"
    )
    purpose: Mapped[PaymentPurpose] = mapped_column(
        enum_column(PaymentPurpose, name="payment_purpose"),
        default=PaymentPurpose.REGISTRATION,
        server_default="registration",
    )
    # A desk payment: who took it, and their note ("check #1043").
    taken_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")
    amount_cents: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[PaymentStatus] = mapped_column(enum_column(PaymentStatus, name="payment_status"))
    amount_refunded_cents: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(sa.String(500), default="")
    # What the receipt names, from Stripe's charge: the card (brand as Stripe writes it, "visa")
    # and when it was charged. Empty for a payment Stripe gave no card details for.
    card_brand: Mapped[str] = mapped_column(sa.String(20), default="", server_default="")
    card_last4: Mapped[str] = mapped_column(sa.String(4), default="", server_default="")
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    registration: Mapped[Registration | None] = relationship(back_populates="payments")
    class_pass: Mapped[Pass | None] = relationship(back_populates="payments", foreign_keys=[pass_id])
    refunds: Mapped[list[Refund]] = relationship(back_populates="payment")
    taken_by: Mapped[User | None] = relationship()


class Refund(Model):
    """A refund we decided to make. Written in the transaction that decides it (pending) and
    sent to Stripe by the worker after commit; pending + succeeded never exceed the payment."""

    __tablename__ = "refunds"
    __table_args__ = (
        sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
        # The worker's claim: pending refunds whose next attempt is due.
        sa.Index("ix_refunds_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    stripe_refund_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    # Derived from our ids; the same refund asked twice is one refund at Stripe.
    idempotency_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    amount_cents: Mapped[int] = mapped_column()
    status: Mapped[RefundStatus] = mapped_column(enum_column(RefundStatus, name="refund_status"))
    kind: Mapped[RefundKind] = mapped_column(enum_column(RefundKind, name="refund_kind"))
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The worker's bookkeeping: tries so far, when the next may start (also a claim's lease),
    # and Stripe's last answer when it was not a success.
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(sa.String(500), default="")
    # Staff retries of a failed refund; each one is sent to Stripe under a new idempotency key.
    retries: Mapped[int] = mapped_column(default=0)

    payment: Mapped[Payment] = relationship(back_populates="refunds")

    @property
    def stripe_idempotency_key(self) -> str:
        return self.idempotency_key if not self.retries else f"{self.idempotency_key}-retry-{self.retries}"


class Resource(Model):
    """A handout, video or link shared with attendees after the offering's sessions."""

    __tablename__ = "resources"

    id: Mapped[int] = mapped_column(primary_key=True)
    offering_id: Mapped[int] = mapped_column(sa.ForeignKey("offerings.id"), index=True)
    kind: Mapped[ResourceKind] = mapped_column(enum_column(ResourceKind, name="resource_kind"))
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    url: Mapped[str] = mapped_column(sa.String(1000), default="")
    # For uploaded files: a random stored name under the upload folder, never the user's name.
    stored_filename: Mapped[str] = mapped_column(sa.String(200), default="")
    original_filename: Mapped[str] = mapped_column(sa.String(255), default="")
    content_type: Mapped[str] = mapped_column(sa.String(100), default="")
    position: Mapped[int] = mapped_column(default=0)

    offering: Mapped[Offering] = relationship(back_populates="resources")


class OutboxEmail(Model):
    """One email to send, written in the same transaction as the change that causes it.

    dedupe_key names the email ("reminder-1440:r12:s40"): being unique, the same email for
    the same registration, kind and session can exist only once, so it is sent at most once.
    """

    __tablename__ = "outbox_emails"
    __table_args__ = (sa.Index("ix_outbox_emails_status_send_after", "status", "send_after"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    registration_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("registrations.id"), index=True)
    waitlist_entry_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("waitlist_entries.id"), index=True
    )
    session_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sessions.id"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    to_email: Mapped[str] = mapped_column(sa.String(254))
    status: Mapped[EmailStatus] = mapped_column(
        enum_column(EmailStatus, name="email_status"), default=EmailStatus.PENDING
    )
    send_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Until when the claim holds: renewed while its worker sends, so a dead worker's rows
    # return soon (events/notifications/delivery.py). NULL on claims made before leases.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(sa.String(500), default="")
    # Extra, non-personal context for the template (e.g. a refund amount), as JSON.
    context: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # The language of an email to an address alone ("Find my registrations": the request's);
    # an email about a registration or waitlist place is written in that person's language.
    language: Mapped[str] = mapped_column(sa.String(12), default="en", server_default="en")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffMessage(Model):
    """A message staff sent to the people of a session (or of a whole offering): each email
    renders from this row, and each recipient's outbox row names it (one per person)."""

    __tablename__ = "staff_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    offering_id: Mapped[int] = mapped_column(sa.ForeignKey("offerings.id"), index=True)
    # The session it is about; NULL: every upcoming session of the offering.
    session_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sessions.id"), index=True)
    subject: Mapped[str] = mapped_column(sa.String(150))
    body: Mapped[str] = mapped_column(sa.Text)
    include_waitlist: Mapped[bool] = mapped_column(default=False)
    recipients: Mapped[int] = mapped_column(default=0)  # emails queued
    # From the confirmation form: the same form sent twice (a double tap) is one message.
    request_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User] = relationship()
    offering: Mapped[Offering] = relationship()
    session: Mapped[Session | None] = relationship()


class WebhookEvent(Model):
    """A Stripe event id we have accepted; the primary key makes redelivery a no-op."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    stripe_event_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Model):
    """Who did what, and when: cancellations, refunds, capacity changes, check-ins."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        # What the trail is read by: its target, the offering filter, a registration's history
        # (each newest first). Looking inside the JSON details would read the whole table.
        sa.Index("ix_audit_entries_target", "target_type", "target_id"),
        sa.Index("ix_audit_entries_offering_id_id", "offering_id", "id"),
        sa.Index("ix_audit_entries_registration_id_id", "registration_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(60))
    target_type: Mapped[str] = mapped_column(sa.String(40))
    target_id: Mapped[int] = mapped_column(BigId)  # any table's id
    # Copied from the details by audit.record: the offering it concerns, and the registration
    # it concerns besides its target (the one a transfer made, the one an email was for).
    offering_id: Mapped[int | None] = mapped_column()
    registration_id: Mapped[int | None] = mapped_column(BigId)
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    actor: Mapped[User | None] = relationship()


class PrivacyAction(StrEnum):
    EXPORT = "export"  # download everything held about an address
    ERASE = "erase"  # cancel what is upcoming, then anonymise everything about an address


class PrivacyRequest(Model):
    """A link emailed to an address to download or erase its data (events/privacy/requests.py).

    The link signs `nonce`; it works until expires_at, and once (used_at). The address is kept
    only while the link can still be used: emptied when it is used or has expired."""

    __tablename__ = "privacy_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    action: Mapped[PrivacyAction] = mapped_column(enum_column(PrivacyAction, name="privacy_action"))
    email: Mapped[str] = mapped_column(sa.String(254))
    nonce: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The email carrying the link, and (an erasure) the confirmation: their addresses are emptied
    # once the link is used or expired, and once the confirmation has gone.
    link_email_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("outbox_emails.id"))
    confirmation_email_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("outbox_emails.id"))


class CatalogState(Model):
    """One row: a counter bumped in the same transaction as any change to what the public
    catalog shows (offerings, sessions, locations, the clinic, staff names, resources).
    Seat changes are tracked by seat_pools.version instead, so registering never contends here.
    Cached pages are keyed on both (events/catalog/cache.py)."""

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)


# Passes and pricing (issue 14). No member accounts: a pass belongs to a verified email address
# and is reached through a signed link, like a registration.

pass_product_offerings = sa.Table(
    "pass_product_offerings",
    Model.metadata,
    sa.Column("pass_product_id", sa.ForeignKey("pass_products.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("offering_id", sa.ForeignKey("offerings.id", ondelete="CASCADE"), primary_key=True),
)
pass_product_locations = sa.Table(
    "pass_product_locations",
    Model.metadata,
    sa.Column("pass_product_id", sa.ForeignKey("pass_products.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("location_id", sa.ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True),
)
promo_code_offerings = sa.Table(
    "promo_code_offerings",
    Model.metadata,
    sa.Column("promo_code_id", sa.ForeignKey("promo_codes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("offering_id", sa.ForeignKey("offerings.id", ondelete="CASCADE"), primary_key=True),
)
promo_code_pass_products = sa.Table(
    "promo_code_pass_products",
    Model.metadata,
    sa.Column("promo_code_id", sa.ForeignKey("promo_codes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("pass_product_id", sa.ForeignKey("pass_products.id", ondelete="CASCADE"), primary_key=True),
)


class PassValidityStart(StrEnum):
    PURCHASE = "purchase"  # the validity days count from the purchase
    FIRST_USE = "first_use"  # ... from the first booking made with it


class PassProduct(Model):
    """A kind of pass on sale: "10 classes, valid 90 days, for the drop-in classes".

    Scope: empty lists mean everything; offering_kinds is a comma-separated list of
    OfferingKind values ("class,course"), offerings and locations are rows of their own."""

    __tablename__ = "pass_products"
    __table_args__ = (
        sa.CheckConstraint("credits > 0", name="credits_positive"),
        sa.CheckConstraint("price_cents >= 0", name="price_not_negative"),
        sa.CheckConstraint("validity_days > 0", name="validity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str] = mapped_column(sa.String(400), default="")
    credits: Mapped[int] = mapped_column()
    price_cents: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(sa.String(3), default="usd")
    validity_days: Mapped[int] = mapped_column(default=90)
    validity_starts: Mapped[PassValidityStart] = mapped_column(
        enum_column(PassValidityStart, name="pass_validity_start"), default=PassValidityStart.PURCHASE
    )
    offering_kinds: Mapped[str] = mapped_column(sa.String(100), default="")
    is_on_sale: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    offerings: Mapped[list[Offering]] = relationship(secondary=pass_product_offerings)
    locations: Mapped[list[Location]] = relationship(secondary=pass_product_locations)


class PassStatus(StrEnum):
    HELD = "held"  # bought by card, waiting for the payment (hold_expires_at)
    ACTIVE = "active"
    VOID = "void"  # the card payment never came (the hold lapsed) or staff voided it
    REFUNDED = "refunded"  # its unused credits were refunded: nothing left to spend


class Pass(Model):
    """One person's class pass. Its balance is the sum of its ledger rows (PassLedgerEntry),
    never a counter; the row is locked (SELECT ... FOR UPDATE) by every change to the ledger,
    after the seat pools and before payments, and a change that would take it below zero is
    refused under that lock."""

    __tablename__ = "passes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("pass_products.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    email: Mapped[str] = mapped_column(sa.String(254))
    email_normalized: Mapped[str] = mapped_column(sa.String(254), index=True)
    status: Mapped[PassStatus] = mapped_column(enum_column(PassStatus, name="pass_status"))
    # What it cost and gave when bought (the product may change later).
    credits: Mapped[int] = mapped_column()
    price_cents: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(sa.String(3), default="usd")
    validity_days: Mapped[int] = mapped_column()
    # Random, unguessable; embedded in the signed link to the pass page.
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    source: Mapped[str] = mapped_column(sa.String(20), default="public")  # a RegistrationSource
    language: Mapped[str] = mapped_column(sa.String(12), default="en")
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # NULL until it starts counting (validity from first use: the first booking sets it).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # A medical pause: while frozen_since is set nothing can be booked with it; unfreezing
    # moves expires_at on by the days paused.
    frozen_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promo_code_id: Mapped[int | None] = mapped_column(sa.ForeignKey("promo_codes.id"))
    discount_cents: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    product: Mapped[PassProduct] = relationship()
    promo_code: Mapped[PromoCode | None] = relationship()
    ledger: Mapped[list[PassLedgerEntry]] = relationship(
        back_populates="class_pass", order_by="PassLedgerEntry.id"
    )
    payments: Mapped[list[Payment]] = relationship(
        back_populates="class_pass", foreign_keys="Payment.pass_id"
    )


class LedgerKind(StrEnum):
    PURCHASE = "purchase"  # + the credits bought
    SPEND = "spend"  # - a booking's credits
    RETURN = "return"  # + a booking's credits given back (on-time or clinic cancellation, move)
    FORFEIT = "forfeit"  # 0: a late cancellation or no-show keeps the credits spent (a record)
    ADJUSTMENT = "adjustment"  # +/- by staff, with a reason
    EXPIRY = "expiry"  # - what was left when it expired
    REFUND = "refund"  # - the unused credits refunded
    # 0: the expiry moved on (new_expires_at) so credits the clinic gave back stay usable
    EXTENSION = "extension"


class PassLedgerEntry(Model):
    """One change to a pass's credits. The balance is sum(credits)."""

    __tablename__ = "pass_ledger"
    __table_args__ = (
        # A booking spends once and is given back at most once.
        sa.Index(
            "uq_pass_ledger_booking_kind",
            "pass_id",
            "registration_id",
            "kind",
            unique=True,
            postgresql_where=sa.text("registration_id IS NOT NULL"),
            sqlite_where=sa.text("registration_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pass_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("passes.id"), index=True)
    kind: Mapped[LedgerKind] = mapped_column(enum_column(LedgerKind, name="ledger_kind"))
    credits: Mapped[int] = mapped_column()
    registration_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("registrations.id"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    # An EXTENSION row: the expiry the pass was moved to (the member's page says the date).
    new_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    class_pass: Mapped[Pass] = relationship(back_populates="ledger")
    registration: Mapped[Registration | None] = relationship()
    actor: Mapped[User | None] = relationship()


class PriceTier(Model):
    """A sliding-scale price the member chooses without proof ("Community $5")."""

    __tablename__ = "price_tiers"
    __table_args__ = (sa.CheckConstraint("price_cents >= 0", name="price_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    offering_id: Mapped[int] = mapped_column(sa.ForeignKey("offerings.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    price_cents: Mapped[int] = mapped_column()
    position: Mapped[int] = mapped_column(default=0)

    offering: Mapped[Offering] = relationship(back_populates="price_tiers")
    translations: Mapped[list[PriceTierTranslation]] = relationship(
        back_populates="tier", order_by="PriceTierTranslation.language", cascade="all, delete-orphan"
    )


class PriceTierTranslation(Model):
    """A tier's name (and description) in another language, written by staff beside the
    offering's own translation (events/offering_text.py picks it, or the English, noted)."""

    __tablename__ = "price_tier_translations"
    __table_args__ = (
        sa.UniqueConstraint("price_tier_id", "language", name="uq_price_tier_translations_language"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    price_tier_id: Mapped[int] = mapped_column(
        sa.ForeignKey("price_tiers.id", ondelete="CASCADE"), index=True
    )
    language: Mapped[str] = mapped_column(sa.String(12))
    name: Mapped[str] = mapped_column(sa.String(80))
    description: Mapped[str] = mapped_column(sa.String(200), default="")

    tier: Mapped[PriceTier] = relationship(back_populates="translations")


class PromoKind(StrEnum):
    PERCENT_OFF = "percent_off"  # value: 1..100
    AMOUNT_OFF = "amount_off"  # value: cents
    FIXED_PRICE = "fixed_price"  # value: cents


class PromoCode(Model):
    """A code for a partner or a campaign. Its uses are counted under a lock on this row
    (PromoRedemption rows not released), never by a counter."""

    __tablename__ = "promo_codes"
    __table_args__ = (sa.CheckConstraint("value >= 0", name="value_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40))
    # Upper case, spaces removed: what a member types is matched case-insensitively.
    code_normalized: Mapped[str] = mapped_column(sa.String(40), unique=True)
    kind: Mapped[PromoKind] = mapped_column(enum_column(PromoKind, name="promo_kind"))
    value: Mapped[int] = mapped_column()
    # Scope: empty means everything; offering_kinds as on PassProduct.
    offering_kinds: Mapped[str] = mapped_column(sa.String(100), default="")
    applies_to_passes: Mapped[bool] = mapped_column(default=False)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    max_uses: Mapped[int | None] = mapped_column()
    max_uses_per_email: Mapped[int | None] = mapped_column()
    partner_tag: Mapped[str] = mapped_column(sa.String(60), default="", index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    offerings: Mapped[list[Offering]] = relationship(secondary=promo_code_offerings)
    pass_products: Mapped[list[PassProduct]] = relationship(secondary=promo_code_pass_products)


class PromoRedemption(Model):
    """One use of a code, by a registration or a pass purchase. released_at is set when the use
    is given back (a hold that lapsed or a booking cancelled): it then no longer counts."""

    __tablename__ = "promo_redemptions"
    __table_args__ = (
        sa.CheckConstraint("(registration_id IS NULL) <> (pass_id IS NULL)", name="for_registration_or_pass"),
        sa.Index("ix_promo_redemptions_code_email", "promo_code_id", "email_normalized"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    promo_code_id: Mapped[int] = mapped_column(sa.ForeignKey("promo_codes.id"), index=True)
    registration_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("registrations.id"), unique=True)
    pass_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("passes.id"), unique=True)
    email_normalized: Mapped[str] = mapped_column(sa.String(254))
    discount_cents: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    promo_code: Mapped[PromoCode] = relationship()


# Report summaries (issue 16): what the reports read at a clinic's ten-year size, rebuilt from
# the live rows by the worker (events/reports/summaries.py) and proven equal to them by tests.
# No foreign keys: a rebuild replaces every row, and nothing else refers to them.


class ReportSessionFacts(Model):
    """One session's facts as SessionFacts holds them (events/reports/figures.py), as of the
    last refresh. The session's own columns (its day, title, capacity, status) are read live."""

    __tablename__ = "report_session_facts"

    session_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    first_of_pool: Mapped[bool] = mapped_column()
    booked_at_start: Mapped[int] = mapped_column()
    confirmed: Mapped[int] = mapped_column()
    attendance_taken: Mapped[bool] = mapped_column()
    present: Mapped[int] = mapped_column()
    late_cancellations: Mapped[int] = mapped_column()
    waitlist_joined: Mapped[int] = mapped_column()
    offers_made: Mapped[int] = mapped_column()
    offers_claimed: Mapped[int] = mapped_column()
    offers_expired: Mapped[int] = mapped_column()
    filled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    card_cents: Mapped[int] = mapped_column(sa.BigInteger)
    desk_cents: Mapped[int] = mapped_column(sa.BigInteger)
    refund_cents: Mapped[int] = mapped_column(sa.BigInteger)


class ReportVisit(Model):
    """One visit (a confirmed registration at a session held, present where attendance was
    taken), up to the last refresh, with its person's first and second visits and last class
    visit of all time written beside it, so a range's people figures read only its own rows."""

    __tablename__ = "report_visits"

    registration_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    session_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    person: Mapped[str] = mapped_column(sa.String(300))  # an address, or "registration:<id>"
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    location_id: Mapped[int] = mapped_column()
    teacher_id: Mapped[int | None] = mapped_column()
    kind: Mapped[str] = mapped_column(sa.String(20))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    second_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_class_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The person's visit before this one, and their last workshop visit before it (visits in
    # order of time, then session): where every location keeps one time zone, a range's
    # people are counted from these without grouping (events/reports/facts.py).
    prev_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prev_workshop_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReportRollup(Model):
    """The session figures' parts (figures.SessionTotals) summed over the sessions of one day,
    week, month or year (the grain) that share a location, offering and instructor, for the
    sessions started by the last refresh (events/reports/rollups.py). A range reads its whole
    years, then months and days at its edges: a few rows per offering, not one per session."""

    __tablename__ = "report_rollups"
    __table_args__ = (sa.Index("ix_report_rollups_grain_period", "grain", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    grain: Mapped[str] = mapped_column(sa.String(5))  # day | week | month | year
    period: Mapped[date] = mapped_column(sa.Date)  # its first day (local): a Monday, a 1st...
    week: Mapped[date | None] = mapped_column(sa.Date)  # the Monday of its week (not for months)
    month: Mapped[date | None] = mapped_column(sa.Date)  # the 1st of its month (not for weeks)
    location_id: Mapped[int] = mapped_column()
    offering_id: Mapped[int] = mapped_column()
    teacher_id: Mapped[int | None] = mapped_column()
    sessions: Mapped[int] = mapped_column(sa.BigInteger)
    held: Mapped[int] = mapped_column(sa.BigInteger)
    cancelled: Mapped[int] = mapped_column(sa.BigInteger)
    seats_held: Mapped[int] = mapped_column(sa.BigInteger)
    visits: Mapped[int] = mapped_column(sa.BigInteger)
    booked_held: Mapped[int] = mapped_column(sa.BigInteger)
    taken_present: Mapped[int] = mapped_column(sa.BigInteger)
    taken_confirmed: Mapped[int] = mapped_column(sa.BigInteger)
    no_shows: Mapped[int] = mapped_column(sa.BigInteger)
    late_cancellations: Mapped[int] = mapped_column(sa.BigInteger)
    waitlist_joined: Mapped[int] = mapped_column(sa.BigInteger)
    offers_made: Mapped[int] = mapped_column(sa.BigInteger)
    offers_claimed: Mapped[int] = mapped_column(sa.BigInteger)
    offers_expired: Mapped[int] = mapped_column(sa.BigInteger)
    sessions_filled: Mapped[int] = mapped_column(sa.BigInteger)
    card_cents: Mapped[int] = mapped_column(sa.BigInteger)
    desk_cents: Mapped[int] = mapped_column(sa.BigInteger)
    refund_cents: Mapped[int] = mapped_column(sa.BigInteger)


class ReportFillLead(Model):
    """For each session started by the last refresh that filled: how many days before its start
    (a median is not a sum, so the report reads these one by one, only the sessions that filled)."""

    __tablename__ = "report_fill_leads"

    session_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    local_day: Mapped[date] = mapped_column(sa.Date, index=True)
    location_id: Mapped[int] = mapped_column()
    offering_id: Mapped[int] = mapped_column()
    teacher_id: Mapped[int | None] = mapped_column()
    lead_days: Mapped[float] = mapped_column(sa.Float)


class ReportPeopleDay(Model):
    """Where every location keeps one time zone: for each local day, of the visits each people
    figure counts (events/reports/rollups.py), how many had their previous visit (none counts)
    before the day's start (_before) and how many were themselves before it (_ended). A range's
    people figures are one row's differences less the visits after the range whose previous one
    was before it: a lookup and the visits after the range, not a count of every visit in it."""

    __tablename__ = "report_people_days"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    zone: Mapped[str] = mapped_column(sa.String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the day's start, UTC
    people_before: Mapped[int] = mapped_column(sa.BigInteger)
    people_ended: Mapped[int] = mapped_column(sa.BigInteger)
    first_timers_before: Mapped[int] = mapped_column(sa.BigInteger)
    first_timers_ended: Mapped[int] = mapped_column(sa.BigInteger)
    came_back_before: Mapped[int] = mapped_column(sa.BigInteger)
    came_back_ended: Mapped[int] = mapped_column(sa.BigInteger)
    workshop_goers_before: Mapped[int] = mapped_column(sa.BigInteger)
    workshop_goers_ended: Mapped[int] = mapped_column(sa.BigInteger)
    went_on_before: Mapped[int] = mapped_column(sa.BigInteger)
    went_on_ended: Mapped[int] = mapped_column(sa.BigInteger)


class ReportSummaryState(Model):
    """One row: when the summaries were last made equal to the live rows (as_of), and the
    fingerprint of those rows then, so a refresh with nothing changed only moves as_of."""

    __tablename__ = "report_summary_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    fingerprint: Mapped[str] = mapped_column(sa.String(500))
    rebuilt_at: Mapped[datetime] = mapped_column(UTCDateTime)
