"""Pareto query: ``skipsearch pareto`` against Optuna's ``study.best_trials`` on the same database.

Fills one SQLite database with an Optuna study of 10,000 finished two-objective trials (accuracy up,
MACs down, with a few parameters and the user attributes a skipsearch trial carries) plus the
matching rows of the results tables, then times, in one run:

* Optuna: ``study.best_trials`` of a freshly loaded study (a new storage, so no cached trials);
* skipsearch: ``skipsearch.results.pareto`` (the function, on an open engine), the same after a
  fresh ``connect``, and the ``skipsearch pareto`` command once in-process and once as a new process;
* skipsearch on a study of 100,000 evaluation rows.

Both fronts must hold the same trials. The script exits with status 1 unless the function takes at
most 1/20 of ``best_trials``' time and the 100k-row query answers in under 2 s. It writes
bench/results/pareto_query.json and the "Pareto query" section of docs/benchmarks.md.

Filling: Optuna's ``add_trials`` costs 5-30 ms a trial here (one ORM round trip per parameter and
attribute), so only the first ``--optuna-trials`` go through it; the rest are bulk-inserted into
Optuna's own tables in exactly the rows ``add_trials`` writes (checked: a sample of bulk trials must
load back equal to the ``create_trial`` objects they came from).

Run from the repository root::

    python bench/pareto_query.py           # ~2 minutes on 2 cores
    python bench/pareto_query.py --quick   # 1,000 trials and 10,000 rows: a smoke test, no verdict
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import CategoricalDistribution, IntDistribution, distribution_to_json
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from skipsearch.results import EvaluationRecord, connect, pareto, record_evaluations
from skipsearch.topology import SkipEdge, Topology, families

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "pareto_query.json"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION_START, SECTION_END = "<!-- pareto-query:start -->", "<!-- pareto-query:end -->"

STUDY, BIG_STUDY = "bench-10k", "bench-100k"
MAX_RATIO, MAX_BIG_S = 1 / 20, 2.0
KINDS = ["off", "add", "concat", "gated"]
DISTRIBUTIONS = {
    **{f"edge_{i}": CategoricalDistribution(KINDS) for i in range(4)},
    "width": IntDistribution(8, 64, step=8),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=100_000, help="evaluation rows of the large study")
    parser.add_argument("--optuna-trials", type=int, default=100, help="trials that go through add_trials")
    parser.add_argument("--repeats", type=int, default=3, help="timings of best_trials (pareto: 2x as many)")
    parser.add_argument("--quick", action="store_true", help="1,000 trials, 10,000 rows, no verdict or files")
    parser.add_argument("--db", type=Path, help="database file (default: a temporary one)")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.rows, args.repeats = 1_000, 10_000, 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if path.exists():
            sys.exit(f"{path} exists; give a new file")
        url = f"sqlite:///{path}"
        figures = run(url, args)
    print(json.dumps(figures, indent=2))
    if args.quick:
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    write_docs(figures)
    print(f"wrote {RESULTS.relative_to(ROOT)} and the Pareto query section of {DOCS.relative_to(ROOT)}")
    return 0 if figures["pass"] else 1


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(0)
    topologies = make_topologies(rng, 200)
    by_hash = {t.hash: t for t in topologies}

    t0 = time.perf_counter()
    trials = [make_trial(rng, i, topologies) for i in range(args.trials)]
    fill_optuna(url, trials, args.optuna_trials)
    engine = connect(url)
    record_evaluations(engine, [record_of(STUDY, t, by_hash) for t in trials])
    big = (make_trial(rng, i, topologies) for i in range(args.rows))
    write_in_batches(engine, (record_of(BIG_STUDY, t, by_hash) for t in big), 20_000)
    fill_s = time.perf_counter() - t0
    log(f"filled {args.trials:,} trials + {args.trials + args.rows:,} evaluation rows in {fill_s:.0f} s")

    optuna_s, optuna_front = time_best_trials(url, args.repeats)
    log(f"Optuna best_trials: median {statistics.median(optuna_s):.3f} s, {len(optuna_front)} trials")
    pareto_s, front = time_pareto(engine, STUDY, 2 * args.repeats)
    log(f"skipsearch pareto:  median {statistics.median(pareto_s):.4f} s, {len(front)} trials")
    connect_pareto_s = statistics.median(time_connect_pareto(url) for _ in range(2 * args.repeats))
    cli_in_process_s = statistics.median(time_cli_in_process(url) for _ in range(2 * args.repeats))
    cli_process_s = time_cli_process(url)
    big_s, big_front = time_pareto(engine, BIG_STUDY, 2 * args.repeats)
    log(f"skipsearch pareto on {args.rows:,} rows: median {statistics.median(big_s):.3f} s")

    ratio = statistics.median(pareto_s) / statistics.median(optuna_s)
    same = set(front) == set(optuna_front)
    passed = same and ratio <= MAX_RATIO and statistics.median(big_s) < MAX_BIG_S
    return {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "trials": args.trials,
        "objectives": ["accuracy:max", "macs:min"],
        "fill_s": round(fill_s, 1),
        "best_trials_s": rounded(optuna_s),
        "best_trials_median_s": round(statistics.median(optuna_s), 4),
        "pareto_s": rounded(pareto_s),
        "pareto_median_s": round(statistics.median(pareto_s), 4),
        "ratio": round(ratio, 5),
        "max_ratio": MAX_RATIO,
        "connect_and_pareto_s": round(connect_pareto_s, 4),
        "cli_in_process_s": round(cli_in_process_s, 4),
        "cli_process_s": round(cli_process_s, 3),
        "front_size": len(front),
        "fronts_equal": same,
        "rows_large": args.rows,
        "pareto_large_s": rounded(big_s),
        "pareto_large_median_s": round(statistics.median(big_s), 4),
        "front_size_large": len(big_front),
        "max_large_s": MAX_BIG_S,
        "pass": passed,
    }


# -- data ---------------------------------------------------------------------------------------


def make_topologies(rng: random.Random, count: int) -> list[Topology]:
    """Distinct MLP skip patterns (x, h1..h6, head), like a search space's samples."""
    base = families.mlp(16, [16] * 6, 10, residual=False, name="bench")
    ids = [n.id for n in base.nodes[:-1]]
    pairs = [(i, j) for j in range(1, len(ids)) for i in range(j)]
    seen: dict[str, Topology] = {}
    while len(seen) < count:
        skips = [
            SkipEdge(ids[i], ids[j], rng.choice([k for k in KINDS[1:] if k != "concat" or i < j - 1]))
            for i, j in pairs
            if rng.random() < 0.25
        ]
        topo = base.with_skips(skips).with_name(f"bench-{len(seen)}")
        seen.setdefault(topo.hash, topo)
    return list(seen.values())


def make_trial(rng: random.Random, number: int, topologies: list[Topology]) -> FrozenTrial:
    """A finished trial: bigger networks tend to be more accurate; values rounded as metrics are."""
    log_macs = rng.uniform(5, 8)
    accuracy = min(0.999, max(0.1, 0.55 + 0.12 * (log_macs - 5) + rng.gauss(0, 0.06)))
    topo = topologies[rng.randrange(len(topologies))]
    params = {f"edge_{i}": rng.choice(KINDS) for i in range(4)} | {"width": rng.randrange(8, 65, 8)}
    start = datetime.datetime(2025, 1, 1) + datetime.timedelta(seconds=10 * number)
    trial = optuna.trial.create_trial(
        state=TrialState.COMPLETE,
        values=[round(accuracy, 4), int(10**log_macs)],
        params=params,
        distributions=DISTRIBUTIONS,
        user_attrs={
            "hash": topo.hash,
            "task": "mnist1d",
            "seed": 0,
            "accuracy": round(accuracy, 4),
            "test_accuracy": round(accuracy - 0.01, 4),
            "params": 1000 + int(10**log_macs) // 50,
            "macs": int(10**log_macs),
            "latency_ms": round(0.1 + 10**log_macs / 1e7, 3),
            "train_seconds": 5.0,
            "epochs": 3,
        },
    )
    trial.number = number
    trial.datetime_start, trial.datetime_complete = start, start + datetime.timedelta(seconds=5)
    return trial


def record_of(study: str, trial: FrozenTrial, by_hash: dict[str, Topology]) -> EvaluationRecord:
    """The results row of a bench trial (what skipsearch's recording callback writes)."""
    attrs = trial.user_attrs
    metrics = {k: attrs[k] for k in ("accuracy", "test_accuracy", "params", "macs", "latency_ms", "train_seconds")}
    return EvaluationRecord(
        study=study,
        trial_number=trial.number,
        topology=by_hash[attrs["hash"]],
        task="mnist1d",
        seed=0,
        state="COMPLETE",
        metrics=metrics | {"epochs": 3},
        curve=[0.5, 0.6, attrs["accuracy"]],
        started_at=trial.datetime_start,
        finished_at=trial.datetime_complete,
    )


def write_in_batches(engine: sa.Engine, records: Any, size: int) -> None:
    batch: list[EvaluationRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            record_evaluations(engine, batch)
            batch = []
    record_evaluations(engine, batch)


def fill_optuna(url: str, trials: list[FrozenTrial], through_optuna: int) -> None:
    """The study's first trials through ``add_trials``, the rest as the same rows in bulk; then checks."""
    study = optuna.create_study(study_name=STUDY, storage=url, directions=["maximize", "minimize"])
    study.add_trials(trials[:through_optuna])
    bulk = trials[through_optuna:]
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine, only=["trials", "trial_params", "trial_values", "trial_user_attributes"])
    with engine.begin() as conn:
        study_id = conn.execute(sa.text("SELECT study_id FROM studies WHERE study_name = :n"), {"n": STUDY}).scalar()
        first_id = conn.execute(sa.text("SELECT COALESCE(MAX(trial_id), 0) FROM trials")).scalar() + 1
        rows = _optuna_rows(bulk, study_id, first_id)
        for table, values in rows.items():
            for start in range(0, len(values), 20_000):
                conn.execute(meta.tables[table].insert(), values[start : start + 20_000])
    engine.dispose()
    loaded = optuna.load_study(study_name=STUDY, storage=url).get_trials(deepcopy=False)
    assert len(loaded) == len(trials), (len(loaded), len(trials))
    for want in random.Random(1).sample(trials, min(50, len(trials))):
        got = loaded[want.number]
        assert (got.number, got.state, got.values) == (want.number, want.state, want.values)
        assert (got.params, got.user_attrs, got.distributions) == (want.params, want.user_attrs, want.distributions)


def _optuna_rows(trials: list[FrozenTrial], study_id: int, first_id: int) -> dict[str, list[dict[str, Any]]]:
    """The rows Optuna's RDB storage writes for these finished trials (schema of Optuna 3.2 to 5)."""
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ("trials", "trial_params", "trial_values")}
    rows["trial_user_attributes"] = []
    for trial_id, trial in enumerate(trials, start=first_id):
        rows["trials"].append(
            {
                "trial_id": trial_id,
                "number": trial.number,
                "study_id": study_id,
                "state": trial.state.name,
                "datetime_start": trial.datetime_start,
                "datetime_complete": trial.datetime_complete,
            }
        )
        for name, value in trial.params.items():
            dist = trial.distributions[name]
            rows["trial_params"].append(
                {
                    "trial_id": trial_id,
                    "param_name": name,
                    "param_value": dist.to_internal_repr(value),
                    "distribution_json": distribution_to_json(dist),
                }
            )
        for objective, value in enumerate(trial.values):
            rows["trial_values"].append(
                {"trial_id": trial_id, "objective": objective, "value": value, "value_type": "FINITE"}
            )
        for key, value in trial.user_attrs.items():
            rows["trial_user_attributes"].append({"trial_id": trial_id, "key": key, "value_json": json.dumps(value)})
    return rows


# -- timing -------------------------------------------------------------------------------------


def time_best_trials(url: str, repeats: int) -> tuple[list[float], list[int]]:
    times, front = [], []
    for _ in range(repeats):
        study = optuna.load_study(study_name=STUDY, storage=RDBStorage(url))  # nothing cached
        t = time.perf_counter()
        best = study.best_trials
        times.append(time.perf_counter() - t)
        front = [trial.number for trial in best]
    return times, front


def time_pareto(engine: sa.Engine, study: str, repeats: int) -> tuple[list[float], list[int]]:
    times, front = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        result = pareto(engine, [study], [("accuracy", "max"), ("macs", "min")])
        times.append(time.perf_counter() - t)
        front = [int(n) for n in result.front["trial_number"]]
    return times, front


def time_connect_pareto(url: str) -> float:
    """A fresh engine: what a short-lived script pays."""
    t = time.perf_counter()
    engine = connect(url)
    pareto(engine, [STUDY])
    elapsed = time.perf_counter() - t
    engine.dispose()
    return elapsed


def time_cli_in_process(url: str) -> float:
    """``skipsearch pareto`` through the real entry point, in this process (imports already done)."""
    import contextlib
    import io

    from skipsearch.cli import main as cli_main

    argv, sys.argv = sys.argv, ["skipsearch", "pareto", "--storage", url, "--study", STUDY, "--format", "json"]
    out = io.StringIO()
    t = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out):
            cli_main()
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
    finally:
        sys.argv = argv
    elapsed = time.perf_counter() - t
    assert json.loads(out.getvalue())
    return elapsed


def time_cli_process(url: str) -> float:
    """The command as a user runs it: a new interpreter, imports and all."""
    script = Path(sys.executable).with_name("skipsearch")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "skipsearch"]
    t = time.perf_counter()
    proc = subprocess.run(
        [*command, "pareto", "--storage", url, "--study", STUDY, "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - t
    assert json.loads(proc.stdout)
    return elapsed


# -- report -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "optuna": optuna.__version__,
        "sqlalchemy": sa.__version__,
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def rounded(values: list[float]) -> list[float]:
    return [round(v, 4) for v in values]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_docs(f: dict[str, Any]) -> None:
    """Replaces (or appends) this benchmark's section of docs/benchmarks.md, leaving the rest alone."""
    verdict = "pass" if f["pass"] else "FAIL"
    speedup = 1 / f["ratio"] if f["ratio"] else math.inf
    section = f"""{SECTION_START}
## Pareto query

`python bench/pareto_query.py` ({f["date"]}, {f["machine"]["cpus"]} CPUs, load {f["machine"]["load_average_1min"]},
Optuna {f["machine"]["optuna"]}, SQLite {f["machine"]["sqlite"]}): one SQLite database holds an Optuna study of
{f["trials"]:,} finished two-objective trials (accuracy max, MACs min) and the matching results rows. Both
sides find the same {f["front_size"]} non-dominated trials (`fronts_equal`: {str(f["fronts_equal"]).lower()}).

| what | median time |
| --- | --- |
| Optuna `study.best_trials` (fresh storage) | {f["best_trials_median_s"]:.3f} s |
| `skipsearch.results.pareto(engine, ...)` | {f["pareto_median_s"] * 1000:.1f} ms |
| `connect(url)` + `pareto` (fresh engine) | {f["connect_and_pareto_s"] * 1000:.1f} ms |
| `skipsearch pareto ... --format json`, in-process | {f["cli_in_process_s"] * 1000:.1f} ms |
| `skipsearch pareto ... --format json`, new process | {f["cli_process_s"]:.2f} s |
| `pareto` over {f["rows_large"]:,} evaluation rows | {f["pareto_large_median_s"] * 1000:.0f} ms |

Ratio pareto / best_trials: {f["ratio"]:.4f} (1/{speedup:.0f}; must be <= 1/20), and the {f["rows_large"]:,}-row
query must answer in under {f["max_large_s"]:g} s: **{verdict}**. `pareto` reads only the id and objective
columns of the COMPLETE rows with one SQL query, sorts them with numpy and then reads the few front rows in full;
`best_trials` builds a `FrozenTrial` (params, attributes, values) for every trial first. A new process mostly
pays for Python's start and the imports of the command line. Raw figures: `bench/results/pareto_query.json`.
{SECTION_END}
"""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if SECTION_START in text and SECTION_END in text:
        head, _, rest = text.partition(SECTION_START)
        _, _, tail = rest.partition(SECTION_END)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
