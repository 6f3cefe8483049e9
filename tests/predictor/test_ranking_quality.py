"""The predictor ranks really trained mnist1d topologies: Kendall tau >= 0.5 on held-out ones.

The setting of the done-when figure, on the predictor's reference space
(``studies/mnist1d-deep-skips.yaml``: a 12-layer tanh MLP trained with plain SGD, skip edges up to
span 2, off/add/concat): 200 random distinct topologies, each trained for the study's 10 epochs on
one thread, fused as a batched study trains them (about 45 seconds; one at a time, two minutes); the
predictor learns from 100 and ranks the other 100.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from skipsearch.nn import build_model
from skipsearch.predictor import evaluate_predictor, fit_predictor
from skipsearch.search import SearchSpace, load_study_config
from skipsearch.tasks import load_task, reshape_for, seed_everything, train_batched

STUDY = Path(__file__).resolve().parents[2] / "studies" / "mnist1d-deep-skips.yaml"


@pytest.mark.slow
def test_held_out_kendall_tau_on_trained_topologies() -> None:
    torch.set_num_threads(1)
    config = load_study_config(STUDY)
    space = SearchSpace(config.backbone.build(), config.space)
    data = load_task("mnist1d", seed=config.seed)
    topologies = space.random_topologies(200, seed=7)
    reshape_for(data, topologies[0].input_shape)
    models = []
    for topology in topologies:  # each built from the study's seed, as a trial builds it
        seed_everything(config.seed)
        models.append(build_model(topology))
    results = train_batched(models, data, config.train_config, seeds=[config.seed] * 200, evaluate_test=False)
    accuracy = np.array([r.val_metric for r in results])
    assert accuracy.max() - accuracy.min() > 0.15  # the topology matters here: a ranking is there to learn

    predictor = fit_predictor(topologies[:100], accuracy[:100])
    scores = evaluate_predictor(predictor, topologies[100:], accuracy[100:])["accuracy"]

    print(scores)
    assert scores["n"] == 100
    assert scores["kendall_tau"] >= 0.5
