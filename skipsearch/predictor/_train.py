"""Fitting and evaluating the predictor: MSE on standardised targets plus a pairwise ranking loss.

A search only needs the predictor to *order* topologies correctly, so the loss adds RankNet's
pairwise logistic term (every pair of graphs in the batch) to the MSE that anchors the scale.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats
from torch_geometric.data import Batch, Data

from skipsearch import metrics as schema
from skipsearch.errors import UserError
from skipsearch.predictor._graphs import topology_to_data
from skipsearch.predictor._model import Ensemble
from skipsearch.topology import Topology


@dataclass(frozen=True)
class FitConfig:
    """Training settings of the predictor; the defaults fit ~100 graphs in a few seconds on one thread."""

    members: int = 4
    hidden: int = 64
    layers: int = 3
    epochs: int = 250
    lr: float = 3e-3
    weight_decay: float = 1e-4
    rank_weight: float = 1.0
    seed: int = 0


def ranking_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RankNet loss: mean over ordered pairs ``target_i > target_j`` of ``softplus(pred_j - pred_i)``.

    Both tensors are ``[graphs]`` or ``[graphs, outputs]`` (columns ranked separately); ties add nothing.
    """
    if pred.dim() == 1:
        pred, target = pred[:, None], target[:, None]
    diff_pred = pred[:, None, :] - pred[None, :, :]
    better = (target[:, None, :] > target[None, :, :]).float()
    pairs = better.sum()
    if pairs == 0:
        return pred.sum() * 0.0
    return (torch.nn.functional.softplus(-diff_pred) * better).sum() / pairs


@dataclass
class Predictor:
    """A fitted ensemble with the target scaling; predicts in the targets' own units."""

    model: Ensemble
    outputs: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    config: FitConfig = field(default_factory=FitConfig)
    features: tuple[str, ...] = ()
    """Graph-level inputs besides the graph (probe names); their values are standardised with
    ``feature_mean`` and ``feature_scale`` (after ``log10`` for log-scale metrics)."""
    feature_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    feature_scale: np.ndarray = field(default_factory=lambda: np.ones(0))

    def predict(
        self, topologies: Sequence[Topology | Data], features: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the ensemble, each ``[len(topologies), outputs]``;
        ``features`` (``[len(topologies), len(self.features)]``, raw values) when it reads some."""
        scaled = self._scaled(features, len(topologies))
        graphs = _graphs(topologies, None if scaled is None else scaled)
        mean, std = self.model.predict(Batch.from_data_list(graphs))
        return mean.numpy() * self.scale + self.mean, std.numpy() * self.scale

    def _scaled(self, features: np.ndarray | None, n: int) -> np.ndarray | None:
        if not self.features:
            return None
        if features is None:
            raise UserError(f"this predictor reads {', '.join(self.features)}: give their values")
        values = feature_values(features, self.features).reshape(n, len(self.features))
        return (values - self.feature_mean) / self.feature_scale

    def save(self, path: str) -> None:
        torch.save(
            {
                "state": self.model.state_dict(),
                "outputs": list(self.outputs),
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "config": self.config.__dict__,
                "features": list(self.features),
                "feature_mean": self.feature_mean.tolist(),
                "feature_scale": self.feature_scale.tolist(),
            },
            path,
        )

    @classmethod
    def load(cls, path: str) -> Predictor:
        try:
            with open(path, "rb") as fh:
                blob = torch.load(io.BytesIO(fh.read()), weights_only=True)
        except (OSError, RuntimeError, EOFError) as exc:
            raise UserError(f"{path}: cannot read a predictor ({exc})") from None
        config = FitConfig(**blob["config"])
        features = tuple(blob.get("features", ()))
        model = Ensemble(
            config.members,
            len(blob["outputs"]),
            hidden=config.hidden,
            layers=config.layers,
            graph_features=len(features),
        )
        model.load_state_dict(blob["state"])
        return cls(
            model,
            tuple(blob["outputs"]),
            np.array(blob["mean"]),
            np.array(blob["scale"]),
            config,
            features,
            np.array(blob.get("feature_mean", [])),
            np.array(blob.get("feature_scale", [])),
        )


def feature_values(features: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Raw metric values ``[n, len(names)]`` -> the predictor's inputs: ``log10`` of log-scale
    metrics (:attr:`skipsearch.metrics.Metric.log_scale`: synflow spans orders of magnitude)."""
    values = np.asarray(features, dtype=np.float64).reshape(-1, len(names)).copy()
    for k, name in enumerate(names):
        metric = schema.get(name)
        if metric is not None and metric.log_scale:
            values[:, k] = np.log10(np.maximum(values[:, k], 1e-300))
    if not np.isfinite(values).all():
        raise UserError(f"feature values must be finite numbers ({', '.join(names)})")
    return values


def _graphs(topologies: Sequence[Topology | Data], features: np.ndarray | None) -> list[Data]:
    graphs = []
    for k, t in enumerate(topologies):
        graph = t if isinstance(t, Data) else topology_to_data(t)
        if features is not None:
            graph = graph.clone()
            graph.g = torch.tensor(features[k : k + 1], dtype=torch.float32)
        graphs.append(graph)
    return graphs


def fit_predictor(
    topologies: Sequence[Topology | Data],
    targets: np.ndarray,
    outputs: Sequence[str] = ("accuracy",),
    config: FitConfig | None = None,
    features: np.ndarray | None = None,
    feature_names: Sequence[str] = (),
) -> Predictor:
    """Trains an ensemble on ``targets`` (``[graphs, outputs]``, or ``[graphs]`` for one output).

    ``features`` (``[graphs, len(feature_names)]``: probe scores) are graph-level inputs next to the
    graph; they are standardised over these graphs. Full-batch training: a search's datasets are
    hundreds of small graphs at most.
    """
    config = config or FitConfig()
    y = np.asarray(targets, dtype=np.float64).reshape(len(topologies), -1)
    if len(y) < 2:
        raise UserError(f"the predictor needs at least 2 evaluated topologies, got {len(y)}")
    mean, scale = y.mean(0), y.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    names = tuple(feature_names)
    f_mean, f_scale, scaled = np.zeros(0), np.ones(0), None
    if names:
        if features is None:
            raise UserError(f"give the values of the features {', '.join(names)}")
        values = feature_values(features, names)
        f_mean, f_scale = values.mean(0), values.std(0)
        f_scale = np.where(f_scale > 0, f_scale, 1.0)
        scaled = (values - f_mean) / f_scale
    batch = Batch.from_data_list(_graphs(topologies, scaled))
    target = torch.tensor((y - mean) / scale, dtype=torch.float32)
    torch.manual_seed(config.seed)
    model = Ensemble(config.members, y.shape[1], hidden=config.hidden, layers=config.layers, graph_features=len(names))
    optim = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, config.epochs)
    model.train()
    for _ in range(config.epochs):
        optim.zero_grad()
        preds = model(batch)
        loss = sum(
            torch.nn.functional.mse_loss(p, target) + config.rank_weight * ranking_loss(p, target) for p in preds
        )
        loss.backward()  # type: ignore[union-attr]
        optim.step()
        sched.step()
    model.eval()
    return Predictor(model, tuple(outputs), mean, scale, config, names, f_mean, f_scale)


def rank_scores(predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Kendall tau and Spearman rho between predicted and actual values."""
    tau = stats.kendalltau(predicted, actual).statistic
    rho = stats.spearmanr(predicted, actual).statistic
    return {"kendall_tau": float(tau), "spearman": float(rho), "n": len(actual)}


def evaluate_predictor(
    predictor: Predictor, topologies: Sequence[Topology | Data], targets: np.ndarray, features: np.ndarray | None = None
) -> dict:
    """Kendall tau and Spearman of each output on held-out topologies, ``{output: scores}``."""
    mean, _ = predictor.predict(topologies, features)
    y = np.asarray(targets, dtype=np.float64).reshape(len(topologies), -1)
    return {name: rank_scores(mean[:, k], y[:, k]) for k, name in enumerate(predictor.outputs)}
