"""Every setting is declared once in events/config.py, read without a default of its own, and
listed in the README exactly as declared (scripts/settings_table.py writes the README's tables)."""

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

from flask import Flask

from events.config import SETTINGS, Config, settings_table
from events.inputs import SMALL_BODY_ROUTES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "settings_table.py"
README_TABLES = runpy.run_path(str(SCRIPT))["readme_tables"]((ROOT / "README.md").read_text())
# Where settings are read (events/config.py declares them).
CODE = [
    *sorted(set((ROOT / "events").rglob("*.py")) - {ROOT / "events" / "config.py"}),
    *sorted((ROOT / "worker").rglob("*.py")),
    ROOT / "wsgi.py",
    ROOT / "gunicorn.conf.py",
]
SECRETS = ["SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "MAIL_PASSWORD"]


def test_every_setting_of_config_is_declared_with_a_meaning():
    assert {name for name in vars(Config) if name.isupper()} == set(SETTINGS)
    for setting in SETTINGS.values():
        assert setting.meaning and setting.default, setting
        assert "|" not in setting.meaning + setting.default and "\n" not in setting.meaning, setting


def test_the_readme_lists_every_setting_with_its_default():
    assert README_TABLES.strip("\n") == settings_table().strip("\n"), "run `make settings-table`"
    listed = set(re.findall(r"^\| `(\w+)`", README_TABLES, re.MULTILINE))
    assert listed == {setting.env or setting.name for setting in SETTINGS.values()}


def test_the_tables_do_not_depend_on_the_environment():
    # Defaults that follow another setting say so in words, not as the value they have here.
    env = dict(
        os.environ,
        INSTANCE_PATH="/elsewhere",
        REDIS_URL="redis://example:6379/1",
        STRIPE_SECRET_KEY="sk_test_other",
        RESOURCE_MAX_BYTES="1024",
        WORKER_SWEEP_SECONDS="2",
        HOLD_MINUTES="1",
    )
    printed = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert printed.strip("\n") == README_TABLES.strip("\n")


def test_no_secret_value_is_shown():
    for name in SECRETS:
        value = getattr(Config, name)
        assert value is None or str(value) not in README_TABLES, name


def test_settings_are_read_from_config_only_without_a_default_of_their_own():
    known = set(SETTINGS) | set(Flask.default_config)
    for path in CODE:
        source = path.read_text()
        where = path.relative_to(ROOT)
        assert not re.search(r"\bos\.environ\b|\bgetenv\(", source), f"{where} reads the environment"
        assert not re.search(r"\b(config|cfg)\.get\(", source), f"{where}: config.get(...) with a default"
        for key in re.findall(r"\b(?:config|cfg)\[\"(\w+)\"\]|config_limit\(\"(\w+)\"\)", source):
            name = key[0] or key[1]
            assert name in known, f"{where} reads {name}, which events/config.py does not declare"
    assert set(SMALL_BODY_ROUTES.values()) <= set(SETTINGS)
