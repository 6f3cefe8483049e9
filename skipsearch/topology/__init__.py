"""Skip topologies as graphs: the data model, validation, hashing, I/O, metrics and presets.

This is the bottom layer of skipsearch: it imports neither torch models nor databases.
"""

from skipsearch.topology._cost import TopologyCost, node_costs, topology_cost
from skipsearch.topology._graph import Node, SkipEdge, Topology, TopologyError
from skipsearch.topology._hash import canonical_form, topology_hash
from skipsearch.topology._io import (
    FORMAT_VERSION,
    from_json,
    load_topology,
    read_graphml,
    save_topology,
    write_graphml,
)
from skipsearch.topology._kinds import ALIGNMENTS, EDGE_KINDS, EdgeKind, edge_kind
from skipsearch.topology._limits import (
    Footprint,
    Limits,
    check_data,
    check_graph,
    check_topology,
    check_training,
    footprint,
)
from skipsearch.topology._metrics import (
    GraphMetrics,
    graph_metrics,
    node_path_distributions,
    path_length_distribution,
)
from skipsearch.topology._ops import OPS, Shape
from skipsearch.topology.presets import PRESETS, get_preset

__all__ = [
    "ALIGNMENTS",
    "EDGE_KINDS",
    "FORMAT_VERSION",
    "OPS",
    "PRESETS",
    "EdgeKind",
    "Footprint",
    "GraphMetrics",
    "Limits",
    "Node",
    "Shape",
    "SkipEdge",
    "Topology",
    "TopologyCost",
    "TopologyError",
    "canonical_form",
    "check_data",
    "check_graph",
    "check_topology",
    "check_training",
    "edge_kind",
    "footprint",
    "from_json",
    "get_preset",
    "graph_metrics",
    "load_topology",
    "node_costs",
    "node_path_distributions",
    "path_length_distribution",
    "read_graphml",
    "save_topology",
    "topology_cost",
    "topology_hash",
    "write_graphml",
]
