"""Validation, case by case: each way a topology can be wrong gives one ``TopologyError`` line
naming the node or edge at fault. (The property tests throw random mutations at the same code;
these pin down each message and the inputs that once escaped as other exceptions.)"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from skipsearch.errors import UserError
from skipsearch.topology import (
    Node,
    SkipEdge,
    Topology,
    TopologyError,
    from_json,
    get_preset,
    load_topology,
    read_graphml,
)

X = {"id": "x", "op": "input", "shape": [4, 8]}
CHAIN = [
    X,
    {"id": "a", "op": "conv", "channels": 4},
    {"id": "b", "op": "conv", "channels": 8, "stride": 2},
    {"id": "c", "op": "flatten"},
    {"id": "d", "op": "linear", "features": 3},
]


def error(nodes: list[Any], skips: list[Any] = ()) -> str:  # type: ignore[assignment]
    with pytest.raises(TopologyError) as exc:
        Topology.create(nodes, list(skips))
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_topology_error_is_a_user_error_and_a_value_error() -> None:
    assert issubclass(TopologyError, UserError)
    assert issubclass(TopologyError, ValueError)


def test_the_chain_used_below_is_valid() -> None:
    topo = Topology.create(CHAIN)
    assert topo.shapes == {"x": (4, 8), "a": (4, 8), "b": (8, 4), "c": (32,), "d": (3,)}


NODE_CASES = {
    "unknown op": ({"id": "a", "op": "bogus"}, "node 'a': unknown op 'bogus'"),
    "unhashable op": ({"id": "a", "op": ["conv"]}, "node 'a': unknown op ['conv']"),
    "missing op": ({"id": "a"}, "node 'a': unknown op None"),
    "unknown parameter": (
        {"id": "a", "op": "conv", "channels": 4, "colour": 1},
        "node 'a': unknown parameter 'colour'",
    ),
    "missing parameter": ({"id": "a", "op": "conv"}, "node 'a': op 'conv' needs parameter 'channels'"),
    "null parameter": ({"id": "a", "op": "conv", "channels": None}, "needs parameter 'channels'"),
    "int as string": ({"id": "a", "op": "conv", "channels": "4"}, "node 'a': parameter 'channels' must be an integer"),
    "bool as int": ({"id": "a", "op": "conv", "channels": True}, "must be an integer"),
    "below minimum": ({"id": "a", "op": "conv", "channels": 0}, "must be >= 1"),
    "int as bool": ({"id": "a", "op": "conv", "channels": 4, "bias": 1}, "'bias' must be true or false"),
    "bad choice": ({"id": "a", "op": "conv", "channels": 4, "act": "swish"}, "'act' must be one of"),
    "id with a space": ({"id": "a b", "op": "conv", "channels": 4}, "node #1: 'id' must be a name"),
    "id with a double underscore": ({"id": "a__b", "op": "conv", "channels": 4}, "node #1"),
    "id with a trailing newline": ({"id": "a\n", "op": "conv", "channels": 4}, "node #1"),
    "id not a string": ({"id": 7, "op": "conv", "channels": 4}, "node #1"),
    "not an object": (["a", "conv"], "node #1: expected an object, got list"),
    "second input": ({"id": "a", "op": "input", "shape": [4, 8]}, "node 'a': only the first node may be an 'input'"),
    "duplicate id": ({"id": "x", "op": "conv", "channels": 4}, "node 'x': duplicate id"),
    "wrong rank": ({"id": "a", "op": "linear", "features": 4}, "node 'a': op 'linear' needs a feature vector"),
    "pool too large": ({"id": "a", "op": "pool", "size": 16}, "node 'a': op 'pool' cannot pool"),
}


@pytest.mark.parametrize("case", list(NODE_CASES))
def test_node_errors_name_the_node(case: str) -> None:
    node, expected = NODE_CASES[case]
    assert expected in error([X, node])


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("abc", "'shape' must be a list of positive integers"),
        ([0, 8], "positive integers"),
        ([4, 8, 8, 8], "1 to 3 dimensions"),
        ([True], "positive integers"),
    ],
)
def test_input_shape_is_checked(shape: Any, expected: str) -> None:
    assert expected in error([{"id": "x", "op": "input", "shape": shape}, {"id": "a", "op": "flatten"}])


def test_input_must_come_first_and_a_block_must_follow() -> None:
    assert "first node must be an 'input'" in error([{"id": "a", "op": "flatten"}, X])
    assert "needs an input node and at least one block" in error([X])
    assert "needs an input node and at least one block" in error([])


def test_node_objects_with_an_unknown_op_raise_topology_error() -> None:
    assert "node 'a': unknown op 'bogus'" in error([Node("x", "input", {"shape": [4]}), Node("a", "bogus", {})])


EDGE_CASES = {
    "unknown kind": ({"src": "x", "dst": "b", "kind": "Add"}, "skip edge x->b: unknown kind 'Add'"),
    "unhashable kind": ({"src": "x", "dst": "b", "kind": ["add"]}, "skip edge x->b: unknown kind"),
    "unknown alignment": ({"src": "x", "dst": "b", "align": "pad"}, "skip edge x->b: unknown alignment 'pad'"),
    "unknown key": ({"src": "x", "dst": "b", "weight": 1}, "skip edge x->b: unknown key 'weight'"),
    "unknown node": ({"src": "x", "dst": "nowhere"}, "skip edge x->nowhere: unknown node 'nowhere'"),
    "endpoint not an id": ({"src": "x\ny", "dst": "b"}, "skip edge #0: 'src' and 'dst' must be node ids"),
    "endpoint missing": ({"dst": "b"}, "skip edge #0"),
    "not an object": ("x->b", "skip edge #0: expected an object"),
    "self-loop": ({"src": "b", "dst": "b"}, "skip edge b->b: a self-loop makes a cycle"),
    "backward": ({"src": "b", "dst": "a"}, "skip edge b->a: backward edge"),
    "concat from predecessor": ({"src": "a", "dst": "b", "kind": "concat"}, "skip edge a->b: a concat from the"),
    "alignment on concat": ({"src": "x", "dst": "b", "kind": "concat", "align": "project"}, "takes no alignment"),
    "alignment on off": ({"src": "x", "dst": "b", "kind": "off", "align": "zero_pad"}, "takes no alignment"),
    "init on add": ({"src": "a", "dst": "b", "init": 1.0, "align": "project"}, "skip edge a->b: kind 'add' takes no"),
    "init a string": ({"src": "x", "dst": "a", "kind": "scalar", "init": "1"}, "'init' must be a finite number"),
    "init a bool": ({"src": "x", "dst": "a", "kind": "scalar", "init": True}, "'init' must be a finite number"),
    "init nan": ({"src": "x", "dst": "a", "kind": "gated", "init": math.nan}, "'init' must be a finite number"),
    "init inf": ({"src": "x", "dst": "a", "kind": "switch", "init": math.inf}, "'init' must be a finite number"),
    "init -inf": ({"src": "x", "dst": "a", "kind": "scalar", "init": -math.inf}, "'init' must be a finite number"),
    "init huge int": ({"src": "x", "dst": "a", "kind": "scalar", "init": 10**400}, "'init' must be a finite number"),
    "identity across a stride": ({"src": "a", "dst": "b"}, "skip edge a->b (add/identity): identity needs equal"),
    "zero_pad shrinking": ({"src": "b", "dst": "d", "kind": "scalar", "align": "zero_pad"}, "cannot align a 2-D"),
    "map to vector": ({"src": "a", "dst": "d", "align": "project"}, "skip edge a->d (add/project): cannot align"),
    "concat of other size": ({"src": "a", "dst": "c", "kind": "concat"}, "skip edge a->c: concat needs equal spatial"),
}


@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_edge_errors_name_the_edge(case: str) -> None:
    edge, expected = EDGE_CASES[case]
    assert expected in error(CHAIN, [edge])


def test_zero_pad_cannot_drop_channels() -> None:
    nodes = [X, {"id": "a", "op": "conv", "channels": 2, "stride": 2}]
    message = error(nodes, [{"src": "x", "dst": "a", "align": "zero_pad"}])
    assert "skip edge x->a (add/zero_pad): zero padding cannot shrink 4 channels to 2; use project" in message
    Topology.create(nodes, [{"src": "x", "dst": "a", "align": "project"}])  # a projection can


def test_alignment_needs_a_whole_stride() -> None:
    nodes = [{"id": "x", "op": "input", "shape": [4, 8, 6]}, {"id": "a", "op": "conv", "channels": 4, "stride": 4}]
    assert "not a whole multiple" in error(nodes, [{"src": "x", "dst": "a", "align": "project"}])


def test_duplicate_edges_are_rejected_whatever_their_kind() -> None:
    skips = [{"src": "x", "dst": "b", "kind": "off"}, {"src": "x", "dst": "b", "kind": "concat"}]
    assert "skip edge x->b: duplicate edge" in error(CHAIN, skips)


def test_off_edges_need_no_alignment() -> None:
    Topology.create(CHAIN, [{"src": "x", "dst": "d", "kind": "off"}, {"src": "a", "dst": "b", "kind": "off"}])


def test_edge_objects_are_validated_too() -> None:
    topo = Topology.create(CHAIN)
    with pytest.raises(TopologyError, match="backward edge"):
        topo.with_skips([SkipEdge("b", "a")])
    with pytest.raises(TopologyError, match="'init' must be a finite number"):
        Topology.create(CHAIN, [SkipEdge("x", "a", "scalar", "identity", math.inf)])


# -- documents and files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "expected a JSON object, got list"),
        ({"format": 2, "nodes": CHAIN}, "'format' must be 1, got 2"),
        ({"nodes": CHAIN}, "'format' must be 1, got None"),
        ({"format": 1, "nodes": CHAIN, "edges": []}, "unknown key 'edges'"),
        ({"format": 1, "nodes": CHAIN, "name": 3}, "'name' must be a string"),
        ({"format": 1, "nodes": CHAIN, "meta": []}, "'meta' must be an object"),
        ({"format": 1, "nodes": {"x": X}}, "'nodes' must be a list"),
        ({"format": 1, "nodes": CHAIN, "skips": {}}, "'skips' must be a list"),
    ],
)
def test_document_errors_name_the_source(document: Any, expected: str) -> None:
    with pytest.raises(TopologyError) as exc:
        from_json(json.dumps(document), source="net.json")
    assert str(exc.value).startswith("net.json: ")
    assert expected in str(exc.value)


@pytest.mark.parametrize("text", ["", "{", "nodes: []", "[" * 100_000, '{"format": 1,}', "\x00"])
def test_unparsable_json_raises_topology_error(text: str) -> None:
    with pytest.raises(TopologyError) as exc:
        from_json(text, source="net.json")
    assert str(exc.value).startswith("net.json: invalid JSON")
    assert "\n" not in str(exc.value)


def _graph() -> nx.DiGraph:
    return Topology.create(CHAIN, [{"src": "x", "dst": "a", "kind": "scalar"}]).to_networkx()


def _break_op(g: nx.DiGraph) -> None:
    g.nodes["a"]["op"] = "bogus"


def _break_params(g: nx.DiGraph) -> None:
    g.nodes["a"]["params"] = "[1, 2]"


def _break_params_json(g: nx.DiGraph) -> None:
    g.nodes["a"]["params"] = "{channels: 4"


def _drop_order(g: nx.DiGraph) -> None:
    del g.nodes["a"]["order"]


def _break_meta(g: nx.DiGraph) -> None:
    g.graph["meta"] = "{not json"


def _meta_list(g: nx.DiGraph) -> None:
    g.graph["meta"] = "[]"


def _break_kind(g: nx.DiGraph) -> None:
    g.edges["x", "a"]["skip"] = "bogus"


def _break_init(g: nx.DiGraph) -> None:
    g.edges["x", "a"]["init"] = "high"


@pytest.mark.parametrize(
    "breaker",
    [_break_op, _break_params, _break_params_json, _drop_order, _break_meta, _meta_list, _break_kind, _break_init],
)
def test_broken_graphs_raise_topology_error(breaker: Any, tmp_path: Path) -> None:
    graph = _graph()
    breaker(graph)
    with pytest.raises(TopologyError) as exc:
        Topology.from_networkx(graph)
    assert "\n" not in str(exc.value)
    path = tmp_path / "net.graphml"
    nx.write_graphml(graph, str(path))
    with pytest.raises(TopologyError) as exc:
        read_graphml(path)
    assert str(exc.value).startswith(f"{path}: ")


def test_unreadable_files_raise_topology_error(tmp_path: Path) -> None:
    garbage = tmp_path / "net.graphml"
    garbage.write_text("<graphml><graph", encoding="utf-8")
    binary = tmp_path / "net.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for path in [garbage, binary, tmp_path / "missing.json", tmp_path]:
        with pytest.raises(TopologyError) as exc:
            load_topology(path)
        assert "\n" not in str(exc.value)
        assert str(path) in str(exc.value)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(TopologyError, match=r"unknown preset 'resnet21'.*resnet20"):
        get_preset("resnet21")
    with pytest.raises(TopologyError, match="neither a preset"):
        load_topology("resnet21")
