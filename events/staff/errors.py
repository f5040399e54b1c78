"""Errors a staff action can meet; their messages are shown to the staff member."""

from __future__ import annotations

from events.forms import FieldError


class AdminError(FieldError):
    """A rule stops this admin change; the message is for the admin. `field` names the form field."""


class RosterError(Exception):
    """A check-in refused (that person is not on this roster)."""


class CheckinClosed(RosterError):
    """Check-in (or adding a walk-in) asked for outside the session's check-in window."""


class RosterRefusal(FieldError):
    """A roster change (a walk-in, a message) refused by a rule; the message is for the
    instructor or admin, next to the form field `field` names."""
