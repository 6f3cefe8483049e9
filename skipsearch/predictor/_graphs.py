"""Topologies as PyTorch Geometric graphs: one node per block, one edge per connection.

Node features say what a block is (op type, output width, spatial size, stride) and where it sits
(relative depth). Edges are the backbone's chain edges plus the active skip edges, each in both
directions (message passing on a DAG alone would leave the first blocks blind to what follows);
edge features give the kind, the alignment, the span and the direction. ``off`` edges have no
effect on the network, so they are not in the graph: equal networks give equal graphs.
"""

from __future__ import annotations

import math

import torch
from torch_geometric.data import Data

from skipsearch.topology import ALIGNMENTS, EDGE_KINDS, OPS, Topology

NODE_OPS = tuple(OPS)
EDGE_TYPES = ("chain", *(k for k in EDGE_KINDS if k != "off"))
NODE_FEATURES = len(NODE_OPS) + 4
"""Op one-hot, log2 width, log2 spatial size, log2 stride, relative depth."""
EDGE_FEATURES = len(EDGE_TYPES) + len(ALIGNMENTS) + 2
"""Edge type one-hot, alignment one-hot, relative span, reverse flag."""


def topology_to_data(topology: Topology, y: list[float] | None = None, features: list[float] | None = None) -> Data:
    """The graph of ``topology``; ``y`` (targets such as accuracy) becomes a ``[1, len(y)]`` tensor,
    ``features`` (graph-level inputs: the topology's standardised probe scores) ``g``, ``[1, len(features)]``."""
    nodes = topology.nodes
    depth = max(1, len(nodes) - 1)
    shapes = topology.shapes
    x = torch.zeros(len(nodes), NODE_FEATURES)
    for i, node in enumerate(nodes):
        shape = shapes[node.id]
        x[i, NODE_OPS.index(node.op)] = 1.0
        base = len(NODE_OPS)
        x[i, base] = math.log2(max(1, shape[0])) / 10
        x[i, base + 1] = math.log2(max(1, math.prod(shape[1:]))) / 10
        x[i, base + 2] = math.log2(max(1, int(node.params.get("stride", 1))))
        x[i, base + 3] = i / depth
    index = topology.index
    edges: list[tuple[int, int, str, str]] = [(i - 1, i, "chain", "identity") for i in range(1, len(nodes))]
    for skip in sorted(topology.skips, key=lambda e: (index[e.src], index[e.dst])):
        if skip.active:
            align = skip.align if skip.additive else "identity"
            edges.append((index[skip.src], index[skip.dst], skip.kind, align))
    src, dst, attrs = [], [], []
    for a, b, kind, align in edges:
        for reverse in (False, True):
            feat = [0.0] * EDGE_FEATURES
            feat[EDGE_TYPES.index(kind)] = 1.0
            feat[len(EDGE_TYPES) + ALIGNMENTS.index(align)] = 1.0
            feat[-2] = (b - a) / depth
            feat[-1] = float(reverse)
            src.append(b if reverse else a)
            dst.append(a if reverse else b)
            attrs.append(feat)
    data = Data(
        x=x,
        edge_index=torch.tensor([src, dst], dtype=torch.long),
        edge_attr=torch.tensor(attrs, dtype=torch.float32),
    )
    if y is not None:
        data.y = torch.tensor([y], dtype=torch.float32)
    if features is not None:
        data.g = torch.tensor([features], dtype=torch.float32)
    return data
