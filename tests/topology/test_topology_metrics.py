"""Graph metrics: input-to-output paths and their lengths (Veit et al. 2016), against closed forms
for the classic networks and brute-force enumeration for random ones."""

from __future__ import annotations

from collections import Counter
from math import comb

import pytest
from hypothesis import HealthCheck, given, settings
from topology_strategies import topologies

from skipsearch.topology import EDGE_KINDS, OPS, SkipEdge, Topology, get_preset, graph_metrics, path_length_distribution


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_cifar_resnets_have_binomial_path_lengths(depth: int) -> None:
    """n residual blocks give 2**n paths; a path through k blocks has length k + 2 (stem, head)."""
    blocks = 3 * ((depth - 2) // 6)
    metrics = graph_metrics(get_preset(f"resnet{depth}"))
    assert metrics.paths == 2**blocks
    assert metrics.path_lengths == {k + 2: comb(blocks, k) for k in range(blocks + 1)}
    assert metrics.shortest_path == 2
    assert metrics.longest_path == blocks + 2
    assert metrics.mean_path_length == pytest.approx(blocks / 2 + 2)
    assert metrics.weighted_blocks == blocks + 2
    assert metrics.skips_by_kind == {"add": blocks}


def test_resnet20_has_two_to_the_nine_paths() -> None:
    metrics = graph_metrics(get_preset("resnet20"))
    assert metrics.paths == 512
    assert metrics.path_lengths == {2: 1, 3: 9, 4: 36, 5: 84, 6: 126, 7: 126, 8: 84, 9: 36, 10: 9, 11: 1}


def test_plain20_has_one_path_through_every_block() -> None:
    metrics = graph_metrics(get_preset("plain20"))
    assert metrics.paths == 1
    assert metrics.path_lengths == {11: 1}
    assert metrics.shortest_path == metrics.longest_path == 11
    assert metrics.active_skips == 0


def test_densenet_bc_100_paths() -> None:
    """A dense block of L layers lets a path visit any subset of them: 2**L ways per block.

    DenseNet-BC-100 has 3 blocks of 16 layers, so 2**48 paths; every path passes the stem, both
    transitions and the head (4), plus k of the 48 layers, in C(48, k) ways.
    """
    metrics = graph_metrics(get_preset("densenet-bc-100"))
    assert metrics.paths == 2**48
    assert metrics.path_lengths == {k + 4: comb(48, k) for k in range(49)}
    assert metrics.shortest_path == 4
    assert metrics.longest_path == 52
    # Within a block of 17 members (block input + 16 layers), every member feeds every later one
    # and the node after the block, minus the backbone edges.
    assert metrics.skips_by_kind == {"concat": 3 * comb(17, 2)}
    assert metrics.max_concat_fan_in == 16


def test_mlp_deep_and_unet_paths() -> None:
    mlp = graph_metrics(get_preset("mlp-deep"))
    assert mlp.paths == 2**19  # h2..h20 have identity skips, h1 widens 40 -> 128
    assert (mlp.shortest_path, mlp.longest_path) == (2, 21)
    assert graph_metrics(get_preset("mlp-deep-plain")).paths == 1
    # U-Net: the backbone, and one shortcut per level through the concat skip.
    unet = graph_metrics(get_preset("unet-small"))
    assert unet.path_lengths == {13: 1, 10: 1, 5: 1}


def test_edge_kinds_count_as_expected() -> None:
    """Additive kinds bypass a body (+0), concat passes through it (+1), off adds nothing."""
    nodes = [
        {"id": "x", "op": "input", "shape": [4]},
        {"id": "a", "op": "linear", "features": 4},
        {"id": "b", "op": "linear", "features": 4},
        {"id": "c", "op": "linear", "features": 4},
    ]
    base = Topology.create(nodes)
    for kind in [k for k, spec in EDGE_KINDS.items() if spec.additive]:
        topo = base.with_skips([SkipEdge("a", "c", kind)])
        assert path_length_distribution(topo) == Counter({3: 1, 1: 1}), kind  # bypasses b and c
    # a concat skips b but enters c
    assert path_length_distribution(base.with_skips([SkipEdge("a", "c", "concat")])) == Counter({3: 1, 2: 1})
    assert path_length_distribution(base.with_skips([SkipEdge("x", "c", "concat")])) == Counter({3: 1, 1: 1})
    assert path_length_distribution(base.with_skips([SkipEdge("a", "c", "off")])) == Counter({3: 1})


def test_unweighted_blocks_do_not_count() -> None:
    nodes = [
        {"id": "x", "op": "input", "shape": [2, 8]},
        {"id": "p", "op": "pool", "size": 2},
        {"id": "f", "op": "flatten"},
        {"id": "h", "op": "linear", "features": 3},
    ]
    metrics = graph_metrics(Topology.create(nodes))
    assert metrics.path_lengths == {1: 1}
    assert metrics.weighted_blocks == 1


def test_metrics_to_dict_is_json_ready() -> None:
    out = graph_metrics(get_preset("resnet20")).to_dict()
    assert out["paths"] == 512
    assert out["path_lengths"]["2"] == 1 and all(isinstance(k, str) for k in out["path_lengths"])


def brute_force_paths(topo: Topology) -> Counter[int]:
    """Enumerates every input-to-output path over backbone, concat and additive edges (off edges
    carry nothing) and counts the weighted bodies each one enters."""
    edges: dict[str, list[tuple[str, int]]] = {n.id: [] for n in topo.nodes}
    for prev, node in zip(topo.nodes, topo.nodes[1:], strict=False):
        edges[prev.id].append((node.id, int(OPS[node.op].weighted)))
    for edge in topo.active_skips:
        through_body = edge.kind == "concat" and OPS[topo.node(edge.dst).op].weighted
        edges[edge.src].append((edge.dst, int(through_body)))
    lengths: Counter[int] = Counter()
    stack = [(topo.nodes[0].id, 0)]
    while stack:
        node, length = stack.pop()
        if node == topo.nodes[-1].id:
            lengths[length] += 1
        stack.extend((nxt, length + step) for nxt, step in edges[node])
    return lengths


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_path_counts_match_brute_force_enumeration(topo: Topology) -> None:
    expected = brute_force_paths(topo)
    assert path_length_distribution(topo) == expected
    metrics = graph_metrics(topo)
    assert metrics.paths == sum(expected.values())
    assert (metrics.shortest_path, metrics.longest_path) == (min(expected), max(expected))
    assert metrics.paths >= 1
