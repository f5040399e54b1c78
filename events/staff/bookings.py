"""Changing one member's booking at the front desk: cancel it (with the refund staff choose),
transfer it to another date or offering, correct the person's details, and take payment at
the desk (cash, check or comp) for a seat held while they pay.

Every change takes the seat pool locks first (several in id order), then the payment row, as
events/payments/refunds.py and events/registration/seats.py describe, writes its emails and
refund rows in the same transaction, and is audited with who did it and why. Desk payments
never reach Stripe; a card payment still open for the seat is cancelled after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from events import audit, pricing
from events.extensions import db
from events.models import (
    OPEN_PAYMENT_STATUSES,
    Offering,
    OutboxEmail,
    Payment,
    PaymentMethod,
    PaymentStatus,
    RefundKind,
    Registration,
    RegistrationStatus,
    SeatPool,
    Session,
    SessionStatus,
    User,
    utcnow,
)
from events.notifications.outbox import EmailKind, queue_email
from events.passes import ledger
from events.passes.booking import move_spend as move_pass_spend
from events.passes.booking import transfer_refusal as pass_transfer_refusal
from events.passes.refunding import payments_of_refunded_passes, returned_credits_quote
from events.payments import refunds
from events.payments.balances import balance_due, seat_payments
from events.payments.services import stop_superseded_intent
from events.registration import seats
from events.registration.services import (
    Person,
    RegistrationError,
    address_digest,
    credits_context,
    find_live_registration,
    first_session_start,
    holds_offer,
    leave_waitlist_on_registering,
    mark_cancelled,
    moved_since_registering,
    new_token,
    normalize_email,
    pass_credits_come_back,
    refund_quote,
    registration_target,
    settle_pass_credits,
    succeeded_payment,
)
from events.staff.errors import AdminError


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def when_label(registration: Registration) -> str:
    """What a registration is for, in the location's time: "Core Flow, Tue Dec 8, 6:00 pm CST"."""
    return place_label(registration.offering, registration.session)


def place_label(offering: Offering, session: Session | None) -> str:
    if session is None:
        first = db.session.scalar(
            sa.select(Session)
            .where(Session.offering_id == offering.id, Session.status == SessionStatus.SCHEDULED)
            .order_by(Session.starts_at)
            .limit(1)
        )
        if first is None:
            return offering.title
        return f"{offering.title}, from {_local(first)}"
    return f"{offering.title}, {_local(session)}"


def _local(session: Session) -> str:
    # The staff pages' own form, without the year (a booking is for the weeks ahead).
    start = session.local_start
    meridiem = "am" if start.hour < 12 else "pm"
    return f"{start:%a %b %-d, %-I:%M} {meridiem} {start.tzname()}"


def _lock_payment_rows(registration_id: int, also: list[Payment] | None = None) -> list[Payment]:
    """Every payment row of the registration, and `also`'s, locked in id order (the caller
    holds its pool, and its pass, already)."""
    also_ids = [p.id for p in also or []]
    return list(
        db.session.scalars(
            sa.select(Payment)
            .where(sa.or_(Payment.registration_id == registration_id, Payment.id.in_(also_ids)))
            .order_by(Payment.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


# --- Cancel, with the refund staff choose ---


class RefundChoice(Enum):
    FULL = "full"
    POLICY = "policy"
    NONE = "none"


@dataclass(frozen=True)
class CancelQuote:
    registration: Registration
    refund_cents: int
    paid_cents: int  # what is left of what was paid (refunds given or on their way count)
    method: PaymentMethod | None  # how it was paid (None: nothing paid)
    policy_explanation: str
    # Booked with a class pass already refunded, and this choice gives its credits back: they
    # are refunded as money instead (refunding.refund_returned_credits), this much, a quote.
    credits_refund_cents: int = 0
    credits_method: PaymentMethod | None = None  # how the pass was paid

    @property
    def refund_where(self) -> str:
        """Where the refund goes, for the confirmation: "to her card", "in cash at the desk"."""
        return refund_where(self.method)

    @property
    def credits_refund_where(self) -> str:
        return refund_where(self.credits_method)


def refund_where(method: PaymentMethod | None) -> str:
    """Where a refund of a payment made so goes: "to their card", "in cash at the desk"."""
    if method is None or method is PaymentMethod.CARD:
        return "to their card"
    return f"in {method.value} at the desk" if method is PaymentMethod.CASH else "at the desk"


def cancel_quote(
    registration: Registration, choice: RefundChoice, now: datetime | None = None
) -> CancelQuote:
    """What cancelling with this choice refunds (exact under the refund locks, else a quote)."""
    now = now or utcnow()
    payment = succeeded_payment(registration)
    # Every payment that paid for the seat (its first, and a balance paid after a transfer).
    left = refunds.refundable_total(seat_payments(registration))
    policy = refund_quote(registration, now)
    amount = {RefundChoice.FULL: left, RefundChoice.POLICY: policy.amount_cents, RefundChoice.NONE: 0}[choice]
    gives_credits_back = bool(registration.pass_id and registration.credits_spent) and (
        choice is RefundChoice.FULL
        or (choice is RefundChoice.POLICY and pass_credits_come_back(registration, now))
    )
    pass_payment, credits_cents = returned_credits_quote(registration) if gives_credits_back else (None, 0)
    return CancelQuote(
        registration,
        amount,
        left,
        payment.method if payment is not None else None,
        policy.explanation.replace("you paid", "they paid").replace("You will", "They would"),
        credits_cents,
        pass_payment.method if pass_payment is not None else None,
    )


@dataclass(frozen=True)
class CancelResult:
    registration: Registration
    refund_cents: int
    at_desk: bool  # the refund is handed back at the desk (a cash or check payment)
    # A class pass credit refunded as money (its pass was already refunded), and where it goes.
    credits_refund_cents: int = 0
    credits_method: PaymentMethod | None = None


def cancel_booking(
    registration_id: int, choice: RefundChoice, reason: str, actor: User, expected_refund_cents: int
) -> CancelResult:
    """Cancel a member's registration as staff: the seat is freed and offered to the waitlist,
    the refund chosen is queued (a desk payment's is handed back at the desk), and the member
    is emailed. `expected_refund_cents` is what the confirmation showed: if it changed meanwhile
    (a refund slipped in, the cut-off passed), nothing is done and staff are asked again."""
    now = utcnow()
    registration = db.session.get_one(Registration, registration_id)
    pool = seats.lock_pool(registration.seat_pool_id)
    db.session.refresh(registration)
    if registration.status not in (RegistrationStatus.CONFIRMED, RegistrationStatus.HELD):
        db.session.rollback()
        raise AdminError("This registration is no longer booked or held, so there is nothing to cancel.")
    # Every payment row, in id order, after the pool (the refund locks' order; lock_for_refund
    # below then finds them held). A seat held while they pay may still have its card form
    # open: that PaymentIntent is cancelled after commit, so it can't charge for a seat given
    # up (one that charged in between is refunded by the unplaced-payment path).
    if registration.pass_id is not None:
        ledger.lock_pass(registration.pass_id)  # passes before payments
    # With the payments of its pass if that was refunded: credits given back onto it are
    # refunded as money (settle_pass_credits).
    locked = _lock_payment_rows(registration.id, also=payments_of_refunded_passes([registration]))
    open_intents = [
        p.stripe_payment_intent_id
        for p in locked
        if p.registration_id == registration.id
        and p.status in OPEN_PAYMENT_STATUSES
        and p.stripe_payment_intent_id
    ]
    paid_with = seat_payments(registration)
    for paid in paid_with:  # (held already, in id order: lock_for_refund is a no-op then)
        refunds.lock_for_refund(paid.id)
    quote = cancel_quote(registration, choice, now)
    if quote.refund_cents != expected_refund_cents:
        db.session.rollback()
        raise AdminError(
            f"The refund is now {money(quote.refund_cents)}, not {money(expected_refund_cents)} "
            "(something changed since the page was opened). Check it and confirm again."
        )
    mark_cancelled(registration, f"Cancelled by staff: {reason}", now)
    # Booked with a class pass: "full" gives its credits back, "none" keeps them spent, and
    # "policy" gives them back before the cut-off (or after a move); onto a refunded pass, as
    # money. The pass and its payments were locked above.
    settled = settle_pass_credits(
        registration,
        now,
        choice is RefundChoice.FULL
        or (choice is RefundChoice.POLICY and pass_credits_come_back(registration, now)),
        reason=f"Cancelled by staff ({choice.value}): {reason}",
        # A move is the clinic's doing: the credits stay usable (the pass extended if need be).
        clinic_caused=moved_since_registering(registration),
        actor_id=actor.id,
    )
    refund_cents = 0
    if paid_with and quote.refund_cents > 0:
        queued = refunds.queue_refunds_across(
            paid_with,
            quote.refund_cents,
            kind=RefundKind.CANCELLATION,
            key=f"cancel-registration-{registration.id}",
            reason=f"Cancelled by staff: {reason}",
            actor_id=actor.id,
        )
        refund_cents = sum(amount for _, amount in queued)
    if registration.email:
        context: dict = {"refund_cents": refund_cents, "currency": registration.currency}
        if registration.pass_id is not None and registration.credits_spent:
            context |= credits_context(registration, settled, now)
        queue_email(EmailKind.REGISTRATION_CANCELLED, registration=registration, context=context)
    seats.free_seat(pool, now)
    audit.record_about(
        actor.id,
        "registration.cancelled_by_staff",
        registration,
        when=when_label(registration),
        refund_choice=choice.value,
        refund_cents=refund_cents,
        credits_back=settled.back,
        credits_refunded_cents=settled.refunded_cents,
        credits_refund_method=settled.desk_method or ("card" if settled.refunded_cents else ""),
        method=quote.method.value if quote.method else "",
        reason=reason[:200],
    )
    db.session.commit()
    for intent_id in open_intents:
        stop_superseded_intent(intent_id)
    return CancelResult(
        registration,
        refund_cents,
        quote.method is not None and quote.method.at_desk,
        settled.refunded_cents or 0,
        PaymentMethod(settled.desk_method) if settled.desk_method else PaymentMethod.CARD,
    )


# --- Transfer to another date or offering ---


@dataclass(frozen=True)
class TransferQuote:
    registration: Registration
    offering: Offering
    session: Session | None  # the new date (a class's); None: the whole workshop or course
    paid_cents: int  # what they have paid and not had back
    new_price_cents: int
    method: PaymentMethod | None
    community_seat: bool = False  # the new seat is one kept for the community price
    # Why a community-seat booking moves onto a general seat at the general price ('': it
    # doesn't); the confirmation page says it, and confirming accepts it.
    community_gone: str = ""

    @property
    def difference_cents(self) -> int:
        """Positive: the new booking costs more (owed at the desk); negative: refunded."""
        if self.method is PaymentMethod.COMP:
            return 0  # the clinic gave the seat; the new one is given too
        return self.new_price_cents - self.paid_cents

    @property
    def label(self) -> str:
        return place_label(self.offering, self.session)


def transfer_targets(registration: Registration, now: datetime | None = None) -> list[tuple[str, str]]:
    """Where a booking can be moved: each upcoming date of a drop-in class (another one of its
    own offering first), each upcoming workshop or course as a whole; (value, label) pairs."""
    now = now or utcnow()
    rows = db.session.execute(
        sa.select(Session, Offering, SeatPool)
        .join(Offering, Offering.id == Session.offering_id)
        .join(SeatPool, SeatPool.id == Session.seat_pool_id)
        .where(
            Session.status == SessionStatus.SCHEDULED,
            Session.starts_at > now,
            Offering.is_cancelled.is_(False),
            Offering.is_published.is_(True),  # registration_target refuses the others
            Session.seat_pool_id != registration.seat_pool_id,
        )
        .options(joinedload(Session.location))  # each label's local time: not a query per date
        .order_by(Offering.id != registration.offering_id, Offering.title, Session.starts_at)
        .limit(400)
    ).all()
    choices: list[tuple[str, str]] = []
    seen_pools: set[int] = set()
    # Seats kept for the community price: only a community-seat booking may move onto one.
    kept = pricing.community_kept_by_pool(((offering, pool) for _s, offering, pool in rows), now)
    for session, offering, pool in rows:
        if pool.id in seen_pools:
            continue  # a workshop's later dates: it is booked as a whole, from its first
        seen_pools.add(pool.id)
        left = pool.seats_left
        seats_text = "full" if left == 0 else f"{left} seat{'s' if left != 1 else ''} left"
        if kept[pool.id]:
            seats_text += f", {kept[pool.id]} of them community"
        price = "free" if offering.is_free else money(offering.price_cents)
        if offering.kind.per_session:
            choices.append(
                (f"{offering.id}-{session.id}", f"{place_label(offering, session)} ({price}, {seats_text})")
            )
        else:
            # Its first row is its first upcoming date (rows run by start within an offering).
            label = f"{offering.title}, from {_local(session)}, all dates"
            choices.append((f"{offering.id}", f"{label} ({price}, {seats_text})"))
    return choices


def parse_target(value: str) -> tuple[int, int | None]:
    """A transfer target's form value, "12-40" (offering 12, session 40) or "12"."""
    offering_part, _, session_part = value.partition("-")
    if not offering_part.isdigit() or (session_part and not session_part.isdigit()):
        raise AdminError("Choose one of the listed dates.", "target")
    offering_id = int(offering_part)
    session_id = int(session_part) if session_part else None
    if offering_id > 2**31 - 1 or (session_id or 0) > 2**31 - 1:
        raise AdminError("Choose one of the listed dates.", "target")
    return offering_id, session_id


def _target(
    offering_id: int, session_id: int | None, now: datetime
) -> tuple[Offering, SeatPool, Session | None]:
    offering = db.session.get(Offering, offering_id)
    if offering is None:
        raise AdminError("Choose one of the listed dates.", "target")
    try:
        pool, session = registration_target(offering, session_id, now)
    except RegistrationError as error:
        raise AdminError(str(error), "target") from error
    return offering, pool, session


class CommunitySeatGone(AdminError):
    """A community-seat booking's target has no community seat kept for it (taken since the
    page was opened): staff confirm again, accepting a general seat at the general price."""


@dataclass(frozen=True)
class TargetSeat:
    """The seat a transfer takes on its target, and its price."""

    price: pricing.TransferPrice
    community_gone: str  # why a community-seat booking takes a general seat ('': it doesn't)


def _community_gone(
    registration: Registration, offering: Offering, community: pricing.CommunitySeats, now: datetime
) -> str:
    """Why a community-seat booking gets no community seat on `offering`, in staff's words."""
    if registration.offering_id != offering.id:
        own = registration.offering.title
        return f"the community price is {own}'s, and {offering.title} is another offering"
    if not pricing.keeps_community_seats(offering):
        return f"{offering.title} keeps no community seats now"
    if community.release_at is not None and now >= community.release_at:
        hours = offering.community_release_hours
        return f"its community seats joined general sale {hours} hours before the start"
    seats_kept = offering.community_seats
    return f"its {seats_kept} community seat{'s are' if seats_kept != 1 else ' is'} taken"


def _target_seat(
    registration: Registration,
    offering: Offering,
    pool: SeatPool,
    now: datetime,
    *,
    offered: bool,
    accept_general_seat: bool,
    check_free: bool = True,
) -> TargetSeat:
    """Which seat the booking takes on the target, and its price, by the community seats kept
    there (exact under the pool's lock; read without it for the confirmation page). A
    community-seat booking takes a kept community seat if one is left there; else, with
    `accept_general_seat` (staff were told why), a general seat at the general price
    (pricing.transfer_price: its tier if any, the list price, its code if it covers it). Any
    other booking takes a general seat: the one a waitlist offer holds for them (`offered`), or
    one general sale may use, never a seat kept for the community. AdminError when there is
    no such seat (not checked with `check_free` False: the confirmation page)."""
    community = pricing.community_seats(offering, pool, now)
    if pricing.may_keep_community_price(registration, offering) and community.kept > 0:
        return TargetSeat(pricing.transfer_price(registration, offering, community=True), "")
    if check_free and not offered and community.left_for_general <= 0:
        if community.kept > 0:
            raise AdminError(
                f"That one has only community seats left ({community.kept} kept at the community price "
                f"until {offering.community_release_hours} hours before the start), and "
                f"{registration.name}'s booking takes a general seat. Choose another, or raise its "
                "capacity first.",
                "target",
            )
        raise AdminError(
            f"That one is full ({pool.seats_taken} of {pool.capacity} seats taken). "
            "Choose another, or raise its capacity first.",
            "target",
        )
    gone = _community_gone(registration, offering, community, now) if registration.community_seat else ""
    if gone and not accept_general_seat:
        raise CommunitySeatGone(
            f"{registration.name} has a community seat, and there is none for them on that one now: "
            f"{gone}. Check the new price and confirm again to move them onto a general seat."
        )
    return TargetSeat(pricing.transfer_price(registration, offering, community=False), gone)


def transfer_quote(registration: Registration, offering_id: int, session_id: int | None) -> TransferQuote:
    now = utcnow()
    offering, pool, session = _target(offering_id, session_id, now)
    refusal = pass_transfer_refusal(registration, offering)
    if refusal is not None:
        raise AdminError(refusal, "target")
    payment = succeeded_payment(registration)
    # As the transfer would take it now (a full target is refused when confirmed, under the lock).
    seat = _target_seat(
        registration,
        offering,
        pool,
        now,
        offered=bool(registration.email_normalized)
        and holds_offer(pool.id, registration.email_normalized, now),
        accept_general_seat=True,
        check_free=False,
    )
    return TransferQuote(
        registration,
        offering,
        session,
        refunds.refundable_total(seat_payments(registration)),  # a balance paid before counts
        seat.price.price_cents,
        payment.method if payment is not None else None,
        seat.price.community,
        seat.community_gone,
    )


@dataclass(frozen=True)
class TransferResult:
    old: Registration
    new: Registration
    refund_cents: int  # the cheaper target's difference, refunded
    due_cents: int  # the dearer target's difference, to collect at the desk or by the payment link
    method: PaymentMethod | None
    link_sent: bool = False  # the payment link for due_cents was emailed


def transfer_booking(
    registration_id: int,
    offering_id: int,
    session_id: int | None,
    reason: str,
    actor: User,
    expected_difference_cents: int,
    send_payment_link: bool = False,
    accept_general_seat: bool = False,
) -> TransferResult:
    """Move a booked registration to another date or offering, as a new registration (its own
    invite) in place of the old one (cancelled, its invite taken back). The new seat is taken
    under both pools' locks, in id order, then the payment row's: a full target is refused, and
    of two staff taking its last seat at once one succeeds. The payment moves with the booking;
    a cheaper target refunds the difference, a dearer one is collected at the desk or, with
    `send_payment_link`, by card through a payment link emailed to the member.

    Seats kept for the community price (_target_seat): a community-seat booking moves onto one
    if one is kept there; else only with `accept_general_seat` (the confirmation page said why)
    onto a general seat at the general price (CommunitySeatGone without it). Any other booking
    takes a general seat, never a kept community seat."""
    now = utcnow()
    registration = db.session.get_one(Registration, registration_id)
    offering, target_pool, session = _target(offering_id, session_id, now)
    if target_pool.id == registration.seat_pool_id:
        raise AdminError("They are already booked on that one. Choose another date.", "target")
    pools = {
        pool_id: seats.lock_pool(pool_id) for pool_id in sorted({registration.seat_pool_id, target_pool.id})
    }
    db.session.refresh(registration)
    old_pool, new_pool = pools[registration.seat_pool_id], pools[target_pool.id]
    if registration.status != RegistrationStatus.CONFIRMED:
        db.session.rollback()
        raise AdminError("Only a booked (confirmed) registration can be transferred.")
    start = first_session_start(registration)
    if start is not None and start <= now:
        db.session.rollback()
        raise AdminError("Their booking has already started, so it can't be moved.")
    seats.release_lapsed(new_pool, now)
    if registration.email_normalized and find_live_registration(new_pool.id, registration.email_normalized):
        db.session.rollback()
        raise AdminError(f"{registration.name} is already booked on that one.", "target")
    # On its waitlist already: that place ends, and a seat offered to them becomes this one.
    claimed_offer = (
        leave_waitlist_on_registering(new_pool, registration.email_normalized)
        if registration.email_normalized
        else None
    )
    try:
        seat = _target_seat(
            registration,
            offering,
            new_pool,
            now,
            offered=claimed_offer is not None,
            accept_general_seat=accept_general_seat,
        )
    except AdminError:
        db.session.rollback()  # (their waitlist place too: nothing changes)
        raise
    # Every payment row, in id order, after the pools (the refund locks' order). All that paid
    # for the seat move with it (its first payment and a balance paid by the link); a card
    # payment still open for a balance is stopped after commit (a success from it that still
    # arrives finds the old booking cancelled and is refunded once).
    rows = _lock_payment_rows(registration.id)
    open_intents = [
        p.stripe_payment_intent_id
        for p in rows
        if p.status in OPEN_PAYMENT_STATUSES and p.stripe_payment_intent_id
    ]
    paid_with = seat_payments(registration)
    payment = paid_with[0] if paid_with else None
    price = seat.price
    quote = TransferQuote(
        registration,
        offering,
        session,
        refunds.refundable_total(paid_with),
        price.price_cents,
        payment.method if payment is not None else None,
        price.community,
        seat.community_gone,
    )
    difference = quote.difference_cents
    if difference != expected_difference_cents:
        db.session.rollback()
        raise AdminError(
            "The price difference has changed since the page was opened (a refund or payment "
            "went through). Check it and confirm again."
        )
    refusal = pass_transfer_refusal(registration, offering)
    if refusal is not None:
        db.session.rollback()
        raise AdminError(refusal, "target")
    old_label = when_label(registration)
    new = Registration(
        seat_pool_id=new_pool.id,
        offering_id=offering.id,
        session_id=session.id if session is not None else None,
        name=registration.name,
        email=registration.email,
        email_normalized=registration.email_normalized,
        phone=registration.phone,
        language=registration.language,  # still their language after the move
        status=RegistrationStatus.CONFIRMED,
        price_cents=price.price_cents,
        price_tier_id=price.tier_id,
        community_seat=price.community,
        promo_code_id=price.promo_code_id,
        discount_cents=price.discount_cents,
        currency=offering.currency,
        confirmed_at=now,
        token=new_token(),
        source="staff",
    )
    if claimed_offer is None:
        seats.take_seat(new_pool)
    db.session.add(new)
    db.session.flush()
    if claimed_offer is not None:
        claimed_offer.registration_id = new.id
        if price.community:  # the general seat their offer held is free again, for the next one
            seats.offer_free_seats(new_pool, now)
    pricing.move_use(registration.id, new.id if price.promo_code_id is not None else None, now)
    if registration.pass_id is not None:
        move_pass_spend(registration, new)  # the credits spent pay for the new date
    mark_cancelled(registration, f"Transferred to {quote.label}", now)
    refund_cents = 0
    # The money paid moves with the booking: the new registration's receipts and refunds.
    for paid in paid_with:
        paid.registration_id = new.id
    if paid_with and difference < 0:
        queued = refunds.queue_refunds_across(
            paid_with,
            -difference,
            kind=RefundKind.MANUAL,
            key=f"transfer-registration-{registration.id}",
            reason=f"Price difference: moved to {offering.title}",
            actor_id=actor.id,
        )
        refund_cents = sum(amount for _, amount in queued)
    due_cents = max(difference, 0)
    if registration.email:
        queue_email(
            EmailKind.REGISTRATION_CANCELLED,
            registration=registration,
            context={
                "refund_cents": refund_cents,
                "currency": registration.currency,
                "transferred_to": quote.label,
                "desk_method": quote.method.value if quote.method and quote.method.at_desk else "",
            },
        )
        link = bool(due_cents and send_payment_link)
        queue_email(
            EmailKind.REGISTRATION_CONFIRMED,
            registration=new,
            context={"balance_due_cents": due_cents, "currency": new.currency, "payment_link": link}
            if due_cents
            else {},
        )
        if link:
            _queue_balance_link(new, due_cents)
    seats.free_seat(old_pool, now)  # offered to the old date's waitlist
    audit.record(
        actor.id,
        "registration.transferred",
        "registration",
        registration.id,
        name=registration.name,
        offering_id=registration.offering_id,
        new_registration_id=new.id,
        old=old_label,
        new=quote.label,
        refund_cents=refund_cents,
        due_cents=due_cents,
        payment_link_sent=bool(due_cents and send_payment_link and registration.email),
        method=quote.method.value if quote.method else "",
        community_seat=price.community,
        community_gone=seat.community_gone,
        reason=reason[:200],
    )
    db.session.commit()
    for intent_id in open_intents:
        stop_superseded_intent(intent_id)
    link_sent = bool(due_cents and send_payment_link and registration.email)
    return TransferResult(registration, new, refund_cents, due_cents, quote.method, link_sent)


# --- Correct name, email or phone ---


@dataclass(frozen=True)
class Correction:
    registration: Registration
    changed: list[str]  # "name", "email", "phone"
    resent_to: str  # the address the confirmation was sent again to ("": not resent)


def correct_details(registration_id: int, person: Person, reason: str, actor: User) -> Correction:
    """Correct a registration's name, email or phone. A corrected email gets the confirmation
    again (a new outbox row, keyed by the new address, so each address gets it once), and mail
    not yet sent follows the new address; nothing is ever sent again to the old one."""
    registration = db.session.get_one(Registration, registration_id)
    seats.lock_pool(registration.seat_pool_id)  # the one-live-registration-per-email check below
    db.session.refresh(registration)
    new_email, new_normalized = person.email.strip(), normalize_email(person.email)
    changed = [
        field
        for field, old, new in (
            ("name", registration.name, person.name),
            ("email", registration.email, new_email),
            ("phone", registration.phone, person.phone),
        )
        if old != new
    ]
    if not changed:
        db.session.rollback()
        raise AdminError("Nothing was changed.")
    if "email" in changed and not new_email:
        db.session.rollback()  # (a walk-in may have none; a booking that had one keeps one)
        raise AdminError("Enter their email.", "email")
    live = registration.status in (RegistrationStatus.CONFIRMED, RegistrationStatus.HELD)
    if "email" in changed and live and new_normalized != registration.email_normalized:
        other = find_live_registration(registration.seat_pool_id, new_normalized)
        if other is not None and other.id != registration.id:
            db.session.rollback()
            raise AdminError("Someone is already booked on this with that email.", "email")
    registration.name, registration.phone = person.name, person.phone
    resent_to = ""
    if "email" in changed:
        registration.email, registration.email_normalized = new_email, new_normalized
        # The old address may be a stranger's: the links sent there stop working.
        registration.token = new_token()
        # Emails still waiting to go follow the corrected address (failed ones stay as they
        # were, and can't be retried to the old address: see emails.resend_email).
        followed = db.session.execute(
            sa.update(OutboxEmail)
            .where(OutboxEmail.registration_id == registration.id, OutboxEmail.status == "pending")
            .values(to_email=new_email)
            .returning(OutboxEmail.kind)
        ).scalars()
        confirmation_waiting = EmailKind.REGISTRATION_CONFIRMED in set(followed)
        if registration.status == RegistrationStatus.CONFIRMED:
            if not confirmation_waiting:  # (one still waiting now goes to the new address)
                queue_email(
                    EmailKind.REGISTRATION_CONFIRMED,
                    registration=registration,
                    key_parts=(f"to-{address_digest(new_email)}",),
                )
            resent_to = new_email
    audit.record_about(
        actor.id,
        "registration.details_corrected",
        registration,
        fields=changed,
        confirmation_resent=bool(resent_to),
        reason=reason[:200],
    )
    db.session.commit()
    return Correction(registration, changed, resent_to)


# --- Payment at the desk ---


DESK_METHODS = (PaymentMethod.CASH, PaymentMethod.CHECK, PaymentMethod.COMP)


def desk_amount(registration: Registration, method: PaymentMethod) -> int:
    """What a desk payment records now: a hold's price, or a booking's balance; comp: nothing."""
    if method is PaymentMethod.COMP:
        return 0
    if registration.status == RegistrationStatus.CONFIRMED:
        return balance_due(registration)
    return registration.price_cents


def take_desk_payment(registration_id: int, method: PaymentMethod, note: str, actor: User) -> Payment:
    """Pay at the desk for a seat held while they pay (which books it), or for what a booking
    still owes (a walk-in at a paid class, a transfer onto a dearer date): cash or check, or
    comp (free by the clinic's choice). Never touches Stripe.

    A desk payment and a card payment are never both live: under the pool lock (the lock every
    card payment takes to be recorded or applied) every payment row of the registration is
    locked; a card payment going through refuses this; an open PaymentIntent (card entered,
    not charged) is cancelled at Stripe after commit, and a success from it that still arrives
    finds the seat paid and is refunded by the unplaced-payment path."""
    if method not in DESK_METHODS:
        raise AdminError("Choose cash, check or comp.", "method")
    now = utcnow()
    registration = db.session.get_one(Registration, registration_id)
    pool = seats.lock_pool(registration.seat_pool_id)
    db.session.refresh(registration)
    seats.release_lapsed(pool, now)  # a hold that ran out (with no card payment in flight) goes
    if registration.status not in (RegistrationStatus.HELD, RegistrationStatus.CONFIRMED):
        db.session.commit()  # keep what release_lapsed did
        raise AdminError("The seat is no longer held for them (the hold ran out). Register them again.")
    rows = _lock_payment_rows(registration.id)
    db.session.refresh(registration, ["payments"])
    going_through: tuple[PaymentStatus, ...] = (PaymentStatus.PROCESSING,)
    if registration.status == RegistrationStatus.HELD:
        going_through = (PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED)
    elif balance_due(registration) == 0:
        db.session.rollback()
        raise AdminError("They are booked and owe nothing; there is nothing to pay.")
    if any(p.status in going_through for p in rows):
        db.session.rollback()
        raise AdminError(
            "A card payment for this seat is going through. Wait for it to finish before taking payment here."
        )
    open_intents = [
        p.stripe_payment_intent_id
        for p in rows
        if p.status in OPEN_PAYMENT_STATUSES and p.stripe_payment_intent_id
    ]
    booking = registration.status == RegistrationStatus.HELD
    amount_cents = desk_amount(registration, method)
    payment = Payment(
        registration_id=registration.id,
        stripe_payment_intent_id=None,
        method=method,
        amount_cents=amount_cents,
        currency=registration.currency,
        status=PaymentStatus.SUCCEEDED,
        paid_at=now,
        taken_by_id=actor.id,
        note=note[:200],
    )
    db.session.add(payment)
    db.session.flush()
    if booking:
        registration.status = RegistrationStatus.CONFIRMED
        registration.confirmed_at = now
        registration.hold_expires_at = None
        if registration.email:
            queue_email(EmailKind.REGISTRATION_CONFIRMED, registration=registration)
    audit.record_about(
        actor.id,
        "payment.taken_at_desk",
        registration,
        method=method.value,
        amount_cents=payment.amount_cents,
        note=note[:200],
        payment_id=payment.id,
        card_payment_stopped=len(open_intents),
    )
    db.session.commit()
    for intent_id in open_intents:
        stop_superseded_intent(intent_id)
    return payment


# --- The payment link for what a booking still owes ---


def _queue_balance_link(registration: Registration, due_cents: int) -> None:
    """Email the member the link to pay their balance by card. Each sending is its own email
    (staff may send it again): numbered under the pool lock the caller holds."""
    sent_before = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxEmail)
        .where(OutboxEmail.registration_id == registration.id, OutboxEmail.kind == EmailKind.BALANCE_DUE)
    )
    queue_email(
        EmailKind.BALANCE_DUE,
        registration=registration,
        key_parts=(f"n{(sent_before or 0) + 1}",),
        context={"due_cents": due_cents, "currency": registration.currency},
    )


def send_balance_link(registration_id: int, actor: User) -> int:
    """Email a booked member the link to pay what their booking still owes (by card, through
    the same payment page flow as registering). Returns the amount the link asks for."""
    registration = db.session.get_one(Registration, registration_id)
    seats.lock_pool(registration.seat_pool_id)
    db.session.refresh(registration)
    if registration.status != RegistrationStatus.CONFIRMED:
        db.session.rollback()
        raise AdminError("Only a booked (confirmed) registration can be sent a payment link.")
    due = balance_due(registration)
    if due == 0:
        db.session.rollback()
        raise AdminError("They owe nothing now, so there is nothing to ask for.")
    if not registration.email:
        db.session.rollback()
        raise AdminError("They gave no email address. Take the payment at the desk instead.")
    _queue_balance_link(registration, due)
    audit.record_about(actor.id, "payment.balance_link_sent", registration, amount_cents=due)
    db.session.commit()
    return due
