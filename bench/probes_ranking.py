"""Zero-cost probes against training on ``studies/mnist1d-deep-skips.yaml``: rank correlations,
the predictor with probe features, and the seed-to-seed noise ceiling.

The space, task and training of the search-efficiency bench (``bench/search_efficiency.py``: a
12-layer tanh MLP of width 32, plain SGD, 10 epochs, candidate skip edges up to span 2,
off/add/concat). ``--n`` distinct random topologies (seed 1000) are each built from the study seed
0, scored by every probe on the study's probe batch, and trained on one thread.

1. **Correlation**: Spearman and Kendall of each probe, and of params and MACs, with the validation
   accuracy, 95% bootstrap intervals (``skipsearch.analysis.probe_correlations``).
2. **Predictor**: the graph predictor (default ``FitConfig``) trained on 20 and on 100 of the first
   ``--pool`` topologies, graph only and graph + probes, Kendall tau on the remaining ones; three
   draws of the training subset, the median reported.
3. **Noise ceiling**: the first ``--ceiling`` topologies trained again with seed 1; Kendall tau of
   the two runs' accuracies is what any ranking of seed-0 accuracies can hope to reach.

    python bench/probes_ranking.py                            # n=140, pool 100, ceiling 30
    python bench/probes_ranking.py --n 30 --pool 20 --ceiling 10 --epochs 2    # smoke run
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_efficiency import study_config  # the bench's own study settings

from skipsearch.analysis import plot_probe_scatter, probe_correlations
from skipsearch.nn import build_model
from skipsearch.predictor import FitConfig, evaluate_predictor, fit_predictor
from skipsearch.search import SearchSpace
from skipsearch.tasks import (
    TaskData,
    compute_probes,
    load_task,
    probe_batch,
    probe_names,
    seed_everything,
    train_topology,
)
from skipsearch.topology import Topology, topology_cost

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "probes_ranking.json"
PLOT = ROOT / "docs" / "probes_scatter.png"
SIZES = (20, 100)


@functools.cache
def _mnist1d(seed: int) -> TaskData:
    return load_task("mnist1d", seed=seed)


def evaluate(topology_json: str, seed: int, epochs: int, probes: bool) -> dict[str, Any]:
    """Probes (of the seed's initial model) and validation accuracy of one topology (worker process)."""
    torch.set_num_threads(1)
    topology = Topology.from_json(topology_json)
    config = study_config("random", 0, epochs, 1)
    data = _mnist1d(0)  # the study's data split; ``seed`` is the initialisation and training seed
    out: dict[str, Any] = {"hash": topology.hash}
    if probes:
        seed_everything(seed)
        model = build_model(topology)
        x, y = probe_batch(data, topology.input_shape, config.seed)
        start = time.perf_counter()
        out.update(compute_probes(model, x, y))
        out["probe_seconds"] = time.perf_counter() - start
        cost = topology_cost(topology)
        out.update(params=cost.params, macs=cost.macs)
    out["accuracy"] = train_topology(topology, data, config.train_config, seed=seed).result.val_metric
    return out


def predictor_scores(
    frame: pd.DataFrame, topologies: list[Topology], pool: int, draws: int, fit: FitConfig
) -> dict[str, Any]:
    """Kendall tau on the topologies after ``pool`` of a predictor trained on 20 / 100 of the pool."""
    names = list(probe_names())
    y = frame["accuracy"].to_numpy()
    feats = frame[names].to_numpy(dtype=float)
    test = np.arange(pool, len(frame))
    out: dict[str, Any] = {"test": len(test)}
    for size in SIZES:
        for features in ("graph", "probes"):
            taus = []
            for draw in range(draws):
                chosen = np.random.default_rng(draw).permutation(pool)[:size]
                kwargs: dict[str, Any] = {}
                if features == "probes":
                    kwargs = {"features": feats[chosen], "feature_names": names}
                predictor = fit_predictor([topologies[i] for i in chosen], y[chosen], config=fit, **kwargs)
                held = feats[test] if features == "probes" else None
                scores = evaluate_predictor(predictor, [topologies[i] for i in test], y[test], held)
                taus.append(scores["accuracy"]["kendall_tau"])
            out[f"{features}@{size}"] = {"median": float(np.median(taus)), "taus": taus}
            print(f"predictor {features}@{size}: tau {np.median(taus):.3f} {np.round(taus, 3).tolist()}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=140)
    parser.add_argument("--pool", type=int, default=100, help="topologies the predictor may train on")
    parser.add_argument("--ceiling", type=int, default=30, help="topologies trained again with seed 1")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--fit-epochs", type=int, default=FitConfig.epochs, help="the predictor's training epochs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = study_config("random", 0, args.epochs, args.n)
    space = SearchSpace(config.backbone.build(), config.space)
    topologies = space.random_topologies(args.n, seed=1000)
    texts = [t.to_json() for t in topologies]
    start = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool:
        rows = list(pool.map(evaluate, texts, [0] * args.n, [args.epochs] * args.n, [True] * args.n))
        again = list(
            pool.map(
                evaluate,
                texts[: args.ceiling],
                [1] * args.ceiling,
                [args.epochs] * args.ceiling,
                [False] * args.ceiling,
            )
        )
    seconds = time.perf_counter() - start
    frame = pd.DataFrame(rows)
    table = probe_correlations(frame)
    print(table.round(3).to_string(index=False), flush=True)
    first, second = frame["accuracy"].to_numpy()[: args.ceiling], np.array([r["accuracy"] for r in again])
    ceiling = probe_correlations(pd.DataFrame({"seed0": first, "accuracy": second}), metrics=["seed0"])
    print("noise ceiling (seed 0 vs seed 1):", ceiling.round(3).to_dict("records")[0], flush=True)
    predictor = predictor_scores(frame, topologies, args.pool, args.draws, FitConfig(epochs=args.fit_epochs))
    out = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "plot")},
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "seconds": seconds,
        "probe_seconds_median": float(frame["probe_seconds"].median()),
        "accuracy": {"min": float(frame["accuracy"].min()), "max": float(frame["accuracy"].max())},
        "correlations": table.to_dict("records"),
        "noise_ceiling": ceiling.to_dict("records")[0],
        "predictor": predictor,
        "rows": frame.to_dict("records"),
        "seed1_accuracy": second.tolist(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=float) + "\n", encoding="utf-8")
    plot_probe_scatter(frame, str(args.plot), title="mnist1d-deep-skips: probes at init vs. validation accuracy")
    print(f"{seconds:.0f}s; wrote {args.out.name} and {args.plot.name}")


if __name__ == "__main__":
    main()
