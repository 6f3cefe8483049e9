"""The GINE regressor, the ensemble, the ranking loss and fitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from skipsearch.predictor import (
    Ensemble,
    FitConfig,
    GraphRegressor,
    Predictor,
    evaluate_predictor,
    fit_predictor,
    ranking_loss,
    topology_to_data,
)
from skipsearch.topology import SkipEdge, families


def _topologies() -> list:
    base = families.mlp(40, [32, 32, 32, 32], 10, residual=False, name="m")
    ids = ["x", "h1", "h2", "h3", "h4"]
    out = []
    for k in range(12):
        skips = [
            SkipEdge(ids[i], ids[i + 2], "add", "project" if i == 0 else "identity") for i in range(3) if k >> i & 1
        ]
        if k >= 8:
            skips.append(SkipEdge("x", "h3", "concat"))
        out.append(base.with_skips(skips))
    return out


def test_forward_and_backward() -> None:
    batch = Batch.from_data_list([topology_to_data(t) for t in _topologies()[:3]])
    model = GraphRegressor(outputs=2, hidden=16, layers=2)
    out = model(batch)
    assert out.shape == (3, 2)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    mean, std = Ensemble(3, 2, hidden=16, layers=2).predict(batch)
    assert mean.shape == std.shape == (3, 2)
    assert (std > 0).any()


def test_ranking_loss_prefers_the_right_order() -> None:
    target = torch.tensor([0.0, 1.0, 2.0])
    good = ranking_loss(torch.tensor([0.0, 5.0, 10.0]), target)
    bad = ranking_loss(torch.tensor([10.0, 5.0, 0.0]), target)
    assert good < 0.01 < bad
    assert ranking_loss(torch.zeros(3), torch.ones(3)) == 0  # ties: no pairs
    pred = torch.zeros(3, requires_grad=True)
    ranking_loss(pred, target).backward()
    assert pred.grad[2] < 0 < pred.grad[0]  # pushes the best up, the worst down


@pytest.mark.slow
def test_fit_learns_a_ranking_and_round_trips(tmp_path) -> None:
    topologies = _topologies()
    y = np.array([len([e for e in t.skips if e.kind == "add"]) + 0.5 * (len(t.skips) > 2) for t in topologies])
    predictor = fit_predictor(topologies, y, config=FitConfig(members=2, hidden=16, layers=2, epochs=60))
    scores = evaluate_predictor(predictor, topologies, y)["accuracy"]
    assert scores["kendall_tau"] > 0.6 and scores["n"] == 12
    path = tmp_path / "p.pt"
    predictor.save(str(path))
    again = Predictor.load(str(path))
    np.testing.assert_allclose(again.predict(topologies)[0], predictor.predict(topologies)[0], rtol=1e-5)
