"""A registration made in Spanish gets every later email in Spanish from the real worker (its
confirmation, a reminder, the follow-up), whatever language the request that queued them was in;
one made in English beside it stays English.

The Spanish catalogue is filled by the translators; until then the msgids show through, so this
proves the language by what is written in it whatever the catalogue holds: the HTML part's
lang, and the session's date written the Spanish way ("3 de diciembre")."""

from __future__ import annotations

import pytest
from babel.dates import format_skeleton

from events.models import OfferingKind
from events.notifications.outbox import EmailKind, queue_email
from events.registration.services import Person, register
from tests.factories import make_location, make_offering, make_session, upcoming_day

pytestmark = pytest.mark.slow


def html_lang(message) -> str:
    html = message.get_body(("html",)).get_content()
    return html.split('<html lang="', 1)[1].split('"', 1)[0]


def test_a_spanish_registration_gets_its_emails_in_spanish_from_the_worker(
    app, db, smtp, celery_worker, publish
):
    offering = make_offering(make_location(), OfferingKind.WORKSHOP, title="Rodillas")
    session = make_session(offering, upcoming_day(9))
    db.session.commit()
    spanish_day = format_skeleton("MMMMEEEEd", session.local_start, locale="es")  # "jueves, 3 de diciembre"
    english_day = f"{session.local_start:%A}, {session.local_start:%B} {session.local_start.day}"

    # Made on a Spanish page (the view passes the page's language), and one on an English page.
    spanish = register(offering, None, Person("Ana", "ana@example.com", language="es")).registration
    english = register(offering, None, Person("Bob", "bob@example.com")).registration
    assert spanish is not None and english is not None and spanish.language == "es"
    smtp.wait_for(2, timeout=60)

    # Later emails, queued in an English context (as the sweep or staff would).
    with app.test_request_context("/staff/", headers={"Accept-Language": "en"}):
        for registration in (spanish, english):
            queue_email(
                EmailKind.REMINDER, registration=registration, session_id=session.id, key_parts=("1440",)
            )
            queue_email(
                EmailKind.FOLLOW_UP,
                registration=registration,
                session_id=session.id,
                context={"variant": "neutral"},
            )
        db.session.commit()  # the commit nudges the worker
    smtp.wait_for(6, timeout=60)

    def kinds(address):
        by_subject = {}
        for message in smtp.to(address):
            text = message.get_body(("plain",)).get_content()
            by_subject[message["Subject"]] = (message, text)
        return by_subject

    spanish_mail, english_mail = kinds("ana@example.com"), kinds("bob@example.com")
    assert len(spanish_mail) == len(english_mail) == 3
    for message, text in spanish_mail.values():
        assert html_lang(message) == "es"
        assert spanish_day in text and english_day not in text, text
    for message, text in english_mail.values():
        assert html_lang(message) == "en"
        assert english_day in text and spanish_day not in text
    # The reminder's subject says the day the Spanish way too.
    [reminder] = [subject for subject in spanish_mail if subject.startswith("Reminder")] or [
        subject for subject in spanish_mail if spanish_day.split(",")[1].strip() in subject
    ]
    assert spanish_day.split(",")[1].strip() in reminder
