"""The predictor ranks really trained mnist1d topologies better than chance (held-out Kendall tau).

A reduced but real setting: random topologies of a 6-layer tanh MLP (width 32, candidate edges up
to span 2, off/add/scalar/concat), each trained for 3 epochs on one thread. Seed-to-seed noise of
so short a training caps any predictor's tau well below 1 (see docs/benchmarks.md for the figures
at longer budgets), so the bound here only says that the ranking is real.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from skipsearch.nn import build_model
from skipsearch.predictor import FitConfig, evaluate_predictor, fit_predictor
from skipsearch.search import SearchSpace
from skipsearch.search._config import SpaceConfig
from skipsearch.tasks import TASKS, load_task, train_model
from skipsearch.topology import families


@pytest.mark.slow
def test_held_out_kendall_tau_on_trained_topologies() -> None:
    torch.set_num_threads(1)
    backbone = families.mlp(40, [32] * 6, 10, act="tanh", residual=False, name="m")
    space = SearchSpace(backbone, SpaceConfig(max_span=2, choices=["off", "add", "scalar", "concat"]))
    data = load_task("mnist1d", seed=0)
    config = TASKS["mnist1d"].default_config.updated(epochs=3, threads=1)
    rng = random.Random(1)
    topologies = [
        space.topology_from_params({c.param: rng.choice(c.choices) for c in space.candidates}) for _ in range(120)
    ]
    accuracy = np.array([train_model(build_model(t), data, config, seed=0).val_metric for t in topologies])
    predictor = fit_predictor(topologies[:60], accuracy[:60], config=FitConfig(members=3, epochs=150))
    scores = evaluate_predictor(predictor, topologies[60:], accuracy[60:])["accuracy"]
    print(scores)
    assert scores["kendall_tau"] > 0.1
