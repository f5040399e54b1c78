"""Each audit action told as a sentence, from hand-built entries; unknown actions in words."""

import re
from pathlib import Path

import pytest

from events.audit import SENTENCES, Facts, action_label, describe, generic_sentence

WHEN = "Tue Dec 1, 2026, 6:00 pm CST"


def facts(action, target_type="registration", target_id=7, **kw):
    return Facts(action=action, actor="Sam Rivera", target_type=target_type, target_id=target_id, **kw)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            facts(
                "refund.requested",
                details={
                    "amount_cents": 1500,
                    "reason": "double charged",
                    "name": "Ana Lopez",
                    "refund_id": 3,
                },
            ),
            "Sam Rivera refunded $15.00 to Ana Lopez: “double charged”.",
        ),
        (  # an older entry without the name: the registration's person, looked up
            facts("refund.requested", details={"amount_cents": 600}, person="Ana Lopez"),
            "Sam Rivera refunded $6.00 to Ana Lopez.",
        ),
        (
            facts("refund.retried", details={"amount_cents": 1500, "name": "Ana Lopez"}),
            "Sam Rivera retried the refund of $15.00 to Ana Lopez.",
        ),
        (
            facts(
                "registration.created_by_staff",
                details={"outcome": "held", "name": "Ana Lopez", "offering_title": "Core & Hip Strength"},
            ),
            "Sam Rivera registered Ana Lopez for Core & Hip Strength (a seat held while they pay).",
        ),
        (
            facts(
                "registration.created_by_staff",
                details={"outcome": "confirmed"},
                person="Bo",
                offering="Yoga",
            ),
            "Sam Rivera registered Bo for Yoga.",
        ),
        (  # priced at a tier with a code (events/staff/registrations.py register_on_behalf)
            facts(
                "registration.created_by_staff",
                details={
                    "outcome": "confirmed",
                    "name": "Ana Lopez",
                    "offering_title": "Yoga",
                    "tier": "Community",
                    "code": "PARTNER",
                    "discount_cents": 100,
                    "price_cents": 400,
                },
            ),
            "Sam Rivera registered Ana Lopez for Yoga at the Community tier with code PARTNER (-$1.00), "
            "$4.00.",
        ),
        (
            facts(
                "registration.created_by_staff",
                details={
                    "outcome": "held",
                    "name": "Ana Lopez",
                    "offering_title": "Yoga",
                    "community_seat": True,
                    "price_cents": 500,
                },
            ),
            "Sam Rivera registered Ana Lopez for Yoga at a community seat, $5.00 "
            "(a seat held while they pay).",
        ),
        (
            facts(
                "registration.cancelled",
                details={
                    "refund_cents": 1500,
                    "name": "Ana Lopez",
                    "offering_title": "Core",
                    "reason": "Flood",
                },
            ),
            "Sam Rivera cancelled Ana Lopez's registration for Core, refunding $15.00: “Flood”.",
        ),
        (
            facts("registration.cancelled", details={"refund_cents": 0}, person="Bo", offering="Yoga"),
            "Sam Rivera cancelled Bo's registration for Yoga, no refund.",
        ),
        (
            facts(
                "session.cancelled",
                "session",
                details={
                    "reason": "Instructor ill",
                    "offering_title": "Core & Hip Strength",
                    "starts_local": WHEN,
                    "refunds": 7,
                    "refund_cents": 10500,
                    "people": 7,
                },
            ),
            f"Sam Rivera cancelled {WHEN} of Core & Hip Strength: 7 refunds, $105.00 (“Instructor ill”).",
        ),
        (  # recorded before totals were: no made-up numbers
            facts(
                "session.cancelled", "session", details={"reason": "Ill"}, offering="Core", session_when=WHEN
            ),
            f"Sam Rivera cancelled {WHEN} of Core: “Ill”.",
        ),
        (
            facts(
                "session.cancelled",
                "session",
                details={"refunds": 0, "refund_cents": 0, "starts_local": WHEN},
            ),
            f"Sam Rivera cancelled {WHEN} of an offering: no refunds.",
        ),
        (
            facts(
                "offering.cancelled",
                "offering",
                details={
                    "reason": "Room flooded",
                    "offering_title": "Yoga",
                    "refunds": 1,
                    "refund_cents": 2000,
                },
            ),
            "Sam Rivera cancelled Yoga (every date): 1 refund, $20.00 (“Room flooded”).",
        ),
        (
            facts("waitlist.cleared", "seat_pool", details={"entries": 1}, offering="Yoga"),
            "Sam Rivera cleared the waitlist of Yoga (1 person).",
        ),
        (
            facts("waitlist.cleared", "seat_pool", details={"entries": 3}, offering="Yoga"),
            "Sam Rivera cleared the waitlist of Yoga (3 people).",
        ),
        (
            facts("session.created", "session", details={"offering_title": "Yoga", "starts_local": WHEN}),
            f"Sam Rivera added a date to Yoga: {WHEN}.",
        ),
        (
            facts("offering.created", "offering", details={"title": "Yoga"}),
            "Sam Rivera created the offering Yoga.",
        ),
        (
            facts(
                "offering.updated",
                "offering",
                details={"changes": {"capacity": [12, 14], "price_cents": ["1500", "2000"]}},
                offering="Yoga",
            ),
            "Sam Rivera edited Yoga: capacity 12 → 14; price cents 1500 → 2000.",
        ),
        (
            facts("offering.updated", "offering", details={"changes": {}}, offering="Yoga"),
            "Sam Rivera saved Yoga without changes.",
        ),
        (
            facts("seat_pool.capacity_changed", "seat_pool", details={"capacity": 14}, offering="Yoga"),
            "Sam Rivera set the capacity of Yoga to 14.",
        ),
        (
            facts(
                "email.resent",
                "outbox_email",
                details={
                    "kind": "registration_confirmed",
                    "previous_status": "failed",
                    "to": "ana@example.com",
                },
            ),
            "Sam Rivera resent the registration confirmed email to ana@example.com (it had failed).",
        ),
        (
            facts(
                "attendance.present",
                details={"session_id": 4},
                person="Ana Lopez",
                offering="Yoga",
                session_when=WHEN,
            ),
            f"Sam Rivera marked Ana Lopez present at Yoga, {WHEN}.",
        ),
        (
            facts("attendance.absent", person="Bo", offering="Yoga", session_when=WHEN),
            f"Sam Rivera marked Bo absent at Yoga, {WHEN}.",
        ),
        (
            facts("instructor.created", "user", details={"name": "Jo Lee"}),
            "Sam Rivera added the instructor Jo Lee.",
        ),
        (facts("instructor.updated", "user", user="Jo Lee"), "Sam Rivera updated Jo Lee's details."),
        (
            facts("user.deactivated", "user", details={"name": "Jo Lee"}),
            "Sam Rivera deactivated Jo Lee's account (signed out everywhere).",
        ),
        (facts("user.reactivated", "user", user="Jo Lee"), "Sam Rivera reactivated Jo Lee's account."),
        (facts("user.password_changed", "user"), "Sam Rivera changed their password."),
        (
            facts("clinic.updated", "clinic", details={"changed": ["name", "reply_to"]}),
            "Sam Rivera updated the clinic's details: name, reply to.",
        ),
        (
            facts("location.created", "location", details={"name": "North Loop"}),
            "Sam Rivera added the location North Loop.",
        ),
        (
            facts("location.updated", "location", location="North Loop"),
            "Sam Rivera updated the location North Loop.",
        ),
        (
            facts(
                "resource.created", "resource", details={"kind": "file", "title": "Handout"}, offering="Yoga"
            ),
            "Sam Rivera added the file “Handout” to Yoga.",
        ),
        (
            facts("resource.created", "resource", details={"kind": "link"}, offering="Yoga"),
            "Sam Rivera added the link to Yoga.",
        ),
        (
            facts("resource.deleted", "resource", details={"title": "Handout", "offering_title": "Yoga"}),
            "Sam Rivera removed “Handout” from Yoga.",
        ),
        (
            facts(
                "session.moved",
                "session",
                details={
                    "offering_title": "Core & Hip Strength",
                    "old_when": "Tue Dec 1, 6 pm CST",
                    "new_when": "Wed Dec 2, 6 pm CST",
                    "old_location": "North Loop",
                    "new_location": "Robbinsdale",
                    "people_emailed": 7,
                },
            ),
            "Sam Rivera moved Core & Hip Strength from Tue Dec 1, 6 pm CST to Wed Dec 2, 6 pm CST, "
            "North Loop → Robbinsdale (7 people emailed).",
        ),
        (
            facts(
                "session.substituted",
                "session",
                details={
                    "offering_title": "Yoga",
                    "when": WHEN,
                    "old_instructor": "Maya",
                    "new_instructor": "Jo",
                },
            ),
            f"Sam Rivera set a substitute: Jo teaches Yoga, {WHEN} instead of Maya.",
        ),
        (
            facts(
                "registration.cancelled_by_staff",
                details={
                    "name": "Ana Lopez",
                    "offering_title": "Yoga",
                    "refund_choice": "full",
                    "refund_cents": 1500,
                    "method": "cash",
                    "reason": "ill",
                },
            ),
            "Sam Rivera cancelled Ana Lopez's booking for Yoga, a full refund: $15.00 "
            "(returned at the desk): “ill”.",
        ),
        (
            facts(
                "registration.transferred",
                details={"name": "Ana Lopez", "old": "Yoga, Tue", "new": "Yoga, Wed", "due_cents": 500},
            ),
            "Sam Rivera transferred Ana Lopez from Yoga, Tue to Yoga, Wed, $5.00 to collect.",
        ),
        (
            facts(
                "registration.details_corrected",
                details={
                    "name": "Ana Lopez",
                    "fields": ["email"],
                    "confirmation_resent": True,
                    "reason": "typo",
                },
            ),
            "Sam Rivera corrected Ana Lopez's email; the confirmation was sent again: “typo”.",
        ),
        (
            facts(
                "payment.taken_at_desk",
                details={"name": "Bo", "offering_title": "Yoga", "method": "check", "amount_cents": 1500},
            ),
            "Sam Rivera took $15.00 in check from Bo for Yoga.",
        ),
        (
            facts(
                "payment.taken_at_desk", details={"name": "Bo", "offering_title": "Yoga", "method": "comp"}
            ),
            "Sam Rivera gave a comp place to Bo for Yoga.",
        ),
        (
            facts(
                "registration.walk_in",
                details={"name": "Cy", "offering_title": "Yoga", "session_start": WHEN, "email_given": False},
            ),
            f"Sam Rivera added Cy as a walk-in at Yoga, {WHEN} (no email given).",
        ),
        (
            facts(
                "attendance.cleared",
                details={
                    "name": "Cy",
                    "offering_title": "Yoga",
                    "session_start": WHEN,
                    "previous": "present",
                },
            ),
            f"Sam Rivera undid Cy's check-in at Yoga, {WHEN} (was present).",
        ),
        (
            facts(
                "message.sent",
                "session",
                details={
                    "offering_title": "Yoga",
                    "session_start": WHEN,
                    "subject": "Room B today",
                    "recipients": 1,
                    "include_waitlist": True,
                },
            ),
            f"Sam Rivera messaged Yoga, {WHEN} and the waitlist: “Room B today” to 1 person.",
        ),
        (
            facts(
                "consent_document.created",
                target_type="consent_document",
                details={"title": "Exercise class participation and release", "version": 1},
            ),
            "Sam Rivera created the consent document “Exercise class participation and release” and "
            "published its first version.",
        ),
        (
            facts(
                "consent_version.published",
                target_type="consent_document",
                details={"title": "Release", "version": 2},
            ),
            "Sam Rivera published version 2 of “Release”; everyone booking from now on is asked to "
            "accept it.",
        ),
        (
            facts(
                "registration.booked_with_pass",
                details={"name": "Ana Lopez", "offering_title": "Core Flow", "pass_id": 12, "credits": 1},
            ),
            "Ana Lopez booked Core Flow with class pass #12, spending 1 credit.",
        ),
        (
            facts(
                "consent.accepted_in_person",
                details={
                    "name": "Ana Lopez",
                    "offering_title": "Core & Hip Strength",
                    "document_title": "Release",
                    "version": 3,
                    "session_start": "Tue Dec 1, 6 pm CST",
                },
            ),
            "Ana Lopez accepted version 3 of “Release” on Sam Rivera's phone at check-in for "
            "Core & Hip Strength, Tue Dec 1, 6 pm CST.",
        ),
    ],
)
def test_each_action_reads_as_a_sentence(entry, expected):
    assert describe(entry) == expected


def test_every_action_recorded_in_the_code_has_a_sentence():
    """Read off the source: a new audit.record("kind.action", ...) without a sentence fails here."""
    root = Path(__file__).resolve().parents[2] / "events"
    source = "\n".join(p.read_text() for p in root.rglob("*.py"))
    recorded = set(re.findall(r'audit\.record(?:_about)?\(\s*[^,]+,\s*"([a-z_]+\.[a-z_]+)"', source))
    recorded |= {"attendance.present", "attendance.absent"}  # recorded as f"attendance.{status}"
    assert len(recorded) >= 30 and "payment.taken_at_desk" in recorded  # (recorded by record_about)
    assert recorded <= set(SENTENCES), sorted(recorded - set(SENTENCES))


def test_an_unknown_action_reads_as_words_not_json():
    entry = facts(
        "session.teleported",
        "session",
        details={
            "offering_id": 4,
            "offering_title": "Core",
            "old_local": "Tue Dec 1, 2026, 6:00 pm CST",
            "new_local": "Wed 2 Dec 2026, 6:00 pm CST",
            "refund_cents": 1500,
            "emailed": True,
            "changes": {"room": ["A", "B"]},
        },
        session_when=WHEN,
    )
    text = describe(entry)
    assert text == (
        f"Sam Rivera: session teleported, Core, {WHEN} (old local Tue Dec 1, 2026, 6:00 pm CST; "
        "new local Wed 2 Dec 2026, 6:00 pm CST; refund cents $15.00; emailed yes; changes room A → B)."
    )
    for raw in ("{", "}", '"', "_"):
        assert raw not in text


def test_an_entry_with_odd_details_still_reads():
    # Details of the wrong type (a hand-edited row, an old format) never break the page.
    assert describe(facts("refund.requested", details={"amount_cents": "lots"})) == (
        "Sam Rivera refunded $0.00 to registration #7."
    )
    assert describe(facts("offering.updated", "offering", details={"changes": "x"})) == (
        "Sam Rivera saved an offering without changes."
    )
    long_reason = "word " * 200
    assert len(describe(facts("refund.requested", details={"reason": long_reason}))) < 300
    assert describe(facts("made.up", "widget", details={})) == "Sam Rivera: made up, widget #7."
    assert (
        generic_sentence(facts("x.y", details={"note": "a\nb"}))
        == "Sam Rivera: x y, registration #7 (note a b)."
    )


def test_kind_labels():
    assert action_label("refund.requested") == "Refund requested"
    assert action_label("registration.created_by_staff") == "Registration created by staff"
