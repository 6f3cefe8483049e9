"""Compiling a :class:`Topology` into a ``torch.fx.GraphModule``.

The forward pass is generated once, as straight-line Python (one statement per block, skip,
concatenation and sum), so running the model interprets nothing: it costs what the same network
written by hand costs. ``print(model.code)`` shows the generated code.

That code reads ``self.blocks.<id>`` (and ``self.skips.<name>``) for every block. On plain
modules each such read first fails the normal attribute lookup, then ``Module.__getattr__`` finds
the child: about 1% of a train step of ``mlp-deep``, whose small layers leave Python overhead a
large share (``bench/compiler_overhead.py``). So the model and its two holders expose their
children as class-level properties that read ``_modules``, live, at the cost of a dict lookup.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
from torch import fx, nn

from skipsearch.nn._blocks import ACTIVATION_FUNCTIONS, BLOCK_BUILDERS
from skipsearch.nn._skips import make_skip
from skipsearch.topology import SkipEdge, Topology, TopologyError


def skip_name(edge: SkipEdge) -> str:
    """Submodule name of an edge's module under ``model.skips``."""
    return f"{edge.src}__{edge.dst}"


def _child_property(name: str) -> property:
    """A class attribute that returns the child module ``name``, read live from ``_modules``."""

    def get(self: nn.Module) -> nn.Module | None:
        try:
            return self._modules[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}") from None

    return property(get)


class _Holder(nn.Module):
    """Holds the blocks (``model.blocks``) or the skip modules (``model.skips``) of a model.

    Every child name gets a property on this class (shared by all holders: a property only reads
    the instance's own ``_modules``, so a holder without that child still raises AttributeError).
    """

    __jit_unused_properties__: list[str] = []  # noqa: RUF012 -- TorchScript must leave them to its own lookup

    @classmethod
    def of(cls, container: nn.Module) -> _Holder:
        holder = cls()
        for name, module in container.named_children():
            if not hasattr(cls, name):
                setattr(cls, name, _child_property(name))
                cls.__jit_unused_properties__.append(name)
            holder.add_module(name, module)
        return holder


class _CompiledModel(fx.GraphModule):
    """A GraphModule whose ``blocks`` and ``skips`` are fast to read (see the module docstring)."""

    blocks = _child_property("blocks")
    skips = _child_property("skips")
    __jit_unused_properties__ = [*fx.GraphModule.__jit_unused_properties__, "blocks", "skips"]  # noqa: RUF012

    def __init__(self, root: nn.Module, graph: fx.Graph, class_name: str = "GraphModule") -> None:
        super().__init__(root, graph, class_name)
        # fx installs plain nn.Module holders for the dotted call targets; swap in fast ones.
        for name, container in list(self.named_children()):
            setattr(self, name, _Holder.of(container))

    def _deepcopy_init(self) -> Callable[..., None]:
        # GraphModule.__deepcopy__ re-runs __init__ through this hook; keep the fast holders.
        return _CompiledModel.__init__


def build_model(topology: Topology) -> fx.GraphModule:
    """A freshly initialised PyTorch model of ``topology``.

    Blocks are submodules ``blocks.<node_id>``, skip modules ``skips.<src>__<dst>``;
    ``model.meta["topology"]`` holds the topology. Inputs are batches of
    ``topology.input_shape``; outputs are logits of ``topology.output_shape``.
    """
    clash = next((n.id for n in topology.nodes if hasattr(nn.Module, n.id)), None)
    if clash is not None:
        raise TopologyError(f"node {clash!r}: the id is a torch.nn.Module attribute name; rename the node")
    shapes = topology.shapes
    root = nn.Module()
    root.blocks = nn.ModuleDict()
    root.skips = nn.ModuleDict()
    graph = fx.Graph()
    outputs: dict[str, fx.Node] = {topology.nodes[0].id: graph.placeholder("x")}

    for node in topology.nodes[1:]:
        sources = topology.input_sources(node.id)
        merged_shape = (sum(shapes[s][0] for s in sources), *shapes[sources[0]][1:])
        root.blocks[node.id] = BLOCK_BUILDERS[node.op](merged_shape, node.params)

        if len(sources) == 1:
            inp = outputs[sources[0]]
        else:
            inp = graph.create_node(
                "call_function", torch.cat, ([outputs[s] for s in sources], 1), name=f"{node.id}_in"
            )
        out = graph.create_node("call_module", f"blocks.{node.id}", (inp,), name=node.id)

        for edge in topology.incoming(node.id):
            if not edge.additive:
                continue
            term = outputs[edge.src]
            module = make_skip(edge, shapes[edge.src], shapes[node.id])
            if module is not None:
                root.skips[skip_name(edge)] = module
                term = graph.create_node("call_module", f"skips.{skip_name(edge)}", (term,), name=skip_name(edge))
            out = graph.call_function(operator.add, (out, term))

        post = node.params.get("post", "none")
        if post != "none":
            out = graph.call_function(ACTIVATION_FUNCTIONS[post], (out,))
        outputs[node.id] = out

    graph.output(outputs[topology.nodes[-1].id])
    model = _CompiledModel(root, graph, class_name=_class_name(topology.name))
    model.meta["topology"] = topology
    return model


def built_topology(model: nn.Module) -> Topology | None:
    """The topology ``model`` was built from (:func:`build_model` keeps it in ``model.meta``), if any."""
    topology = getattr(model, "meta", {}).get("topology")
    return topology if isinstance(topology, Topology) else None


def model_topology(model: nn.Module) -> Topology:
    """The topology ``model`` was built from; TypeError for a model not built by :func:`build_model`."""
    topology = built_topology(model)
    if topology is None:
        raise TypeError(f"a {type(model).__name__} not built by skipsearch.build_model has no topology")
    return topology


def model_block(model: nn.Module, node_id: str) -> nn.Module:
    """The module of block ``node_id`` (``model.blocks.<node_id>``)."""
    return model.get_submodule(f"blocks.{node_id}")


def _class_name(name: str) -> str:
    # ASCII only: str.isalnum accepts characters such as "²" that no Python identifier may hold,
    # and the exported model.py declares a class of this name.
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in name).split()
    text = "".join(w[:1].upper() + w[1:] for w in words) or "Topology"
    return text if text[0].isalpha() else f"Net{text}"
