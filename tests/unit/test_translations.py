"""The catalogues and the member-facing templates: every catalogue complete (no untranslated or
fuzzy entry, no placeholder mismatch), and no member-facing template holding text outside a
translation call. Staff templates stay English, so they are left out by folder."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from jinja2 import Environment, nodes

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
SCRIPT = runpy.run_path(str(ROOT / "scripts" / "translations.py"))
# Not for members: staff pages, the developer's outbox viewer, and the staff password email.
NOT_FOR_MEMBERS = ("staff/", "devmail/", "emails/password_reset.")
# Words that are not language: product names left as they are in every language.
NOT_LANGUAGE = ("Google Calendar", "Outlook")
# Attributes whose text a person reads or hears.
READ_ATTRIBUTES = re.compile(
    r"""\b(?:aria-label|title|alt|placeholder|data-[\w-]*label|data-msg-[\w-]*)\s*=\s*"([^"]*)\"""", re.I
)
JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
TRANSLATING_CALLS = {"_", "gettext", "ngettext", "pgettext", "npgettext"}


def member_templates() -> list[Path]:
    return sorted(
        path
        for path in TEMPLATES.rglob("*")
        if path.suffix in (".html", ".txt")
        and not str(path.relative_to(TEMPLATES)).startswith(NOT_FOR_MEMBERS)
    )


def is_language(text: str) -> bool:
    """Letters that read as words: anything else (punctuation, numbers, entities such as
    &nbsp;, a lone symbol) is not for a translator."""
    for name in NOT_LANGUAGE:
        text = text.replace(name, " ")
    text = re.sub(r"&[#\w]+;", " ", text)
    return re.search(r"[^\W\d_]{2,}", text) is not None


def text_outside_calls(source: str) -> list[str]:
    """Template text (outside {{ }} and {% %}) and read attributes that hold words."""
    plain = JINJA.sub("\x00", source)
    found = [value for value in READ_ATTRIBUTES.findall(plain) if is_language(value.replace("\x00", ""))]
    without_tags = re.sub(r"<[^>]*>", " ", plain)
    # Attributes of a tag that a {% if %} splits in two: name="value", never text.
    without_tags = re.sub(r'[\w-]+="[^"\x00]*"?', " ", without_tags)
    without_tags = re.sub(r'(^|\x00)[^"<>\x00\s]*"(?=\s|\x00|$)', r"\1 ", without_tags)
    found += [part.strip() for part in without_tags.split("\x00") if is_language(part)]
    return found


def literals_outside_calls(source: str) -> list[str]:
    """String constants in expressions that are prose (two words, or a capitalised word) and
    are not the message of a translating call: English hidden in `{{ 'x' if y else 'z' }}`."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    tree = env.parse(source)
    inside: set[int] = set()
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name in TRANSLATING_CALLS:
            for arg in call.args:
                for const in arg.find_all(nodes.Const) if not isinstance(arg, nodes.Const) else [arg]:
                    inside.add(id(const))
    found = []
    for const in tree.find_all(nodes.Const):
        value = const.value
        if id(const) in inside or not isinstance(value, str) or "<" in value:
            continue
        if re.search(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}", value) or re.fullmatch(r"[A-Z][a-z]{2,}:?", value):
            found.append(value)
    return found


def test_the_scanner_finds_english_outside_a_call_and_passes_wrapped_text():
    assert text_outside_calls("<p>Hello there</p>") == ["Hello there"]
    assert text_outside_calls('<nav aria-label="Main">{{ _("Hi") }}</nav>') == ["Main"]
    assert text_outside_calls('<p>{{ _("Hi") }} &nbsp; · 3 – 4</p><a href="{{ u }}">{{ x }}</a>') == []
    assert literals_outside_calls("{{ 'the session' if n == 1 else 'sessions' }}") == ["the session"]
    assert (
        literals_outside_calls("{{ _('Two words') }}{{ ngettext('%(num)d day', '%(num)d days', n) }}") == []
    )


@pytest.mark.parametrize("path", member_templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_member_facing_templates_hold_no_text_outside_a_translation_call(path):
    source = path.read_text(encoding="utf-8")
    assert text_outside_calls(source) == [], "wrap these in _() (or {% trans %})"
    assert literals_outside_calls(source) == [], "wrap these in _()"


def test_the_check_finds_untranslated_fuzzy_and_placeholder_problems(tmp_path):
    catalog = Catalog(locale="so")  # (two plural forms)
    catalog.add("Hello %(name)s,", "Hola %(name)s,")
    catalog.add("Thank you", "")  # untranslated
    catalog.add("%(count)s seats left", "quedan %(cuenta)s plazas")  # a misspelled placeholder
    catalog.add("Pay %(amount)s", "Pagar %(amount)s", flags=["fuzzy"])
    catalog.add(("%(num)d left", "%(num)d left"), ("queda uno", "quedan %(num)d"))  # a plural may drop num
    target = tmp_path / "so" / "LC_MESSAGES" / "messages.po"
    target.parent.mkdir(parents=True)
    with target.open("wb") as out:
        write_po(out, catalog)
    found = {(p.msgid, p.what.split(" ")[0]) for p in SCRIPT["problems"](tmp_path)}
    assert found == {
        ("Thank you", "untranslated"),
        ("%(count)s seats left", "placeholders"),
        ("Pay %(amount)s", "fuzzy"),
    }


def test_every_catalogue_is_complete():
    """Fails until the translators have filled translations/es and translations/so: every
    msgid translated, nothing fuzzy, the same %(name)s placeholders as the English."""
    catalogues = SCRIPT["catalogues"]()
    assert {path.parent.parent.name for path in catalogues} >= {"es", "so"}
    problems = SCRIPT["problems"]()
    assert problems == [], (
        f"{len(problems)} catalogue entries to finish (python scripts/translations.py check)"
    )


def test_every_msgid_in_the_code_is_in_the_catalogues(tmp_path):
    """Text wrapped for translation but never extracted would show in English to everyone: the
    catalogues must hold every msgid the code and templates have today (`make translations-update`)."""
    import subprocess
    import sys

    from babel.messages.pofile import read_po

    fresh = tmp_path / "fresh.pot"
    subprocess.run(
        [str(Path(sys.executable).with_name("pybabel")), "-q", "extract", "-F", "babel.cfg"]
        + ["-k", "lazy_gettext", "-k", "_l", "-o", str(fresh), "."],
        cwd=ROOT,
        check=True,
    )
    with fresh.open("rb") as f:
        wanted = {message.id for message in read_po(f) if message.id}
    assert len(wanted) > 400  # the control: the extraction found the site's text
    for po in sorted((ROOT / "translations").glob("*/LC_MESSAGES/messages.po")):
        with po.open("rb") as f:
            held = {message.id for message in read_po(f) if message.id}
        missing = sorted(str(m) for m in wanted - held)
        assert missing == [], (po.parent.parent.name, missing[:10])
