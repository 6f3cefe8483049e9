"""Resolving ``switch`` edges (every ``switchable`` kind) after training: off below a threshold, a
fixed scalar otherwise."""

from __future__ import annotations

import torch
from torch import fx, nn

from skipsearch.nn._compile import build_model, model_topology, skip_name
from skipsearch.nn._skips import switch_modules, switch_value
from skipsearch.topology import SkipEdge, Topology


def switch_states(model: nn.Module) -> dict[str, float]:
    """Open fraction ``sigmoid(logit)`` of every switch edge, by ``src__dst`` name."""
    return {name: float(switch_value(m).detach()) for name, m in switch_modules(model).items()}


def resolve_switches(model: fx.GraphModule, threshold: float = 0.5) -> tuple[Topology, fx.GraphModule]:
    """The trained model without its switches.

    A switch edge whose gate is below ``threshold`` becomes ``off`` (removed from the exported
    model); one at or above it becomes a ``scalar`` edge fixed at the gate's value, so the new
    model computes what the trained one did, minus the removed edges. Weights are carried over.
    """
    topology = model_topology(model)
    states = switch_states(model)
    skips: list[SkipEdge] = []
    for edge in topology.skips:
        if edge.spec.switchable:
            value = states[skip_name(edge)]
            kind = "scalar" if value >= threshold else "off"
            align = edge.align if kind == "scalar" else "identity"
            edge = SkipEdge(edge.src, edge.dst, kind, align, value if kind == "scalar" else None)
        skips.append(edge)
    resolved = topology.with_skips(skips)
    new_model = build_model(resolved)
    # Switches turned off take their modules (a projection's weights) with them.
    kept = new_model.state_dict()
    state = {k: v for k, v in model.state_dict().items() if k in kept}
    for name in states:
        if f"skips.{name}.scale" in kept:  # a switch left on became a ScalarSkip
            state[f"skips.{name}.scale"] = torch.tensor(states[name])
    new_model.load_state_dict(state, strict=True)
    new_model.train(model.training)
    return resolved, new_model
