"""The clinic's own details, as admins set them: its name and tagline on every page, and its
contact address and phone, shown in every page's and email's footer. The contact address is
also every email's Reply-To and the organizer of the invites it sends, so people's replies
reach the clinic rather than the no-reply sender (events/notifications/sender.py)."""

from __future__ import annotations

import sqlalchemy as sa

from events import audit
from events.extensions import db
from events.models import Clinic, User

CLINIC_FIELDS = ("name", "tagline", "email", "phone", "website_url", "email_subjects")


def clinic_for_admin() -> Clinic | None:
    """The clinic row (None before one exists: seed-demo or the first save makes it)."""
    return db.session.scalar(sa.select(Clinic).order_by(Clinic.id).limit(1))


def save_clinic(data: dict, actor: User) -> Clinic:
    clinic = db.session.scalar(sa.select(Clinic).order_by(Clinic.id).limit(1).with_for_update())
    if clinic is None:
        clinic = Clinic(name=data["name"])
        db.session.add(clinic)
    changed = sorted(key for key in CLINIC_FIELDS if getattr(clinic, key) != data[key])
    for key in CLINIC_FIELDS:
        setattr(clinic, key, data[key])
    db.session.flush()
    audit.record(actor.id, "clinic.updated", "clinic", clinic.id, changed=changed)
    db.session.commit()
    return clinic
