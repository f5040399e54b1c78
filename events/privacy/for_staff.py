"""Staff acting for a caller (on the phone, at the desk): the caller's data downloaded or
erased from a registration's page, with no emailed link (staff know who they are talking to),
and every use audited. The address's class passes go with it: in the download, in what the
erase page lists (erase_plan().passes: closed, their unused credits refunded pro rata, or
voided while unpaid), and in the erasure."""

from __future__ import annotations

from datetime import date
from typing import Any

from events.models import PrivacyAction, Registration, User, utcnow
from events.privacy import erase, export, requests


def _address(registration: Registration) -> str:
    return registration.email


def export_for(registration: Registration, actor: User) -> dict[str, Any]:
    """Everything held about this registration's address (its own row, if it has none)."""
    now = utcnow()
    request = requests.staff_request(PrivacyAction.EXPORT, now)
    if registration.email_normalized:
        document = export.data_for(registration.email, now)
    else:  # a walk-in who gave no address: only this booking is about them
        document = export.data_for_registration(registration, now)
    export.record_export(request, document, actor_id=actor.id, registration_id=registration.id)
    return document


def erase_plan(registration: Registration) -> erase.ErasurePlan:
    return erase.plan(registration.email, utcnow(), registration)


def erase_for(registration: Registration, actor: User) -> erase.Erasure:
    now = utcnow()
    request = requests.staff_request(PrivacyAction.ERASE, now)
    return erase.erase(registration.email, request, now, actor_id=actor.id, registration_id=registration.id)


def preview_page_after(value: str | None) -> date | None:
    """The retention page's `?after=` (a date), or None for the first page (a hand-edited link)."""
    if value is None or len(value) != 10 or not value.isascii():
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
