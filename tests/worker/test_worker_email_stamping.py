"""Reminders rendered once per session and stamped with each person's name and link
(events/notifications/sender.py, issue 17 goal 7) read exactly as a render of their own would,
whatever the names hold; the templates stamped use the personal values only bare; and a batch's
'sent' marks go out over a connection left as it was found (events/notifications/delivery.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from events.models import EmailStatus, OutboxEmail
from events.notifications.content import Prefetched, build
from events.notifications.delivery import deliver_due
from events.notifications.outbox import EmailKind, queue_email
from events.notifications.sender import STAMPED_KINDS, STAMPED_PERSONAL, Renderer
from events.registration.services import Person, register
from tests.factories import make_clinic, make_location, make_offering, make_session, upcoming_day

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "emails"
NAMES = [
    "Ann Lee",
    "",  # a walk-in without a name: "Hello,"
    '<b>Bo</b> & "Cy" O\'Neil',  # escaped in the HTML part, as the template would
    "{{ name }} {% if x %}",  # template syntax in a value is text, not template
    "José Ñúñez — “Peña”",
    "Zoë\u00a0Smith " + "x" * 100,  # long, with a no-break space
]


def _reminders(db, offering, session):
    registrations = []
    for n, name in enumerate(NAMES):
        registration = register(
            offering, None, Person(name or "Placeholder", f"p{n}@example.com")
        ).registration
        registration.name = name  # (walk-ins may have none; the form asks for one)
        registrations.append(registration)
    db.session.flush()
    for registration in registrations:
        assert queue_email(
            EmailKind.REMINDER, registration=registration, session_id=session.id, key_parts=("1440m",)
        )
    db.session.commit()
    return list(db.session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id)))


def test_a_stamped_reminder_is_what_its_own_render_would_be(db, app):
    make_clinic(name="Clinic <& “Co”>", phone="612-555-0100", email="hello@clinic.example")
    location = make_location(name="Studio & Co", directions="Door <B>, up the stairs")
    offering = make_offering(
        location, title="Back <care> & “more”", capacity=20, what_to_bring="A towel & water"
    )
    session = make_session(offering, upcoming_day(1))
    other = make_session(offering, upcoming_day(3))
    db.session.commit()
    rows = _reminders(db, offering, session)
    rows += _reminders(db, offering, other)[-2:]  # a second session in the same batch: its own stamp
    assert EmailKind.REMINDER in STAMPED_KINDS

    with app.test_request_context("/", base_url=app.config["PUBLIC_BASE_URL"]):
        prefetched, renderer = Prefetched(rows), Renderer()
        for row in rows:
            content = build(row, prefetched)
            stamped = renderer.render_parts(row, content)
            plain = renderer._render_parts(row.kind, content.context)  # the templates run for this one row
            assert stamped == plain, content.context["name"]
            name = content.context["name"]
            if name:
                assert name in stamped[0]  # the text part has the name as written
            assert content.context["manage_url"] in stamped[0]
            assert not any(marker in part for marker in renderer.markers.values() for part in stamped)
        # One render per session (and per "named or not"), not per email.
        assert len(renderer.stamped) == 3  # session 1 named and unnamed, session 2 named


def test_stamped_templates_use_the_personal_values_only_bare():
    """A filter or test on a stamped value ({{ name|upper }}, {% if name == ... %}) would see
    the marker instead of the person's value: only these uses are allowed."""
    allowed = {"{{ name }}", "{% if name %}", "{{ manage_url }}"}
    for kind in STAMPED_KINDS:
        for path in [
            TEMPLATES / f"{kind}.txt",
            TEMPLATES / f"{kind}.html",
            TEMPLATES / "_base.txt",
            TEMPLATES / "_base.html",
        ]:
            source = path.read_text()
            tags = re.findall(r"\{[{%].*?[}%]\}", source, re.DOTALL)
            assert tags, path.name  # the control: the pattern finds the template's tags
            # Words inside a translated string ("your registration", "its name") are text, not reads.
            code = [re.sub(r"(['\"]).*?\1", "''", tag) for tag in tags]
            for personal in STAMPED_PERSONAL:
                # Passed whole into a translation ({{ _('Hello %(name)s,', name=name) }}) is bare too.
                passed = r"\b\w+=" + personal + r"(?=\s*[,)])"
                uses = [t for t in code if re.search(r"(?<![.\w])" + personal + r"\b", re.sub(passed, "", t))]
                assert set(uses) <= allowed, (path.name, uses)
            # Nothing personal but those two: a registration's or entry's own fields are not read.
            others = r"(?<![.\w])(registration|entry|waitlist_url|extra)\b"
            read = [tag for tag in code if re.search(others, tag)]
            assert read == [], (path.name, read)


def test_a_batch_is_marked_sent_and_its_marks_connection_handed_back_as_found(db, app, smtp):
    make_clinic()
    offering = make_offering(make_location(), capacity=20)
    session = make_session(offering, upcoming_day(1))
    db.session.commit()
    rows = _reminders(db, offering, session)

    stats = deliver_due(batch_size=4)  # two batches: each made durable at its end

    assert (stats.sent, stats.failed) == (len(rows), 0)
    db.session.expire_all()
    sent = list(db.session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id)))
    assert {row.status for row in sent} == {EmailStatus.SENT}
    assert all(row.sent_at is not None for row in sent)
    assert len(smtp.messages) == len(rows)
    # Every pooled connection answers with the server's default again (the marks' one was reset),
    # and holds no prepared 'sent' mark (the second batch prepared it again without a clash).
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        prepared = "SELECT count(*) FROM pg_prepared_statements WHERE name = 'outbox_mark_sent'"
        assert conn.exec_driver_sql(prepared).scalar() == 0
