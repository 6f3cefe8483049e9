"""Exact parameter and MAC counts of known layers (not just "positive")."""

from __future__ import annotations

from skipsearch.nn import build_model, model_cost
from skipsearch.topology import Topology, families


def _cost(topology: Topology):
    return model_cost(build_model(topology), topology.input_shape, latency=False)


def test_plain_mlp_macs_are_the_weight_matrices() -> None:
    cost = _cost(families.mlp(40, [128, 64], 10, act="tanh", residual=False))
    weights = 40 * 128 + 128 * 64 + 64 * 10
    assert cost.params == weights + 128 + 64 + 10
    assert cost.macs == weights
    assert cost.flops == 2 * cost.macs


def test_concat_edge_widens_the_destination_layer() -> None:
    plain = families.mlp(40, [32, 32, 32], 10, residual=False)
    dense = plain.with_skips([{"src": "h1", "dst": "h3", "kind": "concat"}])
    # h3 reads cat(h2, h1): 64 inputs instead of 32.
    assert _cost(dense).macs - _cost(plain).macs == 32 * 32
    assert _cost(dense).params - _cost(plain).params == 32 * 32


def test_projection_shortcut_costs_one_linear_map() -> None:
    plain = families.mlp(40, [32, 16], 10, residual=False)
    projected = plain.with_skips([{"src": "h1", "dst": "h2", "kind": "add", "align": "project"}])
    extra = _cost(projected)
    assert extra.macs - _cost(plain).macs == 32 * 16


def test_resnet20_has_the_papers_parameter_count() -> None:
    from skipsearch.topology import get_preset

    assert _cost(get_preset("resnet20")).params == 269_722
