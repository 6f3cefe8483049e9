"""skipsearch: architecture search and analysis for skip-connection topologies.

The public API in one line each::

    topo = skipsearch.load_topology("resnet20")       # a preset, or a .json/.graphml file
    model = skipsearch.build_model(topo)              # a torch.fx.GraphModule
    text = topo.to_json(); topo = skipsearch.Topology.from_json(text)
    graph = topo.to_networkx()
    study = skipsearch.Study.from_arrays(x, y, name="mine").run()   # a search from Python
    study.pareto()                                    # pandas DataFrames: results(), pareto()
"""

from typing import TYPE_CHECKING, Any

from skipsearch.topology import SkipEdge, Topology, TopologyError, graph_metrics, load_topology

if TYPE_CHECKING:
    from torch import fx

    from skipsearch.api import Study

__version__ = "0.1.0"


def build_model(topology: Topology) -> "fx.GraphModule":
    """Builds the PyTorch model of ``topology`` (see :func:`skipsearch.nn.build_model`).

    Imported lazily so that ``import skipsearch`` (and topology work) does not load torch.
    """
    from skipsearch.nn import build_model as _build

    return _build(topology)


def __getattr__(name: str) -> Any:
    """``skipsearch.Study``, imported on first use (it loads torch)."""
    if name == "Study":
        from skipsearch.api import Study

        return Study
    raise AttributeError(f"module 'skipsearch' has no attribute {name!r}")


__all__ = [
    "SkipEdge",
    "Study",
    "Topology",
    "TopologyError",
    "__version__",
    "build_model",
    "graph_metrics",
    "load_topology",
]
