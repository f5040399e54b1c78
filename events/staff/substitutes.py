"""A substitute instructor for one session.

Session.instructor_id names the substitute (NULL: the offering's regular instructor teaches).
Who sees a roster follows it (events/staff/access.py instructor_of): the substitute sees the
roster and takes check-in, the regular instructor no longer does; public pages and the API
show the session's instructor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events import audit
from events.extensions import db
from events.models import Role, Session, User, utcnow
from events.notifications.outbox import EmailKind, queue_email
from events.registration import seats
from events.staff.errors import AdminError
from events.staff.moves import (
    people,
    refuse_clash,
    refuse_unless_changeable,
    registrations_to_tell,
    session_when,
)


def teacher(session: Session) -> User | None:
    """Who teaches this session: its substitute, else the offering's instructor."""
    return session.instructor or session.offering.instructor


@dataclass(frozen=True)
class SubstitutePlan:
    session: Session
    previous: User | None
    instructor: User | None  # who will teach (None: nobody named)
    stored_id: int | None  # what Session.instructor_id becomes
    when: str
    people: int  # registrants who would be emailed, if asked to

    def sentence(self, notify: bool) -> str:
        who = self.instructor.name if self.instructor else "no named instructor"
        was = self.previous.name if self.previous else "no named instructor"
        told = (
            f"{people(self.people)} will be emailed" if notify and self.people else "nobody will be emailed"
        )
        return f"{who} will teach {self.session.offering.title} on {self.when} instead of {was}; {told}."


def plan_substitute(
    session: Session, instructor_id: int | None, now: datetime | None = None
) -> SubstitutePlan:
    """instructor_id: the substitute, or None to give the date back to the regular instructor."""
    now = now or utcnow()
    refuse_unless_changeable(session, now)
    regular = session.offering.instructor
    instructor: User | None
    if instructor_id is None or (regular is not None and instructor_id == regular.id):
        instructor, stored_id = regular, None
    else:
        instructor = db.session.get(User, instructor_id)
        if instructor is None or instructor.role is not Role.INSTRUCTOR or not instructor.is_active:
            raise AdminError("Choose an active instructor.", "instructor_id")
        stored_id = instructor.id
    previous = teacher(session)
    if stored_id == session.instructor_id:
        name = instructor.name if instructor else "Nobody"
        raise AdminError(f"{name} already teaches this date.", "instructor_id")
    refuse_clash(instructor, session, session.starts_at, session.ends_at)
    return SubstitutePlan(
        session, previous, instructor, stored_id, session_when(session), len(registrations_to_tell(session))
    )


def substitute(
    session_id: int, instructor_id: int | None, notify: bool, actor: User, now: datetime | None = None
) -> tuple[SubstitutePlan, int]:
    """Give one session another instructor (under its seat pool lock, so a registration at the
    same moment is told or sees the new name). Returns the plan and the emails queued."""
    session = db.session.get_one(Session, session_id)
    seats.lock_pool(session.seat_pool_id)
    db.session.refresh(session)
    plan = plan_substitute(session, instructor_id, now)
    session.instructor_id = plan.stored_id
    entry = audit.record(
        actor.id,
        "session.substituted",
        "session",
        session.id,
        offering_id=session.offering_id,
        offering_title=session.offering.title,
        when=plan.when,
        old_instructor=plan.previous.name if plan.previous else "",
        new_instructor=plan.instructor.name if plan.instructor else "",
        people_emailed=0,
    )
    db.session.flush()
    emailed = 0
    if notify and plan.instructor is not None:
        context = {
            "instructor_name": plan.instructor.name,
            "previous_name": plan.previous.name if plan.previous else "",
            "when": plan.when,
        }
        for registration in registrations_to_tell(session):
            # Keyed by this change (its audit row): a later change is a new email, a retry is not.
            emailed += bool(
                queue_email(
                    EmailKind.INSTRUCTOR_CHANGED,
                    registration=registration,
                    session_id=session.id,
                    key_parts=(f"a{entry.id}",),
                    context=context,
                )
            )
        entry.details = {**entry.details, "people_emailed": emailed}
    db.session.commit()
    return plan, emailed
