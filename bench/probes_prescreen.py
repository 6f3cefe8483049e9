"""Pre-screened search against random search on ``studies/mnist1d-deep-skips.yaml``.

The protocol of ``bench/search_efficiency.py`` (same space, task, training, objectives accuracy max
and MACs min, the study's reference point, normalised hypervolume, early stopping off, a fresh
in-memory study per seed and sampler, one thread each): random search runs 3N trials; the
pre-screened search runs N, each trial drawing ``--candidates`` random topologies, scoring them
with ``--probe`` on the probe batch (no training) and training the best
(``sampler: {name: random, prescreen: {probe: naswot, candidates: 10}}``). The target: the
pre-screened search at N reaches the median hypervolume random search reaches at 3N.

    python bench/probes_prescreen.py                       # 5 seeds, N=10, naswot, 10 candidates
    python bench/probes_prescreen.py --seeds 0 --trials 4 --epochs 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_efficiency import STUDY, hv_curve  # the bench's own study and hypervolume curve

from skipsearch.search import (
    Objective,
    SearchSpace,
    TrialFailed,
    default_reference_point,
    make_sampler,
    parse_study_config,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "probes_prescreen.json"


def config_for(sampler: str, seed: int, trials: int, epochs: int, probe: str, candidates: int) -> Any:
    data = yaml.safe_load(STUDY.read_text(encoding="utf-8"))
    settings: dict[str, Any] = {"name": "random"}
    if sampler == "prescreen":
        settings["prescreen"] = {"probe": probe, "candidates": candidates}
    data.update(name=f"pre-{sampler}-{seed}", seed=seed, sampler=settings, early_stopping={"enabled": False})
    data.update(trials=trials)
    data["training"] = {**data["training"], "epochs": epochs, "threads": 1}
    return parse_study_config(data, str(STUDY))


def run_search(sampler: str, seed: int, trials: int, epochs: int, probe: str, candidates: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = config_for(sampler, seed, trials, epochs, probe, candidates)
    space = SearchSpace(config.backbone.build(), config.space)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(config))
    start = time.perf_counter()
    study.optimize(Objective(config, space), n_trials=trials, catch=(TrialFailed,))
    seconds = time.perf_counter() - start
    ref = list(default_reference_point(config, space).values())
    return {"curve": hv_curve(study.get_trials(deepcopy=False), ref), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=10, help="N: the pre-screened budget (random: 3N)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--probe", default="naswot")
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    jobs = [(name, seed) for seed in args.seeds for name in ("prescreen", "random")]
    budget = {"prescreen": args.trials, "random": 3 * args.trials}
    runs: dict[str, list[list[float]]] = {"prescreen": [], "random": []}
    spawn = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=spawn, max_tasks_per_child=1) as pool:
        futures = [
            pool.submit(run_search, name, seed, budget[name], args.epochs, args.probe, args.candidates)
            for name, seed in jobs
        ]
        for (name, seed), future in zip(jobs, futures, strict=True):
            result = future.result()
            runs[name].append(result["curve"])
            print(f"seed {seed} {name:9s} hv@end={result['curve'][-1]:.4f} {result['seconds']:.0f}s", flush=True)
    n = args.trials
    median = {name: np.median(np.array(curves), axis=0) for name, curves in runs.items()}
    summary = {
        "prescreen_at_n": float(median["prescreen"][n - 1]),
        "random_at_n": float(median["random"][n - 1]),
        "random_at_3n": float(median["random"][3 * n - 1]),
    }
    summary["prescreen_reaches_random_3n"] = summary["prescreen_at_n"] >= summary["random_at_3n"]
    out = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "seconds": time.perf_counter() - start,
        "summary": summary,
        "median_curve": {k: v.tolist() for k, v in median.items()},
        "curves": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
