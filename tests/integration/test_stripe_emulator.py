"""The Stripe emulator `make run` starts: on loopback only, and (with --state) its payments
survive a restart, so one taken before a restart of `make run` can still be refunded."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from events.payments.gateway import GatewayRejected, IntentFor, StripeGateway
from tests.conftest import free_port, wait_for_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "localstripe_server.py"


class Emulator:
    def __init__(self, state: Path | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = state
        self.process: subprocess.Popen | None = None

    def start(self, *extra: str) -> Emulator:
        args = [sys.executable, str(SCRIPT), "--port", str(self.port), *extra]
        if self.state is not None:
            args += ["--state", str(self.state)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for_port(self.url)
        return self

    def stop(self) -> str:
        assert self.process is not None
        self.process.terminate()  # as honcho stops it on Ctrl+C
        output, _ = self.process.communicate(timeout=10)
        self.process = None
        return output.decode()


def _paid_intent(gateway: StripeGateway) -> str:
    token = gateway._client.v1.tokens.create(
        params={"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    ).id
    intent = gateway.create_intent(
        IntentFor(registration_id=1, label="seat"), card_token=token, amount=2500, currency="usd"
    )
    assert gateway.confirm_intent(intent.id).status == "succeeded"
    return intent.id


def test_a_payment_made_before_a_restart_can_be_refunded_after_it(tmp_path):
    emulator = Emulator(tmp_path / "instance" / "localstripe-state.pickle").start("--from-scratch")
    gateway = StripeGateway("sk_test_localstripe", emulator.url, timeout_seconds=5)
    try:
        intent_id = _paid_intent(gateway)
        first_refund = gateway.refund(payment_intent_id=intent_id, amount=500, idempotency_key="refund-1")
        output = emulator.stop()
        assert "Traceback" not in output
        assert emulator.state.exists()

        emulator.start()  # `make run` again: the state file is read back
        assert gateway.retrieve_intent(intent_id).status == "succeeded"
        refund = gateway.refund(payment_intent_id=intent_id, amount=1000, idempotency_key="refund-2")
        assert (refund.amount, refund.status) == (1000, "succeeded")
        # An idempotency key used before the restart still replays, as at Stripe.
        again = gateway.refund(payment_intent_id=intent_id, amount=500, idempotency_key="refund-1")
        assert again.id == first_refund.id
        # What was refunded before the restart still counts: $10 is left, not $20.
        with pytest.raises(GatewayRejected, match="greater than unrefunded amount"):
            gateway.refund(payment_intent_id=intent_id, amount=1001, idempotency_key="refund-3")

        emulator.stop()
        emulator.start("--from-scratch")  # and a clean start forgets it all
        with pytest.raises(Exception, match="(?i)not found|no such"):
            gateway.retrieve_intent(intent_id)
    finally:
        if emulator.process is not None:
            emulator.stop()


def _other_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_it_listens_on_loopback_only():
    emulator = Emulator(None).start()
    try:
        socket.create_connection(("127.0.0.1", emulator.port), timeout=2).close()
        other = _other_address()
        if other is None:
            pytest.skip("this machine has no address but loopback")
        with pytest.raises(OSError):
            socket.create_connection((other, emulator.port), timeout=2).close()
    finally:
        output = emulator.stop()
    assert f"Stripe emulator on http://127.0.0.1:{emulator.port}" in output
