"""Search efficiency: hypervolume per trial of random, TPE, NSGA-II and the predictor sampler.

The space, task and training of ``studies/mnist1d-deep-skips.yaml``: a 12-layer tanh MLP of width 32
trained with plain SGD, candidate skip edges up to span 2 (off/add/concat); every trial really
trains, ``--epochs`` epochs on one thread. Objectives accuracy max, MACs min. Each sampler runs on
a fresh in-memory study per seed with the study objective (dedupe on, early stopping off so that
every trial is COMPLETE). The hypervolume after k trials uses the study's reference point
(``skipsearch.search.default_reference_point``: accuracy 0, 1.1 x the largest MACs in the space,
the point ``skipsearch pareto``, the report and the dashboard use) and is normalised by the
reference box. All samplers start with the same number of random trials.

The done-when bound: the predictor at N trials reaches the median hypervolume that random reaches
at 3N, and is not below TPE and NSGA-II at N. Random therefore runs 3N trials, the others N.

``--tau`` also measures the predictor itself: train on 100 random topologies, Kendall tau and
Spearman on 100 held-out ones.

    python bench/search_efficiency.py                   # 5 seeds, N=20
    python bench/search_efficiency.py --tau             # + predictor quality (200 trainings)
    python bench/search_efficiency.py --seeds 0 --trials 10 --epochs 3   # smoke run
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
import yaml
from optuna.trial import TrialState

from skipsearch.predictor import evaluate_predictor, fit_predictor
from skipsearch.results import hypervolume_history
from skipsearch.search import (
    Objective,
    SearchSpace,
    StudyConfig,
    TrialFailed,
    default_reference_point,
    make_sampler,
    parse_study_config,
)
from skipsearch.tasks import TaskData, load_task, train_topology
from skipsearch.topology import Topology

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "mnist1d-deep-skips.yaml"
RESULTS = ROOT / "bench" / "results" / "search_efficiency.json"
PLOT = ROOT / "docs" / "search_efficiency.png"
SAMPLERS = ("random", "tpe", "nsga2", "predictor")
STARTUP = 8
"""Random trials before each model-based sampler takes over (the same for all)."""


def study_config(sampler: str, seed: int, epochs: int, trials: int) -> StudyConfig:
    """The space, task and training of ``studies/mnist1d-deep-skips.yaml`` with ``sampler`` and this run's budget."""
    options: dict[str, Any] = {
        "random": {},
        "tpe": {"n_startup_trials": STARTUP},
        "nsga2": {"population_size": STARTUP},
        "predictor": {"n_startup_trials": STARTUP},
    }[sampler]
    data = yaml.safe_load(STUDY.read_text(encoding="utf-8"))
    data.update(
        name=f"eff-{sampler}-{seed}",
        seed=seed,
        sampler={"name": sampler, "options": options},
        early_stopping={"enabled": False},
        trials=trials,
    )
    data["training"] = {**data["training"], "epochs": epochs, "threads": 1}
    return parse_study_config(data, str(STUDY))


def hv_curve(trials: list[optuna.trial.FrozenTrial], ref: list[float]) -> list[float]:
    """Normalised hypervolume of the COMPLETE trials among the first k, for k = 1..len(trials)."""
    box = (1.0 - ref[0]) * ref[1]  # skipsearch.results.normalised_hypervolume's box for accuracy max, MACs min
    complete = [t.state == TrialState.COMPLETE for t in trials]
    values = np.array([t.values for t, done in zip(trials, complete, strict=True) if done], dtype=float)
    history = hypervolume_history(values.reshape(-1, 2), ["max", "min"], ref) / box
    seen = np.cumsum(complete)  # COMPLETE trials among the first k
    return [float(history[n - 1]) if n else 0.0 for n in seen]


def run_search(sampler: str, seed: int, trials: int, epochs: int) -> dict[str, Any]:
    torch.set_num_threads(1)  # in a worker process: main()'s settings do not reach it
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = study_config(sampler, seed, epochs, trials)
    space = SearchSpace(config.backbone.build(), config.space)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(config))
    start = time.perf_counter()
    study.optimize(Objective(config, space), n_trials=trials, catch=(TrialFailed,))
    seconds = time.perf_counter() - start
    done = study.get_trials(deepcopy=False)
    trained = [t for t in done if t.state == TrialState.COMPLETE and "reused_from" not in t.user_attrs]
    ref = list(default_reference_point(config, space).values())  # the study's own, as pareto and the report use
    return {"curve": hv_curve(done, ref), "seconds": seconds, "trained": len(trained), "reference_point": ref}


@functools.cache
def _mnist1d(seed: int) -> TaskData:
    return load_task("mnist1d", seed=seed)


def trained_accuracy(topology_json: str, seed: int, epochs: int) -> float:
    """Validation accuracy of one topology trained as the study's trials are (in a worker process)."""
    torch.set_num_threads(1)
    topology = Topology.from_json(topology_json)
    config = study_config("random", seed, epochs, 1).train_config
    return train_topology(topology, _mnist1d(seed), config, seed=seed).result.val_metric


def predictor_quality(epochs: int, jobs: int, n: int = 200, seed: int = 0) -> dict[str, Any]:
    """Kendall tau / Spearman of the predictor trained on n/2 random topologies, tested on the other n/2."""
    config = study_config("random", seed, epochs, n)
    space = SearchSpace(config.backbone.build(), config.space)
    topologies = space.random_topologies(n, seed=1000 + seed)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        texts = [t.to_json() for t in topologies]
        accuracies = list(pool.map(trained_accuracy, texts, [seed] * n, [epochs] * n))
    half = n // 2
    predictor = fit_predictor(topologies[:half], np.array(accuracies[:half]))
    scores = evaluate_predictor(predictor, topologies[half:], np.array(accuracies[half:]))["accuracy"]
    return {**scores, "train": half, "epochs": epochs}


def summarise(runs: dict[str, list[list[float]]], n: int) -> dict[str, Any]:
    median = {name: np.median(np.array(curves), axis=0).tolist() for name, curves in runs.items()}
    at = {name: curve[min(n, len(curve)) - 1] for name, curve in median.items()}
    random_3n = median["random"][min(3 * n, len(median["random"])) - 1]
    return {
        "median_curve": median,
        "hv_at_n": at,
        "random_at_3n": random_3n,
        "predictor_reaches_random_3n": at["predictor"] >= random_3n,
        "predictor_not_worse_than_tpe_nsga2": at["predictor"] >= max(at["tpe"], at["nsga2"]),
    }


def plot(summary: dict[str, Any], n: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in summary["median_curve"].items():
        ax.plot(range(1, len(curve) + 1), curve, label=name)
    ax.axvline(n, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume (median over seeds, normalised)")
    ax.set_title("studies/mnist1d-deep-skips.yaml: accuracy max, MACs min")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=20, help="N: the budget of tpe, nsga2, predictor (random: 3N)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2, help="searches run side by side (one thread each)")
    parser.add_argument("--tau", action="store_true", help="also measure Kendall tau on 100 + 100 topologies")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs: dict[str, list[list[float]]] = {name: [] for name in SAMPLERS}
    details = []
    budget = {name: 3 * args.trials if name == "random" else args.trials for name in SAMPLERS}
    jobs = [(name, seed, budget[name]) for seed in args.seeds for name in SAMPLERS]
    # Every search is seeded and single-threaded, and runs in a fresh process (a process that ran
    # other searches first gave a different curve): side by side changes timings, not results.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=spawn, max_tasks_per_child=1) as pool:
        futures = [pool.submit(run_search, name, seed, trials, args.epochs) for name, seed, trials in jobs]
        for (name, seed, _), future in zip(jobs, futures, strict=True):
            result = future.result()
            runs[name].append(result["curve"])
            details.append({"sampler": name, "seed": seed, **{k: v for k, v in result.items() if k != "curve"}})
            print(f"seed {seed} {name:9s} hv@end={result['curve'][-1]:.4f} {result['seconds']:.0f}s", flush=True)
    summary = summarise(runs, args.trials)
    out: dict[str, Any] = {
        "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("out", "plot")
        },
        "summary": summary,
        "runs": details,
        "curves": runs,
    }
    if args.tau:
        out["predictor_quality"] = predictor_quality(args.epochs, args.jobs)
        print("predictor quality:", out["predictor_quality"], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    plot(summary, args.trials, args.plot)
    print(json.dumps({k: v for k, v in summary.items() if k != "median_curve"}, indent=1))


if __name__ == "__main__":
    main()
