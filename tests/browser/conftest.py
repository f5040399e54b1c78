"""Browser tests that read real emails use the worker tests' SMTP server and booking helper."""

from tests.worker.conftest import book, smtp, smtp_server  # noqa: F401  (fixtures)
