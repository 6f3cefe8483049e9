"""Exact parameter and MAC counts of known layers (not just "positive")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from skipsearch.nn import build_model, model_cost
from skipsearch.topology import PRESETS, Topology, families, get_preset, topology_cost

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "topology"))
from topology_strategies import topologies  # a sibling test folder's helper


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
    assert _cost(get_preset("resnet20")).params == 269_722


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_counting_from_shapes_matches_the_built_preset(name: str) -> None:
    topology = get_preset(name)
    counted = topology_cost(topology)
    assert (counted.params, counted.macs, counted.flops) == _measured(topology)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_counting_from_shapes_matches_the_built_model(topology: Topology) -> None:
    counted = topology_cost(topology)
    assert (counted.params, counted.macs, counted.flops) == _measured(topology)


def _measured(topology: Topology) -> tuple[int, int, int]:
    cost = _cost(topology)
    return cost.params, cost.macs, cost.flops
