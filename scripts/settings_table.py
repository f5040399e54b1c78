"""Print the README's settings tables from events/config.py, or write them into README.md.

    python scripts/settings_table.py            # print, for pasting
    python scripts/settings_table.py --write    # replace the tables in README.md (make settings-table)

tests/unit/test_settings_documented.py fails while README.md and events/config.py differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START = "<!-- settings: written by `make settings-table` from events/config.py; do not edit by hand -->\n"
END = "<!-- end of settings -->\n"


def readme_tables(text: str) -> str:
    """The part of the README between the two markers."""
    if START not in text or END not in text:
        raise SystemExit(f"README.md lacks the settings markers:\n{START}{END}")
    return text.split(START, 1)[1].split(END, 1)[0]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from events.config import settings_table

    table = settings_table()
    if sys.argv[1:] == ["--write"]:
        text = README.read_text()
        README.write_text(text.replace(START + readme_tables(text) + END, f"{START}\n{table}\n{END}"))
    elif sys.argv[1:]:
        raise SystemExit(__doc__)
    else:
        sys.stdout.write(table)


if __name__ == "__main__":
    main()
