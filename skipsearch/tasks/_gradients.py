"""Gradient norms per block: the measurement behind gradient-flow analysis and study metrics.

The *gradient norm of a node* is the Euclidean norm of the gradient of the mean cross-entropy loss
with respect to the node's weight tensors (every parameter of ``blocks.<id>`` with two or more
dimensions), on one batch of training data, model in train mode. The *flow ratio* is the norm of the
first hidden weighted block over that of the last (the output head is not hidden): below
:data:`VANISHING` the first layers barely learn, above :data:`EXPLODING` they blow up.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from skipsearch.nn import model_block, model_topology, training_mode
from skipsearch.tasks._data import TaskData, reshape_for
from skipsearch.tasks._metrics import task_loss
from skipsearch.topology import OPS, Topology

DEFAULT_BATCH = 512
"""Training samples a gradient measurement uses (the first ones: the same for every topology)."""

VANISHING = 1e-3
"""Flow ratios (first/last hidden block) below this are flagged ``vanishing``."""
EXPLODING = 1e3
"""Flow ratios above this are flagged ``exploding``."""


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
    topology = model_topology(model)
    model.zero_grad(set_to_none=True)
    try:
        with training_mode(model, True):
            loss = task_loss(model(x), y)
            loss.backward()
        norms: dict[str, float] = {}
        for node_id in hidden_blocks(topology):
            grads = [p.grad for p in model_block(model, node_id).parameters() if p.dim() > 1 and p.grad is not None]
            if grads:
                norms[node_id] = float(torch.stack([(g.double() ** 2).sum() for g in grads]).sum().sqrt())
    finally:
        model.zero_grad(set_to_none=True)
    return norms, float(loss.detach())


def flow_ratio(norms: dict[str, float]) -> float:
    """First over last hidden block's norm (1.0 without hidden blocks; inf or NaN when the last is 0)."""
    if not norms:
        return 1.0
    first, last = norms[next(iter(norms))], norms[next(reversed(norms))]
    return first / last if last > 0 else (math.inf if first > 0 else math.nan)


def analysis_batch(data: TaskData, topology: Topology, batch_size: int = DEFAULT_BATCH) -> tuple[Tensor, Tensor]:
    """The first ``batch_size`` training samples, viewed as the topology's input shape."""
    data = reshape_for(data, topology.input_shape)
    return data.x_train[:batch_size], data.y_train[:batch_size]
