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


def test_conv_macs_are_weights_times_output_positions() -> None:
    topology = Topology.create(
        [
            {"id": "x", "op": "input", "shape": [3, 32, 32]},
            {"id": "c1", "op": "conv", "channels": 16},
            {"id": "c2", "op": "conv", "channels": 16, "stride": 2},
            {"id": "head", "op": "head", "classes": 10},
        ]
    )
    cost = _cost(topology)
    # 3x3 kernels at 32x32 then (stride 2) 16x16 output positions; the head pools to 16 features.
    assert cost.macs == 3 * 16 * 9 * 32 * 32 + 16 * 16 * 9 * 16 * 16 + 16 * 10
    # Bias-free convolutions, BatchNorm scale and shift, the head's weights and biases.
    assert cost.params == 3 * 16 * 9 + 16 * 16 * 9 + 2 * (2 * 16) + 16 * 10 + 10


def test_gated_and_scalar_edges_cost_their_gate() -> None:
    plain = families.mlp(40, [32, 32, 32], 10, residual=False)
    gated = plain.with_skips([{"src": "h1", "dst": "h3", "kind": "gated"}])
    scalar = plain.with_skips([{"src": "h1", "dst": "h3", "kind": "scalar"}])
    assert (_cost(gated).params - _cost(plain).params, _cost(gated).macs - _cost(plain).macs) == (32 * 32 + 32, 32 * 32)
    assert (_cost(scalar).params - _cost(plain).params, _cost(scalar).macs - _cost(plain).macs) == (1, 0)


def test_resnet20_has_the_papers_parameter_count_and_its_macs() -> None:
    cost = _cost(get_preset("resnet20"))
    assert cost.params == 269_722
    assert cost.macs == 40_551_040  # convolutions and the classifier; He et al. quote about 41M FLOPs


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
