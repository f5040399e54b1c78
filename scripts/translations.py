"""The gettext catalogues in translations/: start a language's, compile them all, check them.

    python scripts/translations.py init hmn     # translations/hmn/LC_MESSAGES/messages.po from the .pot
    python scripts/translations.py compile      # every .po to its .mo (what the app reads)
    python scripts/translations.py check        # untranslated, fuzzy or placeholder problems

Unlike `pybabel init` and `pybabel compile`, these work for a language Babel has no locale data
for (Hmong, `hmn`): its plural rule is written in its catalogue's header instead.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
# The plural rule of languages Babel has no data for (gettext's Plural-Forms).
PLURAL_FORMS = {"hmn": "nplurals=1; plural=0;"}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%%")


def catalogues(directory: Path = TRANSLATIONS) -> list[Path]:
    return sorted(directory.glob("*/LC_MESSAGES/messages.po"))


def _read(path: Path, code: str) -> Catalog:
    with path.open("rb") as po:
        try:
            return read_po(po, locale=code)
        except UnknownLocaleError:
            po.seek(0)
            return read_po(po)


def init(code: str) -> Path:
    """A new language's .po: every msgid of the template, nothing translated yet."""
    with TEMPLATE.open("rb") as pot:
        template = read_po(pot)
    try:
        Locale.parse(code)
        catalog = Catalog(locale=code, project=template.project)
    except UnknownLocaleError:
        catalog = Catalog(project=template.project)
        catalog._locale_identifier = code  # (Babel's own field for a locale it does not know)
    for message in template:
        if message.id:
            catalog.add(
                message.id, None, list(message.locations), flags=(), auto_comments=message.auto_comments
            )
    target = TRANSLATIONS / code / "LC_MESSAGES" / "messages.po"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        write_po(out, catalog, width=100)
    if code in PLURAL_FORMS:  # the header Babel cannot write for it
        text = target.read_text(encoding="utf-8")
        text = re.sub(r'"Plural-Forms: [^"]*"', f'"Plural-Forms: {PLURAL_FORMS[code]}\\\\n"', text, count=1)
        if "Plural-Forms:" not in text:
            text = text.replace(
                '"MIME-Version: 1.0\\n"', f'"MIME-Version: 1.0\\n"\n"Plural-Forms: {PLURAL_FORMS[code]}\\n"'
            )
        text = text.replace('"Language: \\n"', f'"Language: {code}\\n"')
        target.write_text(text, encoding="utf-8")
    return target


def compile_all(directory: Path = TRANSLATIONS) -> list[Path]:
    """Each .po to its .mo, leaving out fuzzy entries (as pybabel compile does)."""
    written = []
    for path in catalogues(directory):
        catalog = _read(path, path.parent.parent.name)
        target = path.with_suffix(".mo")
        with target.open("wb") as out:
            write_mo(out, catalog, use_fuzzy=False)
        written.append(target)
    return written


@dataclass(frozen=True)
class Problem:
    catalogue: str
    msgid: str
    what: str


def _placeholders(text: str) -> set[str]:
    return {name for name in PLACEHOLDER.findall(text) if name}


def problems(directory: Path = TRANSLATIONS) -> list[Problem]:
    """Every entry left untranslated or fuzzy, and every translation whose %(name)s
    placeholders differ from its msgid's (a missing or misspelled one breaks the page)."""
    found = []
    for path in catalogues(directory):
        code = path.parent.parent.name
        catalog = _read(path, code)
        for message in catalog:
            if not message.id:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            msgid = ids[0]
            if message.fuzzy:
                found.append(Problem(code, msgid, "fuzzy"))
            if not all(strings) or not strings:
                found.append(Problem(code, msgid, "untranslated"))
                continue
            wanted = set().union(*(_placeholders(i) for i in ids))
            for string in strings:
                # A plural form may leave out %(num)d ("one seat left"); nothing else may differ.
                have = _placeholders(string)
                if have - wanted or (wanted - {"num"}) - have:
                    found.append(Problem(code, msgid, f"placeholders {sorted(have)} != {sorted(wanted)}"))
    return found


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "init" and len(argv) == 3:
        print(f"wrote {init(argv[2]).relative_to(ROOT)}")
        return 0
    if command == "compile":
        for target in compile_all():
            print(f"compiled {target.relative_to(ROOT)}")
        return 0
    if command == "check":
        found = problems()
        for problem in found:
            print(f"{problem.catalogue}: {problem.what}: {problem.msgid!r}")
        print(f"{len(found)} problems")
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
