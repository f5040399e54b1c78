"""The staff pages, one module per subject; each calls the service module of the same name.

Importing this package registers every staff route on the one `staff` blueprint.
"""

from events.staff.access import bp
from events.staff.views import (  # noqa: F401  (importing a views module registers its routes)
    accounts,
    admin_home,
    audit,
    bookings,
    cancellations,
    clinic_settings,
    consent,
    emails,
    locations,
    messages,
    moves,
    offerings,
    passes,
    pricing,
    privacy,
    registrations,
    reports,
    rosters,
)

__all__ = ["bp"]
