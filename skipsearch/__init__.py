"""skipsearch: architecture search and analysis for skip-connection topologies.

The public API in one line each::

    topo = skipsearch.load_topology("resnet20")       # a preset, or a .json/.graphml file
    model = skipsearch.build_model(topo)              # a torch.fx.GraphModule
    text = topo.to_json(); topo = skipsearch.Topology.from_json(text)
    graph = topo.to_networkx()
"""

from skipsearch.topology import SkipEdge, Topology, TopologyError, graph_metrics, load_topology

__version__ = "0.1.0"


def build_model(topology: Topology):  # type: ignore[no-untyped-def]
    """Builds the PyTorch model of ``topology`` (see :func:`skipsearch.nn.build_model`)."""
    from skipsearch.nn import build_model as _build

    return _build(topology)


__all__ = ["SkipEdge", "Topology", "TopologyError", "__version__", "build_model", "graph_metrics", "load_topology"]
