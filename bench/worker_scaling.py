"""Worker scaling: trials per hour with 1 and with 2 worker processes on PostgreSQL.

Each run gets a fresh PostgreSQL database and the same study (a 4-layer MLP on the ``teacher`` task,
one torch thread per worker: ``execution.threads_per_worker: 1`` and ``training.threads: 1``), the
same trial count and the random sampler; the workers are real ``skipsearch worker`` processes. The
rate is counted over the study's own span (first trial start to last trial end), so process start-up
(imports, data generation) is reported apart; the wall time of the whole run is reported too.

    SKIPSEARCH_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python bench/worker_scaling.py              # ~2-3 minutes on 2 idle cores
    python bench/worker_scaling.py --trials 8 --min-ratio 0

Other processes on the machine distort the figure: the load average is recorded with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from optuna.trial import TrialState
from sqlalchemy.pool import NullPool

from skipsearch.search import migrate_storage, open_storage, parse_study_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "worker_scaling.json"
STUDY = {
    "name": "scaling",
    "seed": 0,
    "task": {"name": "teacher", "options": {"train_size": 3000, "val_size": 300, "test_size": 300}},
    "backbone": {
        "family": "mlp",
        "args": {"input_features": 20, "hidden": [96, 96, 96, 96], "classes": 10, "residual": False},
    },
    "space": {"max_span": 2, "choices": ["off", "add"]},
    "objectives": ["accuracy:max", "params:min"],
    "sampler": {"name": "random"},
    "early_stopping": {"enabled": False},
    # Trials of a few seconds, as in real studies: with sub-second trials the fixed per-trial work
    # (sampling, storage round trips, PostgreSQL's own CPU on the same cores) is what gets measured.
    "training": {"epochs": 16, "batch_size": 32, "threads": 1},
    "execution": {"heartbeat_interval": 5, "grace_period": 30, "threads_per_worker": 1, "dedupe": False},
}


def _fresh_database(base: str) -> tuple[str, sa.Engine, str]:
    url = sa.make_url(base)
    name = f"skipsearch_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), admin, name


def _drop(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def run(base_url: str, workers: int, trials: int) -> dict:
    """One study of ``trials`` trials run by ``workers`` processes; its timings."""
    url, admin, database = _fresh_database(base_url)
    try:
        config = parse_study_config({**STUDY, "trials": trials}, "scaling.yaml")
        name = migrate_storage(url, config)
        assert name is not None
        command = [sys.executable, "-m", "skipsearch", "worker", "--study", name, "--quiet"]
        env = {**os.environ, "SKIPSEARCH_STORAGE": url, "SKIPSEARCH_ARTIFACT_DIR": "off", "OMP_NUM_THREADS": "1"}
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [*command, "--worker-index", str(i)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for i in range(workers)
        ]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - start
        storage = open_storage(url, heartbeat_interval=None)
        import optuna

        done = [
            t
            for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE
        ]
        storage.engine.dispose()
    finally:
        _drop(admin, database)
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    seconds = span.total_seconds()
    # Steady state: the window in which every worker was running trials (start-up skew left out).
    by_worker: dict[str, list] = {}
    for t in done:
        by_worker.setdefault(str(t.user_attrs.get("worker")), []).append(t)
    window_start = max(min(t.datetime_start for t in ts) for ts in by_worker.values())
    window_end = min(max(t.datetime_complete for t in ts) for ts in by_worker.values())
    in_window = [t for t in done if window_start <= t.datetime_start and t.datetime_complete <= window_end]
    window = (window_end - window_start).total_seconds()
    train = sum(float(t.user_attrs.get("train_seconds") or 0) for t in done)
    return {
        "workers": workers,
        "exit_codes": codes,
        "complete_trials": len(done),
        "study_seconds": round(seconds, 2),
        "wall_seconds": round(wall, 2),
        "trials_per_hour": round(len(done) / seconds * 3600, 1),
        "steady_window_seconds": round(window, 2),
        "steady_trials": len(in_window),
        "steady_trials_per_hour": round(len(in_window) / window * 3600, 1) if window > 0 else None,
        "mean_train_seconds": round(train / max(1, len(done)), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("SKIPSEARCH_TEST_POSTGRES_URL"))
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--min-ratio", type=float, default=1.8)
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL or set SKIPSEARCH_TEST_POSTGRES_URL")

    load_before = os.getloadavg()
    runs = [run(args.postgres, workers, args.trials) for workers in (1, 2)]
    load_after = os.getloadavg()
    ratio = runs[1]["trials_per_hour"] / runs[0]["trials_per_hour"]
    steady = (runs[1]["steady_trials_per_hour"] or 0) / (runs[0]["steady_trials_per_hour"] or 1)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "trials": args.trials,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "runs": runs,
        "ratio": round(ratio, 3),
        "steady_ratio": round(steady, 3),
        "min_ratio": args.min_ratio,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for r in runs:
        print(
            f"{r['workers']} worker(s): {r['complete_trials']} trials in {r['study_seconds']:.1f} s "
            f"({r['trials_per_hour']:.0f} trials/hour; {r['wall_seconds']:.1f} s with start-up)"
        )
    print(
        f"ratio {ratio:.2f} (bound >= {args.min_ratio}), steady-state ratio {steady:.2f}; "
        f"load average {load_before[0]:.2f} -> {load_after[0]:.2f}"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if ratio >= args.min_ratio and all(c == 0 for r in runs for c in r["exit_codes"]) else 1


if __name__ == "__main__":
    sys.exit(main())
