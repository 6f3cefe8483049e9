"""skipsearch: architecture search and analysis for skip-connection topologies.

The public API in one line each::

    topo = skipsearch.load_topology("resnet20")       # a preset, or a .json/.graphml file
    model = skipsearch.build_model(topo)              # a torch.fx.GraphModule
    text = topo.to_json(); topo = skipsearch.Topology.from_json(text)
    graph = topo.to_networkx()
"""

from typing import TYPE_CHECKING

from skipsearch.topology import SkipEdge, Topology, TopologyError, graph_metrics, load_topology

if TYPE_CHECKING:
    from torch import fx

__version__ = "0.1.0"


def build_model(topology: Topology) -> "fx.GraphModule":
    """Builds the PyTorch model of ``topology`` (see :func:`skipsearch.nn.build_model`).

    Imported lazily so that ``import skipsearch`` (and topology work) does not load torch.
    """
    from skipsearch.nn import build_model as _build

    return _build(topology)


__all__ = ["SkipEdge", "Topology", "TopologyError", "__version__", "build_model", "graph_metrics", "load_topology"]
