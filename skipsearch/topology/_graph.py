"""The :class:`Topology`: an ordered chain of blocks (the backbone) plus typed skip edges.

Semantics of node ``j`` (``prev`` is the node before it in the backbone order)::

    inp    = cat([out[i] for i in sorted({prev} | concat sources of j)], dim=channels)
    y      = body_j(inp)
    y      = y + sum(gate_e * align_e(out[e.src]) for additive skip edges e into j)
    out[j] = post_j(y)

So an edge ``src -> dst`` of kind ``concat`` joins the destination's *input* (DenseNet, U-Net),
and the additive kinds join its *output*, before the node's ``post`` activation (the ReLU that
follows the sum in a ResNet basic block). A classic residual block is the edge ``prev -> j``.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from skipsearch.errors import UserError
from skipsearch.topology._kinds import ALIGNMENTS, EDGE_KINDS, EdgeKind, edge_kind
from skipsearch.topology._ops import OPS, Shape, ShapeError

_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

MAX_ID_LENGTH = 100
"""Longest node id: the results schema stores edge ends in columns of 100 characters."""

MAX_NAME_LENGTH = 200
"""Longest topology name: the results schema's ``topologies.name`` column holds 200 characters."""


class TopologyError(UserError, ValueError):
    """An invalid topology. The message names the node or edge at fault."""


@dataclass(frozen=True)
class Node:
    """One block of the backbone. ``params`` are the op's parameters, defaults filled in."""

    id: str
    op: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, compact: bool = True) -> dict[str, Any]:
        """The JSON object; ``compact`` leaves out parameters that equal the op's default."""
        spec = OPS[self.op].params
        params = {k: v for k, v in self.params.items() if not (compact and spec[k].default == v)}
        return {"id": self.id, "op": self.op, **params}


@dataclass(frozen=True)
class SkipEdge:
    """A skip connection from the output of ``src`` into node ``dst``."""

    src: str
    dst: str
    kind: str = "add"
    align: str = "identity"
    init: float | None = None

    @property
    def spec(self) -> EdgeKind:
        """The edge's kind, from :data:`~skipsearch.topology.EDGE_KINDS` (``KeyError`` if unknown)."""
        return edge_kind(self.kind)

    @property
    def active(self) -> bool:
        spec = EDGE_KINDS.get(self.kind)
        return spec.active if spec is not None else self.kind != "off"

    @property
    def additive(self) -> bool:
        spec = EDGE_KINDS.get(self.kind)
        return spec is not None and spec.additive

    @property
    def concatenated(self) -> bool:
        """Whether the source joins the destination's input (``concat``) rather than its output."""
        spec = EDGE_KINDS.get(self.kind)
        return spec is not None and spec.joins == "input"

    @property
    def label(self) -> str:
        """Kind, alignment and initial value in one string, e.g. ``add/zero_pad``."""
        spec = EDGE_KINDS.get(self.kind)
        if spec is None or not spec.alignments:
            return self.kind
        text = f"{self.kind}/{self.align}"
        return text if self.init is None else f"{text}@{self.init:g}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"src": self.src, "dst": self.dst, "kind": self.kind}
        if self.additive or self.align != "identity":
            out["align"] = self.align
        if self.init is not None:
            out["init"] = self.init
        return out


@dataclass(frozen=True)
class Topology:
    """A validated network graph. Build one with :meth:`create` (or a family builder)."""

    nodes: tuple[Node, ...]
    skips: tuple[SkipEdge, ...]
    name: str = "topology"
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        nodes: Sequence[dict[str, Any] | Node],
        skips: Sequence[dict[str, Any] | SkipEdge] = (),
        name: str = "topology",
        meta: dict[str, Any] | None = None,
    ) -> Topology:
        """Builds and validates a topology from node and edge dicts (or objects)."""
        built_nodes = tuple(_make_node(n, i) for i, n in enumerate(nodes))
        built_skips = tuple(_make_edge(e, i) for i, e in enumerate(skips))
        topo = cls(built_nodes, built_skips, name, dict(meta or {}))
        topo.validate()
        return topo

    def with_skips(self, skips: Sequence[SkipEdge]) -> Topology:
        """The same backbone with another set of skip edges (each checked as :meth:`create` checks it)."""
        topo = replace(self, skips=tuple(_make_edge(e, i) for i, e in enumerate(skips)))
        topo.validate()
        return topo

    def with_name(self, name: str) -> Topology:
        renamed = replace(self, name=name)
        # Nothing derived depends on the name: keep what validation, indexing and hashing computed.
        renamed.__dict__.update((k, v) for k, v in self.__dict__.items() if k not in _FIELDS)
        return renamed

    def __repr__(self) -> str:
        # The dataclass repr lists every node and edge: 36,637 characters for densenet-bc-100.
        return (
            f"Topology({self.name!r}, {len(self.nodes)} nodes, "
            f"{len(self.active_skips)}/{len(self.skips)} skips active, hash={self.hash})"
        )

    # -- structure ------------------------------------------------------------------------------
    @cached_property
    def index(self) -> dict[str, int]:
        """Node id -> position in the backbone."""
        return {n.id: i for i, n in enumerate(self.nodes)}

    def node(self, node_id: str) -> Node:
        return self.nodes[self.index[node_id]]

    @cached_property
    def active_skips(self) -> tuple[SkipEdge, ...]:
        return tuple(e for e in self.skips if e.active)

    def incoming(self, node_id: str) -> tuple[SkipEdge, ...]:
        """Active skip edges into ``node_id``, sorted by source position."""
        return self._incoming.get(node_id, ())

    @cached_property
    def _incoming(self) -> dict[str, tuple[SkipEdge, ...]]:
        # Shape inference and model building ask for every node's edges: group them once.
        by_dst: dict[str, list[SkipEdge]] = {}
        for edge in self.active_skips:
            by_dst.setdefault(edge.dst, []).append(edge)
        return {dst: tuple(sorted(edges, key=lambda e: self.index[e.src])) for dst, edges in by_dst.items()}

    def input_sources(self, node_id: str) -> list[str]:
        """Nodes whose outputs are concatenated (in this order) into ``node_id``'s input."""
        j = self.index[node_id]
        srcs = {self.nodes[j - 1].id} | {e.src for e in self.incoming(node_id) if e.concatenated}
        return sorted(srcs, key=self.index.__getitem__)

    @property
    def shapes(self) -> dict[str, Shape]:
        """Output shape of every node (without the batch dimension)."""
        self.validate()
        shapes: dict[str, Shape] = self.__dict__["_shapes"]
        return shapes

    @property
    def input_shape(self) -> Shape:
        return tuple(self.nodes[0].params["shape"])

    @property
    def output_shape(self) -> Shape:
        return self.shapes[self.nodes[-1].id]

    # -- validation -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Checks the graph; raises :class:`TopologyError` naming the first node or edge at fault."""
        if "_shapes" in self.__dict__:
            return
        self._check_nodes()
        self._check_edges()
        object.__setattr__(self, "_shapes", self._infer_shapes())

    def _check_nodes(self) -> None:
        if not isinstance(self.name, str) or len(self.name) > MAX_NAME_LENGTH:
            shown = self.name[:40] + "..." if isinstance(self.name, str) else self.name
            raise TopologyError(f"the name must be text of at most {MAX_NAME_LENGTH} characters, got {shown!r}")
        if len(self.nodes) < 2:
            raise TopologyError("a topology needs an input node and at least one block")
        seen: set[str] = set()
        for i, node in enumerate(self.nodes):
            if node.id in seen:
                raise TopologyError(f"node {node.id!r}: duplicate id")
            seen.add(node.id)
            if (node.op == "input") != (i == 0):
                where = "the first node must be" if i == 0 else f"node {node.id!r}: only the first node may be"
                raise TopologyError(f"{where} an 'input' node")

    def _check_edges(self) -> None:
        pairs: set[tuple[str, str]] = set()
        for edge in self.skips:
            where = f"skip edge {edge.src}->{edge.dst}"
            for end in (edge.src, edge.dst):
                if end not in self.index:
                    raise TopologyError(f"{where}: unknown node {end!r}")
            src, dst = self.index[edge.src], self.index[edge.dst]
            if src == dst:
                raise TopologyError(f"{where}: a self-loop makes a cycle")
            if src > dst:
                raise TopologyError(
                    f"{where}: backward edge (node {edge.src!r} comes after {edge.dst!r}), "
                    "which would make a cycle with the backbone"
                )
            if (edge.src, edge.dst) in pairs:
                raise TopologyError(f"{where}: duplicate edge")
            pairs.add((edge.src, edge.dst))
            if edge.concatenated and src == dst - 1:
                raise TopologyError(f"{where}: a {edge.kind} from the backbone predecessor repeats its input")

    def _infer_shapes(self) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {}
        for j, node in enumerate(self.nodes):
            spec = OPS[node.op]
            if j == 0:
                shapes[node.id] = spec.out_shape((), node.params)
                continue
            inp = self._merged_input_shape(node.id, shapes)
            try:
                out = spec.out_shape(inp, node.params)
            except ShapeError as exc:
                raise TopologyError(f"node {node.id!r}: {exc}") from None
            for edge in self.incoming(node.id):
                if edge.additive:
                    _check_alignment(edge, shapes[edge.src], out)
            shapes[node.id] = out
        return shapes

    def _merged_input_shape(self, node_id: str, shapes: dict[str, Shape]) -> Shape:
        srcs = self.input_sources(node_id)
        base = shapes[self.nodes[self.index[node_id] - 1].id]
        for src in srcs:
            shape = shapes[src]
            if len(shape) != len(base) or shape[1:] != base[1:]:
                raise TopologyError(
                    f"skip edge {src}->{node_id}: concat needs equal spatial sizes, "
                    f"source is {shape} and the backbone input is {base}"
                )
        return (sum(shapes[s][0] for s in srcs), *base[1:])

    # -- serialisation (see _io for formats) ----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from skipsearch.topology._io import FORMAT_VERSION

        out: dict[str, Any] = {"format": FORMAT_VERSION, "name": self.name}
        if self.meta:
            out["meta"] = self.meta
        out["nodes"] = [n.to_dict() for n in self.nodes]
        out["skips"] = [e.to_dict() for e in self.skips]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        from skipsearch.topology._io import to_json

        return to_json(self, indent)

    @classmethod
    def from_json(cls, text: str, source: str = "<json>") -> Topology:
        from skipsearch.topology._io import from_json

        return from_json(text, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Topology:
        from skipsearch.topology._io import from_dict

        return from_dict(data, source)

    def to_networkx(self) -> Any:
        from skipsearch.topology._io import to_networkx

        return to_networkx(self)

    @classmethod
    def from_networkx(cls, graph: Any) -> Topology:
        from skipsearch.topology._io import from_networkx

        return from_networkx(graph)

    @cached_property
    def hash(self) -> str:
        from skipsearch.topology._hash import topology_hash

        return topology_hash(self)


def _check_alignment(edge: SkipEdge, src: Shape, dst: Shape) -> None:
    where = f"skip edge {edge.src}->{edge.dst} ({edge.kind}/{edge.align})"
    if len(src) != len(dst):
        raise TopologyError(f"{where}: cannot align a {len(src)}-D source {src} to a {len(dst)}-D output {dst}")
    if edge.align == "identity":
        if src != dst:
            raise TopologyError(
                f"{where}: identity needs equal shapes, source is {src} and output is {dst}; "
                "use align zero_pad or project"
            )
        return
    strides = {a // b if b and a % b == 0 else 0 for a, b in zip(src[1:], dst[1:], strict=True)}
    if len(strides) > 1 or 0 in strides:
        raise TopologyError(f"{where}: spatial size {src[1:]} is not a whole multiple of {dst[1:]} in every dimension")
    if edge.align == "zero_pad" and src[0] > dst[0]:
        raise TopologyError(f"{where}: zero padding cannot shrink {src[0]} channels to {dst[0]}; use project")


def _make_node(data: dict[str, Any] | Node, position: int) -> Node:
    if isinstance(data, Node):
        # Not ``to_dict()``: that looks the op up, and this node has not been checked yet.
        data = {**data.params, "id": data.id, "op": data.op} if isinstance(data.params, dict) else data.params
    if not isinstance(data, dict):
        raise TopologyError(f"node #{position}: expected an object, got {type(data).__name__}")
    node_id, op = data.get("id"), data.get("op")
    if not _valid_id(node_id):
        shown = node_id[:40] + "..." if isinstance(node_id, str) and len(node_id) > 40 else node_id
        raise TopologyError(
            f"node #{position}: 'id' must be a name like 'block3' (letters, digits, single _, at most "
            f"{MAX_ID_LENGTH} characters, not a Python keyword), got {shown!r}"
        )
    if not isinstance(op, str) or op not in OPS:
        raise TopologyError(f"node {node_id!r}: unknown op {op!r} (known: {', '.join(OPS)})")
    params = {k: v for k, v in data.items() if k not in ("id", "op")}
    try:
        params = OPS[op].normalize(params)
    except ValueError as exc:
        raise TopologyError(f"node {node_id!r}: {exc}") from None
    return Node(str(node_id), op, params)


_EDGE_KEYS = {"src", "dst", "kind", "align", "init"}
_FIELDS = frozenset(f.name for f in fields(Topology))
"""Topology's dataclass fields; everything else in an instance's ``__dict__`` is derived and cached."""


def _make_edge(data: dict[str, Any] | SkipEdge, position: int) -> SkipEdge:
    if isinstance(data, SkipEdge):
        data = data.to_dict()
    if not isinstance(data, dict):
        raise TopologyError(f"skip edge #{position}: expected an object, got {type(data).__name__}")
    src, dst = data.get("src"), data.get("dst")
    named = all(_valid_id(end) for end in (src, dst))
    where = f"skip edge {src}->{dst}" if named else f"skip edge #{position}"
    unknown = sorted(set(data) - _EDGE_KEYS)
    if unknown:
        raise TopologyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_EDGE_KEYS))})")
    if not named:
        raise TopologyError(f"{where}: 'src' and 'dst' must be node ids, got {src!r} and {dst!r}")
    kind = data.get("kind", "add")
    if not isinstance(kind, str) or kind not in EDGE_KINDS:
        raise TopologyError(f"{where}: unknown kind {kind!r} (known: {', '.join(EDGE_KINDS)})")
    spec = EDGE_KINDS[kind]
    align = data.get("align", "identity")
    if align not in ALIGNMENTS:
        raise TopologyError(f"{where}: unknown alignment {align!r} (known: {', '.join(ALIGNMENTS)})")
    if align != "identity" and align not in spec.alignments:
        raise TopologyError(f"{where}: kind {kind!r} takes no alignment")
    init = data.get("init", spec.default_init)
    if init is not None:
        if spec.default_init is None:
            raise TopologyError(f"{where}: kind {kind!r} takes no 'init'")
        value = _finite(init)
        if value is None:
            raise TopologyError(f"{where}: 'init' must be a finite number, got {init!r}")
        init = value
    return SkipEdge(str(src), str(dst), kind, align, init)


def _valid_id(node_id: Any) -> bool:
    """A node id: an ASCII identifier without ``__`` that is not a Python keyword. Ids become names
    in the code :func:`skipsearch.nn.build_model` generates (``as`` would be a SyntaxError there)
    and in the exported ``model.py``."""
    return (
        isinstance(node_id, str)
        and len(node_id) <= MAX_ID_LENGTH
        and _ID.fullmatch(node_id) is not None
        and "__" not in node_id
        and not keyword.iskeyword(node_id)
    )


def _finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        return None
    return number if math.isfinite(number) else None
