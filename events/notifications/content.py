"""What each email says: the subject, the template context and any attachments.

Pure reading: nothing here sends or writes. The sender turns this into a MIME message.
Needs a request context for links (the delivery code pushes one built from PUBLIC_BASE_URL).

For a batch, Prefetched(rows) loads everything the rows refer to (registrations, waitlist
entries, pools, offerings, sessions, locations, the clinic) in a handful of IN queries, and
build(row, prefetched) then reads from memory instead of querying per row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, url_for
from flask_babel import gettext, lazy_gettext

from events import calendar
from events.clinic import current_clinic
from events.extensions import db
from events.filters import format_day, format_short_day, format_time, relative_day, relative_when, zone_name
from events.languages import current_language
from events.models import (
    Clinic,
    Location,
    Offering,
    OutboxEmail,
    Pass,
    Payment,
    PaymentStatus,
    PrivacyRequest,
    Registration,
    SeatPool,
    Session,
    SessionStatus,
    StaffMessage,
    User,
    WaitlistEntry,
    utcnow,
)
from events.notifications.addresses import contact_address, sender_address
from events.notifications.outbox import PASS_KINDS, EmailKind
from events.offering_text import offering_text
from events.passes import booking as pass_booking
from events.passes import ledger
from events.passes.buying import live_passes
from events.payments.receipts import Receipt, card_label, desk_method_word
from events.privacy.requests import link_minutes, signed_link
from events.registration import lookup
from events.registration.links import BatchLinks, balance_url, pass_url, pay_url
from events.registration.manage import State, offering_url, state_of
from events.registration.seats import waitlist_position
from events.registration.services import (
    hold_is_live,
    latest_succeeded_payment,
    registration_sessions,
    succeeded_payment,
)
from events.reset_links import RESET_MAX_AGE_SECONDS, reset_token
from events.resources.services import resource_href


# Subject templates are msgids, translated when an email is built (subject_line), in the
# reader's language.
def N_(text: str) -> str:  # noqa: N802 - gettext's name for "extract this, translate it later"
    return text


SUBJECTS = {
    EmailKind.REGISTRATION_CONFIRMED: N_("You're registered: %(title)s"),
    EmailKind.REGISTRATION_LINK: N_("Your registration: %(title)s"),
    EmailKind.PAYMENT_RECEIVED: N_("Payment received: %(title)s"),
    EmailKind.PAYMENT_FAILED: N_("Your payment did not go through: %(title)s"),
    EmailKind.WAITLIST_JOINED: N_("You're on the waitlist: %(title)s"),
    EmailKind.WAITLIST_OFFER: N_("A seat is open for you: %(title)s"),
    EmailKind.WAITLIST_OFFER_EXPIRED: N_("Your seat offer has expired: %(title)s"),
    EmailKind.REGISTRATION_CANCELLED: N_("Registration cancelled: %(title)s"),
    EmailKind.REFUND_ISSUED: N_("Refund issued: %(title)s"),
    EmailKind.LATE_PAYMENT_REFUNDED: N_("Your payment is being refunded: %(title)s"),
    EmailKind.BALANCE_DUE: N_("Payment still due: %(title)s"),
    EmailKind.BALANCE_PAID: N_("Payment received: %(title)s"),
    EmailKind.SESSION_CANCELLED: N_("Session cancelled: %(title)s"),
    EmailKind.SESSION_MOVED: N_("Your class has moved: %(title)s"),
    EmailKind.INSTRUCTOR_CHANGED: N_("New instructor for %(title)s"),
    EmailKind.REMINDER: N_("Reminder: %(title)s %(when)s"),
    EmailKind.FOLLOW_UP: N_("Thank you for coming: %(title)s"),
}
# The follow-up has three versions (events/notifications/schedule.py chooses): thanks to those
# checked in, "sorry we missed you" to those marked absent, and a neutral one to everyone else
# (no attendance taken for that session, or nothing marked for them).
MISSED_SUBJECT = N_("Sorry we missed you: %(title)s")
NEUTRAL_FOLLOW_UP_SUBJECT = N_("Following up: %(title)s")
FIND_REGISTRATIONS_SUBJECT = lazy_gettext("Your registrations at %(clinic)s")
# A paid booking's one email: the confirmation, with its invite, is also the receipt.
BOOKED_SUBJECT = N_("You're booked: %(title)s")
LINK_SUBJECTS = {
    State.AWAITING_PAYMENT: N_("Your seat is held: %(title)s"),
    State.RELEASED: N_("Your held seat was released: %(title)s"),
    State.CANCELLED: N_("Your registration was cancelled: %(title)s"),
}
# Emails about money: they say what, when, where and the price, and name the card.
PAYMENT_KINDS = frozenset(
    {
        EmailKind.REGISTRATION_CONFIRMED,
        EmailKind.REGISTRATION_LINK,
        EmailKind.PAYMENT_RECEIVED,
        EmailKind.PAYMENT_FAILED,
        EmailKind.REGISTRATION_CANCELLED,
        EmailKind.REFUND_ISSUED,
        EmailKind.LATE_PAYMENT_REFUNDED,
        EmailKind.BALANCE_DUE,
        EmailKind.BALANCE_PAID,
    }
)
# The emails that say how a class pass booking was paid ("Class pass: 1 credit (6 of 10 left)"):
# the pass's balance is read for these only, not for every reminder of a pass booking.
PASS_LINE_KINDS = frozenset({EmailKind.REGISTRATION_CONFIRMED, EmailKind.REGISTRATION_CANCELLED})
# The waitlist-joined email sent again, with the link to the place, to someone who tried to
# join a waitlist they are already on (services._email_waitlist_link).
WAITLIST_AGAIN_SUBJECT = N_("Your place on the waitlist: %(title)s")
# A late payment with nothing left to refund (all of it was refunded already): no money promised.
LATE_PAYMENT_NOTHING_LEFT_SUBJECT = N_("Your payment came too late for a seat: %(title)s")


def session_when(start: datetime, end: datetime) -> str:
    """'Tuesday, March 3, 6:30 pm–8 pm CST', as the emails' when() macro writes a session."""
    return f"{format_day(start)}, {format_time(start)}–{format_time(end)} {zone_name(start)}"


# Subjects are read on lock screens and in shared inboxes: by default they name the date, never
# the offering (whose title can say something about someone's health). A clinic may choose
# titled subjects instead (Admin, Clinic details): the templates above, with the title.
NEUTRAL_SUBJECTS = {
    SUBJECTS[EmailKind.REGISTRATION_CONFIRMED]: N_("You're registered for %(date)s"),
    SUBJECTS[EmailKind.REGISTRATION_LINK]: N_("Your booking on %(date)s"),
    SUBJECTS[EmailKind.PAYMENT_RECEIVED]: N_("Payment received for %(date)s"),
    SUBJECTS[EmailKind.PAYMENT_FAILED]: N_("Your payment did not go through (%(date)s)"),
    SUBJECTS[EmailKind.WAITLIST_JOINED]: N_("You're on the waitlist for %(date)s"),
    SUBJECTS[EmailKind.WAITLIST_OFFER]: N_("A seat is open for you on %(date)s"),
    SUBJECTS[EmailKind.WAITLIST_OFFER_EXPIRED]: N_("Your seat offer for %(date)s has expired"),
    SUBJECTS[EmailKind.REGISTRATION_CANCELLED]: N_("Your booking on %(date)s is cancelled"),
    SUBJECTS[EmailKind.REFUND_ISSUED]: N_("Refund issued for %(date)s"),
    SUBJECTS[EmailKind.LATE_PAYMENT_REFUNDED]: N_("Your payment for %(date)s is being refunded"),
    SUBJECTS[EmailKind.BALANCE_DUE]: N_("Payment still due for %(date)s"),
    SUBJECTS[EmailKind.BALANCE_PAID]: N_("Payment received for %(date)s"),
    SUBJECTS[EmailKind.SESSION_CANCELLED]: N_("Your session on %(date)s is cancelled"),
    SUBJECTS[EmailKind.SESSION_MOVED]: N_("Your session has moved: now %(date)s"),
    SUBJECTS[EmailKind.INSTRUCTOR_CHANGED]: N_("New instructor on %(date)s"),
    SUBJECTS[EmailKind.REMINDER]: N_("Reminder: your session %(when)s"),
    SUBJECTS[EmailKind.FOLLOW_UP]: N_("Thank you for coming on %(date)s"),
    MISSED_SUBJECT: N_("Sorry we missed you on %(date)s"),
    NEUTRAL_FOLLOW_UP_SUBJECT: N_("Following up: your session on %(date)s"),
    BOOKED_SUBJECT: N_("You're booked for %(date)s"),
    LINK_SUBJECTS[State.AWAITING_PAYMENT]: N_("Your seat is held for %(date)s"),
    LINK_SUBJECTS[State.RELEASED]: N_("Your held seat for %(date)s was released"),
    LINK_SUBJECTS[State.CANCELLED]: N_("Your booking on %(date)s was cancelled"),
    WAITLIST_AGAIN_SUBJECT: N_("Your place on the waitlist for %(date)s"),
    LATE_PAYMENT_NOTHING_LEFT_SUBJECT: N_("Your payment for %(date)s came too late for a seat"),
}
TITLED = "titled"  # Clinic.email_subjects: subjects name the offering
SUBJECT_CHOICES = (("neutral", "Neutral: the date only"), (TITLED, "With the offering's title"))


def subject_line(template: str, clinic: Clinic, *, title: str, when: str, session: Session | None) -> str:
    """The subject the clinic chose: neutral (the default) or titled."""
    if clinic.email_subjects == TITLED:
        return one_line(gettext(template, title=title, when=when))
    neutral = NEUTRAL_SUBJECTS.get(template)
    if neutral is None or session is None:
        return gettext("About your booking at %(clinic)s", clinic=one_line(clinic.name))
    return one_line(gettext(neutral, date=format_short_day(session.local_start), when=when))


@dataclass
class Attachment:
    filename: str
    content_type: str  # "text/calendar"
    data: bytes
    # For text/calendar: the iTIP method, sent as the Content-Type's method parameter, which
    # must match the METHOD inside the file (RFC 6047).
    method: str | None = None


@dataclass
class EmailContent:
    kind: str
    subject: str
    context: dict
    attachments: list[Attachment] = field(default_factory=list)


def one_line(text: str) -> str:
    """A subject from stored text: any line break or run of spaces as one space. Forms refuse
    control characters now, but a title stored before that must not keep its emails unsent."""
    return " ".join(text.split())


def _pool_sessions(seat_pool_id: int) -> list[Session]:
    return list(
        db.session.scalars(
            sa.select(Session).where(Session.seat_pool_id == seat_pool_id).order_by(Session.starts_at)
        )
    )


def next_dates(offering: Offering, after: datetime, limit: int = 3) -> list[Session]:
    """Upcoming sessions of the same offering, else of offerings on the same topic."""
    base = (
        sa.select(Session)
        .join(Offering, Session.offering_id == Offering.id)
        .where(
            Session.starts_at > after,
            Session.status == SessionStatus.SCHEDULED,
            Offering.is_published.is_(True),
            Offering.is_cancelled.is_(False),
        )
        .order_by(Session.starts_at)
        .limit(limit)
    )
    same = list(db.session.scalars(base.where(Session.offering_id == offering.id)))
    return same or list(db.session.scalars(base.where(Offering.topic == offering.topic)))


def _in(column: Any, ids: Iterable[int]) -> sa.ColumnElement[bool]:
    return column.in_(sorted(ids))


class Prefetched:
    """What one batch of outbox rows refers to, loaded in a few queries instead of per row.

    The objects land in the session's identity map, so many-to-one access (registration.offering,
    session.location, pool.offering) is answered from memory; the lists a row needs (a workshop's
    sessions, a waitlist pool's sessions) are grouped here. The session must not expire them
    while the batch is built (the delivery code keeps expire_on_commit off for the batch).
    """

    def __init__(self, rows: Sequence[OutboxEmail], now: datetime | None = None) -> None:
        # When the emails are built: "today" and "tomorrow" are said from here.
        self.now = now or utcnow()
        self.clinic = current_clinic()
        # The clinic organizes the invites it sends: its contact address (where replies go),
        # else the sender's.
        self.organizer = contact_address(self.clinic.email) or sender_address(
            current_app.config["MAIL_DEFAULT_SENDER"]
        )
        scalars = db.session.scalars
        reg_ids = {r.registration_id for r in rows if r.registration_id and not r.user_id}
        entry_ids = {r.waitlist_entry_id for r in rows if r.waitlist_entry_id and not r.user_id}
        self.registrations = (
            {x.id: x for x in scalars(sa.select(Registration).where(_in(Registration.id, reg_ids)))}
            if reg_ids
            else {}
        )
        self.entries = (
            {x.id: x for x in scalars(sa.select(WaitlistEntry).where(_in(WaitlistEntry.id, entry_ids)))}
            if entry_ids
            else {}
        )
        pool_ids = {e.seat_pool_id for e in self.entries.values()}
        pools = list(scalars(sa.select(SeatPool).where(_in(SeatPool.id, pool_ids)))) if pool_ids else []
        offering_ids = {r.offering_id for r in self.registrations.values()} | {p.offering_id for p in pools}
        offerings = (
            list(scalars(sa.select(Offering).where(_in(Offering.id, offering_ids)))) if offering_ids else []
        )
        # Every session a row can name: whole-offering registrations take all of the offering's,
        # waitlist entries their pool's, the rest their own class and the row's session.
        whole = {r.offering_id for r in self.registrations.values() if not r.session_id}
        session_ids = {r.session_id for r in rows if r.session_id} | {
            r.session_id for r in self.registrations.values() if r.session_id
        }
        conditions = []
        if whole:
            conditions.append(_in(Session.offering_id, whole))
        if pool_ids:
            conditions.append(_in(Session.seat_pool_id, pool_ids))
        if session_ids:
            conditions.append(_in(Session.id, session_ids))
        sessions = (
            list(
                scalars(sa.select(Session).where(sa.or_(*conditions)).order_by(Session.starts_at, Session.id))
            )
            if conditions
            else []
        )
        self.offering_sessions: dict[int, list[Session]] = {i: [] for i in whole}
        self.pool_sessions: dict[int, list[Session]] = {i: [] for i in pool_ids}
        for s in sessions:
            if s.offering_id in self.offering_sessions:
                self.offering_sessions[s.offering_id].append(s)
            if s.seat_pool_id in self.pool_sessions:
                self.pool_sessions[s.seat_pool_id].append(s)
        self.sessions = {s.id: s for s in sessions}
        # Sessions of offerings loaded only for their own class: pull those offerings too.
        missing = {s.offering_id for s in sessions} - offering_ids
        if missing:
            offerings += list(scalars(sa.select(Offering).where(_in(Offering.id, missing))))
        location_ids = {s.location_id for s in sessions} | {o.location_id for o in offerings}
        locations = (
            list(scalars(sa.select(Location).where(_in(Location.id, location_ids)))) if location_ids else []
        )
        # The identity map holds objects weakly: keep them alive for the batch.
        self._held = (pools, offerings, locations)
        self._next_dates: dict[int, list[Session]] = {}
        self._written: dict[tuple, str] = {}
        self.links = BatchLinks()  # each person's manage or waitlist link

    def written(self, key: tuple, write: Callable[[], str]) -> str:
        """Text that depends only on what `key` names (with the batch's clinic and moment),
        written once per batch: a session's "tomorrow at 6 pm" and its subject are the same for
        the hundreds of reminders to its people, and Babel and gettext cost more than the rest
        of an email's content. The key must name the language."""
        found = self._written.get(key)
        if found is None:
            found = self._written[key] = write()
        return found

    def registration(self, row_id: int | None) -> Registration | None:
        if not row_id:
            return None
        found = self.registrations.get(row_id)
        return found if found is not None else db.session.get(Registration, row_id)

    def entry(self, entry_id: int | None) -> WaitlistEntry | None:
        if not entry_id:
            return None
        found = self.entries.get(entry_id)
        return found if found is not None else db.session.get(WaitlistEntry, entry_id)

    def session(self, session_id: int | None) -> Session | None:
        if not session_id:
            return None
        found = self.sessions.get(session_id)
        return found if found is not None else db.session.get(Session, session_id)

    def registration_sessions(self, registration: Registration) -> list[Session]:
        if registration.session_id:
            session = self.session(registration.session_id)
            assert session is not None  # session_id is a foreign key
            return [session]
        found = self.offering_sessions.get(registration.offering_id)
        return list(found) if found is not None else registration_sessions(registration)

    def pool_sessions_of(self, seat_pool_id: int) -> list[Session]:
        found = self.pool_sessions.get(seat_pool_id)
        return list(found) if found is not None else _pool_sessions(seat_pool_id)

    def next_dates_of(self, offering: Offering, after: datetime) -> list[Session]:
        # Once per offering per batch: the batch is built within seconds of `after`.
        if offering.id not in self._next_dates:
            self._next_dates[offering.id] = next_dates(offering, after)
        return self._next_dates[offering.id]


@dataclass(frozen=True)
class SharedResource:
    title: str
    url: str  # a link, or the uploaded file's address on our site


def shared_resources(offering: Offering) -> list[SharedResource]:
    return [SharedResource(r.title, resource_href(r)) for r in offering.resources]


def build(row: OutboxEmail, prefetched: Prefetched | None = None) -> EmailContent:
    if prefetched is None:
        prefetched = Prefetched([row])
    clinic = prefetched.clinic
    kind = row.kind  # (read once: each read of a mapped attribute goes through SQLAlchemy)
    if row.user_id:
        return _staff_email(row, clinic)
    if kind == EmailKind.FIND_REGISTRATIONS:
        return _places_email(row, clinic, prefetched.now)
    if kind in (EmailKind.PRIVACY_LINK, EmailKind.DATA_ERASED):
        return _privacy_email(row, clinic)
    if kind in PASS_KINDS:
        return _pass_email(row, clinic)
    if kind == EmailKind.PASS_BOOKING_LINK:
        return _pass_booking_email(row, clinic, prefetched.now)
    extra = dict(row.context or {})
    registration = prefetched.registration(row.registration_id)
    entry = prefetched.entry(row.waitlist_entry_id)
    session = prefetched.session(row.session_id)

    if registration is not None:
        offering = registration.offering
        name = registration.name
        sessions = prefetched.registration_sessions(registration)
    elif entry is not None:
        offering = entry.seat_pool.offering
        name = entry.name
        sessions = prefetched.pool_sessions_of(entry.seat_pool_id)
    else:  # pragma: no cover - queue_email refuses these
        raise ValueError(f"outbox row {row.id} names no recipient")

    ctx = {
        "kind": kind,
        "clinic": clinic,
        "name": name,
        "offering": offering,
        "sessions": [s for s in sessions if s.status == SessionStatus.SCHEDULED]
        if kind != EmailKind.SESSION_CANCELLED
        else sessions,
        "session": session,
        "location": (session or (sessions[0] if sessions else None) or offering).location,
        "registration": registration,
        "entry": entry,
        "extra": extra,
        "manage_url": prefetched.links.manage_url(registration) if registration is not None else None,
        "waitlist_url": prefetched.links.waitlist_url(entry) if entry is not None else None,
        "schedule_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/",
    }
    attachments: list[Attachment] = []
    subject_template: str = SUBJECTS.get(kind, "%(title)s")
    when = ""

    if registration is not None and kind in PAYMENT_KINDS:
        subject_template = _payment_context(ctx, kind, registration, subject_template)
    if kind in (EmailKind.REGISTRATION_CANCELLED, EmailKind.SESSION_CANCELLED):
        # A class pass credit refunded as money, handed back at the desk (the pass was bought there).
        ctx["credits_paid_at_desk"] = desk_method_word(str(extra.get("credits_desk_method") or ""))
    if kind == EmailKind.SESSION_CANCELLED:
        # The seat's refund is handed back at the desk when it was paid there, not sent to a card.
        ctx["paid_at_desk"] = desk_method_word(str(extra.get("desk_method") or ""))
    if registration is not None and registration.pass_id is not None and kind in PASS_LINE_KINDS:
        # Booked with a class pass: "Class pass: 1 credit (6 of 10 left, expires Jun 14)".
        summary = pass_booking.pass_summary(registration)
        ctx["paid_with_pass"] = summary.text() if summary is not None else ""
    if kind == EmailKind.WAITLIST_JOINED and entry is not None:
        ctx["position"] = waitlist_position(entry) if entry.status.value == "waiting" else None
        if extra.get("again"):
            subject_template = WAITLIST_AGAIN_SUBJECT
            # Where the place stands when the email is written: waiting, offered, or gone.
            ctx["entry_state"] = entry.status.value
    offer_open = entry is not None and entry.status.value == "offered"
    says_deadline = kind == EmailKind.WAITLIST_OFFER or (kind == EmailKind.WAITLIST_JOINED and offer_open)
    if says_deadline and entry is not None and entry.offer_expires_at:
        deadline = entry.offer_expires_at.astimezone(ctx["location"].zone)
        ctx["deadline"] = deadline
        ctx["deadline_day"] = relative_day(deadline, prefetched.now, on="")
    if kind == EmailKind.REGISTRATION_CONFIRMED and ctx["sessions"]:
        ics = calendar.build_calendar(
            clinic,
            offering_text(offering).title,
            ctx["sessions"],
            calendar.PUBLISH,
            registration,
            prefetched.organizer,
        )
        attachments.append(Attachment("invite.ics", "text/calendar", ics, calendar.PUBLISH))
        # Beside the invite, for web calendars and people who don't open attachments.
        ctx["calendar_links"] = [
            calendar.calendar_links(s, offering_text(offering).title) for s in ctx["sessions"]
        ]
    cancels_invite = kind in (EmailKind.SESSION_CANCELLED, EmailKind.REGISTRATION_CANCELLED)
    if cancels_invite and registration is not None and registration.confirmed_at:
        # Takes back the invite sent on confirmation (same UIDs, higher SEQUENCE): the named
        # session, or (the whole offering called off, or their registration cancelled) the
        # sessions still to come. One calendar per session: an iTIP CANCEL may name only one
        # UID (RFC 5546, 3.2.5).
        now = prefetched.now
        cancelled = [session] if session is not None else [s for s in sessions if s.starts_at >= now]
        cancelled = [s for s in cancelled if calendar.is_cancelled(s, registration)]
        for n, cancelled_session in enumerate(cancelled, start=1):
            ics = calendar.build_calendar(
                clinic,
                offering.title,
                [cancelled_session],
                calendar.CANCEL,
                registration,
                prefetched.organizer,
            )
            filename = "cancel.ics" if len(cancelled) == 1 else f"cancel-{n}.ics"
            attachments.append(Attachment(filename, "text/calendar", ics, calendar.CANCEL))
    if (
        kind == EmailKind.SESSION_MOVED
        and session is not None
        and registration is not None
        and registration.confirmed_at
        and not calendar.is_cancelled(session, registration)
    ):
        # Updates the invite sent on confirmation in place: the same UID, a higher SEQUENCE.
        ics = calendar.build_calendar(
            clinic, offering.title, [session], calendar.PUBLISH, registration, prefetched.organizer
        )
        attachments.append(Attachment("invite.ics", "text/calendar", ics, calendar.PUBLISH))
        ctx["calendar_links"] = [calendar.calendar_links(session, offering_text(offering).title)]
    if kind == EmailKind.SESSION_MOVED and session is not None:
        # Both times written in the person's language (rows queued before carry text only).
        ctx["new_when"] = session_when(session.local_start, session.local_end)
        ctx["old_when"] = extra.get("old_when", "")
        if extra.get("old_starts_at") and extra.get("old_ends_at"):
            old_zone = ZoneInfo(extra.get("old_timezone") or session.location.timezone)
            ctx["old_when"] = session_when(
                datetime.fromisoformat(extra["old_starts_at"]).astimezone(old_zone),
                datetime.fromisoformat(extra["old_ends_at"]).astimezone(old_zone),
            )
    if kind == EmailKind.REMINDER and session is not None:
        # "today" or "tomorrow" only where it is true in the session's own zone at the moment the
        # email is built (right before it is sent); else the date. The body gives the date too.
        reminded = session
        when = prefetched.written(
            ("when", current_language(), reminded.id),
            lambda: relative_when(reminded.local_start, prefetched.now),
        )
        ctx["when_text"] = when
    if kind in (EmailKind.BALANCE_DUE, EmailKind.BALANCE_PAID) and registration is not None:
        _balance_context(ctx, kind, registration, extra)
    if kind == EmailKind.LATE_PAYMENT_REFUNDED and not extra.get("refund_cents", 1):
        subject_template = LATE_PAYMENT_NOTHING_LEFT_SUBJECT
    if kind == EmailKind.FOLLOW_UP:
        variant = extra.get("variant")
        ctx["variant"] = variant if variant in ("attended", "missed") else "neutral"
        ctx["attended"] = ctx["variant"] == "attended"
        ctx["resources"] = shared_resources(offering)
        if ctx["variant"] != "attended":
            ctx["next_sessions"] = prefetched.next_dates_of(offering, prefetched.now)
        if ctx["variant"] == "missed":
            subject_template = MISSED_SUBJECT
        elif ctx["variant"] == "neutral":
            subject_template = NEUTRAL_FOLLOW_UP_SUBJECT
    if kind == EmailKind.STAFF_MESSAGE:
        # Staff's own words, from the message row (never formatted: braces stay braces).
        message = db.session.get_one(StaffMessage, extra["message_id"])
        ctx["message"] = message
        subject = one_line(message.subject)
    else:
        # (Formatted here, in the person's language: the worker renders inside in_language.)
        # The date a neutral subject names: the session the email is about, else the first
        # still to come (the first of all when none is).
        upcoming = [s for s in sessions if s.starts_at >= prefetched.now] or sessions
        named = session or (upcoming[0] if upcoming else None)
        template = subject_template
        subject = prefetched.written(
            ("subject", current_language(), template, offering.id, when, named.id if named else None),
            lambda: subject_line(
                template, clinic, title=offering_text(offering).title, when=when, session=named
            ),
        )
    ctx["subject"] = subject
    return EmailContent(kind, subject, ctx, attachments)


def _places_email(row: OutboxEmail, clinic: Clinic, now: datetime) -> EmailContent:
    """ "Find my registrations": every upcoming place booked with this address, read now."""
    places = lookup.upcoming_places(row.to_email, now)
    names = {place.name for place in places}
    subject = one_line(str(FIND_REGISTRATIONS_SUBJECT) % {"clinic": clinic.name})
    ctx = {
        "kind": row.kind,
        "clinic": clinic,
        # Greeted by name only when every place is in the same one.
        "name": next(iter(names)) if len(names) == 1 else "",
        "several_names": len(names) > 1,
        "places": places,
        # Their class passes too, each with its link (the same inbox-only answer).
        "passes": [(p, left, pass_url(p)) for p, left in live_passes(row.to_email, now)],
        "subject": subject,
        "find_url": url_for("registration.find_registrations", _external=True),
        "schedule_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/",
    }
    return EmailContent(row.kind, subject, ctx, [])


def _privacy_email(row: OutboxEmail, clinic: Clinic) -> EmailContent:
    """A link to download or delete an address's data, or the confirmation that it was deleted."""
    extra = dict(row.context or {})
    ctx: dict[str, Any] = {
        "kind": row.kind,
        "clinic": clinic,
        "name": "",
        "extra": extra,
        "schedule_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/",
    }
    if row.kind == EmailKind.PRIVACY_LINK:
        request = db.session.get(PrivacyRequest, extra.get("request_id") or 0)
        ctx["action"] = request.action.value if request is not None else "export"
        ctx["link"] = signed_link(request) if request is not None else ""
        ctx["minutes"] = link_minutes()
        ctx["ask_again_url"] = url_for("privacy.my_data", _external=True)
        subject = gettext("Your data at %(clinic)s", clinic=one_line(clinic.name))
    else:
        subject = gettext("Your data at %(clinic)s has been deleted", clinic=one_line(clinic.name))
    ctx["subject"] = subject
    return EmailContent(row.kind, subject, ctx, [])


def _pass_booking_email(row: OutboxEmail, clinic: Clinic, now: datetime) -> EmailContent:
    """The link that confirms booking with a class pass (signed now, for PASS_BOOKING_LINK_MINUTES),
    or, when the address holds no usable pass that covers it, a note saying so."""
    extra = dict(row.context or {})
    offering = db.session.get(Offering, extra.get("offering_id") or 0)
    session = db.session.get(Session, extra.get("session_id") or 0) if extra.get("session_id") else None
    ctx: dict[str, Any] = {
        "kind": row.kind,
        "clinic": clinic,
        "name": str(extra.get("name") or ""),
        "extra": extra,
        "offering": offering,
        "session": session,
        "schedule_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/",
        "passes_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/passes",
        "minutes": pass_booking.link_minutes(),
    }
    if session is None and offering is not None:
        session = db.session.scalar(
            sa.select(Session)
            .where(Session.offering_id == offering.id, Session.status == SessionStatus.SCHEDULED)
            .order_by(Session.starts_at)
            .limit(1)
        )
    ctx["when_text"] = session_when(session.local_start, session.local_end) if session is not None else ""
    ctx["title"] = offering_text(offering).title if offering is not None else ""
    chosen = (
        pass_booking.usable_pass(row.to_email.strip().lower(), offering, now)
        if offering is not None
        else None
    )
    ctx["has_pass"] = chosen is not None
    ctx["link"] = ""
    if chosen is not None and offering is not None:
        ctx["link"] = pass_booking.booking_link(
            pass_booking.BookingRequest(
                offering.id,
                extra.get("session_id"),
                ctx["name"],
                row.to_email,
                str(extra.get("phone") or ""),
                row.language or "en",
            )
        )
    subject = gettext("Your booking with a class pass at %(clinic)s", clinic=one_line(clinic.name))
    ctx["subject"] = subject
    return EmailContent(row.kind, subject, ctx, [])


def _payment_context(ctx: dict, kind: str, registration: Registration, subject_template: str) -> str:
    """What the emails about money add: the offering's link (with the date chosen), the card
    paid with, the receipt of a paid booking, and the pay link while the seat is held.
    Returns the subject template (a paid booking's confirmation says "You're booked")."""
    offering, location = ctx["offering"], ctx["location"]
    ctx["offering_url"] = offering_url(offering, registration.session, external=True)
    if kind == EmailKind.REGISTRATION_CONFIRMED and registration.price_cents == 0:
        return subject_template  # free: nothing paid, nothing more to look up
    payment = succeeded_payment(registration)  # the one that paid for the seat: the receipt's
    paid = payment or latest_succeeded_payment(registration)  # or one being sent back
    ctx["paid_with"] = (card_label(paid.card_brand, paid.card_last4) or gettext("card")) if paid else ""
    # Paid at the desk (cash or check): a refund is handed back there, not sent to a card.
    ctx["paid_at_desk"] = desk_method_word(paid.method) if paid is not None and paid.method.at_desk else ""
    if not ctx["paid_at_desk"] and isinstance(ctx.get("extra"), dict):
        # A transferred booking's payment moved to the new registration; the old one's email names it.
        ctx["paid_at_desk"] = desk_method_word(str(ctx["extra"].get("desk_method") or ""))
    if kind == EmailKind.REGISTRATION_CONFIRMED and payment is not None:
        ctx["receipt"] = Receipt.of(payment)
        return BOOKED_SUBJECT
    now = utcnow()
    if hold_is_live(registration, now) and registration.hold_expires_at is not None:
        ctx["pay_url"] = pay_url(registration, external=True)
        ctx["hold_until"] = registration.hold_expires_at.astimezone(location.zone)
    if kind == EmailKind.REGISTRATION_LINK:
        # Where it stands when the email is written (the hold may have run out since).
        state = state_of(registration, now)
        ctx["link_state"] = state.value
        return LINK_SUBJECTS.get(state, subject_template)
    return subject_template


def _balance_context(ctx: dict, kind: str, registration: Registration, extra: dict) -> None:
    """The payment link for what a booking still owes, or the receipt of its payment."""
    if kind == EmailKind.BALANCE_DUE:
        ctx["balance_url"] = balance_url(registration)
        ctx["link_days"] = current_app.config["BALANCE_LINK_MAX_AGE_DAYS"]
        return
    payment_id = extra.get("payment_id")
    payment = db.session.get(Payment, payment_id) if isinstance(payment_id, int) else None
    if payment is not None and payment.registration_id == registration.id:
        ctx["receipt"] = Receipt.of(payment)


PASS_SUBJECTS = {
    EmailKind.PASS_ISSUED: N_("Your class pass at %(clinic)s"),
    EmailKind.PASS_PAYMENT_REFUNDED: N_("Your class pass payment is being refunded"),
    EmailKind.PASS_REFUND_ISSUED: N_("Refund issued for your class pass"),
}


def _pass_email(row: OutboxEmail, clinic: Clinic) -> EmailContent:
    """To a class pass's holder: its link (with what is left), or about its money."""
    extra = dict(row.context or {})
    pass_ = db.session.get_one(Pass, extra["pass_id"])
    subject = one_line(gettext(PASS_SUBJECTS[row.kind], clinic=clinic.name))
    ctx: dict[str, Any] = {
        "kind": row.kind,
        "clinic": clinic,
        "name": pass_.name,
        "class_pass": pass_,
        "balance": ledger.balance(pass_.id),
        "extra": extra,
        "subject": subject,
        "pass_link": pass_url(pass_),
        "passes_url": url_for("passes.products", _external=True),
        "schedule_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/",
    }
    if row.kind == EmailKind.PASS_ISSUED:
        paid = db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_cents), 0)).where(
                Payment.pass_id == pass_.id, Payment.status == PaymentStatus.SUCCEEDED
            )
        )
        ctx["receipt_cents"], ctx["currency"] = int(paid or 0), pass_.currency
    return EmailContent(row.kind, subject, ctx, [])


def _staff_email(row: OutboxEmail, clinic: Clinic) -> EmailContent:
    """Emails to staff accounts: the password reset link, signed when the email is built."""
    user = db.session.get_one(User, row.user_id)  # staff emails always name their user
    subject = one_line(f"Reset your password for {clinic.name}")
    ctx = {
        "kind": row.kind,
        "clinic": clinic,
        "name": user.name,
        "subject": subject,
        "reset_url": url_for("staff.password_reset", token=reset_token(user), _external=True),
        "valid_minutes": RESET_MAX_AGE_SECONDS // 60,
        "schedule_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/",
    }
    return EmailContent(row.kind, subject, ctx, [])
