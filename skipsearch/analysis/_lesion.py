"""Lesion studies (Veit et al. 2016): delete one block, or one skip edge, of a trained network at
test time and measure how much the metric drops.

Deleting block ``j`` means, on the built ``torch.fx`` model:

* ``drop-branch``: ``j`` has an additive skip edge into it, so its body (the residual branch
  ``F_j``) is replaced by zeros; the node's output becomes ``post(sum of its skip terms)``. This is
  Veit et al.'s deletion of a residual module.
* ``identity``: ``j`` has no additive skip edge, a single input and equal input and output shapes,
  so its body is replaced by the identity (removing a layer from a plain, VGG-like network).
* anything else (shape-changing blocks without a skip, concat inputs, the output head, blocks
  without weights) cannot be deleted; :attr:`Lesion.skipped` says why for each.

Deleting an additive skip edge rebuilds the model without it and copies every other weight.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from skipsearch.nn import build_model, model_device, model_topology
from skipsearch.tasks import evaluate
from skipsearch.topology import OPS, SkipEdge, Topology


class ZeroBody(nn.Module):
    """Stands in for a deleted residual branch: zeros of the block's output shape."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.new_zeros((x.shape[0], *self.shape))


@dataclass(frozen=True)
class LesionRow:
    target: str
    """The deleted node id, or ``src->dst`` for a skip edge."""
    mode: str
    """``drop-branch``, ``identity`` or ``drop-edge``."""
    metric: float
    drop: float
    """Baseline metric minus the lesioned metric (positive: it got worse)."""


@dataclass(frozen=True)
class Lesion:
    """Results of deleting each deletable block (and additive skip edge) in turn."""

    topology: str
    metric_name: str
    baseline: float
    rows: list[LesionRow] = field(repr=False)
    skipped: dict[str, str] = field(repr=False)
    """Target -> why it could not be deleted."""

    @property
    def block_rows(self) -> list[LesionRow]:
        return [r for r in self.rows if r.mode != "drop-edge"]

    @property
    def mean_block_drop(self) -> float:
        rows = self.block_rows
        return sum(r.drop for r in rows) / len(rows) if rows else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "metric": self.metric_name,
            "baseline": self.baseline,
            "mean_block_drop": self.mean_block_drop,
            "rows": [r.__dict__ for r in self.rows],
            "skipped": self.skipped,
        }


def lesion_mode(topology: Topology, node_id: str) -> tuple[str | None, str]:
    """How node ``node_id`` can be deleted (``drop-branch``/``identity``), or ``None`` and why not."""
    node = topology.node(node_id)
    if topology.index[node_id] == len(topology.nodes) - 1:
        return None, "the output node"
    if not OPS[node.op].weighted:
        return None, f"a {node.op} block has no weights"
    if any(e.additive for e in topology.incoming(node_id)):
        return "drop-branch", ""
    sources = topology.input_sources(node_id)
    if len(sources) > 1:
        return None, "no additive skip, and its input is a concatenation"
    src_shape, out_shape = topology.shapes[sources[0]], topology.shapes[node_id]
    if src_shape != out_shape:
        return None, f"no additive skip, and its shape changes from {src_shape} to {out_shape}"
    return "identity", ""


def lesioned_model(model: nn.Module, node_id: str, mode: str) -> nn.Module:
    """A copy of ``model`` with block ``node_id`` deleted in the given mode."""
    topology = model_topology(model)
    lesioned = copy.deepcopy(model)
    body = ZeroBody(topology.shapes[node_id]) if mode == "drop-branch" else nn.Identity()
    # The holder's properties read _modules live, so the generated forward picks the new module up.
    lesioned.get_submodule("blocks")._modules[node_id] = body
    return lesioned


def without_edge(model: nn.Module, edge: SkipEdge) -> nn.Module:
    """``model`` rebuilt without the additive skip ``edge``, every other weight copied."""
    topology = model_topology(model)
    reduced = topology.with_skips([e for e in topology.skips if (e.src, e.dst) != (edge.src, edge.dst)])
    rebuilt = build_model(reduced)
    rebuilt.load_state_dict(model.state_dict(), strict=False)
    return rebuilt.to(model_device(model))


def lesion_study(model: nn.Module, x: Tensor, y: Tensor, metric: str = "accuracy", edges: bool = True) -> Lesion:
    """Deletes every deletable block (and, with ``edges``, every additive skip edge) of the
    trained ``model`` in turn and evaluates it on ``(x, y)``."""
    topology = model_topology(model)
    baseline, _ = evaluate(model, x, y, metric)
    rows: list[LesionRow] = []
    skipped: dict[str, str] = {}
    for node in topology.nodes[1:]:
        mode, reason = lesion_mode(topology, node.id)
        if mode is None:
            skipped[node.id] = reason
            continue
        value, _ = evaluate(lesioned_model(model, node.id, mode), x, y, metric)
        rows.append(LesionRow(node.id, mode, value, baseline - value))
    if edges:
        for edge in topology.active_skips:
            target = f"{edge.src}->{edge.dst}"
            if not edge.additive:
                skipped[target] = "a concat edge feeds the destination's input; removing it changes its shape"
                continue
            with torch.no_grad():
                value, _ = evaluate(without_edge(model, edge), x, y, metric)
            rows.append(LesionRow(target, "drop-edge", value, baseline - value))
    return Lesion(topology.name, metric, baseline, rows, skipped)
