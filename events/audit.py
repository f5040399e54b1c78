"""The audit trail: who did what, and when; and each entry told as a sentence people can read.

record() writes a row. Its details carry what the sentence needs (names, titles, local times
already formatted, amounts in cents, the reason, offering_id so the trail can be filtered by
offering). SENTENCES maps each action to a function turning an entry's Facts into a sentence;
an action with none (a new one) still reads as words, never as JSON (generic_sentence)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import has_app_context

from events.extensions import db
from events.filters import dollars, language_name
from events.models import AuditEntry, Registration, SeatPool, Session


def record(actor_id: int | None, action: str, target_type: str, target_id: int, **details: Any) -> AuditEntry:
    """Add an audit row in the caller's transaction. Its offering and (besides its target) its
    registration are copied out of the details into indexed columns: the trail is filtered by
    them, and a registration's page lists its history by them."""
    entry = AuditEntry(
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        offering_id=_id_in(details, "offering_id") or _offering_of_target(target_type, target_id),
        registration_id=subject_registration(target_type, target_id, details),
        details=details,
    )
    db.session.add(entry)
    return entry


def record_about(actor_id: int | None, action: str, registration: Registration, **details: Any) -> AuditEntry:
    """An entry about one registration, naming its person and offering (what its sentence and
    the trail's offering filter need)."""
    return record(
        actor_id,
        action,
        "registration",
        registration.id,
        name=registration.name,
        offering_id=registration.offering_id,
        offering_title=registration.offering.title,
        **details,
    )


_HAS_AN_OFFERING: dict[str, type[Registration | Session | SeatPool]] = {
    "registration": Registration,
    "session": Session,
    "seat_pool": SeatPool,
}


def _offering_of_target(target_type: str, target_id: int) -> int | None:
    """The offering of what the entry is about, when the details did not name it (the row is
    usually loaded already, so this asks the database nothing)."""
    if target_type == "offering":
        return target_id
    model = _HAS_AN_OFFERING.get(target_type)
    if model is None:
        return None
    offering_id: int | None = getattr(db.session.get(model, target_id), "offering_id", None)
    return offering_id


def _id_in(details: Mapping[str, Any], key: str) -> int | None:
    value = details.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def subject_registration(target_type: str, target_id: int, details: Mapping[str, Any]) -> int | None:
    """The registration an entry is about besides its target: the booking a transfer made, or
    the one named in the details (an email resent); else its target, when that is one."""
    return (
        _id_in(details, "new_registration_id")
        or _id_in(details, "registration_id")
        or (target_id if target_type == "registration" else None)
    )


# --- Entries as sentences ---


@dataclass(frozen=True)
class Facts:
    """One entry, with the names its ids stand for as far as they are known (older entries
    recorded fewer details; the trail looks the rest up in one query per kind of record)."""

    action: str
    actor: str  # "Sam Rivera", or "The system"
    target_type: str
    target_id: int
    details: Mapping[str, Any] = field(default_factory=dict)
    person: str | None = None  # the registration's person
    offering: str | None = None  # the offering's title
    session_when: str | None = None  # the session's local start, zone named
    user: str | None = None  # the staff account acted on
    location: str | None = None


def _text(value: object, limit: int = 200) -> str:
    """A value typed by someone, made safe to read in a sentence (one line, not endless)."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _offering(f: Facts) -> str:
    title = f.details.get("offering_title") or f.offering
    return _text(title) if title else "an offering"


def _person(f: Facts) -> str:
    name = f.details.get("name") or f.person
    return _text(name) if name else f"registration #{f.target_id}"


def _user(f: Facts) -> str:
    name = f.details.get("name") or f.user
    return _text(name) if name else f"account #{f.target_id}"


def _session(f: Facts) -> str:
    # Recorded under several names over time: starts_local, when (moves), session_start (rosters).
    when = (
        f.details.get("starts_local")
        or f.details.get("when")
        or f.details.get("session_start")
        or f.session_when
    )
    return _text(when) if when else "a session"


def _reason(f: Facts) -> str:
    reason = f.details.get("reason")
    return f": “{_text(reason)}”" if reason else ""


def _cents(f: Facts, key: str) -> int:
    value = f.details.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


Sentence = Callable[[Facts], str]
SENTENCES: dict[str, Sentence] = {}


def sentence(*actions: str) -> Callable[[Sentence], Sentence]:
    def add(function: Sentence) -> Sentence:
        for action in actions:
            SENTENCES[action] = function
        return function

    return add


# --- Class passes (events/passes/) ---


def _holder(f: Facts) -> str:
    name = f.details.get("name")
    return f"{_text(name)}'s class pass #{f.target_id}" if name else f"class pass #{f.target_id}"


def _credits(n: int) -> str:
    return _count(abs(n), "credit", "credits")


@sentence("pass.bought")
def _pass_bought(f: Facts) -> str:
    return f"{_holder(f)} was bought by card for {dollars(_cents(f, 'amount_cents'))}."


@sentence("pass.payment_refunded")
def _pass_payment_refunded(f: Facts) -> str:
    return (
        f"A card payment of {dollars(_cents(f, 'amount_cents'))} for {_holder(f)} found nothing to buy; "
        f"{dollars(_cents(f, 'refund_cents'))} is refunded."
    )


@sentence("pass.sold_at_desk")
def _pass_sold_at_desk(f: Facts) -> str:
    method = _text(f.details.get("method") or "the desk")
    return f"{f.actor} sold {_holder(f)} at the desk ({method}, {dollars(_cents(f, 'amount_cents'))})."


@sentence("pass.adjusted")
def _pass_adjusted(f: Facts) -> str:
    n = _cents(f, "credits")
    verb = "added" if n >= 0 else "took off"
    return f"{f.actor} {verb} {_credits(n)} {'to' if n >= 0 else 'from'} {_holder(f)}{_reason(f)}."


@sentence("pass.frozen")
def _pass_frozen(f: Facts) -> str:
    return f"{f.actor} paused {_holder(f)}{_reason(f)}."


@sentence("pass.unfrozen")
def _pass_unfrozen(f: Facts) -> str:
    days = _cents(f, "days")
    return f"{f.actor} restarted {_holder(f)}, its expiry moved on {_count(days, 'day', 'days')}{_reason(f)}."


@sentence("pass.refunded")
def _pass_refunded(f: Facts) -> str:
    return (
        f"{f.actor} refunded the {_credits(_cents(f, 'credits'))} left on {_holder(f)}, "
        f"{dollars(_cents(f, 'amount_cents'))}{_reason(f)}."
    )


@sentence("pass.email_resent")
def _pass_email_resent(f: Facts) -> str:
    return f"{f.actor} sent the email of {_holder(f)} again."


@sentence("pass.refund_retried")
def _pass_refund_retried(f: Facts) -> str:
    return f"{f.actor} retried the refund of {dollars(_cents(f, 'amount_cents'))} for {_holder(f)}."


@sentence("pass_product.created", "pass_product.updated")
def _pass_product_saved(f: Facts) -> str:
    verb = "created" if f.action.endswith("created") else "changed"
    name = _text(f.details.get("product_name") or f"#{f.target_id}")
    return f"{f.actor} {verb} the pass product “{name}”."


@sentence("refund.requested")
def _refund_requested(f: Facts) -> str:
    return f"{f.actor} refunded {dollars(_cents(f, 'amount_cents'))} to {_person(f)}{_reason(f)}."


@sentence("refund.retried")
def _refund_retried(f: Facts) -> str:
    return f"{f.actor} retried the refund of {dollars(_cents(f, 'amount_cents'))} to {_person(f)}."


@sentence("registration.created_by_staff")
def _registered_by_staff(f: Facts) -> str:
    held = f.details.get("outcome") == "held"
    how = " (a seat held while they pay)" if held else ""
    return f"{f.actor} registered {_person(f)} for {_offering(f)}{_priced(f)}{how}."


def _priced(f: Facts) -> str:
    """How a booking was priced, when it was more than the list price: " at the Community tier
    with code PARTNER (-$1.00), $4.00" ('' for entries recorded before prices were)."""
    parts = []
    if f.details.get("community_seat"):
        parts.append("a community seat")
    elif f.details.get("tier"):
        parts.append(f"the {_text(f.details['tier'])} tier")
    code = f.details.get("code")
    if not parts and not code:
        return ""
    text = " at " + parts[0] if parts else ""
    if code:
        text += f" with code {_text(code)} (-{dollars(_cents(f, 'discount_cents'))})"
    return f"{text}, {dollars(_cents(f, 'price_cents'))}"


@sentence("registration.booked_with_pass")
def _booked_with_pass(f: Facts) -> str:
    credits = _count(_cents(f, "credits"), "credit", "credits")
    pass_id = _cents(f, "pass_id")
    which = f" #{pass_id}" if pass_id else ""
    return f"{_person(f)} booked {_offering(f)} with class pass{which}, spending {credits}."


@sentence("registration.cancelled")
def _registration_cancelled(f: Facts) -> str:
    refund = _cents(f, "refund_cents")
    money = f", refunding {dollars(refund)}" if refund else ", no refund"
    return f"{f.actor} cancelled {_person(f)}'s registration for {_offering(f)}{money}{_reason(f)}."


def _cancel_totals(f: Facts) -> str:
    if "refunds" not in f.details:  # recorded before the totals were
        return ""
    refunds = _cents(f, "refunds")
    if not refunds:
        return ": no refunds"
    return f": {_count(refunds, 'refund', 'refunds')}, {dollars(_cents(f, 'refund_cents'))}"


def _totals_and_reason(f: Facts) -> str:
    totals = _cancel_totals(f)
    if not totals:
        return _reason(f)
    reason = f.details.get("reason")
    return f"{totals} (“{_text(reason)}”)" if reason else totals


@sentence("session.cancelled")
def _session_cancelled(f: Facts) -> str:
    return f"{f.actor} cancelled {_session(f)} of {_offering(f)}{_totals_and_reason(f)}."


@sentence("offering.cancelled")
def _offering_cancelled(f: Facts) -> str:
    return f"{f.actor} cancelled {_offering(f)} (every date){_totals_and_reason(f)}."


@sentence("waitlist.cleared")
def _waitlist_cleared(f: Facts) -> str:
    n = _cents(f, "entries")
    return f"{f.actor} cleared the waitlist of {_offering(f)} ({_count(n, 'person', 'people')})."


@sentence("session.created")
def _session_created(f: Facts) -> str:
    return f"{f.actor} added a date to {_offering(f)}: {_session(f)}."


@sentence("offering.created")
def _offering_created(f: Facts) -> str:
    title = f.details.get("title")
    return f"{f.actor} created the offering {_text(title) if title else _offering(f)}."


def _change(value: object) -> str:
    if isinstance(value, list | tuple) and len(value) == 2:
        return f"{_text(value[0], 60)} → {_text(value[1], 60)}"
    return _text(value, 60)


@sentence("offering.updated")
def _offering_updated(f: Facts) -> str:
    changes = f.details.get("changes")
    if not isinstance(changes, Mapping) or not changes:
        return f"{f.actor} saved {_offering(f)} without changes."
    listed = "; ".join(f"{_words(key)} {_change(value)}" for key, value in changes.items())
    return f"{f.actor} edited {_offering(f)}: {listed}."


@sentence("price_tier.added")
def _tier_added(f: Facts) -> str:
    price = dollars(_cents(f, "price_cents"))
    return f"{f.actor} added the price tier {_text(f.details.get('tier'))} ({price}) to {_offering(f)}."


@sentence("price_tier.updated")
def _tier_updated(f: Facts) -> str:
    changes = f.details.get("changes")
    listed = "; ".join(f"{_words(key)} {_change(value)}" for key, value in changes.items()) if changes else ""
    return f"{f.actor} edited the price tier {_text(f.details.get('tier'))} of {_offering(f)}" + (
        f": {listed}." if listed else " without changes."
    )


@sentence("price_tier.removed")
def _tier_removed(f: Facts) -> str:
    return f"{f.actor} removed the price tier {_text(f.details.get('tier'))} from {_offering(f)}."


@sentence("promo_code.created")
def _code_created(f: Facts) -> str:
    tag = f.details.get("tag")
    return f"{f.actor} created the promo code {_text(f.details.get('code'))}" + (
        f" (partner {_text(tag)})." if tag else "."
    )


@sentence("promo_code.updated")
def _code_updated(f: Facts) -> str:
    changes = f.details.get("changes")
    listed = "; ".join(f"{_words(key)} {_change(value)}" for key, value in changes.items()) if changes else ""
    return f"{f.actor} edited the promo code {_text(f.details.get('code'))}" + (
        f": {listed}." if listed else " without changes."
    )


@sentence("promo_code.deactivated", "promo_code.activated")
def _code_active(f: Facts) -> str:
    done = "deactivated" if f.action.endswith("deactivated") else "brought back"
    return f"{f.actor} {done} the promo code {_text(f.details.get('code'))}."


@sentence("offering.translation_saved")
def _translation_saved(f: Facts) -> str:
    return f"{f.actor} saved the {_text(f.details.get('language', '?'))} text of {_offering(f)}."


@sentence("offering.translation_removed")
def _translation_removed(f: Facts) -> str:
    return f"{f.actor} removed the {_text(f.details.get('language', '?'))} text of {_offering(f)}."


@sentence("seat_pool.capacity_changed")
def _capacity_changed(f: Facts) -> str:
    return f"{f.actor} set the capacity of {_offering(f)} to {_text(f.details.get('capacity', '?'))}."


@sentence("email.resent")
def _email_resent(f: Facts) -> str:
    kind = _words(str(f.details.get("kind") or "an"))
    to = f.details.get("name") or f.person or f.details.get("to")  # ("to": older entries)
    previous = f.details.get("previous_status")
    was = f" (it had {'failed' if previous == 'failed' else 'been sent'})" if previous else ""
    return f"{f.actor} resent the {kind} email{f' to {_text(to)}' if to else ''}{was}."


@sentence("attendance.present", "attendance.absent")
def _attendance(f: Facts) -> str:
    status = f.action.removeprefix("attendance.")
    return f"{f.actor} marked {_person(f)} {status} at {_offering(f)}, {_session(f)}."


@sentence("instructor.created")
def _instructor_created(f: Facts) -> str:
    return f"{f.actor} added the instructor {_user(f)}."


@sentence("instructor.updated")
def _instructor_updated(f: Facts) -> str:
    return f"{f.actor} updated {_user(f)}'s details."


@sentence("user.deactivated")
def _user_deactivated(f: Facts) -> str:
    return f"{f.actor} deactivated {_user(f)}'s account (signed out everywhere)."


@sentence("user.reactivated")
def _user_reactivated(f: Facts) -> str:
    return f"{f.actor} reactivated {_user(f)}'s account."


@sentence("user.password_changed")
def _password_changed(f: Facts) -> str:
    return f"{f.actor} changed their password."


@sentence("clinic.updated")
def _clinic_updated(f: Facts) -> str:
    changed = f.details.get("changed")
    if isinstance(changed, list) and changed:
        return f"{f.actor} updated the clinic's details: {', '.join(_words(str(c)) for c in changed)}."
    return f"{f.actor} saved the clinic's details without changes."


@sentence("privacy.exported")
def _privacy_exported(f: Facts) -> str:
    # No actor: the member, through the link emailed to them.
    by_staff = f.actor != "The system"
    who = (
        f"{f.actor} downloaded the data held about a caller"
        if by_staff
        else ("A member downloaded the data held about their email address")
    )
    what = _count(_cents(f, "registrations"), "registration", "registrations")
    places = _cents(f, "waitlist_places")
    if places:
        what += f" and {_count(places, 'waitlist place', 'waitlist places')}"
    return f"{who} ({what})."


@sentence("privacy.erased")
def _privacy_erased(f: Facts) -> str:
    who = (
        f"{f.actor} deleted a caller's data at their request"
        if f.actor != "The system"
        else ("A member deleted their data through the link emailed to them")
    )
    cancelled = _cents(f, "cancelled")
    refund = _cents(f, "refund_cents") + _cents(f, "pass_refund_cents")
    parts = [
        f"{_count(_cents(f, 'registrations'), 'registration', 'registrations')} anonymised",
        f"{_count(cancelled, 'upcoming booking', 'upcoming bookings')} cancelled",
    ]
    if _cents(f, "passes"):
        parts.append(f"{_count(_cents(f, 'passes'), 'class pass', 'class passes')} anonymised")
    if _cents(f, "passes_closed"):
        parts.append(f"{_count(_cents(f, 'passes_closed'), 'class pass', 'class passes')} closed")
    if refund:
        parts.append(f"{dollars(refund)} refunded")
    return f"{who}: {', '.join(parts)}."


@sentence("privacy.retention_anonymised")
def _retention_anonymised(f: Facts) -> str:
    people = _count(_cents(f, "people"), "person", "people")
    registrations = _count(_cents(f, "registrations"), "registration", "registrations")
    places = _count(_cents(f, "waitlist_entries"), "waitlist place", "waitlist places")
    passes = _cents(f, "passes")
    held = f"{registrations}, {places}" + (
        f", {_count(passes, 'class pass', 'class passes')}" if passes else ""
    )
    return (
        f"{f.actor} anonymised {people} whose last session was more than "
        f"{_cents(f, 'months')} months ago ({held})."
    )


@sentence("location.created", "location.updated")
def _location(f: Facts) -> str:
    name = f.details.get("name") or f.location
    place = _text(name) if name else f"location #{f.target_id}"
    verb = "added the location" if f.action == "location.created" else "updated the location"
    return f"{f.actor} {verb} {place}."


@sentence("resource.created")
def _resource_created(f: Facts) -> str:
    what = "file" if f.details.get("kind") == "file" else "link"
    title = f.details.get("title")
    return f"{f.actor} added the {what} {f'“{_text(title)}” ' if title else ''}to {_offering(f)}."


@sentence("resource.deleted")
def _resource_deleted(f: Facts) -> str:
    title = f.details.get("title")
    return f"{f.actor} removed {f'“{_text(title)}”' if title else 'a resource'} from {_offering(f)}."


@sentence("attendance.cleared")
def _attendance_cleared(f: Facts) -> str:
    previous = f.details.get("previous")
    was = f" (was {_text(previous, 20)})" if previous else ""
    return f"{f.actor} undid {_person(f)}'s check-in at {_offering(f)}, {_session(f)}{was}."


@sentence("registration.walk_in")
def _walk_in(f: Facts) -> str:
    contact = "" if f.details.get("email_given") else " (no email given)"
    return f"{f.actor} added {_person(f)} as a walk-in at {_offering(f)}, {_session(f)}{contact}."


@sentence("message.sent")
def _message_sent(f: Facts) -> str:
    n = _cents(f, "recipients")
    where = f"{_offering(f)}, {_session(f)}" if f.target_type == "session" else f"everyone in {_offering(f)}"
    waitlist = " and the waitlist" if f.details.get("include_waitlist") else ""
    subject = f.details.get("subject")
    about = f" “{_text(subject, 80)}”" if subject else ""
    return f"{f.actor} messaged {where}{waitlist}:{about} to {_count(n, 'person', 'people')}."


@sentence("session.moved")
def _session_moved(f: Facts) -> str:
    old, new = f.details.get("old_when"), f.details.get("new_when")
    moved = f" from {_text(old)} to {_text(new)}" if old and new else ""
    old_place, new_place = f.details.get("old_location"), f.details.get("new_location")
    place = (
        f", {_text(old_place)} → {_text(new_place)}"
        if old_place and new_place and old_place != new_place
        else ""
    )
    n = _cents(f, "people_emailed")
    return f"{f.actor} moved {_offering(f)}{moved}{place} ({_count(n, 'person', 'people')} emailed)."


@sentence("session.substituted")
def _session_substituted(f: Facts) -> str:
    new = f.details.get("new_instructor")
    old = f.details.get("old_instructor")
    who = f"{_text(new)} teaches" if new else "no instructor is set for"
    instead = f" instead of {_text(old)}" if old else ""
    n = _cents(f, "people_emailed")
    told = f" ({_count(n, 'person', 'people')} emailed)" if n else ""
    return f"{f.actor} set a substitute: {who} {_offering(f)}, {_session(f)}{instead}{told}."


_REFUND_CHOICES = {"full": "a full refund", "policy": "the policy refund", "none": "no refund"}


@sentence("registration.cancelled_by_staff")
def _cancelled_by_staff(f: Facts) -> str:
    refund = _cents(f, "refund_cents")
    choice = _REFUND_CHOICES.get(str(f.details.get("refund_choice")), "a refund")
    money = f", {choice}: {dollars(refund)}" if refund else ", no refund"
    desk = " (returned at the desk)" if refund and f.details.get("method") in ("cash", "check") else ""
    # Booked with a class pass already refunded: the credit given back was refunded as money.
    credits = _cents(f, "credits_refunded_cents")
    if credits:
        at_desk = (
            " (returned at the desk)" if f.details.get("credits_refund_method") in ("cash", "check") else ""
        )
        money = f", {choice}: {dollars(refund)}" if refund else ", nothing for the seat"
        money += f"; the class pass credit refunded as money: {dollars(credits)}{at_desk}"
    return f"{f.actor} cancelled {_person(f)}'s booking for {_offering(f)}{money}{desk}{_reason(f)}."


@sentence("registration.transferred")
def _transferred(f: Facts) -> str:
    old, new = f.details.get("old"), f.details.get("new")
    where = f" from {_text(old)} to {_text(new)}" if old and new else ""
    refund, due = _cents(f, "refund_cents"), _cents(f, "due_cents")
    money = f", refunding {dollars(refund)}" if refund else (f", {dollars(due)} to collect" if due else "")
    return f"{f.actor} transferred {_person(f)}{where}{money}{_reason(f)}."


@sentence("registration.details_corrected")
def _details_corrected(f: Facts) -> str:
    fields = f.details.get("fields")
    what = ", ".join(_words(str(x)) for x in fields) if isinstance(fields, list) and fields else "details"
    resent = "; the confirmation was sent again" if f.details.get("confirmation_resent") else ""
    return f"{f.actor} corrected {_person(f)}'s {what}{resent}{_reason(f)}."


@sentence("payment.taken_at_desk")
def _taken_at_desk(f: Facts) -> str:
    method = str(f.details.get("method") or "")
    if method == "comp":
        how = "gave a comp place to"
    else:
        how = f"took {dollars(_cents(f, 'amount_cents'))} in {_text(method, 10) or 'cash'} from"
    stopped = " (the open card payment was stopped)" if _cents(f, "card_payment_stopped") else ""
    note = f.details.get("note")
    noted = f": “{_text(note)}”" if note else ""
    return f"{f.actor} {how} {_person(f)} for {_offering(f)}{stopped}{noted}."


@sentence("payment.balance_link_sent")
def _balance_link_sent(f: Facts) -> str:
    due = dollars(_cents(f, "amount_cents"))
    return f"{f.actor} emailed {_person(f)} a link to pay the {due} still due for {_offering(f)} by card."


@sentence("payment.balance_paid")
def _balance_paid(f: Facts) -> str:
    paid = dollars(_cents(f, "amount_cents"))
    return f"{_person(f)} paid the {paid} still due for {_offering(f)} by card, through the payment link."


@sentence("payment.extra_balance_refunded")
def _extra_balance_refunded(f: Facts) -> str:
    paid, refund = dollars(_cents(f, "amount_cents")), _cents(f, "refund_cents")
    back = f"; {dollars(refund)} is refunded to their card" if refund else "; it had already been refunded"
    return (
        f"A card payment of {paid} from {_person(f)} for {_offering(f)} arrived after nothing was owed{back}."
    )


def _document(f: Facts) -> str:
    title = f.details.get("title") or f.details.get("document_title")
    version = _cents(f, "version")
    named = f"“{_text(title)}”" if title else "a consent document"
    return f"version {version} of {named}" if version else named


@sentence("consent_document.created")
def _consent_document_created(f: Facts) -> str:
    title = f.details.get("title")
    named = f"“{_text(title)}”" if title else f"#{f.target_id}"
    return f"{f.actor} created the consent document {named} and published its first version."


@sentence("consent_version.published")
def _consent_version_published(f: Facts) -> str:
    return f"{f.actor} published {_document(f)}; everyone booking from now on is asked to accept it."


def _language_name(code: object) -> str:
    """A language code as staff read it ("es" -> "Español (es)"); the code itself if not offered."""
    code = _text(code, 12)
    return language_name(code) if has_app_context() else code


@sentence("consent_translation.published")
def _consent_translation_published(f: Facts) -> str:
    return (
        f"{f.actor} published the {_language_name(f.details.get('language'))} translation of "
        f"{_document(f)}; members reading that language see it from now on."
    )


@sentence("consent.accepted_in_person")
def _consent_accepted_in_person(f: Facts) -> str:
    language = f.details.get("language")
    shown = f" (shown in {_language_name(language)})" if language else ""
    return (
        f"{_person(f)} accepted {_document(f)}{shown} on {f.actor}'s phone at check-in for {_offering(f)}, "
        f"{_session(f)}."
    )


def _words(name: str) -> str:
    """'session.moved' -> 'session moved', 'price_cents' -> 'price cents'."""
    return name.replace(".", " ").replace("_", " ").strip()


def _detail_value(key: str, value: object) -> str:
    if key.endswith("_cents") and isinstance(value, int) and not isinstance(value, bool):
        return dollars(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{_words(str(k))} {_change(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return _change(value) if len(value) == 2 else ", ".join(_text(v, 60) for v in value) or "none"
    return _text(value, 120)


# Details a generic sentence leaves out: ids are shown as links, the names inside the sentence.
_NOT_READ_OUT = ("name", "offering_title", "starts_at")


def generic_sentence(f: Facts) -> str:
    """An action with no sentence of its own, still in words: who, what, on what, and the
    details as 'key value' pairs."""
    subject = {
        "registration": lambda: _person(f),
        "session": lambda: f"{_offering(f)}, {_session(f)}",
        "offering": lambda: _offering(f),
        "user": lambda: _user(f),
    }.get(f.target_type, lambda: f"{_words(f.target_type)} #{f.target_id}")()
    details = [
        f"{_words(key)} {_detail_value(key, value)}"
        for key, value in f.details.items()
        if not key.endswith("_id") and key not in _NOT_READ_OUT
    ]
    extra = f" ({'; '.join(details)})" if details else ""
    return f"{f.actor}: {_words(f.action)}, {subject}{extra}."


def describe(f: Facts) -> str:
    """The entry as a sentence; a broken entry (details not as expected) still reads as words."""
    function = SENTENCES.get(f.action)
    if function is not None:
        try:
            return function(f)
        except (TypeError, ValueError, AttributeError):
            pass
    return generic_sentence(f)


def action_label(action: str) -> str:
    """'refund.requested' -> 'Refund requested', for the kind filter."""
    words = _words(action)
    return words[:1].upper() + words[1:]
