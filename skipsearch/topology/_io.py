"""Reading and writing topologies: JSON (the native format), networkx graphs and GraphML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx

from skipsearch.topology._graph import Node, SkipEdge, Topology, TopologyError

FORMAT_VERSION = 1
"""Version of the JSON format; written as ``"format"`` and checked on reading."""

_TOP_KEYS = {"format", "name", "meta", "nodes", "skips"}


def to_json(topology: Topology, indent: int | None = 2) -> str:
    return json.dumps(topology.to_dict(), indent=indent)


def from_json(text: str, source: str = "<json>") -> Topology:
    """Parses a topology from JSON text; errors name ``source`` and what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TopologyError(f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:  # json's decoder recurses once per nesting level
        raise TopologyError(f"{source}: invalid JSON: nested too deeply") from None
    except ValueError as exc:  # an integer of thousands of digits (Python's int conversion limit)
        raise TopologyError(f"{source}: invalid JSON: {exc}".split("; use sys.")[0]) from None
    return from_dict(data, source)


def from_dict(data: Any, source: str = "<dict>") -> Topology:
    """Builds a topology from the JSON object model (``format``, ``name``, ``nodes``, ``skips``)."""
    try:
        return _from_dict(data)
    except TopologyError as exc:
        raise TopologyError(f"{source}: {exc}") from None


def _from_dict(data: Any) -> Topology:
    if not isinstance(data, dict):
        raise TopologyError(f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise TopologyError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})")
    version = data.get("format")
    if type(version) is not int or version != FORMAT_VERSION:
        raise TopologyError(f"'format' must be {FORMAT_VERSION}, got {version!r}")
    name = data.get("name", "topology")
    if not isinstance(name, str):
        raise TopologyError(f"'name' must be a string, got {name!r}")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise TopologyError("'meta' must be an object")
    nodes, skips = data.get("nodes"), data.get("skips", [])
    if not isinstance(nodes, list):
        raise TopologyError("'nodes' must be a list of node objects")
    if not isinstance(skips, list):
        raise TopologyError("'skips' must be a list of edge objects")
    return Topology.create(nodes, skips, name=name, meta=meta)


def to_networkx(topology: Topology) -> nx.DiGraph:
    """The topology as a ``networkx.DiGraph``.

    Nodes keep their ids and carry ``op``, ``order`` (backbone position) and ``params`` (a JSON
    string, so the graph stays GraphML-writable). An edge carries ``backbone`` (true for
    ``prev -> node``) and, where a skip edge joins the same pair, ``skip`` (its kind), ``align``
    and ``init``: a residual edge ``prev -> node`` is one networkx edge with both.
    """
    graph = nx.DiGraph(name=topology.name, format=FORMAT_VERSION, meta=json.dumps(topology.meta, sort_keys=True))
    for i, node in enumerate(topology.nodes):
        graph.add_node(node.id, op=node.op, order=i, params=json.dumps(node.params, sort_keys=True))
    for prev, node in zip(topology.nodes, topology.nodes[1:], strict=False):
        graph.add_edge(prev.id, node.id, backbone=True)
    for edge in topology.skips:
        attrs: dict[str, Any] = {"skip": edge.kind, "align": edge.align}
        if edge.init is not None:
            attrs["init"] = edge.init
        if not graph.has_edge(edge.src, edge.dst):
            attrs["backbone"] = False
        graph.add_edge(edge.src, edge.dst, **attrs)
    return graph


def from_networkx(graph: nx.DiGraph) -> Topology:
    """Inverse of :func:`to_networkx` (also for graphs read back from GraphML)."""
    try:
        ordered = sorted(graph.nodes(data=True), key=lambda item: int(item[1]["order"]))
        nodes = [Node(str(n), str(d["op"]), _json_object(d.get("params", "{}"))) for n, d in ordered]
        meta = _json_object(graph.graph.get("meta", "{}"))
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise TopologyError(
            f"graph nodes need 'op', 'order' and JSON-object 'params' attributes, "
            f"the graph a JSON-object 'meta' ({exc})"
        ) from None
    order = {node.id: i for i, node in enumerate(nodes)}
    skips = [
        SkipEdge(str(u), str(v), d["skip"], d.get("align", "identity"), d.get("init"))
        for u, v, d in graph.edges(data=True)
        if d.get("skip")
    ]
    skips.sort(key=lambda e: (order.get(e.dst, -1), order.get(e.src, -1)))
    return Topology.create(nodes, skips, name=str(graph.graph.get("name", "topology")), meta=meta)


def _json_object(text: Any) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {text!r}")
    return value


def write_graphml(topology: Topology, path: str | Path) -> None:
    nx.write_graphml(to_networkx(topology), str(path))


def read_graphml(path: str | Path) -> Topology:
    try:
        graph = nx.read_graphml(str(path))
    except Exception as exc:  # networkx raises bare XML errors of several types
        raise TopologyError(f"{path}: not a readable GraphML file ({exc})") from None
    try:
        return from_networkx(graph)
    except TopologyError as exc:
        raise TopologyError(f"{path}: {exc}") from None


def load_topology(path_or_preset: str | Path) -> Topology:
    """A preset by name, or a topology file (``.json`` or ``.graphml``)."""
    from skipsearch.topology.presets import PRESETS, get_preset

    text = str(path_or_preset)
    if text in PRESETS:
        return get_preset(text)
    path = Path(text)
    if not path.is_file():
        raise TopologyError(f"{text}: neither a preset ({', '.join(PRESETS)}) nor an existing file")
    if path.suffix.lower() == ".graphml":
        return read_graphml(path)
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(f"{text}: cannot read ({exc})") from None
    return from_json(content, source=text)


def save_topology(topology: Topology, path: str | Path) -> None:
    """Writes JSON, or GraphML when ``path`` ends in ``.graphml``."""
    path = Path(path)
    if path.suffix.lower() == ".graphml":
        write_graphml(topology, path)
    else:
        path.write_text(to_json(topology) + "\n", encoding="utf-8")
