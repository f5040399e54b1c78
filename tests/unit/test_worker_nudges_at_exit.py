"""A Celery pool process ends with os._exit (billiard), so atexit never runs there: the nudges
its last task's commits asked for must be sent before it goes (review of cabebfd/798f762).

The nudge thread (events/notifications/publish.py) sends after the commit; a prefork child
recycled after its last task (max_tasks_per_child, a warm shutdown) dispatches Celery's
worker_process_shutdown signal and then calls os._exit, which kills the thread mid-send or
before it starts: the email waits for the sweep instead. Before the thread, the task itself
sent its nudge before it returned."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import os, sys, time
    sent_file = sys.argv[1]
    from celery import signals
    import worker.app  # the worker's wiring, as `celery -A worker.app worker` loads it
    from events.notifications import publish

    def send_now(app, task):
        time.sleep(0.2)  # a broker round trip (a first connection)
        with open(sent_file, "w") as f:
            f.write(task)
        return True

    publish.send_now = send_now
    publish._nudger.ask(worker.app.flask_app, publish.TASK)  # a commit of the last task asks
    # What billiard does when a pool process ends (celery.concurrency.prefork.process_destructor
    # from billiard.pool.Worker._do_exit): the signal, then os._exit (no atexit).
    signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
    os._exit(0)
    """
)


def test_a_pool_process_exiting_sends_the_nudges_its_last_task_asked_for(tmp_path):
    sent = tmp_path / "sent"
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        INSTANCE_PATH=str(tmp_path / "instance"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        SECRET_KEY="test",
    )
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(sent)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sent.exists(), "the nudge asked for was never sent: the process ended first"
    assert sent.read_text() == "worker.tasks.deliver_outbox"


def test_a_process_forked_while_the_publisher_is_being_made_can_still_nudge(app):
    """The nudge thread makes the publisher under publish._client_lock. A fork at that moment
    (a parent that published, then forks its workers) copies the lock held, and not the thread
    that would release it: the child's own nudge thread then waits on it forever, so every nudge
    of that child is lost, and since that thread stays alive 798f762's restart never fires."""
    import threading

    from events.notifications import publish

    publish._client_lock.acquire()  # the parent's nudge thread is making the publisher
    try:
        pid = os.fork()
        if pid == 0:  # the child: its nudge thread makes its own publisher
            code = 1
            try:
                made = threading.Event()

                def make() -> None:
                    publish._client(app)
                    made.set()

                threading.Thread(target=make, daemon=True).start()
                code = 0 if made.wait(3) else 2
            finally:
                os._exit(code)
    finally:
        publish._client_lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child waited forever on the parent's lock"
