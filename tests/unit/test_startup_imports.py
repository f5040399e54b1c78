"""Start-up stays light: the app and its command line load without Stripe's SDK, Alembic or
icalendar (issue 17, goal 6).

Stripe's SDK takes about a second to import; only events/payments/gateway.py uses it, and
imports it when a gateway is first built. Flask-Migrate (and Alembic, Mako, Pygments under it)
load when `flask db` runs or flask_migrate's functions are called (events/migrating.py);
icalendar when a calendar is built or read. Checked in a new interpreter, since this one may
already hold them.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAZY = ("stripe", "alembic", "flask_migrate", "mako", "pygments", "icalendar")


def modules_loaded_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def test_importing_the_app_does_not_import_stripe():
    loaded = modules_loaded_by("import events.app")
    assert "events.payments.gateway" in loaded  # the control: the module itself is loaded
    assert "stripe" not in loaded


def test_the_wsgi_app_loads_none_of_the_lazy_libraries(tmp_path):
    loaded = modules_loaded_by(f"import os\nos.environ['INSTANCE_PATH'] = {str(tmp_path)!r}\nimport wsgi")
    assert "events.calendar" in loaded and "events.app" in loaded  # the control
    assert sorted(set(LAZY) & loaded) == []


def test_building_a_calendar_imports_icalendar():
    """The control: the library is still there when a calendar is made."""
    loaded = modules_loaded_by(
        "from types import SimpleNamespace\nfrom events.calendar import _calendar\n"
        "clinic = SimpleNamespace(name='C', timezone='UTC')\n"
        "assert b'BEGIN:VCALENDAR' in _calendar(clinic, 'n', None).to_ical()"
    )
    assert "icalendar" in loaded


def flask(tmp_path: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"FLASK_APP": "wsgi.py", "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "test"})
    return subprocess.run(
        [sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


def test_flask_db_still_lists_and_runs_the_migrations(tmp_path):
    assert "db " in flask(tmp_path, "--help")  # listed without loading Alembic
    assert "upgrade" in flask(tmp_path, "db", "--help")  # the real group's commands
    flask(tmp_path, "db", "upgrade")
    assert "(head)" in flask(tmp_path, "db", "current")


def test_flask_migrate_functions_set_the_extension_up_on_first_use(tmp_path):
    """tests/conftest.py and the benches call flask_migrate.upgrade() on a fresh app."""
    code = (
        "from flask_migrate import upgrade\n"
        "from events.app import create_app\n"
        f"app = create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/m.sqlite3'}})\n"
        "with app.app_context():\n"
        "    upgrade()\n"
        "    import sqlalchemy as sa\n"
        "    from events.extensions import db\n"
        "    print(db.session.scalar(sa.text('select version_num from alembic_version')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    assert out.stdout.strip()  # a revision was recorded: the migrations ran


def test_building_a_gateway_imports_stripe():
    """The control: the SDK is still there when money moves."""
    loaded = modules_loaded_by(
        "from events.payments.gateway import StripeGateway\nStripeGateway('sk_test_x', 'http://127.0.0.1:9')"
    )
    assert "stripe" in loaded
