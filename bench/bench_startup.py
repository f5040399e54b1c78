"""Start-up time of the `flask` command line, beside `python -c pass` (issue 17, goal 6).

Times `flask --help` and `flask sweep` (on the embedded SQLite default, migrated first, not
timed) in alternating repetitions, as new processes, with bytecode caching on as in a real
install. Prints the median and range of each, whether Stripe's SDK was imported by a command
that does not pay anyone, and a verdict line (goal: both commands under 1 s).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPETITIONS = int(os.environ.get("BENCH_STARTUP_REPETITIONS", "5"))
GOAL_SECONDS = 1.0


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock seconds, and the CPU seconds the process used (less swayed by other load on
    the machine than the wall clock)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    instance = Path(tempfile.mkdtemp(prefix="events-bench-startup-"))
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an install keeps its .pyc files: measure with them
    env.update({"FLASK_APP": "wsgi.py", "INSTANCE_PATH": str(instance), "SECRET_KEY": "bench"})
    flask = [sys.executable, "-m", "flask"]
    try:
        subprocess.run([*flask, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "flask --help": [*flask, "--help"],
            "flask sweep": [*flask, "sweep"],
        }
        times: dict[str, list[float]] = {label: [] for label in commands}
        cpu: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(REPETITIONS):
            for label, command in commands.items():
                wall, used = timed(command, env)
                times[label].append(wall)
                cpu[label].append(used)
        stripe_loaded = subprocess.run(
            [sys.executable, "-c", "import sys, wsgi; print('stripe' in sys.modules)"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    for label, seconds in times.items():
        print(
            f"{label:16s} median {statistics.median(seconds):.2f} s  "
            f"range {min(seconds):.2f}-{max(seconds):.2f} s  CPU median {statistics.median(cpu[label]):.2f} s"
            f"  ({REPETITIONS} alternating runs)"
        )
    print(f"stripe imported by the app's start-up: {stripe_loaded}")
    slowest = max(statistics.median(times["flask --help"]), statistics.median(times["flask sweep"]))
    bare = statistics.median(times["python -c pass"])
    ok = slowest < GOAL_SECONDS and stripe_loaded == "False"
    print(
        f"SUMMARY startup: flask --help {statistics.median(times['flask --help']):.2f} s, "
        f"flask sweep {statistics.median(times['flask sweep']):.2f} s, python -c pass {bare:.2f} s "
        f"(goal under {GOAL_SECONDS:.0f} s) {'OK' if ok else 'BELOW TARGET'}"
    )


if __name__ == "__main__":
    main()
