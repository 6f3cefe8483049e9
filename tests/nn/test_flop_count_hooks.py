"""``count_flops`` applies ``torch.utils.flop_counter``'s formulas in module hooks: it must count
exactly what ``FlopCounterMode`` counts, on every preset and every edge kind and alignment."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from skipsearch.nn import build_model, count_flops
from skipsearch.search import SearchSpace
from skipsearch.search._config import SpaceConfig
from skipsearch.topology import PRESETS, Topology, families, get_preset


def _flop_counter_mode(topology: Topology) -> int:
    model = build_model(topology).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *topology.input_shape))
    return int(counter.get_total_flops())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets(name: str) -> None:
    topology = get_preset(name)
    assert count_flops(build_model(topology), topology.input_shape) == _flop_counter_mode(topology)


@pytest.mark.parametrize("backbone", ["mlp", "cnn1d"])
def test_every_edge_kind_and_alignment(backbone: str) -> None:
    if backbone == "mlp":
        topo = families.mlp(input_features=12, hidden=[16, 24, 16, 8], classes=3)
    else:
        topo = get_preset("cnn1d-mnist1d")
    choices = ["off", "add", "scalar", "gated", "switch", "concat", "add/project", "add/zero_pad"]
    space = SearchSpace(topo, SpaceConfig(max_span=3, choices=choices))
    for topology in space.random_topologies(6, seed=1):
        assert count_flops(build_model(topology), topology.input_shape) == _flop_counter_mode(topology)
