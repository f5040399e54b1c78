"""Booking a class with a pass, and what happens to its credits when the booking ends.

No accounts: a pass belongs to an email address, so booking with it needs proof that the
person holds that address. Either the signed link to the pass itself (the pass page), or a
signed, short-lived link emailed to the address from the offering's registration form
("I have a class pass"). Asking for that link never says whether the address holds a pass:
the page is the same for every address, and the email says what it found.

Credits are spent in the transaction that takes the seat, under the seat's lock and then the
passes' (lock order: seat pool -> passes in id order), so two bookings on a pass's last credit
cannot both spend it, and a booking that can't be paid for takes no seat. The credits come
back (ledger.give_back) when the booking is cancelled in time, by the clinic, or after the
clinic moved it; they stay spent (ledger.forfeit, a row of zero) after a late cancellation or
a no-show. A pass booking has no Payment, so it never makes Refund rows.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, url_for
from flask_babel import gettext, ngettext
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from events import audit, pricing
from events.clinic import current_clinic
from events.consent import services as consent
from events.extensions import db
from events.filters import format_long_date
from events.languages import languages
from events.models import (
    LedgerKind,
    Offering,
    OutboxEmail,
    Pass,
    PassLedgerEntry,
    PassProduct,
    PassStatus,
    Registration,
    RegistrationStatus,
    SeatPool,
    Session,
    SessionStatus,
    WaitlistStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind, dedupe_key, queue_email
from events.passes import ledger
from events.registration import seats
from events.registration.services import (
    ONLY_COMMUNITY_SEATS_LEFT,
    Person,
    RegistrationError,
    address_digest,
    find_live_registration,
    holds_offer,
    leave_waitlist_on_registering,
    new_token,
    normalize_email,
    registration_target,
    waitlist_place,
)

BOOKING_LINK_SALT = "pass-booking"
PASS_SOURCE = "pass"  # Registration.source of a booking paid with a pass


# --- The emailed link: it names what to book and who asked, signed and short-lived ---


@dataclass(frozen=True)
class BookingRequest:
    offering_id: int
    session_id: int | None
    name: str
    email: str
    phone: str
    language: str

    @property
    def person(self) -> Person:
        return Person(self.name, self.email, self.phone, self.language)


class LinkInvalid(Exception):
    pass


class LinkExpired(LinkInvalid):
    pass


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=BOOKING_LINK_SALT)


def link_minutes() -> int:
    return int(current_app.config["PASS_BOOKING_LINK_MINUTES"])


def sign_request(request: BookingRequest) -> str:
    return _serializer().dumps(
        {
            "o": request.offering_id,
            "s": request.session_id,
            "n": request.name,
            "e": request.email,
            "p": request.phone,
            "l": request.language,
        }
    )


def _clean_text(value: object, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise LinkInvalid("bad field")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise LinkInvalid("control character")
    return value


def read_request(signed: str) -> BookingRequest:
    """The request a link names; LinkExpired after link_minutes(), LinkInvalid if tampered."""
    if len(signed) > 2000:
        raise LinkInvalid("too long")
    try:
        data = _serializer().loads(signed, max_age=link_minutes() * 60)
    except SignatureExpired as error:
        raise LinkExpired("expired") from error
    except BadSignature as error:
        raise LinkInvalid("not valid") from error
    if not isinstance(data, dict):
        raise LinkInvalid("bad payload")
    offering_id, session_id = data.get("o"), data.get("s")
    if not isinstance(offering_id, int) or not 0 < offering_id < 2**31:
        raise LinkInvalid("bad offering")
    if session_id is not None and (not isinstance(session_id, int) or not 0 < session_id < 2**31):
        raise LinkInvalid("bad session")
    language = data.get("l")
    return BookingRequest(
        offering_id,
        session_id,
        _clean_text(data.get("n"), 120),
        _clean_text(data.get("e"), 254),
        _clean_text(data.get("p") or "", 40),
        language if isinstance(language, str) and language in languages() else "en",
    )


def booking_link(request: BookingRequest) -> str:
    return url_for("pass_booking.confirm", signed=sign_request(request), _external=True)


def _window(now: datetime) -> int:
    return int(now.timestamp() // (60 * current_app.config["FIND_REGISTRATIONS_EMAIL_MINUTES"]))


def request_booking_link(
    offering: Offering, session_id: int | None, person: Person, now: datetime | None = None
) -> bool:
    """Email `person`'s address the link to confirm booking this with a pass (or, when the
    email is written and it holds no pass that can pay, a note saying so). The same for every
    address: nothing here reads passes. Raises RegistrationError if the date can't be booked
    at all (closed, started, not one of the listed dates). At most one such email per address
    and date per FIND_REGISTRATIONS_EMAIL_MINUTES; returns whether one was queued."""
    now = now or utcnow()
    _pool, session = registration_target(offering, session_id, now)
    queued = queue_email(
        EmailKind.PASS_BOOKING_LINK,
        to_email=person.email.strip(),
        owner=f"a{address_digest(person.email)}",
        key_parts=(f"o{offering.id}", f"s{session.id}" if session else None, f"t{_window(now)}"),
        context={
            "offering_id": offering.id,
            "session_id": session.id if session else None,
            "name": person.name,
            "phone": person.phone,
        },
        send_after=now,
        language=person.language,
    )
    db.session.commit()
    return bool(queued)


# --- Choosing the pass and booking with it ---


def _candidates(email_normalized: str, offering: Offering, now: datetime) -> sa.Select[tuple[Pass]]:
    return (
        sa.select(Pass)
        .where(
            Pass.email_normalized == email_normalized,
            Pass.status == PassStatus.ACTIVE,
            Pass.frozen_since.is_(None),
            sa.or_(Pass.expires_at.is_(None), Pass.expires_at > now),
        )
        .options(
            joinedload(Pass.product, innerjoin=True).selectinload(PassProduct.offerings),
            joinedload(Pass.product, innerjoin=True).selectinload(PassProduct.locations),
        )
    )


def _expiry_order(pass_: Pass) -> tuple[int, datetime, int]:
    """Earliest-expiring first; a pass whose validity has not started (from first use) last."""
    if pass_.expires_at is None:
        return (1, datetime.max.replace(tzinfo=None), pass_.id)
    return (0, pass_.expires_at.replace(tzinfo=None), pass_.id)


def usable_pass(
    email_normalized: str, offering: Offering, now: datetime, pass_id: int | None = None
) -> tuple[Pass, int] | None:
    """The pass this booking would spend (and its balance now), read without locks: for pages
    that say what would happen. book_with_pass decides again under the locks."""
    query = _candidates(email_normalized, offering, now)
    if pass_id is not None:
        query = query.where(Pass.id == pass_id)
    found = [p for p in db.session.scalars(query) if ledger.product_covers(p.product, offering)]
    found.sort(key=_expiry_order)
    balances = ledger.balances([p.id for p in found]) if found else {}
    for pass_ in found:
        if balances[pass_.id] >= offering.credits_per_booking:
            return pass_, balances[pass_.id]
    return None


def has_usable_pass(email: str, offering: Offering, now: datetime | None = None) -> bool:
    return usable_pass(normalize_email(email), offering, now or utcnow()) is not None


class Outcome(Enum):
    BOOKED = "booked"
    ALREADY_BOOKED = "already_booked"  # a live booking for this address and date: nothing spent
    FULL = "full"
    # Only seats kept for the community price are free: full for a pass booking, which takes a
    # general seat (told as the registration form tells a general booking: ONLY_COMMUNITY_SEATS_LEFT).
    ONLY_COMMUNITY_SEATS = "only_community_seats"
    NO_PASS = "no_pass"  # no usable pass of this address covers it with enough credits


@dataclass
class PassBookingResult:
    outcome: Outcome
    registration: Registration | None = None
    class_pass: Pass | None = None
    # No seat for someone on its waitlist: their number in line, kept (the pass's link is theirs).
    waiting_position: int | None = None


def _lock_and_choose(
    email_normalized: str, offering: Offering, now: datetime, pass_id: int | None
) -> Pass | None:
    """Lock every candidate pass of the address (in id order, after the seat pool), then choose
    the earliest-expiring one that covers the offering and has the credits, as read under the locks."""
    # One statement locks them all, in id order (the lock order), with what product_covers reads.
    query = (
        _candidates(email_normalized, offering, now)
        .order_by(Pass.id)
        .with_for_update(of=Pass)
        .execution_options(populate_existing=True)
    )
    if pass_id is not None:
        query = query.where(Pass.id == pass_id)
    locked = list(db.session.scalars(query))
    usable = [p for p in locked if ledger.is_usable(p, now) and ledger.product_covers(p.product, offering)]
    if not usable:
        return None
    balances = ledger.balances([p.id for p in usable])
    usable.sort(key=_expiry_order)
    for pass_ in usable:
        if balances[pass_.id] >= offering.credits_per_booking:
            return pass_
    return None


def book_with_pass(
    offering: Offering,
    session_id: int | None,
    person: Person,
    now: datetime | None = None,
    pass_id: int | None = None,
    actor_id: int | None = None,
    consent_answer: consent.ConsentAnswer | None = None,
) -> PassBookingResult:
    """Book a seat paid with credits, in one transaction: lock the seat pool (releasing lapsed
    holds and offers), then the address's passes; choose the earliest-expiring usable pass that
    covers it (or `pass_id`'s, booked from its page), take the seat, write the confirmed booking,
    spend its credits, queue the confirmation and audit it. A second try for the same address
    and date is ALREADY_BOOKED and spends nothing. Raises RegistrationError if the date can't
    be booked (closed, started, not listed). `consent_answer`: what the member's page said about
    the offering's consent document, checked as a booking form's is (consent.ConsentError, with
    nothing booked, if it was not ticked or is no longer the current version) and recorded with
    the booking; None only where no member is asked (staff)."""
    now = now or utcnow()
    pool, session = registration_target(offering, session_id, now)
    if offering.price_cents <= 0:
        raise RegistrationError(gettext("This one is free: register on its page, no pass needed."))
    email_normalized = person.email_normalized
    pool = seats.lock_pool(pool.id)
    seats.release_lapsed(pool, now)
    existing = find_live_registration(pool.id, email_normalized)
    if existing is not None:
        db.session.commit()
        return PassBookingResult(Outcome.ALREADY_BOOKED, existing, existing.class_pass)
    accepted = None
    if consent_answer is not None:
        try:
            accepted = consent.version_to_accept(
                offering,
                consent_answer.shown_version_id,
                consent_answer.agreed,
                consent_answer.shown_language,
            )
        except consent.ConsentError:
            db.session.commit()  # keep what release_lapsed did
            raise
    pass_ = _lock_and_choose(email_normalized, offering, now, pass_id)
    if pass_ is None:
        db.session.commit()  # keep what release_lapsed did
        return PassBookingResult(Outcome.NO_PASS)
    no_seat = _no_general_seat(offering, pool, email_normalized, now)
    if no_seat is not None:
        waiting = _waiting_position(pool, email_normalized)
        db.session.commit()  # keep what release_lapsed did (their waitlist place stays)
        return PassBookingResult(no_seat, class_pass=pass_, waiting_position=waiting)
    # On the waitlist: that place ends; a seat offered to them becomes this booking's.
    claimed_offer = leave_waitlist_on_registering(pool, email_normalized)
    registration = Registration(
        seat_pool_id=pool.id,
        offering_id=offering.id,
        session_id=session.id if session else None,
        name=person.name,
        email=person.email.strip(),
        email_normalized=email_normalized,
        phone=person.phone,
        status=RegistrationStatus.CONFIRMED,
        price_cents=0,
        currency=offering.currency,
        confirmed_at=now,
        token=new_token(),
        source=PASS_SOURCE,
        language=person.language,
        # (What ledger.spend records, written with the row rather than by an UPDATE after it.)
        pass_id=pass_.id,
        credits_spent=offering.credits_per_booking,
    )
    try:
        if claimed_offer is None:
            seats.take_seat(pool)
        db.session.add(registration)
        db.session.flush()
    except IntegrityError:  # (the pool's lock makes this a twin from another path)
        db.session.rollback()
        existing = find_live_registration(pool.id, email_normalized)
        db.session.commit()
        return PassBookingResult(Outcome.ALREADY_BOOKED, existing)
    if claimed_offer is not None:
        claimed_offer.registration_id = registration.id
    try:
        ledger.spend(pass_, registration, now)
    except ledger.NotEnoughCredits:  # (checked under the locks above: a backstop, nothing written)
        db.session.rollback()
        return PassBookingResult(Outcome.NO_PASS)
    if accepted is not None:
        consent.record_acceptance(registration, accepted, now)
    queue_email(EmailKind.REGISTRATION_CONFIRMED, registration=registration)
    audit.record_about(
        actor_id,
        "registration.booked_with_pass",
        registration,
        pass_id=pass_.id,
        credits=registration.credits_spent,
    )
    _commit_keeping_what_was_written()
    return PassBookingResult(Outcome.BOOKED, registration, pass_)


def _no_general_seat(
    offering: Offering, pool: SeatPool, email_normalized: str, now: datetime
) -> Outcome | None:
    """Under the pool's lock: why a pass booking gets no seat (None: it gets one). The credits
    are its price, so it takes a general seat: one a waitlist offer holds for them, or one that
    general sale may use. Seats kept for the community price are not for it, as for a general
    registration (registration/services.py _check_community_seat)."""
    community = pricing.community_seats(offering, pool, now)  # (no query if it keeps none)
    if community.left_for_general > 0 or holds_offer(pool.id, email_normalized, now):
        return None
    return Outcome.ONLY_COMMUNITY_SEATS if community.kept > 0 else Outcome.FULL


def _commit_keeping_what_was_written() -> None:
    """Commit without expiring what the session holds: the booking was written with every value
    known, so the redirect to its manage page reads it without another query."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def pass_by_token(token: str) -> Pass | None:
    return db.session.scalar(sa.select(Pass).where(Pass.token == token))


def move_spend(old: Registration, new: Registration) -> None:
    """A transfer keeps the spend: the booking's ledger rows follow it to its new registration
    (as its payments do), and the old one no longer counts as having spent anything."""
    db.session.execute(
        sa.update(PassLedgerEntry)
        .where(PassLedgerEntry.registration_id == old.id, PassLedgerEntry.pass_id == old.pass_id)
        .values(registration_id=new.id)
    )
    new.pass_id, new.credits_spent = old.pass_id, old.credits_spent
    old.credits_spent = 0


def transfer_refusal(registration: Registration, target: Offering) -> str | None:
    """Why a pass booking can't be moved to `target` (None: it can, keeping its spend)."""
    if registration.pass_id is None or not registration.credits_spent:
        return None
    if target.credits_per_booking != registration.credits_spent:
        return (
            f"This booking was paid with a class pass ({registration.credits_spent} credit(s)) and "
            f"that one costs {target.credits_per_booking}. Cancel it (its credits go back by the "
            "policy) and book the other one instead."
        )
    pass_ = registration.class_pass
    if pass_ is not None and not ledger.product_covers(pass_.product, target):
        return "Their class pass isn't valid for that one. Cancel this booking and book the other instead."
    return None


# --- Saying how a booking was paid ---


@dataclass(frozen=True)
class PassSummary:
    credits: int
    left: int
    of: int
    expires_at: datetime | None
    product_name: str

    def text(self) -> str:
        """ "Class pass: 1 credit (6 of 10 left, expires Jun 14, 2027)", in the current language."""
        spent = ngettext("%(num)d credit", "%(num)d credits", self.credits)
        if self.expires_at is not None:
            return gettext(
                "Class pass: %(spent)s (%(left)d of %(of)d left, expires %(date)s)",
                spent=spent,
                left=self.left,
                of=self.of,
                date=format_long_date(self.expires_at),
            )
        return gettext(
            "Class pass: %(spent)s (%(left)d of %(of)d left)", spent=spent, left=self.left, of=self.of
        )


def pass_summary(registration: Registration) -> PassSummary | None:
    """How a pass booking was paid, with the pass's balance now; None if it wasn't."""
    if registration.pass_id is None or registration.class_pass is None:
        return None
    pass_ = registration.class_pass
    return PassSummary(
        registration.credits_spent,
        ledger.balance(pass_.id),
        pass_.credits,
        pass_.expires_at,
        pass_.name,
    )


def credits_given_back(registration: Registration) -> int:
    """The credits a cancelled pass booking got back (0: forfeited, or none spent)."""
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(PassLedgerEntry.credits), 0)).where(
                PassLedgerEntry.registration_id == registration.id, PassLedgerEntry.kind == LedgerKind.RETURN
            )
        )
        or 0
    )


def credits_expired_on_return(registration: Registration) -> bool:
    """Whether a cancelled pass booking's credits came back onto an expired pass and expired
    with it (an EXPIRY row names the booking)."""
    return (
        db.session.scalar(
            sa.select(PassLedgerEntry.id)
            .where(
                PassLedgerEntry.registration_id == registration.id, PassLedgerEntry.kind == LedgerKind.EXPIRY
            )
            .limit(1)
        )
        is not None
    )


def staff_pass_label(registration: Registration) -> str:
    """The same in English, for staff pages."""
    summary = pass_summary(registration)
    if summary is None:
        return ""
    credit = "credit" if summary.credits == 1 else "credits"
    local = summary.expires_at.astimezone(ZoneInfo(current_clinic().timezone)) if summary.expires_at else None
    expires = f", expires {local:%b} {local.day}" if local else ""
    return f"Class pass: {summary.credits} {credit} ({summary.left} of {summary.of} left{expires})"


# --- What a pass can book (its page) ---


@dataclass(frozen=True)
class Bookable:
    session: Session
    offering: Offering
    seats_left: int  # seats a pass booking may take: free ones not kept for the community price
    booked: bool  # this pass's address already holds a seat there

    @property
    def session_id(self) -> int | None:
        """What the booking names: the class's date, or (a workshop or course) nothing."""
        return self.session.id if self.offering.kind.per_session else None


def bookable_sessions(pass_: Pass, now: datetime | None = None, limit: int = 30) -> list[Bookable]:
    """Upcoming sessions this pass can pay for (a workshop or course: its first date)."""
    now = now or utcnow()
    product = pass_.product
    query = (
        sa.select(Session)
        .join(Offering, Session.offering_id == Offering.id)
        .where(
            Session.starts_at > now,
            Session.status == SessionStatus.SCHEDULED,
            Offering.is_published.is_(True),
            Offering.is_cancelled.is_(False),
            Offering.price_cents > 0,  # (a free one is booked on its page, spending nothing)
        )
        .options(joinedload(Session.offering), joinedload(Session.seat_pool), joinedload(Session.location))
        .order_by(Session.starts_at, Session.id)
        .limit(limit * 4)
    )
    # The product's scope in SQL, so the sessions read are ones it covers (product_covers below
    # says the same, and is the rule).
    kinds = ledger.offering_kinds(product.offering_kinds)
    if kinds:
        query = query.where(Offering.kind.in_(sorted(kinds)))
    if product.offerings:
        query = query.where(Offering.id.in_([o.id for o in product.offerings]))
    if product.locations:
        query = query.where(Offering.location_id.in_([loc.id for loc in product.locations]))
    rows = db.session.scalars(query).unique()
    found: list[Session] = []
    whole_seen: set[int] = set()
    for s in rows:
        offering = s.offering
        if not ledger.product_covers(pass_.product, offering):
            continue
        if not offering.kind.per_session:
            if offering.id in whole_seen:
                continue
            whole_seen.add(offering.id)
            first = db.session.scalar(
                sa.select(sa.func.min(Session.starts_at)).where(
                    Session.offering_id == offering.id, Session.status == SessionStatus.SCHEDULED
                )
            )
            if first is not None and first != s.starts_at:
                continue  # already started: a workshop is booked before its first date
        found.append(s)
        if len(found) >= limit:
            break
    pool_ids = [s.seat_pool_id for s in found]
    mine = (
        set(
            db.session.scalars(
                sa.select(Registration.seat_pool_id).where(
                    Registration.seat_pool_id.in_(pool_ids),
                    Registration.email_normalized == pass_.email_normalized,
                    Registration.status.in_((RegistrationStatus.CONFIRMED, RegistrationStatus.HELD)),
                )
            )
        )
        if pool_ids
        else set()
    )
    kept = pricing.community_kept_by_pool(((s.offering, s.seat_pool) for s in found), now)
    return [
        Bookable(
            s,
            s.offering,
            max(s.seat_pool.capacity - s.seat_pool.seats_taken - kept[s.seat_pool_id], 0),
            s.seat_pool_id in mine,
        )
        for s in found
    ]


def pool_of(session_id: int) -> SeatPool | None:
    session = db.session.get(Session, session_id)
    return session.seat_pool if session is not None else None


def latest_link_email(to_email: str) -> OutboxEmail | None:
    """The newest pass-booking link email queued for an address (tests and the dev outbox)."""
    owner = f"a{address_digest(to_email)}"
    return db.session.scalar(
        sa.select(OutboxEmail)
        .where(OutboxEmail.dedupe_key.like(dedupe_key(EmailKind.PASS_BOOKING_LINK, owner) + ":%"))
        .order_by(OutboxEmail.id.desc())
        .limit(1)
    )


# --- What the emailed link's page shows before the button is pressed ---


class PreviewState(Enum):
    CONFIRM = "confirm"  # one button books it
    BOOKED = "booked"  # this address already holds a seat there
    NO_PASS = "no_pass"
    FULL = "full"
    # Only seats kept for the community price are free (full for a pass booking): the message
    # is the registration form's, with its waitlist for a general seat.
    ONLY_COMMUNITY_SEATS = "only_community_seats"
    CLOSED = "closed"  # not bookable any more (cancelled, started...)


@dataclass
class ConfirmPreview:
    state: PreviewState
    offering: Offering
    session: Session | None  # the date (a workshop's or course's first)
    registration: Registration | None = None
    class_pass: Pass | None = None
    balance: int = 0
    message: str = ""
    # FULL for someone on its waitlist: their number in line (the pass's link is theirs).
    waiting_position: int | None = None

    @property
    def credits(self) -> int:
        return self.offering.credits_per_booking

    @property
    def left_after(self) -> int:
        return self.balance - self.credits


def confirm_preview(request: BookingRequest, now: datetime | None = None) -> ConfirmPreview | None:
    """What booking with this link would do now (read without locks; book_with_pass decides).
    None when its offering no longer exists."""
    now = now or utcnow()
    offering = db.session.get(Offering, request.offering_id)
    if offering is None:
        return None
    session = db.session.get(Session, request.session_id) if request.session_id else None
    try:
        pool, target = registration_target(offering, request.session_id, now)
    except RegistrationError as error:
        return ConfirmPreview(PreviewState.CLOSED, offering, session, message=str(error))
    if offering.price_cents <= 0:
        message = gettext("This one is free: register on its page, no pass needed.")
        return ConfirmPreview(PreviewState.CLOSED, offering, session, message=message)
    if target is None:
        session = db.session.scalar(
            sa.select(Session).where(Session.seat_pool_id == pool.id).order_by(Session.starts_at).limit(1)
        )
    existing = find_live_registration(pool.id, normalize_email(request.email))
    if existing is not None:
        return ConfirmPreview(PreviewState.BOOKED, offering, session, registration=existing)
    chosen = usable_pass(normalize_email(request.email), offering, now)
    if chosen is None:
        return ConfirmPreview(PreviewState.NO_PASS, offering, session)
    pass_, balance = chosen
    community = pricing.community_seats(offering, pool, now)
    if community.left_for_general <= 0 and not holds_offer(pool.id, normalize_email(request.email), now):
        if community.kept > 0:
            return ConfirmPreview(
                PreviewState.ONLY_COMMUNITY_SEATS,
                offering,
                session,
                class_pass=pass_,
                balance=balance,
                message=str(ONLY_COMMUNITY_SEATS_LEFT),
            )
        return ConfirmPreview(
            PreviewState.FULL,
            offering,
            session,
            class_pass=pass_,
            balance=balance,
            waiting_position=_waiting_position(pool, normalize_email(request.email)),
        )
    return ConfirmPreview(PreviewState.CONFIRM, offering, session, class_pass=pass_, balance=balance)


def _waiting_position(pool: SeatPool, email_normalized: str) -> int | None:
    """The person's number in line on the pool's waitlist, if they are waiting on it."""
    place = waitlist_place(pool, email_normalized)
    return (
        seats.waitlist_position(place)
        if place is not None and place.status is WaitlistStatus.WAITING
        else None
    )
