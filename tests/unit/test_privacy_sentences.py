"""The privacy actions told as sentences in the audit trail (never the person's data: counts)."""

from events.audit import Facts, describe


def facts(action, actor="Sam Rivera", **details):
    return Facts(action=action, actor=actor, target_type="privacy_request", target_id=4, details=details)


def test_privacy_entries_read_as_sentences():
    assert describe(facts("privacy.exported", registrations=2, waitlist_places=1)) == (
        "Sam Rivera downloaded the data held about a caller (2 registrations and 1 waitlist place)."
    )
    assert describe(facts("privacy.exported", actor="The system", registrations=1)) == (
        "A member downloaded the data held about their email address (1 registration)."
    )
    assert describe(facts("privacy.erased", registrations=3, cancelled=1, refund_cents=3000)) == (
        "Sam Rivera deleted a caller's data at their request: 3 registrations anonymised, "
        "1 upcoming booking cancelled, $30.00 refunded."
    )
    assert describe(facts("privacy.erased", actor="The system", registrations=1, cancelled=0)) == (
        "A member deleted their data through the link emailed to them: 1 registration anonymised, "
        "0 upcoming bookings cancelled."
    )
    retention = facts(
        "privacy.retention_anonymised",
        actor="The system",
        people=2,
        registrations=5,
        waitlist_entries=1,
        months=24,
    )
    assert describe(retention) == (
        "The system anonymised 2 people whose last session was more than 24 months ago "
        "(5 registrations, 1 waitlist place)."
    )
