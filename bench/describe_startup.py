"""``skipsearch describe resnet20 --no-latency``: wall time of the whole command, as a user waits for it.

Runs the command ``--runs`` times, each in a fresh process (interpreter start, imports, building
the model, counting its FLOPs, path statistics, printing), and reports the median and the worst
wall time, and the CPU time (user + system) each run used, which other processes on a shared
machine disturb less. The first run also warms the file cache; it counts like the others. The
bound: median wall time under 2 s. Writes bench/results/describe_startup.json.

Run from the repository root::

    python bench/describe_startup.py            # 7 runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "describe_startup.json"
COMMAND = [sys.executable, "-m", "skipsearch", "describe", "resnet20", "--no-latency"]
BOUND_S = 2.0


def time_once() -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of the command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(COMMAND, check=True, capture_output=True, cwd=ROOT, env={**os.environ, "COLUMNS": "100"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs = [time_once() for _ in range(args.runs)]
    times, cpu = [w for w, _ in runs], [c for _, c in runs]
    median = statistics.median(times)
    result = {
        "command": "skipsearch describe resnet20 --no-latency",
        "runs": args.runs,
        "seconds": [round(t, 3) for t in times],
        "median_s": round(median, 3),
        "max_s": round(max(times), 3),
        "cpu_seconds": [round(c, 3) for c in cpu],
        "median_cpu_s": round(statistics.median(cpu), 3),
        "bound_s": BOUND_S,
        "passed": median < BOUND_S,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    verdict = "met" if result["passed"] else "NOT met"
    print(
        f"describe resnet20 --no-latency: median {median:.2f} s, worst {max(times):.2f} s over {args.runs} runs, "
        f"median CPU time {statistics.median(cpu):.2f} s "
        f"(bound {BOUND_S:.0f} s: {verdict}; load average {result['load_average_1min']})"
    )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
