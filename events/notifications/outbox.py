"""Writing emails to the outbox, inside the caller's transaction.

Sending is the worker's job. The dedupe key makes each email exist at most once: the same
kind for the same registration (and session) queued twice is still one row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite

from events.extensions import db
from events.models import OutboxEmail, Pass, Registration, User, WaitlistEntry, utcnow
from events.notifications.publish import mark_queued


class EmailKind:
    REGISTRATION_CONFIRMED = "registration_confirmed"  # for a paid booking, also its receipt
    REGISTRATION_LINK = "registration_link"  # asked for again by registering again elsewhere
    # No longer queued (the confirmation is the receipt); rows queued before still render.
    PAYMENT_RECEIVED = "payment_received"
    PAYMENT_FAILED = "payment_failed"
    WAITLIST_JOINED = "waitlist_joined"
    WAITLIST_OFFER = "waitlist_offer"
    WAITLIST_OFFER_EXPIRED = "waitlist_offer_expired"
    REGISTRATION_CANCELLED = "registration_cancelled"
    REFUND_ISSUED = "refund_issued"
    LATE_PAYMENT_REFUNDED = "late_payment_refunded"
    # A booking moved onto a dearer date: the payment link for the difference, and its receipt.
    BALANCE_DUE = "balance_due"
    BALANCE_PAID = "balance_paid"
    SESSION_CANCELLED = "session_cancelled"
    SESSION_MOVED = "session_moved"  # new time or place, with the updated invite
    INSTRUCTOR_CHANGED = "instructor_changed"  # a substitute teaches one session
    PASSWORD_RESET = "password_reset"  # to a staff user
    REMINDER = "reminder"
    FOLLOW_UP = "follow_up"
    # To an address, not a registration: every upcoming place booked with it (registration/lookup.py).
    FIND_REGISTRATIONS = "find_registrations"
    # Staff's own words to a session's people (events/staff/messages.py); renders from its StaffMessage.
    STAFF_MESSAGE = "staff_message"
    # To an address: a link to download or delete its data (events/privacy/requests.py), and
    # the confirmation that it was deleted (events/privacy/erase.py).
    PRIVACY_LINK = "privacy_link"
    DATA_ERASED = "data_erased"
    # To a class pass's holder (events/passes/): its link once bought (or sent again), a card
    # payment that arrived for a purchase no longer open (refunded), a refund of its money issued.
    PASS_ISSUED = "pass_issued"
    PASS_PAYMENT_REFUNDED = "pass_payment_refunded"
    PASS_REFUND_ISSUED = "pass_refund_issued"

    # To an address: the link that confirms a booking paid with a class pass, or (no usable
    # pass there) a note saying so (events/passes/booking.py).
    PASS_BOOKING_LINK = "pass_booking_link"


PASS_KINDS = (EmailKind.PASS_ISSUED, EmailKind.PASS_PAYMENT_REFUNDED, EmailKind.PASS_REFUND_ISSUED)


def dedupe_key(kind: str, *parts: object) -> str:
    return ":".join([kind, *(str(p) for p in parts if p is not None)])


def queue_email(
    kind: str,
    *,
    registration: Registration | None = None,
    waitlist_entry: WaitlistEntry | None = None,
    user: User | None = None,
    to_email: str | None = None,
    owner: str | None = None,
    session_id: int | None = None,
    key_parts: tuple = (),
    context: dict | None = None,
    send_after: datetime | None = None,
    language: str | None = None,
) -> bool | None:
    """Add one email to the outbox unless it is already there. Returns True if added, False if
    it was there already, None if there is no address to send it to (a walk-in who gave none).

    It is about a registration, a waitlist entry or a staff user, or (to_email with `owner`,
    the key part naming that address without spelling it out) about an address alone, written
    in `language` (an email about a person is written in theirs: email_language)."""
    row = email_row(
        kind,
        registration=registration,
        waitlist_entry=waitlist_entry,
        user=user,
        to_email=to_email,
        owner=owner,
        session_id=session_id,
        key_parts=key_parts,
        context=context,
        send_after=send_after,
        language=language,
    )
    if row is None:
        return None
    # One statement: a row already there (or written meanwhile by a concurrent transaction,
    # which this waits for) means the email exists, and nothing is added or rolled back.
    added = db.session.execute(
        insert_outbox()
        .values(**row)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxEmail.id)
    ).scalar()
    if added is None:
        return False
    mark_queued(db.session())  # the worker is nudged after commit (events/notifications/publish.py)
    return True


def queue_pass_email(
    kind: str, pass_: Pass, *, key_parts: tuple = (), context: dict | None = None
) -> bool | None:
    """An email to a class pass's holder, in the language they bought it in (the row names the
    pass in its context; its address is the pass's)."""
    return queue_email(
        kind,
        to_email=pass_.email,
        owner=f"p{pass_.id}",
        key_parts=key_parts,
        context={"pass_id": pass_.id, **(context or {})},
        language=pass_.language,
    )


def registration_email_key(kind: str) -> str:
    """The dedupe key email_row() gives email `kind` about a registration (with no session or
    other key parts), without the registration's id that ends it: for a statement that writes
    the registration and its email at once, the id drawn as it runs (events/registration/seats.py)."""
    return dedupe_key(kind, _REGISTRATION_OWNER)


# A registration's emails are keyed by its id after this (email_row).
_REGISTRATION_OWNER = "r"


def email_row(
    kind: str,
    *,
    registration: Registration | None = None,
    waitlist_entry: WaitlistEntry | None = None,
    user: User | None = None,
    to_email: str | None = None,
    owner: str | None = None,
    session_id: int | None = None,
    key_parts: tuple = (),
    context: dict | None = None,
    send_after: datetime | None = None,
    language: str | None = None,
) -> dict | None:
    """The outbox row queue_email() writes (its column values), or None when there is no address.

    Also written by a statement of its own that takes a seat (events/registration/seats.py)."""
    if registration is not None:  # (an `owner` given names the address instead: one per address)
        owner, to_email = owner or f"{_REGISTRATION_OWNER}{registration.id}", registration.email
    elif waitlist_entry is not None:
        owner, to_email = f"w{waitlist_entry.id}", waitlist_entry.email
    elif user is not None:
        owner, to_email = f"u{user.id}", user.email
    elif to_email is None or not owner:
        raise ValueError("an email needs a registration, a waitlist entry, a staff user or an address")
    if not to_email.strip():
        return None
    return dict(
        dedupe_key=dedupe_key(kind, owner, f"s{session_id}" if session_id else None, *key_parts),
        kind=kind,
        registration_id=registration.id if registration else None,
        waitlist_entry_id=waitlist_entry.id if waitlist_entry else None,
        user_id=user.id if user else None,
        session_id=session_id,
        to_email=to_email,
        context=context or {},
        send_after=send_after or utcnow(),
        # (An email about a person is written in their language, read when it is rendered.)
        language=language or "en",
    )


def insert_outbox() -> postgresql.Insert | sqlite.Insert:
    """An INSERT into the outbox in the session's dialect, which has ON CONFLICT DO NOTHING
    (also used by the reminder sweep: events/notifications/schedule.py)."""
    return _INSERT[db.session.get_bind().dialect.name](OutboxEmail)


_INSERT: dict[str, Callable[..., postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def email_language(row: OutboxEmail) -> str:
    """The language an email is written in: its registration's or waitlist place's (the one
    they booked in), else the row's own (an email to an address alone)."""
    if row.registration_id is not None:
        registration = db.session.get(Registration, row.registration_id)
        if registration is not None:
            return registration.language
    if row.waitlist_entry_id is not None:
        entry = db.session.get(WaitlistEntry, row.waitlist_entry_id)
        if entry is not None:
            return entry.language
    return row.language or "en"
