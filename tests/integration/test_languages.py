"""Choosing a language: the `lang` cookie, Accept-Language on a first visit, the switch on every
public page, staff pages always English, the page cache keyed by language; an offering's own
text per language with the English shown (and said) when a translation is missing; and a
language Babel knows nothing about (Hmong) added with a catalogue and a setting only."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

from events.extensions import db as _db
from events.languages import choose_language, in_language
from events.models import OfferingKind, OfferingTranslation
from tests.conftest import ROOT, make_test_app
from tests.factories import make_location, make_offering, make_session, upcoming_day
from tests.integration.test_page_cache import CountingApp, listening, replay_middleware

CODES = ("en", "es", "so")


def html_lang(body: str) -> str:
    return re.search(r'<html lang="([^"]+)"', body).group(1)


def test_the_choice_follows_the_cookie_then_accept_language_then_english():
    assert choose_language("so", "es-MX,es;q=0.9", CODES) == "so"  # the cookie wins
    assert choose_language(None, "es-MX,es;q=0.9,en;q=0.5", CODES) == "es"
    assert choose_language(None, "so-SO", CODES) == "so"
    assert choose_language(None, "fr-FR,de;q=0.8", CODES) == "en"  # nothing we offer
    assert choose_language("xx", None, CODES) == "en"  # a cookie naming no language offered
    assert choose_language(None, "\x00" * 5000, CODES) == "en"  # junk is English, not an error


def test_a_first_visit_follows_accept_language_and_the_switch_remembers_a_choice(client, db):
    offering = make_offering(make_location(), OfferingKind.WORKSHOP, title="Knees")
    make_session(offering, upcoming_day(3))
    db.session.commit()

    page = client.get("/", headers={"Accept-Language": "es-MX,es;q=0.9"})
    body = page.get_data(as_text=True)
    assert html_lang(body) == "es" and "Accept-Language" in page.headers["Vary"]
    # The switch: every language in its own name and with its own lang attribute.
    for code, name in (("en", "English"), ("es", "Español"), ("so", "Soomaali")):
        assert f'lang="{code}" hreflang="{code}"' in body and f">{name}</a>" in body

    chosen = client.get("/language/so?next=/offerings/" + offering.slug)
    assert chosen.status_code == 303 and chosen.headers["Location"].endswith("/offerings/" + offering.slug)
    assert "lang=so" in chosen.headers["Set-Cookie"]
    # Remembered: the cookie beats the browser's language from now on.
    again = client.get(f"/offerings/{offering.slug}", headers={"Accept-Language": "es"})
    assert html_lang(again.get_data(as_text=True)) == "so"


def test_the_switch_goes_back_only_to_a_page_of_this_site(client, db):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil", "javascript:alert(1)"):
        response = client.get("/language/es", query_string={"next": target})
        assert response.status_code == 303 and response.headers["Location"] in ("/", "http://localhost/")
    unknown = client.get("/language/xx?next=/")
    assert unknown.status_code == 303 and "Set-Cookie" not in unknown.headers


def test_staff_pages_stay_english_whatever_the_member_language(client, db):
    client.set_cookie("lang", "es")
    page = client.get("/staff/login", headers={"Accept-Language": "so"})
    assert page.status_code == 200 and html_lang(page.get_data(as_text=True)) == "en"


def test_dates_and_money_are_written_in_the_pages_language(client, db):
    offering = make_offering(make_location(), OfferingKind.WORKSHOP, title="Backs", price_cents=1550)
    session = make_session(offering, upcoming_day(3))
    db.session.commit()
    start = session.local_start
    english = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    assert start.strftime("%B") in english and "$15.50" in english
    client.set_cookie("lang", "es")
    spanish = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    months = (
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre".split()
    )
    assert f"{start.day} de {months[start.month - 1]}" in spanish
    # Money in Spanish as written in the US (es_US, MONEY_LOCALES): "$15.50", never "15,50 US$".
    assert "$15.50" in spanish and "US$" not in spanish and "15,50" not in spanish
    assert start.strftime("%B") not in spanish


def test_money_the_zone_and_how_it_was_paid_in_each_language(client, db, app):
    """Money as written in the US in every language (MONEY_LOCALES), English unchanged; the
    place's zone by its name in the reader's language, never "America/Chicago"; a card and a
    desk payment in the reader's words."""
    from events.filters import format_money, zone_long_name
    from events.models import PaymentMethod
    from events.payments.receipts import card_label, desk_method_word

    expected = {
        "en": ("$18", "$1,015.50", "Central Time", "Visa ending 4242", "cash"),
        "es": ("$18", "$1,015.50", "hora central", "Visa terminada en 4242", "efectivo"),
        "so": (
            "$18",
            "$1,015.50",
            "Waqtiga Bartamaha Waqooyiga Ameerika",
            "Visa ku dhammaada 4242",
            "lacag caddaan ah",
        ),
    }
    for code, (whole, cents, zone, card, cash) in expected.items():
        with app.test_request_context("/"), in_language(code):
            assert (format_money(1800), format_money(101550)) == (whole, cents), code
            assert zone_long_name("America/Chicago") == zone, code
            assert card_label("visa", "4242") == card and desk_method_word(PaymentMethod.CASH) == cash, code
            assert desk_method_word(PaymentMethod.CARD) == "" and desk_method_word("nonsense") == ""

    offering = make_offering(make_location(), OfferingKind.WORKSHOP, title="Zones")
    make_session(offering, upcoming_day(3))
    db.session.commit()
    client.set_cookie("lang", "es")
    spanish = client.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    assert "Las horas se muestran en hora central." in spanish and "America/Chicago" not in spanish


def test_a_cached_english_page_is_never_replayed_to_a_spanish_request(client, db, app, monkeypatch):
    listening(app)
    offering = make_offering(make_location(), OfferingKind.WORKSHOP, title="Cached")
    make_session(offering, upcoming_day(3))
    db.session.commit()
    middleware = replay_middleware(app)
    flask_calls = CountingApp(middleware.wsgi_app)
    monkeypatch.setattr(middleware, "wsgi_app", flask_calls)
    path = "/?kind=workshop"
    english, spanish = {"Accept-Language": "en-US"}, {"Accept-Language": "es"}
    for _ in range(5):  # a new minute or a concurrent change may invalidate once
        client.get(path, headers=english)
        calls = flask_calls.calls
        replayed = client.get(path, headers=english)
        if flask_calls.calls == calls:
            break
    assert flask_calls.calls == calls, "the English page was not replayed"
    assert html_lang(replayed.get_data(as_text=True)) == "en"

    first_spanish = client.get(path, headers=spanish)
    assert flask_calls.calls == calls + 1, "a Spanish request must not get the English page"
    assert html_lang(first_spanish.get_data(as_text=True)) == "es"
    again = client.get(path, headers=spanish)
    assert html_lang(again.get_data(as_text=True)) == "es"
    # The cookie decides the same way before Flask as in it.
    client.set_cookie("lang", "so")
    assert html_lang(client.get(path, headers=english).get_data(as_text=True)) == "so"
    client.delete_cookie("lang")
    assert html_lang(client.get(path, headers=english).get_data(as_text=True)) == "en"


def test_the_api_answers_errors_in_the_asked_language_and_takes_lang(client, db):
    english = client.get("/api/v1/nowhere").get_json()
    assert english["error"]["title"] == "We couldn't find that page"
    # No Spanish catalogue text yet (the translators' job): the language chosen is what counts.
    with client.application.test_request_context(
        "/api/v1/sessions?lang=so", headers={"Accept-Language": "es"}
    ):
        from events.languages import current_language

        assert current_language() == "so"
    with client.application.test_request_context("/api/v1/sessions", headers={"Accept-Language": "es"}):
        from events.languages import current_language

        assert current_language() == "es"


def test_an_offering_shows_its_translation_or_the_english_with_a_note(client, db):
    location = make_location()
    translated = make_offering(location, OfferingKind.WORKSHOP, title="Strong Knees", what_to_bring="A mat")
    untranslated = make_offering(location, OfferingKind.WORKSHOP, title="Back Basics")
    make_session(translated, upcoming_day(3))
    make_session(untranslated, upcoming_day(4))
    db.session.add(
        OfferingTranslation(
            offering=translated,
            language="es",
            title="Rodillas fuertes",
            description="Ejercicios sencillos para las rodillas.",
            what_to_bring="Una colchoneta",
        )
    )
    db.session.commit()
    client.set_cookie("lang", "es")

    page = client.get(f"/offerings/{translated.slug}").get_data(as_text=True)
    assert "<h1>Rodillas fuertes</h1>" in page and "Una colchoneta" in page
    assert "Strong Knees" not in page and "todavía no está traducida" not in page
    schedule = client.get("/").get_data(as_text=True)
    assert "Rodillas fuertes" in schedule and "Back Basics" in schedule

    fallback = client.get(f"/offerings/{untranslated.slug}").get_data(as_text=True)
    assert '<h1 lang="en">Back Basics</h1>' in fallback
    # The note is written in the page's language (Spanish), about the English text below it.
    assert "Esta clase todavía no está traducida, así que su descripción aparece en inglés." in fallback

    client.set_cookie("lang", "en")
    english = client.get(f"/offerings/{translated.slug}").get_data(as_text=True)
    assert "<h1>Strong Knees</h1>" in english and "not been translated" not in english


def _hmong_catalogue(folder):
    """A tiny Hmong catalogue (Babel has no locale data for `hmn`): one page text."""
    catalog = Catalog()
    catalog._locale_identifier = "hmn"
    catalog.add("Back to the schedule", "Rov qab mus rau daim ntawv teev sij hawm")
    target = folder / "hmn" / "LC_MESSAGES" / "messages.mo"
    target.parent.mkdir(parents=True)
    with target.open("wb") as out:
        write_mo(out, catalog)


def test_a_language_babel_has_no_data_for_is_a_catalogue_and_a_setting(pg_database_url, tmp_path):
    _hmong_catalogue(tmp_path)
    app = make_test_app(
        pg_database_url,
        LANGUAGES="en,es,so,hmn",
        BABEL_TRANSLATION_DIRECTORIES=f"{ROOT / 'translations'};{tmp_path}",
    )
    try:
        _see_hmong_pages(app)
    finally:
        with app.app_context():
            _db.engine.dispose()  # (this app's own connections)


def _see_hmong_pages(app):
    client = app.test_client()
    client.set_cookie("lang", "hmn")
    page = client.get("/no-such-page")
    body = page.get_data(as_text=True)
    assert page.status_code == 404 and html_lang(body) == "hmn"
    assert "Rov qab mus rau daim ntawv teev sij hawm" in body  # from its catalogue
    assert 'lang="hmn" hreflang="hmn" aria-current="true">Hmoob</a>' in body  # its own name, from the setting
    # Its dates, times and money from the patterns declared beside it.
    moment = datetime(2026, 3, 3, 18, 30, tzinfo=ZoneInfo("America/Chicago"))
    from events.filters import format_day, format_money, format_short_day, format_time

    with app.test_request_context("/"), in_language("hmn"):
        assert format_day(moment) == "Hnub Ob, 3 Lub 3 Hlis"
        assert format_short_day(moment) == "Ob 3 3 Hlis"
        assert format_time(moment) == "18:30"
        assert format_money(1550) == "$15.50"


def test_staff_add_change_and_remove_an_offerings_translation(client, db):
    from events.models import AuditEntry
    from tests.integration.test_staff_admin import login, token_from

    login(client, db)
    offering = make_offering(make_location(), OfferingKind.WORKSHOP, title="Back Basics")
    make_session(offering, upcoming_day(3))
    db.session.commit()
    page = f"/staff/admin/offerings/{offering.id}"
    admin_page = client.get(page).get_data(as_text=True)
    assert (
        'id="translations-h">Translations' in admin_page
        and "Spanish (Español): not translated yet" in admin_page
    )
    assert html_lang(admin_page) == "en"
    url = f"/staff/admin/offerings/{offering.id}/translations/es"
    saved = client.post(
        url,
        data={
            "csrf_token": token_from(client, page),
            "t-es-title": "Espalda: lo básico",
            "t-es-description": "Cómo cuidar la espalda.",
        },
    )
    assert saved.status_code == 302 and saved.headers["Location"].endswith("#translations")
    assert "Spanish (Español): translated" in client.get(page).get_data(as_text=True)

    member = client.application.test_client()
    member.set_cookie("lang", "es")
    public = member.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    assert "<h1>Espalda: lo básico</h1>" in public and "Cómo cuidar la espalda." in public

    too_long = client.post(url, data={"csrf_token": token_from(client, page), "t-es-title": "x" * 201})
    assert too_long.status_code == 400
    english = f"/staff/admin/offerings/{offering.id}/translations/en"
    assert client.post(english, data={"csrf_token": token_from(client, page)}).status_code == 404
    removed = client.post(url, data={"csrf_token": token_from(client, page), "t-es-title": ""})
    assert removed.status_code == 302
    public = member.get(f"/offerings/{offering.slug}").get_data(as_text=True)
    assert '<h1 lang="en">Back Basics</h1>' in public and "Esta clase todavía no está traducida" in public
    actions = [e.action for e in db.session.query(AuditEntry).filter_by(offering_id=offering.id)]
    assert "offering.translation_saved" in actions and "offering.translation_removed" in actions


def test_the_api_gives_titles_in_the_language_asked_for_and_says_which(client, db):
    location = make_location()
    translated = make_offering(location, OfferingKind.WORKSHOP, title="Strong Knees")
    untranslated = make_offering(location, OfferingKind.WORKSHOP, title="Back Basics")
    make_session(translated, upcoming_day(3))
    make_session(untranslated, upcoming_day(4))
    db.session.add(OfferingTranslation(offering=translated, language="so", title="Jilbo xoog leh"))
    db.session.commit()

    def titles(**headers_and_query):
        items = client.get("/api/v1/sessions", **headers_and_query).get_json()["data"]
        return {item["offering"]["title"]: item["offering"]["title_language"] for item in items}

    assert titles() == {"Strong Knees": "en", "Back Basics": "en"}
    asked = titles(query_string={"lang": "so"})
    assert asked == {"Jilbo xoog leh": "so", "Back Basics": "en"}
    assert titles(headers={"Accept-Language": "so"}) == asked


def test_a_declined_card_is_explained_in_the_members_language_by_stripes_code(app):
    """Stripe explains a decline in English only, in a bank's words: the member reads ours,
    chosen by Stripe's code, in their language (the catalogue's words, or the English msgid
    until translators fill it)."""
    from events.payments import declines
    from events.payments.charging import attempt_for
    from events.payments.gateway import IntentState

    def declined(code: str) -> IntentState:
        return IntentState(
            id="pi_1",
            status="requires_payment_method",
            amount=1800,
            currency="usd",
            client_secret="",
            registration_id=1,
            latest_charge_id=None,
            error_message="Your card has insufficient funds.",
            error_code=code,
        )

    with app.test_request_context("/"):
        with in_language("en"):
            assert attempt_for(declined("insufficient_funds")).message == (
                "Your card was declined because there is not enough money on it. "
                "Try another card, or ask your bank."
            )
            assert attempt_for(declined("stolen_card")).message == str(declines.DECLINED)
            assert attempt_for(declined("something_new")).message == str(declines.NOT_ACCEPTED)
        for code in ("es", "so"):
            with in_language(code):
                for stripe_code, message in declines.MESSAGES.items():
                    assert attempt_for(declined(stripe_code)).message == str(message)
