"""How long the zero-cost probes take: every probe on quickstart-size models, one CPU thread.

Twenty random topologies of ``studies/quickstart.yaml`` (a 6-layer tanh MLP of width 128 on
mnist1d, skip edges up to span 2: off/add/scalar/concat), each model built from the study seed and
scored on the study's probe batch (64 samples) as a trial does; each topology is scored
``--repeats`` times after one warm-up and the median kept. The bound: well under 0.2 s for all
probes of one model.

    python bench/probes_speed.py
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from skipsearch.nn import build_model
from skipsearch.search import SearchSpace, load_study_config
from skipsearch.tasks import PROBES, ProbeInputs, compute_probes, load_task, probe_batch, probe_names, seed_everything

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "probes_speed.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topologies", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_study_config(ROOT / "studies" / "quickstart.yaml")
    space = SearchSpace(config.backbone.build(), config.space)
    data = load_task("mnist1d", seed=config.seed)
    totals, each = [], {name: [] for name in probe_names()}
    for topology in space.random_topologies(args.topologies, seed=7):
        seed_everything(config.seed)
        model = build_model(topology)
        x, y = probe_batch(data, topology.input_shape, config.seed)
        compute_probes(model, x, y)  # warm-up
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            compute_probes(model, x, y)
            runs.append(time.perf_counter() - start)
        totals.append(float(np.median(runs)))
        for name in probe_names():  # one probe at a time (shared passes are not shared here)
            start = time.perf_counter()
            PROBES[name](ProbeInputs(model, x, y))
            each[name].append(time.perf_counter() - start)
    out = {
        "settings": {"topologies": args.topologies, "repeats": args.repeats, "threads": 1, "batch": len(x)},
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "all_probes_seconds": {"median": float(np.median(totals)), "max": float(np.max(totals))},
        "per_probe_median_seconds": {name: float(np.median(v)) for name, v in each.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
