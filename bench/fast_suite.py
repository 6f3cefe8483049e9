"""The fast test suite (``-m "not slow"``): wall time and CPU time, as a developer waits for it.

Runs ``python -m pytest -q -m "not slow" -p no:randomly`` once in a fresh process from the given
checkout (default: this one) and reports its wall time, its CPU time (user + system of pytest and
every process it started, which other processes on a shared machine disturb less than the wall
time), the outcome line and the load average before and after. Writes bench/results/fast_suite.json
(or ``--output``).

Run from the repository root::

    python bench/fast_suite.py                          # this checkout
    python bench/fast_suite.py --root OTHER_CHECKOUT    # e.g. the commit before, for a comparison
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:randomly", "-p", "no:cacheprovider"]


def run(root: Path) -> dict[str, object]:
    """One run of the fast suite in ``root`` (its own package first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    load_before = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(COMMAND, cwd=root, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    outcome = next((line for line in reversed(done.stdout.splitlines()) if " in " in line), "")
    return {
        "command": " ".join(["python", *COMMAND[1:]]),
        "exit_code": done.returncode,
        "outcome": outcome.strip("= "),
        "wall_s": round(wall, 1),
        "user_s": round(after.ru_utime - before.ru_utime, 1),
        "system_s": round(after.ru_stime - before.ru_stime, 1),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose tests to run")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "fast_suite.json")
    args = parser.parse_args()
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **run(args.root.resolve()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
