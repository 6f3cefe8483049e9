"""Topology -> PyG graph conversion."""

from __future__ import annotations

import torch

from skipsearch.predictor import EDGE_FEATURES, NODE_FEATURES, topology_to_data
from skipsearch.predictor._graphs import EDGE_TYPES, NODE_OPS
from skipsearch.topology import SkipEdge, families


def _mlp(skips: list[SkipEdge]):
    return families.mlp(40, [32, 32, 16], 10, residual=False, name="m").with_skips(skips)


def test_node_features_describe_blocks() -> None:
    data = topology_to_data(_mlp([]))
    assert data.x.shape == (5, NODE_FEATURES)  # x, h1..h3, head
    assert data.x[0, NODE_OPS.index("input")] == 1
    assert data.x[1, NODE_OPS.index("linear")] == 1
    assert data.x[4, NODE_OPS.index("head")] == 1
    width = len(NODE_OPS)
    assert torch.isclose(data.x[1, width], torch.tensor(5 / 10))  # log2(32) / 10
    assert torch.isclose(data.x[3, width], torch.tensor(4 / 10))  # log2(16) / 10
    assert data.x[0, -1] == 0 and data.x[4, -1] == 1  # relative depth


def test_edges_are_chain_plus_active_skips_both_ways() -> None:
    plain = topology_to_data(_mlp([]))
    assert plain.edge_index.shape == (2, 8)  # 4 chain edges, both directions
    skips = [SkipEdge("h1", "h3", "add", "project"), SkipEdge("x", "h2", "concat"), SkipEdge("h1", "h2", "off")]
    data = topology_to_data(_mlp(skips))
    assert data.edge_index.shape == (2, 12)  # the off edge is left out
    assert data.edge_attr.shape == (12, EDGE_FEATURES)
    pairs = [tuple(p) for p in data.edge_index.t().tolist()]
    add = data.edge_attr[pairs.index((1, 3))]
    assert add[EDGE_TYPES.index("add")] == 1
    assert add[len(EDGE_TYPES) + 2] == 1  # project alignment
    assert torch.isclose(add[-2], torch.tensor(2 / 4))  # span over depth
    assert add[-1] == 0
    assert data.edge_attr[pairs.index((3, 1)), -1] == 1  # the reverse copy is flagged
    assert data.edge_attr[pairs.index((0, 2)), EDGE_TYPES.index("concat")] == 1


def test_equal_topologies_give_equal_graphs() -> None:
    a = _mlp([SkipEdge("h1", "h3", "add", "project"), SkipEdge("x", "h2", "concat")])
    b = _mlp([SkipEdge("x", "h2", "concat"), SkipEdge("h2", "head", "off"), SkipEdge("h1", "h3", "add", "project")])
    ga, gb = topology_to_data(a), topology_to_data(b)
    assert torch.equal(ga.x, gb.x)
    assert torch.equal(ga.edge_index, gb.edge_index)
    assert torch.equal(ga.edge_attr, gb.edge_attr)
    other = topology_to_data(_mlp([SkipEdge("h1", "h3", "scalar", "project", 1.0)]))
    assert not torch.equal(ga.edge_attr[: len(other.edge_attr)], other.edge_attr)


def test_targets_become_y() -> None:
    assert topology_to_data(_mlp([]), [0.5, 2.0]).y.shape == (1, 2)
