"""The worker's nudges: a commit asks, a thread of the process sends (events/notifications/publish.py).

Every commit must be followed by a nudge sent after it (else its email waits for the sweep),
and a burst of commits must share nudges (one broker message each cost an eighth of a
registration's CPU)."""

from __future__ import annotations

import threading
import time

from events.notifications import publish


def test_every_ask_is_followed_by_a_send_and_a_burst_shares_them(app, monkeypatch):
    sends: list[float] = []

    def send_now(app, task):
        sends.append(time.monotonic())
        time.sleep(0.005)  # a broker round trip
        return True

    monkeypatch.setattr(publish, "send_now", send_now)
    asks: list[float] = []
    asks_lock = threading.Lock()

    def commit_many() -> None:
        for _ in range(50):
            with asks_lock:
                asks.append(time.monotonic())
                publish._nudger.ask(app, publish.TASK)
            time.sleep(0.001)

    threads = [threading.Thread(target=commit_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert publish.wait_until_sent(timeout=5)
    assert len(asks) == 400
    # Each ask has a send that started after it: the last ask's included.
    assert sends and sends[-1] >= max(asks)
    for asked_at in asks:
        assert any(sent >= asked_at for sent in sends)
    # Shared: the 400 asks over about 60 ms took a handful of sends, not 400.
    assert len(sends) < 40, len(sends)


def test_off_under_testing_nothing_is_asked(app, monkeypatch):
    sends: list[str] = []
    monkeypatch.setattr(publish, "send_now", lambda app, task: sends.append(task) or True)
    monkeypatch.setitem(app.config, "OUTBOX_PUBLISH", None)
    with app.app_context():
        assert publish.publish_delivery() is False
    assert publish.wait_until_sent(timeout=1)
    assert sends == []


def test_a_broker_outage_is_logged_not_raised(app, monkeypatch, caplog):
    monkeypatch.setitem(app.config, "OUTBOX_PUBLISH", True)
    monkeypatch.setitem(app.config, "CELERY_BROKER_URL", "redis://127.0.0.1:1/0")  # nobody listens
    app.extensions.pop("celery_publisher", None)
    try:
        with app.app_context():
            started = time.monotonic()
            assert publish.publish_delivery() is True
            assert time.monotonic() - started < 0.1  # the request never waits on the broker
        assert publish.wait_until_sent(timeout=10)
    finally:
        client = app.extensions.pop("celery_publisher", None)
        if client is not None:
            client.close()
    assert "could not nudge the worker" in caplog.text
