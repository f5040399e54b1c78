"""The clinic running this site: its name, time zone and currency come from the database."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g

from events.extensions import db
from events.models import Clinic


def neutral_clinic() -> Clinic:
    """What pages and emails show before a clinic exists, or while the database is unreachable."""
    return Clinic(name="Workshops & Classes", timezone="America/Chicago", currency="usd")


def current_clinic() -> Clinic:
    """The clinic row, once per request (or task). A database with no clinic yet gets a neutral one."""
    if "clinic" not in g:
        g.clinic = db.session.scalar(sa.select(Clinic).order_by(Clinic.id).limit(1)) or neutral_clinic()
    return g.clinic


def clinic_or_neutral() -> Clinic:
    """The clinic, or the neutral one if the database can't say (the error page must still render)."""
    try:
        clinic = current_clinic()
        # Read here: an expired row on a database that has gone away (a restart) fails on this
        # line rather than in a template (which would be a bare server 500).
        clinic.name  # noqa: B018
    except Exception:
        g.clinic = clinic = neutral_clinic()
    return clinic
