"""Paths and effective depth (Veit et al. 2016, "Residual networks behave like ensembles of
relatively shallow networks").

A topology with skips is a collection of input-to-output paths of different lengths (the length of
a path is the number of weighted block bodies it passes through, as in
:func:`skipsearch.topology.path_length_distribution`). Veit et al. measured how much gradient the
paths of each length carry: feed a batch forward through the whole network, then let the gradient
flow back along one sampled path only, and take the norm of the gradient at the input. The total
for a length is the mean per-path norm times the number of paths of that length. Most of the
gradient of a deep ResNet comes from paths far shorter than the network: its *effective depth*.

The routed backward pass here re-runs the model's own blocks and skip modules by the topology's
semantics (see :mod:`skipsearch.topology._graph`), detaching every contribution that is not on the
path: the forward values are exactly the model's, only the gradient is restricted.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from skipsearch.errors import UserError
from skipsearch.nn import (
    ACTIVATION_FUNCTIONS,  # the same post activations the compiled model uses
    model_topology,
    skip_name,
    training_mode,
)
from skipsearch.tasks import task_loss
from skipsearch.topology import OPS, Topology, graph_metrics, node_path_distributions

Route = dict[str, tuple[str, str]]
"""Node id -> ``("body", source)`` or ``("skip", source)``: how a path enters the node."""

EFFECTIVE_SHARE = 0.9
"""The effective range of path lengths is the shortest interval carrying this share of the gradient."""


def sample_path(topology: Topology, dist: dict[str, Counter[int]], length: int, rng: random.Random) -> Route:
    """A path of ``length`` drawn uniformly among all input-to-output paths of that length."""
    route: Route = {}
    node, remaining = topology.nodes[-1].id, length
    first = topology.nodes[0].id
    while node != first:
        step = int(OPS[topology.node(node).op].weighted)
        options: list[tuple[str, str, int, int]] = []
        for src in topology.input_sources(node):
            options.append(("body", src, remaining - step, dist[src].get(remaining - step, 0)))
        for edge in topology.incoming(node):
            if edge.additive:
                options.append(("skip", edge.src, remaining, dist[edge.src].get(remaining, 0)))
        pick = rng.randrange(sum(o[3] for o in options))  # exact for path counts beyond 2**53
        for mode, src, rest, count in options:
            if pick < count:
                route[node] = (mode, src)
                node, remaining = src, rest
                break
            pick -= count
    return route


def routed_forward(model: nn.Module, x: Tensor, route: Route | None = None) -> Tensor:
    """The model's output on ``x``; with a ``route``, gradient flows back only along that path.

    Without a route this is the plain forward pass of the compiled model (a test checks that).
    """
    topology = model_topology(model)
    blocks = dict(model.get_submodule("blocks").named_children())
    holder = getattr(model, "skips", None)  # fx leaves it out when no edge needs a module
    skips = dict(holder.named_children()) if holder is not None else {}
    out: dict[str, Tensor] = {topology.nodes[0].id: x}

    def keep(node_id: str, mode: str, src: str | None) -> bool:
        if route is None:
            return True
        chosen = route.get(node_id)
        return chosen is not None and chosen[0] == mode and (src is None or chosen[1] == src)

    for node in topology.nodes[1:]:
        parts = [out[s] if keep(node.id, "body", s) else out[s].detach() for s in topology.input_sources(node.id)]
        y = blocks[node.id](parts[0] if len(parts) == 1 else torch.cat(parts, 1))
        if not keep(node.id, "body", None):
            y = y.detach()
        for edge in topology.incoming(node.id):
            if not edge.additive:
                continue
            term = out[edge.src] if keep(node.id, "skip", edge.src) else out[edge.src].detach()
            module = skips.get(skip_name(edge))
            y = y + (module(term) if module is not None else term)
        post = node.params.get("post", "none")
        out[node.id] = ACTIVATION_FUNCTIONS[post](y) if post != "none" else y
    return out[topology.nodes[-1].id]


@dataclass(frozen=True)
class PathGradients:
    """How much gradient the paths of each length carry (one row per length with paths)."""

    topology: str
    lengths: list[int]
    counts: list[int] = field(repr=False)
    """Number of paths of each length."""
    mean_norm: list[float] = field(repr=False)
    """Mean over sampled paths of the gradient norm at the input, for one path of that length."""
    total: list[float] = field(repr=False)
    """``counts * mean_norm``: the gradient that all paths of that length carry together."""
    share: list[float] = field(repr=False)
    samples: int
    mean_length: float
    """Path length weighted by the gradient share (the gradient-weighted effective path length)."""
    effective_range: tuple[int, int]
    """Shortest interval of lengths carrying :data:`EFFECTIVE_SHARE` of the gradient."""
    longest: int

    def to_dict(self) -> dict[str, Any]:
        rows = [
            {"length": k, "paths": c, "mean_norm": m, "total": t, "share": s}
            for k, c, m, t, s in zip(self.lengths, self.counts, self.mean_norm, self.total, self.share, strict=True)
        ]
        return {
            "topology": self.topology,
            "samples": self.samples,
            "mean_length": self.mean_length,
            "effective_range": list(self.effective_range),
            "longest": self.longest,
            "lengths": rows,
        }


def path_gradients(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    samples: int = 8,
    seed: int = 0,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = task_loss,
) -> PathGradients:
    """Veit et al.'s gradient-per-path-length measurement on one batch, model in eval mode.

    For every length with paths, ``samples`` paths are drawn uniformly and the gradient norm at the
    input is averaged (deterministic for a given ``seed``).
    """
    topology = model_topology(model)
    if not graph_metrics(topology).lengths_counted:  # every node's distribution would not fit in memory
        raise UserError(
            f"topology {topology.name!r}: too many paths of too many lengths to sample per length "
            f"({len(topology.nodes)} nodes); path gradients need a smaller network"
        )
    dist = node_path_distributions(topology)
    final = dist[topology.nodes[-1].id]
    rng = random.Random(seed)
    lengths = sorted(final)
    means: list[float] = []
    with training_mode(model, False):
        for length in lengths:
            norms = []
            for _ in range(samples):
                route = sample_path(topology, dist, length, rng)
                inp = x.detach().clone().requires_grad_(True)
                loss = loss_fn(routed_forward(model, inp, route), y)
                (grad,) = torch.autograd.grad(loss, inp, allow_unused=True)
                norms.append(0.0 if grad is None else float(grad.norm()))
            means.append(sum(norms) / len(norms))
    counts = [final[k] for k in lengths]
    total = [float(c) * m for c, m in zip(counts, means, strict=True)]
    whole = sum(total) or 1.0
    share = [t / whole for t in total]
    return PathGradients(
        topology=topology.name,
        lengths=lengths,
        counts=counts,
        mean_norm=means,
        total=total,
        share=share,
        samples=samples,
        mean_length=sum(k * s for k, s in zip(lengths, share, strict=True)),
        effective_range=effective_range(lengths, share),
        longest=max(lengths),
    )


def effective_range(lengths: list[int], share: list[float], target: float = EFFECTIVE_SHARE) -> tuple[int, int]:
    """The shortest run of consecutive lengths whose shares add up to ``target`` (first one on ties)."""
    best = (lengths[0], lengths[-1])
    for i in range(len(lengths)):
        acc = 0.0
        for j in range(i, len(lengths)):
            acc += share[j]
            if acc >= target - 1e-12:
                if lengths[j] - lengths[i] < best[1] - best[0]:
                    best = (lengths[i], lengths[j])
                break
    return best
