"""Registering, cancelling and the waitlist: each function owns its transaction.

Every change that takes or frees a seat locks the seat pool first (see seats.py), and every
change that should tell the person something writes its outbox row in the same transaction.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext, lazy_gettext, ngettext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from events import pricing
from events.consent import services as consent
from events.extensions import db
from events.models import (
    SEAT_TAKING_STATUSES,
    WAITLIST_ACTIVE_STATUSES,
    Offering,
    OutboxEmail,
    Payment,
    PaymentStatus,
    PromoCode,
    Refund,
    RefundKind,
    Registration,
    RegistrationStatus,
    SeatPool,
    Session,
    SessionStatus,
    UTCDateTime,
    WaitlistEntry,
    WaitlistStatus,
    utcnow,
)
from events.notifications.outbox import EmailKind, dedupe_key, queue_email
from events.passes import ledger, refunding
from events.payments import refunds
from events.payments.balances import seat_payments
from events.registration import seats
from events.registration.holds import payment_grace_start

# What a booking that wants a general seat is told when only seats kept for the community
# price are free (the registration form, and a class pass, which takes a general seat).
ONLY_COMMUNITY_SEATS_LEFT = lazy_gettext(
    'The seats left are community seats. Choose "Community seat" to take one.'
)


class RegistrationError(Exception):
    """A rule stops this registration; the message is for the person, shown beside the form
    field named by `field` (None: at the top of the form)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# What a person is told when the seat held while they paid has gone to someone else.
HOLD_RELEASED = lazy_gettext("Your held seat has been released. Please register again.")


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    phone: str = ""
    language: str = "en"  # the language they booked in: their emails are written in it

    @property
    def email_normalized(self) -> str:
        return normalize_email(self.email)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def address_digest(email: str) -> str:
    """A keyed digest of the normalized address: names it in keys without spelling it out."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, normalize_email(email).encode(), hashlib.sha256).hexdigest()[:32]


class Outcome(Enum):
    CONFIRMED = "confirmed"  # free: done
    HELD = "held"  # paid: a seat is held while they pay
    RESUME = "resume"  # this browser made the registration they have: take them back to it
    ALREADY_REGISTERED = "already_registered"  # someone else's browser: the link went by email
    FULL = "full"  # no seat: offer the waitlist


@dataclass
class RegisterResult:
    outcome: Outcome
    registration: Registration | None = None
    # FULL for someone on the pool's waitlist: their place, kept as it was (see still_full()).
    waiting: WaitlistEntry | None = None


def new_token() -> str:
    return secrets.token_urlsafe(24)


def registration_target(
    offering: Offering, session_id: int | None, now: datetime
) -> tuple[SeatPool, Session | None]:
    """Which pool a registration takes a seat in, checking that it is still open."""
    _check_open(offering)
    if offering.kind.per_session:
        session = (
            db.session.get(Session, session_id, options=[joinedload(Session.seat_pool)])
            if session_id
            else None
        )
        return _checked_target(offering, session, now)
    first = db.session.scalar(
        sa.select(Session)
        .where(Session.offering_id == offering.id, Session.status == SessionStatus.SCHEDULED)
        .options(joinedload(Session.seat_pool))
        .order_by(Session.starts_at)
        .limit(1)
    )
    return _checked_target(offering, first, now)


def target_and_live_registration(
    offering: Offering, session_id: int | None, email_normalized: str, now: datetime
) -> tuple[SeatPool, Session | None, Registration | None]:
    """registration_target(), and the person's live registration in that pool
    (find_live_registration()), read in one query: what a registration looks at first."""
    _check_open(offering)
    row = None
    if not offering.kind.per_session:
        row = db.session.execute(
            _target_statement(per_session=False),
            {"offering_id": offering.id, "email_normalized": email_normalized},
        ).first()
    elif session_id:
        row = db.session.execute(
            _target_statement(per_session=True),
            {"session_id": session_id, "email_normalized": email_normalized},
        ).first()
    session, registration_id = (row.Session, row.registration_id) if row is not None else (None, None)
    pool, target = _checked_target(offering, session, now)
    existing = db.session.get(Registration, registration_id) if registration_id is not None else None
    return pool, target, existing


@functools.cache
def _target_statement(per_session: bool) -> sa.Select[tuple[Session, int]]:
    """target_and_live_registration()'s statement, built once (its values are parameters): the
    chosen session of a class, or the first scheduled one, with its pool, and the id of the
    person's live registration in that pool, if any. (Only its id: a registration is nearly
    always someone new, and the columns of a row that is nearly never there cost each time.)"""
    live = sa.and_(
        Registration.seat_pool_id == Session.seat_pool_id,
        Registration.email_normalized == sa.bindparam("email_normalized"),
        Registration.status.in_(SEAT_TAKING_STATUSES),
    )
    query = (
        sa.select(Session, Registration.id.label("registration_id"))
        .outerjoin(Registration, live)
        .options(joinedload(Session.seat_pool))
    )
    if per_session:
        return query.where(Session.id == sa.bindparam("session_id"))
    return (
        query.where(
            Session.offering_id == sa.bindparam("offering_id"), Session.status == SessionStatus.SCHEDULED
        )
        .order_by(Session.starts_at)
        .limit(1)
    )


def _check_open(offering: Offering) -> None:
    if not offering.is_published or offering.is_cancelled:
        raise RegistrationError(gettext("Registration for this is closed."))


def _checked_target(
    offering: Offering, session: Session | None, now: datetime
) -> tuple[SeatPool, Session | None]:
    """The pool of `session` (the chosen date of a class, else the first scheduled session),
    or RegistrationError saying why it can't be registered for."""
    if offering.kind.per_session:
        if session is None or session.offering_id != offering.id:
            raise RegistrationError(gettext("Please choose one of the listed dates."), field="session_id")
        if session.status != SessionStatus.SCHEDULED:
            raise RegistrationError(gettext("That class has been cancelled."))
        if session.starts_at <= now:
            raise RegistrationError(gettext("That class has already started."))
        return session.seat_pool, session
    if session is None:
        raise RegistrationError(gettext("There are no dates to register for."))
    if session.starts_at <= now:
        raise RegistrationError(
            {
                "workshop": gettext("This workshop has already started."),
                "course": gettext("This course has already started."),
            }.get(offering.kind.value, gettext("That class has already started."))
        )
    return session.seat_pool, None


def holds_offer(pool_id: int, email_normalized: str, now: datetime) -> bool:
    """Whether a live waitlist offer holds a seat of the pool for this person: a general seat,
    already taken for them."""
    return (
        db.session.scalar(
            sa.select(WaitlistEntry.id)
            .where(
                WaitlistEntry.seat_pool_id == pool_id,
                WaitlistEntry.email_normalized == email_normalized,
                WaitlistEntry.status == WaitlistStatus.OFFERED,
                WaitlistEntry.offer_expires_at > now,
            )
            .limit(1)
        )
        is not None
    )


def waitlist_place(pool: SeatPool, email_normalized: str) -> WaitlistEntry | None:
    """The person's live place on the pool's waitlist (waiting, or offered a seat), unchanged.
    Read under the pool's lock, after release_lapsed (an OFFERED entry's offer is then live)."""
    return db.session.scalar(
        sa.select(WaitlistEntry).where(
            WaitlistEntry.seat_pool_id == pool.id,
            WaitlistEntry.email_normalized == email_normalized,
            WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES),
        )
    )


def end_waitlist_place(entry: WaitlistEntry | None) -> WaitlistEntry | None:
    """The person has a seat now, so their waitlist place (if any) ends: returns the entry if
    it held the seat offered to them (CLAIMED: that seat becomes the booking's), else None.

    Call it only once the seat is certain (under the pool's lock, every check passed): someone
    still waiting whose booking finds the class full keeps their place and its position."""
    if entry is None:
        return None
    if entry.status == WaitlistStatus.OFFERED:
        entry.status = WaitlistStatus.CLAIMED
        return entry
    entry.status = WaitlistStatus.LEFT
    return None


def leave_waitlist_on_registering(pool: SeatPool, email_normalized: str) -> WaitlistEntry | None:
    """end_waitlist_place() of the person's place in `pool`, for a booking whose seat is
    already certain; returns the entry if it held a seat offered to them."""
    return end_waitlist_place(waitlist_place(pool, email_normalized))


def still_full(entry: WaitlistEntry | None, source: str, now: datetime) -> RegisterResult:
    """FULL, for a registration that found no seat. Someone on the waitlist keeps their place
    (`waiting`: the page says so, with their position); the link to it goes to their address,
    never onto the page (anyone may type anyone's email: see _email_waitlist_link). The
    caller commits."""
    if entry is not None and source == "public":
        _email_waitlist_link(entry, now)
    return RegisterResult(Outcome.FULL, waiting=entry)


def hold_is_live(registration: Registration, now: datetime | None = None) -> bool:
    """Held and not yet run out (a lapsed hold is released by the next sweep or registration)."""
    # (Every hold is made with its expiry; a held row without one is not live.)
    return (
        registration.status == RegistrationStatus.HELD
        and registration.hold_expires_at is not None
        and registration.hold_expires_at > (now or utcnow())
    )


def hold_released(registration: Registration, now: datetime | None = None) -> bool:
    """Held while they paid, and the hold ran out unpaid: the seat is no longer theirs."""
    return registration.status == RegistrationStatus.HELD and not hold_is_live(registration, now)


# Registering again with an email that already has a seat.
#
# The person who held a seat, left the pay page and comes back to register again must reach
# their payment, not a wall ("use the link in your confirmation email": no email is sent for a
# hold). But the form is public: anyone may type anyone's email into it, so the answer must not
# hand a stranger that person's payment page or manage link (their name, email, a way to
# cancel). So the answer depends on the browser, never on the email alone:
# - The browser that made the registration (its browser_key, a keyed hash of the secret in that
#   browser's session cookie, matches the one stored on the row) is taken back to it: the pay
#   page while the hold lasts ("Continue to payment: your seat is held until 3:57 pm"), else
#   the manage page. A double-tapped "Continue to payment" lands there too.
# - Any other browser gets a neutral answer that is the same for a hold and a confirmed
#   registration ("This email is already registered... we've emailed the link"), and the
#   registration's own address gets its link by email (REGISTRATION_LINK, in the outbox): the
#   pay page while the hold lasts, else the manage page. At most one such email per ADDRESS per
#   LINK_EMAIL_WINDOW, whatever registration was asked about (its dedupe key names a keyed
#   digest of the address and the window, and none is queued in the window after one sent less
#   than a window ago), so typing a member's email into the forms of their eight weekly classes
#   again and again sends them two emails an hour, not dozens. The first one always goes out.
# What the neutral answer still reveals, that this email is registered for this date, the
# form told before this change too (a second registration must be refused); it never says
# whether the seat is paid for, and gives no link.
LINK_EMAIL_WINDOW = timedelta(minutes=30)


def _browser_may_resume(registration: Registration, browser_key: str) -> bool:
    return bool(browser_key) and hmac.compare_digest(registration.browser_key or "", browser_key)


def _answer_existing(existing: Registration, browser_key: str, source: str, now: datetime) -> Outcome:
    """RESUME for the browser that made it; otherwise email its link (public form only)."""
    if _browser_may_resume(existing, browser_key):
        return Outcome.RESUME
    if source == "public":
        _email_link_once_a_window(existing, now)
    return Outcome.ALREADY_REGISTERED


def _email_link_once_a_window(registration: Registration, now: datetime) -> None:
    """Queue this registration's link to its address, unless that address was sent a link (for
    any registration) less than LINK_EMAIL_WINDOW ago."""
    owner = f"a{address_digest(registration.email)}"
    window = int(now.timestamp() // LINK_EMAIL_WINDOW.total_seconds())
    previous = db.session.scalar(
        sa.select(OutboxEmail.created_at)
        .where(
            OutboxEmail.dedupe_key.in_(
                [dedupe_key(EmailKind.REGISTRATION_LINK, owner, f"t{w}") for w in (window - 1, window)]
            )
        )
        .order_by(OutboxEmail.created_at.desc())
        .limit(1)
    )
    if previous is None or previous <= now - LINK_EMAIL_WINDOW:
        queue_email(
            EmailKind.REGISTRATION_LINK,
            registration=registration,
            owner=owner,
            key_parts=(f"t{window}",),
        )


def find_live_registration(pool_id: int, email_normalized: str) -> Registration | None:
    return db.session.scalar(
        sa.select(Registration).where(
            Registration.seat_pool_id == pool_id,
            Registration.email_normalized == email_normalized,
            Registration.status.in_(SEAT_TAKING_STATUSES),
        )
    )


def _new_registration(
    pool: SeatPool,
    offering: Offering,
    session_id: int | None,
    person: Person,
    source: str,
    now: datetime,
    browser_key: str = "",
    quote: pricing.Quote | None = None,
) -> Registration:
    """A registration at the offering's price, or the one `quote` worked out (events/pricing.py):
    free ones (a 100% code or a $0 tier or community seat too) confirmed now, paid ones held
    while they pay."""
    price = quote.total_cents if quote is not None else offering.price_cents
    paid = price > 0
    return Registration(
        seat_pool_id=pool.id,
        offering_id=offering.id,
        session_id=session_id,
        name=person.name,
        email=person.email.strip(),
        email_normalized=person.email_normalized,
        phone=person.phone,
        status=RegistrationStatus.HELD if paid else RegistrationStatus.CONFIRMED,
        price_cents=price,
        currency=offering.currency,
        price_tier_id=quote.tier.id if quote is not None and quote.tier is not None else None,
        promo_code_id=quote.code.id if quote is not None and quote.code is not None else None,
        discount_cents=quote.discount_cents if quote is not None else 0,
        community_seat=quote.community if quote is not None else False,
        hold_expires_at=now + timedelta(minutes=current_app.config["HOLD_MINUTES"]) if paid else None,
        confirmed_at=None if paid else now,
        token=new_token(),
        source=source,
        browser_key=browser_key,
        language=person.language,
    )


def mark_cancelled(
    registration: Registration, reason: str, now: datetime, give_back_code: bool = True
) -> None:
    """Record a cancellation (the caller frees the seat, refunds and tells the person).

    A promo code's use is given back (it no longer counts against the code's limits) unless
    `give_back_code` is False: an on-time cancellation, one by the clinic or of an unpaid hold
    gives it back; a late one by the member keeps it (cancel_registration)."""
    if give_back_code and registration.promo_code_id is not None:
        pricing.release_for_registrations([registration.id], now)
    registration.status = RegistrationStatus.CANCELLED
    registration.cancelled_at = now
    registration.cancel_reason = reason[:400]
    registration.hold_expires_at = None


def _consent_to_record(offering: Offering, answer: consent.ConsentAnswer | None) -> consent.ShownText | None:
    """The consent version (and the language of the text shown) a new booking records, checked
    against the form's answer (None: no form asked, as when staff book for someone; the roster
    flags them). Raises ConsentError, after keeping what the transaction did so far (released
    lapsed holds)."""
    if answer is None:
        return None
    try:
        return consent.version_to_accept(
            offering, answer.shown_version_id, answer.agreed, answer.shown_language
        )
    except consent.ConsentError:
        db.session.commit()
        raise


def register(
    offering: Offering,
    session_id: int | None,
    person: Person,
    now: datetime | None = None,
    source: str = "public",
    browser_key: str = "",
    consent_answer: consent.ConsentAnswer | None = None,
    price_choice: pricing.PriceChoice | None = None,
) -> RegisterResult:
    """Take a seat for a person, or say why not. Free: confirmed. Paid: held while they pay.

    `price_choice`: the sliding-scale tier, community seat or promo code the form asked for;
    the price is worked out by events/pricing.py quote() (RegistrationError, field "code" or
    "price_choice", when it can't be used: nothing changes). A registration with any of them,
    and every registration of an offering with community seats, takes the locked path
    (_register_locked): the code's uses and the community seats are counted under the pool's
    lock, then the code row's (pools -> promo code -> passes -> payments).

    `browser_key` names the browser asking (events/registration/links.py browser_key()): with
    it, registering again from the browser that made the registration resumes it (RESUME);
    from any other, its link is emailed to its address instead (see LINK_EMAIL_WINDOW).
    `consent_answer`: what the booking form said about the offering's consent document; a new
    registration records the version accepted, in the transaction that takes its seat
    (consent.ConsentError if it was not ticked or is no longer the current version).

    Everything is read and checked before the seat pool is locked (the pool and the person's
    live registration in it in one query: target_and_live_registration), and the seat is then taken
    in one statement followed by the commit (seats.take_seat_and_register), so a burst of
    registrations for one class waits on the pool's lock only for that. Someone on the pool's
    waitlist (the statement refuses them) or whose own hold has run out, and a full pool
    holding a lapsed hold or offer, take the slower path under the lock (_register_locked),
    which releases those first; a full pool without any is answered FULL without a lock."""
    now = now or utcnow()
    email_normalized = person.email_normalized
    pool, session, existing = target_and_live_registration(offering, session_id, email_normalized, now)
    if (
        pool.seats_taken >= pool.capacity
        and existing is None
        and not _needs_the_lock(pool.id, email_normalized, now)
    ):
        # The crowd that finds the pool full, in one more query: nothing was written, nothing to lock.
        return RegisterResult(Outcome.FULL)
    if existing is not None and not hold_released(existing, now):
        outcome = _answer_existing(existing, browser_key, source, now)
        db.session.commit()
        return RegisterResult(outcome, existing)
    choice = price_choice or pricing.PriceChoice()
    if not choice.is_plain or pricing.keeps_community_seats(offering):
        # A wrong or used-up code, or a wrong choice, is told before any lock (its uses are
        # counted again under the code's lock).
        _quote(offering, choice, email_normalized, now)
        return _register_locked(
            offering, pool.id, session, person, now, source, browser_key, consent_answer, choice
        )
    if existing is None:
        if pool.seats_taken < pool.capacity:  # as read just now: the statement checks it under the lock
            accepted = _consent_to_record(offering, consent_answer)
            registration = _new_registration(
                pool, offering, session.id if session else None, person, source, now, browser_key
            )
            try:
                taken = seats.take_seat_and_register(pool, registration)
            except IntegrityError:
                return _concurrent_twin(pool.id, person, browser_key, source, now)
            if taken:
                if accepted is not None:  # (under the seat's lock, committed with it)
                    consent.record_acceptance(registration, accepted, now)
                _commit_keeping_what_was_written()
                return _registered(registration)
        elif not _needs_the_lock(pool.id, email_normalized, now):
            # Full, with no hold or offer to release and no waitlist place of theirs (whose
            # answer tells them they keep it): nothing was written, nothing to lock.
            return RegisterResult(Outcome.FULL)
    return _register_locked(offering, pool.id, session, person, now, source, browser_key, consent_answer)


def _register_locked(
    offering: Offering,
    pool_id: int,
    session: Session | None,
    person: Person,
    now: datetime,
    source: str,
    browser_key: str,
    consent_answer: consent.ConsentAnswer | None,
    choice: pricing.PriceChoice | None = None,
) -> RegisterResult:
    """register() with every check made again under the pool's lock, after lapsed holds and
    offers are released. The price (`choice`) is worked out again under the lock: community
    seats counted, the code's row locked after the pool and its uses counted, and its use
    written with the registration."""
    choice = choice or pricing.PriceChoice()
    pool = seats.lock_pool(pool_id)
    seats.release_lapsed(pool, now)

    existing = find_live_registration(pool.id, person.email_normalized)
    if existing is not None:
        outcome = _answer_existing(existing, browser_key, source, now)
        db.session.commit()
        return RegisterResult(outcome, existing)
    accepted = _consent_to_record(offering, consent_answer)
    # Someone on the waitlist who registers directly leaves it once they have a seat: a seat
    # offered to them becomes this registration's (as if they had claimed the offer), or a free
    # one. With none, they keep their place (and its position): nothing of it changes.
    place = waitlist_place(pool, person.email_normalized)
    offered = place is not None and place.status == WaitlistStatus.OFFERED
    if not offered and pool.seats_taken >= pool.capacity:
        result = still_full(place, source, now)
        db.session.commit()  # keep what release_lapsed did
        return result
    try:
        quote, code = _price_under_lock(offering, pool, choice, person.email_normalized, offered, now)
    except _NoSeat:  # (what release_lapsed did is committed; their place is untouched)
        result = still_full(place, source, now)
        db.session.commit()
        return result

    registration = _new_registration(
        pool, offering, session.id if session else None, person, source, now, browser_key, quote
    )
    # The seat is certain now (under the lock): their place ends, before the seat statement
    # (which refuses anyone still on the waitlist) runs.
    claimed_offer = end_waitlist_place(place)
    try:
        if claimed_offer is None:
            taken = seats.take_seat_and_register(pool, registration)
            assert taken, "seat rule broken: the locked pool had a free seat"
        else:  # the seat their offer held becomes the registration's: seats_taken does not change
            db.session.add(registration)
            db.session.flush()
            claimed_offer.registration_id = registration.id
            if registration.status == RegistrationStatus.CONFIRMED:
                queue_email(EmailKind.REGISTRATION_CONFIRMED, registration=registration)
    except IntegrityError:
        return _concurrent_twin(pool.id, person, browser_key, source, now)
    if code is not None and quote is not None:
        pricing.write_redemption(
            code, person.email_normalized, quote.discount_cents, now, registration_id=registration.id
        )
    if claimed_offer is not None and quote is not None and quote.community:
        seats.offer_free_seats(pool, now)  # the general seat their offer held is free again
    if accepted is not None:
        consent.record_acceptance(registration, accepted, now)
    db.session.commit()
    return _registered(registration)


class _NoSeat(Exception):
    """No seat this choice may take (general sale may not use the kept community seats)."""


def _price_under_lock(
    offering: Offering,
    pool: SeatPool,
    choice: pricing.PriceChoice,
    email_normalized: str,
    offered: bool,
    now: datetime,
) -> tuple[pricing.Quote | None, PromoCode | None]:
    """The price of a new booking in the locked `pool` (None: the plain list price): quoted,
    the community seats counted, the code's row locked after the pool (pools -> promo code ->
    passes -> payments) and its uses counted under that lock; the caller writes its use with
    the registration. `offered`: the seat is one a waitlist offer held for them. On a refusal
    (RegistrationError for the form, or _NoSeat) what release_lapsed did is committed and
    nothing else is written."""
    if choice.is_plain and not pricing.keeps_community_seats(offering):
        return None, None
    try:
        quote = _quote(offering, choice, email_normalized, now, count_uses=False)
        _check_community_seat(offering, pool, choice, offered, now)
        code = None
        if quote.code is not None:  # (after the pool: pools -> promo code)
            code = pricing.lock_for_use(quote.code.id, email_normalized, now)
    except (RegistrationError, _NoSeat):
        db.session.commit()  # keep what release_lapsed did; nothing else was written
        raise
    except pricing.PricingError as error:  # the code, used up under its lock
        db.session.commit()
        raise RegistrationError(str(error), field=error.field) from None
    return quote, code


def _quote(
    offering: Offering,
    choice: pricing.PriceChoice,
    email_normalized: str,
    now: datetime,
    count_uses: bool = True,
) -> pricing.Quote:
    try:
        return pricing.quote(
            offering,
            tier_id=choice.tier_id,
            code=choice.code,
            community=choice.community,
            email_normalized=email_normalized,
            now=now,
            count_uses=count_uses,
        )
    except pricing.PricingError as error:
        raise RegistrationError(str(error), field=error.field) from None


def _check_community_seat(
    offering: Offering, pool: SeatPool, choice: pricing.PriceChoice, offered: bool, now: datetime
) -> None:
    """Under the pool's lock: a community seat only while one is kept; general sale only in
    capacity - (community seats not yet taken) until they are released. A seat a waitlist offer
    held for them (`offered`) is already theirs."""
    community = pricing.community_seats(offering, pool, now)
    if choice.community:
        if community.kept <= 0:
            raise RegistrationError(
                gettext("The community seats are all taken. Please choose another price."),
                field="price_choice",
            )
        return
    if offered or community.left_for_general > 0:
        return
    if community.kept > 0:
        raise OnlyCommunitySeatsLeft(str(ONLY_COMMUNITY_SEATS_LEFT), field="price_choice")
    raise _NoSeat


class OnlyCommunitySeatsLeft(RegistrationError):
    """A general seat asked for where only kept community seats are free: they may take one,
    or join the waitlist for a general seat (join_waitlist lets them)."""


def _registered(registration: Registration) -> RegisterResult:
    paid = registration.status == RegistrationStatus.HELD
    return RegisterResult(Outcome.HELD if paid else Outcome.CONFIRMED, registration)


def _concurrent_twin(
    pool_id: int, person: Person, browser_key: str, source: str, now: datetime
) -> RegisterResult:
    """The unique index caught a concurrent twin of this registration (nothing was written)."""
    db.session.rollback()
    existing = find_live_registration(pool_id, person.email_normalized)
    if existing is None:
        return RegisterResult(Outcome.ALREADY_REGISTERED)
    outcome = _answer_existing(existing, browser_key, source, now)
    db.session.commit()
    return RegisterResult(outcome, existing)


def _needs_the_lock(pool_id: int, email_normalized: str, now: datetime) -> bool:
    """A full pool holds a lapsed hold or offer to release, or this person's waitlist place.
    (What everyone who finds a class full is asked: the statement is built once.)"""
    params = {
        "pool_id": pool_id,
        "email_normalized": email_normalized,
        "now": now,
        "grace_start": payment_grace_start(now),
    }
    return bool(db.session.scalar(_needs_the_lock_statement(), params))


@functools.cache
def _needs_the_lock_statement() -> sa.Select[tuple[bool]]:
    pool_id = sa.bindparam("pool_id", type_=sa.Integer)
    waitlisted = (
        sa.select(WaitlistEntry.id)
        .where(
            WaitlistEntry.seat_pool_id == pool_id,
            WaitlistEntry.email_normalized == sa.bindparam("email_normalized"),
            WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES),
        )
        .exists()
    )
    now = sa.bindparam("now", type_=UTCDateTime())
    grace_start = sa.bindparam("grace_start", type_=UTCDateTime())
    return sa.select(sa.or_(seats.lapsed_in_pool(pool_id, now, grace_start), waitlisted))


def _commit_keeping_what_was_written() -> None:
    """Commit without expiring what the session holds: the registration and the pool were
    written with every value known (take_seat_and_register), so the redirect that follows
    reads them without another query."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


# --- Cancellation and the refund policy ---


def first_session_start(registration: Registration) -> datetime | None:
    if registration.session_id:
        assert registration.session is not None  # session_id is a foreign key
        return registration.session.starts_at
    return db.session.scalar(
        sa.select(sa.func.min(Session.starts_at)).where(
            Session.offering_id == registration.offering_id, Session.status == SessionStatus.SCHEDULED
        )
    )


def succeeded_payment(registration: Registration) -> Payment | None:
    """The payment that paid for the seat: succeeded, and not an extra one we sent back.

    A registration that left its hold unconfirmed (expired, or cancelled while held) had no
    seat paid for: a payment that arrived for it anyway is an extra one, even when nothing was
    left to send back and so no unplaced-payment refund row marks it."""
    unconfirmed_and_gone = (RegistrationStatus.EXPIRED, RegistrationStatus.CANCELLED)
    if registration.confirmed_at is None and registration.status in unconfirmed_and_gone:
        return None
    extra = sa.select(Refund.payment_id).where(Refund.kind == RefundKind.UNPLACED_PAYMENT)
    return db.session.scalar(
        sa.select(Payment)
        .where(
            Payment.registration_id == registration.id,
            Payment.status == PaymentStatus.SUCCEEDED,
            Payment.id.not_in(extra),
        )
        .order_by(Payment.id)
        .limit(1)
    )


def latest_succeeded_payment(registration: Registration) -> Payment | None:
    """Any payment of this registration that went through, the latest first: also one that
    came too late for its seat and is being sent back (which succeeded_payment leaves out)."""
    return db.session.scalar(
        sa.select(Payment)
        .where(Payment.registration_id == registration.id, Payment.status == PaymentStatus.SUCCEEDED)
        .order_by(Payment.id.desc())
        .limit(1)
    )


def moved_since_registering(registration: Registration) -> bool:
    """A session it covers was moved (time or place) after it was made."""
    covered = (
        Session.id == registration.session_id
        if registration.session_id
        else Session.offering_id == registration.offering_id
    )
    moved = db.session.scalar(
        sa.select(Session.id)
        .where(
            covered,
            Session.status == SessionStatus.SCHEDULED,
            Session.moved_at.is_not(None),
            Session.moved_at > registration.created_at,
        )
        .limit(1)
    )
    return moved is not None


@dataclass(frozen=True)
class RefundQuote:
    amount_cents: int
    full: bool
    cutoff: datetime | None
    explanation: str


def refund_quote(registration: Registration, now: datetime | None = None) -> RefundQuote:
    """What cancelling now would refund, by the offering's policy, of what is left to refund
    (refunds issued or on their way already count). Under the refund locks it is exact."""
    now = now or utcnow()
    # Every payment that paid for the seat: its first, and a balance paid after a transfer.
    paid = refunds.refundable_total(seat_payments(registration))
    offering = registration.offering
    start = first_session_start(registration)
    cutoff = start - timedelta(hours=offering.cancellation_cutoff_hours) if start else None
    if paid <= 0:
        return RefundQuote(0, True, cutoff, gettext("Nothing was paid, so there is nothing to refund."))
    if moved_since_registering(registration):
        # The clinic changed the time or place: whoever can't make it is refunded in full.
        # No cut-off applies (None: the page shows no "full refunds until").
        return RefundQuote(
            paid,
            True,
            None,
            gettext("The clinic moved this after you registered, so you will get a full refund."),
        )
    if cutoff is None or now <= cutoff:
        return RefundQuote(paid, True, cutoff, gettext("You will get a full refund."))
    share = offering.late_cancel_refund_percent
    amount = paid * share // 100
    hours = offering.cancellation_cutoff_hours
    if amount:
        text = ngettext(
            "It is less than %(num)d hour before the start, so the policy refunds "
            "%(share)s%% of what you paid.",
            "It is less than %(num)d hours before the start, so the policy refunds "
            "%(share)s%% of what you paid.",
            hours,
            share=share,
        )
    else:
        text = ngettext(
            "It is less than %(num)d hour before the start, so the policy does not give a refund.",
            "It is less than %(num)d hours before the start, so the policy does not give a refund.",
            hours,
        )
    return RefundQuote(amount, False, cutoff, text)


def pass_credits_come_back(registration: Registration, now: datetime) -> bool:
    """Whether cancelling a booking paid with a class pass now returns its credits: before the
    offering's cut-off, or at any time after the clinic moved it (else they stay spent)."""
    if moved_since_registering(registration):
        return True
    start = first_session_start(registration)
    if start is None:
        return True
    return now <= start - timedelta(hours=registration.offering.cancellation_cutoff_hours)


@dataclass(frozen=True)
class SettledCredits:
    """What ending a class pass booking did with its credits."""

    back: int = 0  # given back onto the pass, to book with again
    # Given back onto a pass whose unused credits were already refunded: refunded as money
    # instead, each of its payments with the cents queued on it (None: not so).
    refunds: list[tuple[Payment, int]] | None = None

    @property
    def refunded_cents(self) -> int | None:
        return sum(cents for _, cents in self.refunds) if self.refunds is not None else None

    @property
    def desk_method(self) -> str:
        """ "cash" or "check" when all of the refund is handed back at the desk (the pass was
        bought there: recorded as given at once, never sent to a card); "" otherwise."""
        return refunding.desk_method(self.refunds or [])


def settle_pass_credits(
    registration: Registration,
    now: datetime,
    give_back: bool,
    reason: str = "",
    clinic_caused: bool = False,
    actor_id: int | None = None,
) -> SettledCredits:
    """Give back (ledger RETURN) or forfeit (a row of zero) a cancelled pass booking's credits,
    at most once. The caller holds the seat pool's lock: the pass is locked after it, then, if
    the pass was refunded, its payments (lock them first, with the caller's others, in one id
    order: refunding.payments_of_refunded_passes). `clinic_caused`: the clinic cancelled or
    moved the class, so credits given back stay usable PASS_RETURN_EXTENSION_DAYS (the pass is
    extended if it must be); else, given back onto a pass already expired, they expire at once.
    Onto a refunded pass they can't be used again, so they are refunded as money
    (refunding.refund_returned_credits)."""
    if registration.pass_id is None or not registration.credits_spent:
        return SettledCredits()
    if not give_back:
        ledger.forfeit(registration, now, reason=reason or "Cancelled late")
        return SettledCredits()
    days = current_app.config["PASS_RETURN_EXTENSION_DAYS"] if clinic_caused else None
    entry = ledger.give_back(registration, now, reason=reason or "Cancelled in time", usable_for_days=days)
    if entry is None:
        return SettledCredits()
    if refunding.is_refunded(registration):
        assert registration.class_pass is not None  # (is_refunded says it is there)
        queued = refunding.refund_returned_credits(
            registration.class_pass,
            registration,
            entry.credits,
            now,
            kind=RefundKind.CLINIC_CANCELLATION if clinic_caused else RefundKind.CANCELLATION,
            reason=reason or "Cancelled in time",
            actor_id=actor_id,
        )
        return SettledCredits(refunds=queued)
    return SettledCredits(back=entry.credits)


def credits_context(registration: Registration, settled: SettledCredits, now: datetime) -> dict:
    """What a cancellation email says about a pass booking's credits (templates/emails/
    registration_cancelled.*): spent, back on the pass, back but expired at once, or refunded."""
    context: dict = {"credits_spent": registration.credits_spent, "credits_back": settled.back}
    if settled.back and credits_expire_on_return(registration, now):
        context["credits_expired"] = True
    if settled.refunded_cents is not None:
        context["credits_refunded_cents"] = settled.refunded_cents
        if settled.desk_method:
            context["credits_desk_method"] = settled.desk_method
    return context


def credits_expire_on_return(registration: Registration, now: datetime) -> bool:
    """Whether a pass booking's credits, given back now, expire at once: its pass is past its
    expiry (and the clinic did not cancel or move the class, which keeps them usable)."""
    if registration.class_pass is None or moved_since_registering(registration):
        return False
    return ledger.is_expired(registration.class_pass, now)


class QuoteChanged(RegistrationError):
    """The refund cancelling gives now is not the one the person was shown (the cut-off passed,
    or staff refunded meanwhile): nothing was cancelled; show them the new quote."""

    def __init__(self, quote: RefundQuote) -> None:
        super().__init__(gettext("The refund has changed since you opened the page. Please check it again."))
        self.quote = quote


def cancel_registration(
    registration_id: int,
    now: datetime | None = None,
    reason: str = "Cancelled by attendee",
    actor_id: int | None = None,
    expected_refund_cents: int | None = None,
) -> tuple[Registration, int]:
    """Cancel, free the seat for the waitlist, and queue the refund the policy gives.

    Returns the registration and the refund amount queued (cents): what the person is told.
    Cancelling twice is a no-op. The worker sends the refund to Stripe after commit.
    `expected_refund_cents`: the refund the person confirmed; if the policy now gives another
    amount, QuoteChanged is raised and nothing changes (they are asked again).
    """
    now = now or utcnow()
    registration = db.session.get_one(Registration, registration_id)
    pool = seats.lock_pool(registration.seat_pool_id)
    db.session.refresh(registration)
    if registration.status not in (RegistrationStatus.CONFIRMED, RegistrationStatus.HELD):
        db.session.commit()
        return registration, 0

    if registration.pass_id is not None:
        ledger.lock_pass(registration.pass_id)  # passes before payments
    paid_with = seat_payments(registration)
    # In id order, after the pool and the pass: the quote below is exact. A refunded pass's
    # payments too: credits given back onto it are refunded as money (settle_pass_credits).
    for payment_id in sorted(
        {p.id for p in paid_with + refunding.payments_of_refunded_passes([registration])}
    ):
        refunds.lock_for_refund(payment_id)
    quote = refund_quote(registration, now)
    if expected_refund_cents is not None and quote.amount_cents != expected_refund_cents:
        db.session.rollback()  # nothing written: only the locks go
        raise QuoteChanged(quote)
    # An on-time cancellation (a full refund) gives the code's use back; so does an unpaid hold.
    was_held = registration.status == RegistrationStatus.HELD
    on_time = quote.cutoff is None or now <= quote.cutoff  # (no cut-off: the clinic moved it)
    mark_cancelled(registration, reason, now, give_back_code=on_time or was_held)
    refund_cents = 0
    if paid_with and quote.amount_cents > 0:
        queued = refunds.queue_refunds_across(
            paid_with,
            quote.amount_cents,
            kind=RefundKind.CANCELLATION,
            key=f"cancel-registration-{registration.id}",
            reason=reason,
            actor_id=actor_id,
        )
        refund_cents = sum(amount for _, amount in queued)
    context: dict = {"refund_cents": refund_cents, "currency": registration.currency}
    if registration.pass_id is not None and registration.credits_spent:
        # Booked with a class pass (locked above): its credits come back before the cut-off or
        # after a move, else stay spent; onto a refunded pass, as money.
        settled = settle_pass_credits(
            registration,
            now,
            pass_credits_come_back(registration, now),
            clinic_caused=moved_since_registering(registration),
            actor_id=actor_id,
        )
        context |= credits_context(registration, settled, now)
    queue_email(EmailKind.REGISTRATION_CANCELLED, registration=registration, context=context)
    seats.free_seat(pool, now)
    db.session.commit()
    return registration, refund_cents


# --- Waitlist ---


class WaitlistOutcome(Enum):
    JOINED = "joined"
    ALREADY_WAITING = "already_waiting"
    RESUME = "resume"  # this browser holds (or has) a seat here: back to it, as register() does
    ALREADY_REGISTERED = "already_registered"
    SEATS_AVAILABLE = "seats_available"


@dataclass
class WaitlistResult:
    outcome: WaitlistOutcome
    entry: WaitlistEntry | None = None
    registration: Registration | None = None


# Joining a waitlist again with an email already on it. A waitlist entry stores no browser
# key (unlike a registration), so the form can't tell the person who joined from someone who
# typed their email: it always answers neutrally, with no link, and the entry's own address
# gets the link to its place (the waitlist-joined email again, flagged "again"), one per entry
# per LINK_EMAIL_WINDOW, as registering again does.
def _email_waitlist_link(entry: WaitlistEntry, now: datetime) -> None:
    window = int(now.timestamp() // LINK_EMAIL_WINDOW.total_seconds())
    queue_email(
        EmailKind.WAITLIST_JOINED, waitlist_entry=entry, key_parts=(f"t{window}",), context={"again": True}
    )


def join_waitlist(
    offering: Offering,
    session_id: int | None,
    person: Person,
    now: datetime | None = None,
    browser_key: str = "",
) -> WaitlistResult:
    """Join the waitlist of a full pool. Someone who holds its last seat while paying sees it
    full: from the browser that made the hold they are taken back to it (RESUME), as register()
    does; from another browser the link is emailed, as there. Someone already waiting gets the
    link to their place by email (ALREADY_WAITING, see _email_waitlist_link)."""
    now = now or utcnow()
    pool, _session = registration_target(offering, session_id, now)
    pool = seats.lock_pool(pool.id)
    seats.release_lapsed(pool, now)
    existing_registration = find_live_registration(pool.id, person.email_normalized)
    if existing_registration:
        outcome = _answer_existing(existing_registration, browser_key, "public", now)
        db.session.commit()
        waitlist_outcome = (
            WaitlistOutcome.RESUME if outcome == Outcome.RESUME else WaitlistOutcome.ALREADY_REGISTERED
        )
        return WaitlistResult(waitlist_outcome, registration=existing_registration)
    existing = db.session.scalar(
        sa.select(WaitlistEntry).where(
            WaitlistEntry.seat_pool_id == pool.id,
            WaitlistEntry.email_normalized == person.email_normalized,
            WaitlistEntry.status.in_(WAITLIST_ACTIVE_STATUSES),
        )
    )
    if existing:
        _email_waitlist_link(existing, now)
        db.session.commit()
        return WaitlistResult(WaitlistOutcome.ALREADY_WAITING, entry=existing)
    # Seats kept for the community price are not for the waitlist (offer_free_seats): with
    # only those left, someone who wants a general seat may wait for one.
    if pricing.community_seats(offering, pool, now).left_for_general > 0:
        db.session.commit()
        return WaitlistResult(WaitlistOutcome.SEATS_AVAILABLE)
    entry = WaitlistEntry(
        seat_pool_id=pool.id,
        name=person.name,
        email=person.email.strip(),
        email_normalized=person.email_normalized,
        phone=person.phone,
        status=WaitlistStatus.WAITING,
        token=new_token(),
        created_at=now,
        language=person.language,
    )
    db.session.add(entry)
    db.session.flush()
    queue_email(EmailKind.WAITLIST_JOINED, waitlist_entry=entry)
    db.session.commit()
    return WaitlistResult(WaitlistOutcome.JOINED, entry=entry)


def leave_waitlist(entry_id: int, now: datetime | None = None) -> WaitlistEntry:
    now = now or utcnow()
    entry = db.session.get_one(WaitlistEntry, entry_id)
    pool = seats.lock_pool(entry.seat_pool_id)
    db.session.refresh(entry)
    if entry.status == WaitlistStatus.WAITING:
        entry.status = WaitlistStatus.LEFT
    elif entry.status == WaitlistStatus.OFFERED:
        entry.status = WaitlistStatus.LEFT
        seats.free_seat(pool, now)  # their held seat goes to the next person
    db.session.commit()
    return entry


def claim_offer(
    entry_id: int,
    now: datetime | None = None,
    browser_key: str = "",
    consent_answer: consent.ConsentAnswer | None = None,
    price_choice: pricing.PriceChoice | None = None,
) -> Registration:
    """Turn a live waitlist offer into a registration; the offered seat becomes theirs.
    Claiming is booking: `consent_answer` is checked and recorded as register() does, and
    `price_choice` (a sliding-scale tier, a community seat, a promo code) is priced as
    register() prices it, under the same locks, with the same refusals (RegistrationError,
    field "price_choice" or "code": the offer stays open). A community seat, while one is
    kept, turns the general seat the offer held back into a free one for the next person."""
    now = now or utcnow()
    entry = db.session.get_one(WaitlistEntry, entry_id)
    pool = seats.lock_pool(entry.seat_pool_id)
    db.session.refresh(entry)
    seats.release_lapsed(pool, now)
    if entry.status == WaitlistStatus.CLAIMED and entry.registration is not None:
        db.session.commit()
        return entry.registration
    if entry.status != WaitlistStatus.OFFERED:
        db.session.commit()
        raise RegistrationError(gettext("This offer is no longer open."))
    if find_live_registration(pool.id, entry.email_normalized) is not None:
        entry.status = WaitlistStatus.LEFT
        seats.free_seat(pool, now)
        db.session.commit()
        raise RegistrationError(
            gettext("You're already registered, so we've passed this seat to the next person.")
        )
    offering = pool.offering
    accepted = _consent_to_record(offering, consent_answer)
    session = db.session.scalar(sa.select(Session).where(Session.seat_pool_id == pool.id).limit(1))
    session_id = None
    if offering.kind.per_session:
        assert session is not None  # a class's seat pool is its session's
        session_id = session.id
    person = Person(entry.name, entry.email, entry.phone, entry.language)
    try:
        # A free seat has no price to choose and nothing for a code to take off: a code posted
        # anyway (the page shows none) is not spent on it.
        choice = pricing.PriceChoice() if offering.is_free or price_choice is None else price_choice
        quote, code = _price_under_lock(offering, pool, choice, entry.email_normalized, True, now)
    except _NoSeat:  # (not raised for an offered seat: it is theirs)
        raise AssertionError("seat rule broken: an offered seat refused") from None
    registration = _new_registration(pool, offering, session_id, person, "waitlist", now, browser_key, quote)
    paid = registration.status == RegistrationStatus.HELD
    # The seat the offer held moves to the registration: seats_taken does not change.
    db.session.add(registration)
    db.session.flush()
    entry.status = WaitlistStatus.CLAIMED
    entry.registration_id = registration.id
    if code is not None and quote is not None:
        pricing.write_redemption(
            code, entry.email_normalized, quote.discount_cents, now, registration_id=registration.id
        )
    if quote is not None and quote.community:
        seats.offer_free_seats(pool, now)  # the general seat the offer held is free again
    if accepted is not None:
        consent.record_acceptance(registration, accepted, now)
    if not paid:
        queue_email(EmailKind.REGISTRATION_CONFIRMED, registration=registration)
    db.session.commit()
    return registration


def registration_by_token(token: str) -> Registration | None:
    return db.session.scalar(sa.select(Registration).where(Registration.token == token))


def waitlist_entry_by_token(token: str) -> WaitlistEntry | None:
    return db.session.scalar(sa.select(WaitlistEntry).where(WaitlistEntry.token == token))


def registration_sessions(registration: Registration) -> list[Session]:
    """The sessions a registration covers: its class, or every session of the offering."""
    if registration.session_id:
        assert registration.session is not None  # session_id is a foreign key
        return [registration.session]
    return list(
        db.session.scalars(
            sa.select(Session)
            .where(Session.offering_id == registration.offering_id)
            .order_by(Session.starts_at)
        )
    )


def waitlist_sessions(entry: WaitlistEntry) -> list[Session]:
    """The sessions a waitlist place is for: its class, or every session of the workshop or
    course (the sessions that count their seats in its pool)."""
    return list(
        db.session.scalars(
            sa.select(Session)
            .where(Session.seat_pool_id == entry.seat_pool_id)
            .options(joinedload(Session.location))
            .order_by(Session.starts_at)
        )
    )


class CapacityError(RegistrationError):
    pass


def change_capacity(pool_id: int, capacity: int, now: datetime | None = None) -> SeatPool:
    """Set a pool's capacity. It cannot go below the seats already taken; new seats go to the waitlist."""
    pool = seats.lock_pool(pool_id)
    try:
        resize_locked_pool(pool, capacity, now or utcnow())
    except CapacityError:
        db.session.commit()  # keep what release_lapsed did
        raise
    db.session.commit()
    return pool


def resize_locked_pool(pool: SeatPool, capacity: int, now: datetime) -> None:
    """change_capacity() for a pool the caller has locked, in the caller's transaction."""
    seats.release_lapsed(pool, now)
    if capacity < pool.seats_taken:
        raise CapacityError(f"{pool.seats_taken} seats are already taken; capacity can't go below that.")
    pool.capacity = capacity
    pool.version += 1
    seats.offer_free_seats(pool, now)
