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

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from skipsearch.nn import build_model
from skipsearch.tasks import TaskData, TrainConfig, reshape_for, seed_everything, train_model
from skipsearch.topology import OPS, Topology

VANISHING = 1e-3
"""Flow ratios (first/last hidden block) below this are flagged ``vanishing``."""
EXPLODING = 1e3
"""Flow ratios above this are flagged ``exploding``."""
DEFAULT_BATCH = 512


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


def flow_status(ratio: float) -> str:
    """``vanishing`` (ratio < 1e-3), ``exploding`` (> 1e3) or ``healthy``; NaN counts as vanishing."""
    if not math.isfinite(ratio):
        return "exploding" if ratio == math.inf else "vanishing"
    if ratio < VANISHING:
        return "vanishing"
    if ratio > EXPLODING:
        return "exploding"
    return "healthy"


def hidden_blocks(topology: Topology) -> list[str]:
    """Weighted blocks between the input and the output node, in backbone order."""
    return [n.id for n in topology.nodes[1:-1] if OPS[n.op].weighted]


def gradient_norms(model: nn.Module, x: Tensor, y: Tensor) -> tuple[dict[str, float], float]:
    """Weight-gradient norm of every hidden weighted block of ``model`` on ``(x, y)``, and the loss.

    The model's gradients are cleared afterwards and its train/eval mode restored.
    """
    topology: Topology = model.meta["topology"]
    was_training = model.training
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        norms: dict[str, float] = {}
        for node_id in hidden_blocks(topology):
            grads = [p.grad for p in model.blocks._modules[node_id].parameters() if p.dim() > 1 and p.grad is not None]
            if grads:
                norms[node_id] = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return norms, float(loss.detach())


def measure_flow(model: nn.Module, x: Tensor, y: Tensor, stage: str, accuracy: float | None = None) -> GradientFlow:
    """The :class:`GradientFlow` of ``model`` (built by :func:`skipsearch.nn.build_model`) on one batch."""
    topology: Topology = model.meta["topology"]
    norms, loss = gradient_norms(model, x, y)
    if not norms:
        return GradientFlow(topology.name, topology.hash, stage, {}, "", "", 1.0, "healthy", loss, accuracy)
    first, last = next(iter(norms)), next(reversed(norms))
    ratio = norms[first] / norms[last] if norms[last] > 0 else (math.inf if norms[first] > 0 else math.nan)
    return GradientFlow(
        topology.name, topology.hash, stage, norms, first, last, ratio, flow_status(ratio), loss, accuracy
    )


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Runs the block with ``threads`` CPU threads for torch (``None``: unchanged), then restores them.

    The analyses run small models; like the tasks' defaults (see ``skipsearch.tasks._registry``),
    one thread avoids the collapse of spin-waiting OpenMP threads on shared cores.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def analysis_batch(data: TaskData, topology: Topology, batch_size: int = DEFAULT_BATCH) -> tuple[Tensor, Tensor]:
    """The first ``batch_size`` training samples, viewed as the topology's input shape."""
    data = reshape_for(data, topology.input_shape)
    return data.x_train[:batch_size], data.y_train[:batch_size]


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
    seed_everything(seed)
    model = build_model(topology)
    x, y = analysis_batch(data, topology, batch_size)
    with torch_threads(train.threads if train is not None else None):
        out = [measure_flow(model, x, y, "init")]
    if train is not None:
        result = train_model(model, data, train.updated(device="cpu"), seed=seed, evaluate_test=False)
        out.append(measure_flow(model, x, y, "trained", result.val_metric))
    return out
