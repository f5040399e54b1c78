"""Start-up time of the `flask` command line, beside `python -c pass` (issue 17, goal 6).

Times `flask --help`, `flask sweep` and `flask routes` (on the embedded SQLite default, migrated
first, not timed) in alternating repetitions, as new processes, with bytecode caching on as in a
real install. Beside them, in the same rounds: `python -c pass`, and the floor no change of ours
can go under, `python -c "import flask, sqlalchemy.orm"` (the frameworks every command needs).
Prints the median and range of each (wall clock and CPU: the CPU time is less swayed by other
load on a shared machine), each command's ratio to the 1 s goal and to the floor, whether a
command that pays no one imported Stripe's SDK or one that migrates nothing imported Alembic,
and a verdict line (goal: every command under 1 s).
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

# Another checkout can be timed with this same script (a before/after comparison).
ROOT = Path(os.environ.get("BENCH_STARTUP_ROOT") or Path(__file__).resolve().parent.parent)
REPETITIONS = int(os.environ.get("BENCH_STARTUP_REPETITIONS", "5"))
GOAL_SECONDS = 1.0
COMMANDS = ("flask --help", "flask sweep", "flask routes")


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
            "floor": [sys.executable, "-c", "import flask, sqlalchemy.orm"],
            "flask --help": [*flask, "--help"],
            "flask sweep": [*flask, "sweep"],
            "flask routes": [*flask, "routes"],
        }
        times: dict[str, list[float]] = {label: [] for label in commands}
        cpu: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(REPETITIONS):
            for label, command in commands.items():
                wall, used = timed(command, env)
                times[label].append(wall)
                cpu[label].append(used)
        lazy_loaded = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, wsgi; print(sorted({'stripe', 'alembic', 'icalendar'} & set(sys.modules)))",
            ],
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
            f" range {min(cpu[label]):.2f}-{max(cpu[label]):.2f} s  ({REPETITIONS} alternating runs)"
        )
    print("floor: python -c 'import flask, sqlalchemy.orm'")
    floor = statistics.median(times["floor"])
    for label in COMMANDS:
        print(
            f"{label:16s} {statistics.median(times[label]) / GOAL_SECONDS:.2f}x the 1 s goal "
            f"(range {min(times[label]) / GOAL_SECONDS:.2f}-{max(times[label]) / GOAL_SECONDS:.2f}), "
            f"{statistics.median(times[label]) / floor:.2f}x the floor"
        )
    print(f"heavy libraries imported by the app's start-up (of stripe, alembic, icalendar): {lazy_loaded}")
    slowest = max(statistics.median(times[label]) for label in COMMANDS)
    slowest_cpu = max(statistics.median(cpu[label]) for label in COMMANDS)
    ok = slowest < GOAL_SECONDS and lazy_loaded == "[]"
    print(
        "SUMMARY startup: "
        + ", ".join(f"{label} {statistics.median(times[label]):.2f} s" for label in COMMANDS)
        + f" (CPU {', '.join(f'{statistics.median(cpu[label]):.2f}' for label in COMMANDS)} s); "
        f"floor {floor:.2f} s; slowest {slowest / GOAL_SECONDS:.2f}x the goal (CPU {slowest_cpu:.2f} s); "
        f"goal under {GOAL_SECONDS:.0f} s {'OK' if ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
