"""The README's architecture section names the files and packages that exist, and every package."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Architecture") :]
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)]


def test_every_path_in_the_layout_exists():
    block = _layout_block()
    named = set(re.findall(r"\b((?:events|worker|tests|migrations|templates|bench|scripts)/[\w/.]*)", block))
    assert named, "the layout names no paths"
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == []


def test_every_package_of_the_app_is_in_the_layout():
    block = _layout_block()
    packages = sorted(
        p.parent.relative_to(ROOT).as_posix() + "/" for p in (ROOT / "events").glob("*/__init__.py")
    )
    assert [p for p in packages if p not in block] == []
