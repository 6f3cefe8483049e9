"""Hypothesis strategies for topologies: random valid ones, and invalid mutations of them.

Valid topologies are generated, then filtered by ``Topology.create`` itself: nodes are appended
one at a time and each candidate skip edge is kept only if the topology with it still validates,
so every draw succeeds and the skips end up of every kind and alignment the backbone allows.
Invalid ones are a valid topology's dict with exactly one thing broken, paired with the text the
error message must contain (the node or edge at fault), or ``None`` where nothing is to blame.
"""

from __future__ import annotations

import copy
import keyword
import math
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from skipsearch.topology import ALIGNMENTS, EDGE_KINDS, OPS, Topology, TopologyError
from skipsearch.topology._ops import ACTIVATIONS

Dict = dict[str, Any]
Draw = Callable[[st.SearchStrategy[Any]], Any]

ids = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,4}(_[a-z0-9]{1,3})?", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name)  # a keyword is a bad id (bad_node_id may draw one)
)
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn", "Co")), max_size=12)
metas = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=4),
    st.integers(-(10**6), 10**6) | st.text("xyz ", max_size=5) | st.booleans() | st.none(),
    max_size=2,
)
inits = st.none() | st.floats(-4, 4, allow_nan=False).map(lambda v: round(v, 3))

ADDITIVE_KINDS = [k for k, spec in EDGE_KINDS.items() if spec.additive]
INIT_KINDS = [k for k, spec in EDGE_KINDS.items() if spec.default_init is not None]
UNALIGNED_KINDS = [k for k, spec in EDGE_KINDS.items() if not spec.alignments]


def _vector_node(draw: Draw) -> Dict:
    return {
        "op": "linear",
        "features": draw(st.sampled_from([4, 4, 4, 3, 6])),  # mostly equal widths, for identity edges
        "act": draw(st.sampled_from(ACTIVATIONS)),
        "norm": draw(st.sampled_from(["none", "none", "batch", "layer"])),
        "bias": draw(st.booleans()),
        "post": draw(st.sampled_from(["none", "none", "relu", "tanh"])),
    }


def _map_node(draw: Draw) -> Dict:
    channels = draw(st.sampled_from([4, 4, 2, 6]))
    op = draw(st.sampled_from(["conv", "conv", "basic", "dense", "transition", "pool"]))
    if op == "conv":
        return {
            "op": "conv",
            "channels": channels,
            "kernel": draw(st.sampled_from([1, 3, 5])),
            "stride": draw(st.sampled_from([1, 1, 2])),
            "act": draw(st.sampled_from(ACTIVATIONS)),
            "norm": draw(st.sampled_from(["none", "batch"])),
            "preact": draw(st.booleans()),
            "bias": draw(st.booleans()),
            "post": draw(st.sampled_from(["none", "relu"])),
        }
    if op == "basic":
        return {"op": "basic", "channels": channels, "stride": draw(st.sampled_from([1, 2]))}
    if op == "dense":
        return {"op": "dense", "growth": draw(st.sampled_from([2, 3])), "bottleneck": draw(st.sampled_from([0, 2]))}
    if op == "transition":
        return {"op": "transition", "channels": channels}
    return {"op": "pool", "size": 2, "mode": draw(st.sampled_from(["max", "avg"]))}


def _valid(nodes: list[Dict], skips: list[Dict]) -> bool:
    try:
        Topology.create(nodes, skips)
    except TopologyError:
        return False
    return True


@st.composite
def backbones(draw: Draw, max_blocks: int = 6) -> list[Dict]:
    """Node dicts of a random MLP or 1-D convolutional backbone (ids random and unique)."""
    family = draw(st.sampled_from(["mlp", "conv1d"]))
    node_ids = draw(st.lists(ids, min_size=max_blocks + 3, max_size=max_blocks + 3, unique=True))
    if family == "mlp":
        nodes: list[Dict] = [{"op": "input", "shape": [draw(st.sampled_from([4, 3]))]}]
    else:
        nodes = [{"op": "input", "shape": [draw(st.sampled_from([4, 1, 2])), draw(st.sampled_from([8, 4, 16]))]}]
    nodes[0]["id"] = node_ids.pop()
    for _ in range(draw(st.integers(1, max_blocks))):
        node = _vector_node(draw) if family == "mlp" else _map_node(draw)
        node["id"] = node_ids.pop()
        if _valid([*nodes, node], []):  # a stride may shrink the signal to nothing: skip that block
            nodes.append(node)
    ending = draw(st.sampled_from(["none", "head", "flatten"]))
    if ending == "head":
        pool = "none" if family == "mlp" else draw(st.sampled_from(["avg", "flatten"]))
        nodes.append({"id": node_ids.pop(), "op": "head", "classes": draw(st.sampled_from([2, 3])), "pool": pool})
    elif ending == "flatten" and family == "conv1d":
        nodes.append({"id": node_ids.pop(), "op": "flatten"})
        nodes.append({"id": node_ids.pop(), **_vector_node(draw)})
    if len(nodes) == 1:
        nodes.append({"id": node_ids.pop(), "op": "flatten"})
    return nodes


@st.composite
def topologies(draw: Draw, max_blocks: int = 6, max_skips: int = 8) -> Topology:
    """A random valid topology with random skip edges of every kind and alignment it admits."""
    nodes = draw(backbones(max_blocks))
    n = len(nodes)
    skips: list[Dict] = []
    for _ in range(draw(st.integers(0, max_skips))):
        i = draw(st.integers(0, n - 2))
        j = draw(st.integers(i + 1, n - 1))
        kind = draw(st.sampled_from(list(EDGE_KINDS)))
        edge: Dict = {"src": nodes[i]["id"], "dst": nodes[j]["id"], "kind": kind}
        if EDGE_KINDS[kind].alignments:
            edge["align"] = draw(st.sampled_from(ALIGNMENTS))
            init = draw(inits)
            if EDGE_KINDS[kind].default_init is not None and init is not None:
                edge["init"] = init
        if _valid(nodes, [*skips, edge]):
            skips.append(edge)
    # Canonical order (by destination, then source), the order networkx graphs are read back in.
    position = {node["id"]: k for k, node in enumerate(nodes)}
    skips.sort(key=lambda e: (position[e["dst"]], position[e["src"]]))
    return Topology.create(nodes, skips, name=draw(names), meta=draw(metas))


# -- invalid mutations --------------------------------------------------------------------------------

Mutation = Callable[[Draw, Dict, Topology], str | None]
"""Breaks ``data`` (a valid topology's dict) in place; returns text the error must contain."""

_WRONG_VALUES: dict[type, list[Any]] = {
    int: [1.5, "3", [3], {"a": 1}, True, -3],
    bool: [1, "true", [True], 0.0],
    str: [1, "bogus", ["relu"], True, {"a": "b"}],
    list: ["abc", 3, [0], [1.5], [True], [], [1, 1, 1, 1], {"a": 1}, True],
}


def _node_at(draw: Draw, data: Dict, first: int = 1) -> tuple[int, Dict]:
    k = draw(st.integers(first, len(data["nodes"]) - 1))
    return k, data["nodes"][k]


def _edge_at(draw: Draw, data: Dict, topo: Topology) -> tuple[int, Dict]:
    """An existing edge, or a new ``off`` edge from the input to the last node if there is none."""
    if not data["skips"]:
        data["skips"].append({"src": topo.nodes[0].id, "dst": topo.nodes[-1].id, "kind": "off"})
    k = draw(st.integers(0, len(data["skips"]) - 1))
    return k, data["skips"][k]


def _edge_name(edge: Dict) -> str:
    return f"skip edge {edge['src']}->{edge['dst']}"


def wrong_param_type(draw: Draw, data: Dict, topo: Topology) -> str:
    _, node = _node_at(draw, data, first=0)
    spec = OPS[node["op"]].params
    if not spec:  # flatten, pool: take the input node instead
        node = data["nodes"][0]
        spec = OPS["input"].params
    key = draw(st.sampled_from(sorted(spec)))
    value = draw(st.sampled_from(_WRONG_VALUES[spec[key].type]))
    node[key] = value
    return f"node {node['id']!r}"


def unknown_op(draw: Draw, data: Dict, topo: Topology) -> str:
    _, node = _node_at(draw, data)
    node["op"] = draw(st.sampled_from(["bogus", "", "Linear", ["linear"], 3, None, {"op": "conv"}]))
    return f"node {node['id']!r}"


def unknown_node_key(draw: Draw, data: Dict, topo: Topology) -> str:
    _, node = _node_at(draw, data, first=0)
    node[draw(st.sampled_from(["colour", "stride2", "Features", "kind"]))] = 1
    return f"node {node['id']!r}"


def missing_param(draw: Draw, data: Dict, topo: Topology) -> str:
    candidates = [
        (k, key)
        for k, node in enumerate(data["nodes"])
        for key, spec in OPS[node["op"]].params.items()
        if spec.default is None
    ]
    k, key = draw(st.sampled_from(candidates))  # the input's shape always qualifies
    node = data["nodes"][k]
    node.pop(key, None)
    if draw(st.booleans()):
        node[key] = None  # an explicit null means "not given"
    return f"node {node['id']!r}"


def bad_node_id(draw: Draw, data: Dict, topo: Topology) -> str:
    k, node = _node_at(draw, data, first=0)
    node["id"] = draw(
        st.sampled_from(["", "1a", "a b", "a__b", "a-b", 3, None, "a\n", "h1\n", "é", ["x"], "as", "class", "a" * 101])
    )
    return f"node #{k}"


def duplicate_node_id(draw: Draw, data: Dict, topo: Topology) -> str:
    k, node = _node_at(draw, data)
    node["id"] = data["nodes"][k - 1]["id"]
    return f"node {node['id']!r}"


def input_not_first(draw: Draw, data: Dict, topo: Topology) -> str:
    if draw(st.booleans()):
        data["nodes"][0] = {"id": data["nodes"][0]["id"], "op": "linear", "features": 3}
        return "first node"
    k = draw(st.integers(1, len(data["nodes"])))
    data["nodes"].insert(k, {"id": "extra_input", "op": "input", "shape": [3]})
    return "node 'extra_input'"


def too_few_nodes(draw: Draw, data: Dict, topo: Topology) -> None:
    data["nodes"] = data["nodes"][: draw(st.integers(0, 1))]
    data["skips"] = []


def node_not_object(draw: Draw, data: Dict, topo: Topology) -> str:
    k, _ = _node_at(draw, data, first=0)
    data["nodes"][k] = draw(st.sampled_from([3, "x", ["id", "op"], None]))
    return f"node #{k}"


def bad_edge_field(draw: Draw, data: Dict, topo: Topology) -> str:
    _, edge = _edge_at(draw, data, topo)
    field = draw(st.sampled_from(["kind", "align", "unknown key", "init for add", "bad init", "align for off"]))
    if field == "kind":
        edge["kind"] = draw(st.sampled_from(["bogus", "Add", "", 3, None, ["add"]]))
    elif field == "align":
        edge["kind"] = "add"
        edge["align"] = draw(st.sampled_from(["bogus", "pad", "", 3, ["identity"]]))
    elif field == "unknown key":
        edge[draw(st.sampled_from(["weight", "Kind", "source"]))] = 1
    elif field == "init for add":
        edge["kind"] = "add"
        edge["init"] = 0.5
    elif field == "bad init":
        edge["kind"] = draw(st.sampled_from(INIT_KINDS))
        edge["init"] = draw(st.sampled_from(["1", True, math.nan, math.inf, -math.inf, [1.0], 10**400]))
    else:
        edge["kind"] = draw(st.sampled_from(UNALIGNED_KINDS))
        edge["align"] = draw(st.sampled_from(["zero_pad", "project"]))
    return _edge_name(edge)


def bad_edge_endpoint(draw: Draw, data: Dict, topo: Topology) -> str:
    k, edge = _edge_at(draw, data, topo)
    end = draw(st.sampled_from(["src", "dst"]))
    # Unknown names longer than any generated id, then names that are no ids at all.
    value = draw(st.sampled_from(["nowhere", "missing9", 3, None, "a b", "x\ny", ""]))
    edge[end] = value
    if value in ("nowhere", "missing9"):
        return f"unknown node {value!r}"
    return f"skip edge #{k}"


def edge_not_object(draw: Draw, data: Dict, topo: Topology) -> str:
    k, _ = _edge_at(draw, data, topo)
    data["skips"][k] = draw(st.sampled_from([3, "a->b", ["a", "b"], None]))
    return f"skip edge #{k}"


def backward_edge(draw: Draw, data: Dict, topo: Topology) -> str:
    _, edge = _edge_at(draw, data, topo)
    edge["src"], edge["dst"] = edge["dst"], edge["src"]
    return _edge_name(edge)


def self_loop(draw: Draw, data: Dict, topo: Topology) -> str:
    _, edge = _edge_at(draw, data, topo)
    edge["src"] = edge["dst"]
    return _edge_name(edge)


def duplicate_edge(draw: Draw, data: Dict, topo: Topology) -> str:
    _, edge = _edge_at(draw, data, topo)
    twin = {"src": edge["src"], "dst": edge["dst"], "kind": draw(st.sampled_from(["off", "add", "concat"]))}
    data["skips"].insert(draw(st.integers(0, len(data["skips"]))), twin)
    return _edge_name(edge)


def _free_pairs(topo: Topology) -> list[tuple[int, int]]:
    taken = {(topo.index[e.src], topo.index[e.dst]) for e in topo.skips}
    n = len(topo.nodes)
    return [(i, j) for i in range(n) for j in range(i + 1, n) if (i, j) not in taken]


def impossible_alignment(draw: Draw, data: Dict, topo: Topology) -> str | None:
    """An additive edge whose source cannot be aligned to its destination's output."""
    shapes = [topo.shapes[n.id] for n in topo.nodes]
    options = []
    for i, j in _free_pairs(topo):
        src, dst = shapes[i], shapes[j]
        if len(src) != len(dst):
            options += [(i, j, align) for align in ALIGNMENTS]
        elif src != dst:
            options.append((i, j, "identity"))
            if src[0] > dst[0]:
                options.append((i, j, "zero_pad"))
    if not options:
        return concat_from_predecessor(draw, data, topo)
    i, j, align = draw(st.sampled_from(options))
    kind = draw(st.sampled_from(ADDITIVE_KINDS))
    edge = {"src": topo.nodes[i].id, "dst": topo.nodes[j].id, "kind": kind, "align": align}
    data["skips"].append(edge)
    return _edge_name(edge)


def concat_from_predecessor(draw: Draw, data: Dict, topo: Topology) -> str:
    j = draw(st.integers(1, len(topo.nodes) - 1))
    src, dst = topo.nodes[j - 1].id, topo.nodes[j].id
    data["skips"] = [e for e in data["skips"] if (e["src"], e["dst"]) != (src, dst)]
    data["skips"].append({"src": src, "dst": dst, "kind": "concat"})
    return f"skip edge {src}->{dst}"


def concat_shape_mismatch(draw: Draw, data: Dict, topo: Topology) -> str:
    """A concat edge from a source whose spatial size differs from the destination's input."""
    shapes = [topo.shapes[n.id] for n in topo.nodes]
    options = [
        (i, j)
        for i, j in _free_pairs(topo)
        if j - 1 > i and (len(shapes[i]) != len(shapes[j - 1]) or shapes[i][1:] != shapes[j - 1][1:])
    ]
    if not options:
        return concat_from_predecessor(draw, data, topo)
    i, j = draw(st.sampled_from(options))
    edge = {"src": topo.nodes[i].id, "dst": topo.nodes[j].id, "kind": "concat"}
    data["skips"].append(edge)
    return _edge_name(edge)


def wrong_rank_op(draw: Draw, data: Dict, topo: Topology) -> str:
    """A block that cannot take its input: a convolution on a vector or a linear layer on a map."""
    k, node = _node_at(draw, data)
    inp = topo.shapes[topo.nodes[k - 1].id]
    params = dict(node)
    node.clear()
    node["id"] = params["id"]
    if len(inp) == 1:
        node.update(draw(st.sampled_from([{"op": "conv", "channels": 2}, {"op": "dense", "growth": 2}])))
    else:
        node.update({"op": "linear", "features": 3})
    return f"node {node['id']!r}"


def broken_document(draw: Draw, data: Dict, topo: Topology) -> None:
    """Something wrong at the top level, where no node or edge is to blame."""
    what = draw(st.sampled_from(["format", "unknown key", "name", "meta", "nodes", "skips"]))
    if what == "format":
        value = draw(st.sampled_from([None, 2, "1", 1.5, 0]))
        if value is None:
            del data["format"]
        else:
            data["format"] = value
    elif what == "unknown key":
        data[draw(st.sampled_from(["edges", "Nodes", "version"]))] = []
    elif what == "name":
        data["name"] = draw(st.sampled_from([3, None, ["a"], {"a": 1}]))
    elif what == "meta":
        data["meta"] = draw(st.sampled_from([[], "meta", 3]))
    elif what == "nodes":
        value = draw(st.sampled_from([None, {"x": 1}, "nodes", 3]))
        if value is None:
            del data["nodes"]
        else:
            data["nodes"] = value
    else:
        data["skips"] = draw(st.sampled_from([{"a": "b"}, "skips", 3, None]))


MUTATIONS: dict[str, Mutation] = {
    f.__name__: f
    for f in [
        wrong_param_type,
        unknown_op,
        unknown_node_key,
        missing_param,
        bad_node_id,
        duplicate_node_id,
        input_not_first,
        too_few_nodes,
        node_not_object,
        bad_edge_field,
        bad_edge_endpoint,
        edge_not_object,
        backward_edge,
        self_loop,
        duplicate_edge,
        impossible_alignment,
        concat_from_predecessor,
        concat_shape_mismatch,
        wrong_rank_op,
        broken_document,
    ]
}


MUTATION_NAMES = [*MUTATIONS, "not_an_object"]


@st.composite
def invalid_documents(draw: Draw, mutation: str) -> tuple[Any, str | None]:
    """``(document, fragment)``: a random topology's dict broken by ``MUTATIONS[mutation]``."""
    topo = draw(topologies(max_blocks=4, max_skips=4))
    data = copy.deepcopy(topo.to_dict())
    if mutation == "not_an_object":
        return draw(st.sampled_from([[], "topology", 3, None, [data]])), None
    fragment = MUTATIONS[mutation](draw, data, topo)
    return data, fragment
