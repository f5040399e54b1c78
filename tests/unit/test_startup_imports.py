"""Start-up stays light: the app and its command line load without Stripe's SDK (issue 17, goal 6).

Stripe's SDK takes about a second to import; only events/payments/gateway.py uses it, and
imports it when a gateway is first built. Checked in a new interpreter, since this one may
already hold it.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def test_building_a_gateway_imports_stripe():
    """The control: the SDK is still there when money moves."""
    loaded = modules_loaded_by(
        "from events.payments.gateway import StripeGateway\nStripeGateway('sk_test_x', 'http://127.0.0.1:9')"
    )
    assert "stripe" in loaded
