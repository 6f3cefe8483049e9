"""Gradient flow: how much gradient reaches each block, at initialisation and after training.

Definition used throughout skipsearch: the *gradient norm of a node* is the Euclidean norm of the
gradient of the mean cross-entropy loss with respect to the node's weight tensors (every parameter
of ``blocks.<id>`` with two or more dimensions, i.e. linear and convolution weights; biases and
normalisation scales are left out), on one batch of the task's training data, model in train mode.
The *flow ratio* is the norm of the first hidden weighted block divided by that of the last hidden
weighted block (the output head is not a hidden block). A ratio below :data:`VANISHING` means the
first layers barely learn (vanishing gradients); above :data:`EXPLODING`, that they blow up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor, nn

from skipsearch.nn import cpu_threads, model_topology
from skipsearch.tasks import (
    DEFAULT_BATCH,
    TaskData,
    TrainConfig,
    analysis_batch,
    flow_ratio,
    flow_status,
    gradient_norms,
    seeded_model,
    train_model,
)
from skipsearch.topology import Topology


@dataclass(frozen=True)
class GradientFlow:
    """Per-node weight-gradient norms of one model state (``stage`` is ``init`` or ``trained``)."""

    topology: str
    hash: str
    stage: str
    norms: dict[str, float] = field(repr=False)
    """Node id -> weight-gradient norm, in backbone order, for every hidden weighted block."""
    first: str
    last: str
    ratio: float
    """``norms[first] / norms[last]``."""
    status: str
    """``vanishing``, ``exploding`` or ``healthy``."""
    loss: float
    accuracy: float | None = None
    """Validation metric of the model in this state (after training; ``None`` at init)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_flow(model: nn.Module, x: Tensor, y: Tensor, stage: str, accuracy: float | None = None) -> GradientFlow:
    """The :class:`GradientFlow` of ``model`` (built by :func:`skipsearch.nn.build_model`) on one batch."""
    topology = model_topology(model)
    norms, loss = gradient_norms(model, x, y)
    if not norms:
        return GradientFlow(topology.name, topology.hash, stage, {}, "", "", 1.0, "healthy", loss, accuracy)
    first, last = next(iter(norms)), next(reversed(norms))
    ratio = flow_ratio(norms)
    return GradientFlow(
        topology.name, topology.hash, stage, norms, first, last, ratio, flow_status(ratio), loss, accuracy
    )


def gradient_flow(
    topology: Topology,
    data: TaskData,
    *,
    train: TrainConfig | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH,
) -> list[GradientFlow]:
    """Gradient flow of ``topology`` at initialisation (weights from ``seed``) and, when ``train``
    is given, again after training with those settings on ``data``: one or two results."""
    model = seeded_model(topology, seed)
    x, y = analysis_batch(data, topology, batch_size)
    with cpu_threads(train.threads if train is not None else None):
        out = [measure_flow(model, x, y, "init")]
    if train is not None:
        result = train_model(model, data, train.updated(device="cpu"), seed=seed, evaluate_test=False)
        out.append(measure_flow(model, x, y, "trained", result.val_metric))
    return out
