"""Errors a staff action can meet; their messages are shown to the staff member."""

from __future__ import annotations

from events.forms import FieldError


class AdminError(FieldError):
    """A rule stops this admin change; the message is for the admin. `field` names the form field."""


class RosterError(Exception):
    """A check-in refused (that person is not on this roster)."""
