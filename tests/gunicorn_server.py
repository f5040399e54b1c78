"""The web process as production runs it: gunicorn with the real gunicorn.conf.py (Procfile),
on its own port, its stdout and stderr kept in a file the test can read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
_TMP = Path(os.environ["INSTANCE_PATH"]).parent  # the per-run folder tests/conftest.py made


def web_env(app, **settings) -> dict:
    """The environment of a production web process on the test database."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        SECRET_KEY=app.config["SECRET_KEY"],
        STRIPE_API_BASE=app.config["STRIPE_API_BASE"],
        STRIPE_SECRET_KEY=app.config["STRIPE_SECRET_KEY"],
        STRIPE_PUBLISHABLE_KEY=app.config["STRIPE_PUBLISHABLE_KEY"],
        STRIPE_WEBHOOK_SECRET=app.config["STRIPE_WEBHOOK_SECRET"],
        INSTANCE_PATH=str(_TMP / "web-instance"),
        APP_ENV="production",
        WEB_CONCURRENCY="1",
        WEB_THREADS="4",
        PYTHONPATH=str(ROOT),
    )
    env.pop("REDIS_URL", None)
    env.update({name: str(value) for name, value in settings.items()})
    return env


class GunicornServer:
    def __init__(self, env: dict, name: str = "gunicorn"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env, PORT=str(self.port))
        self.log_path = _TMP / f"{name}-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> GunicornServer:
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_port(self.url, timeout=30)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"gunicorn did not start:\n{self.output()[-3000:]}") from None
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
