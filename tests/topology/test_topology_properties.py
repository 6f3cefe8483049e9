"""Property tests: random valid topologies survive every format with the same hash, and random
invalid documents always fail with one ``TopologyError`` line that names the culprit."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from topology_strategies import MUTATION_NAMES, invalid_documents, names, topologies

from skipsearch.topology import (
    EDGE_KINDS,
    SkipEdge,
    Topology,
    TopologyError,
    from_json,
    load_topology,
    read_graphml,
    save_topology,
    write_graphml,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_same(copy: Topology, topo: Topology) -> None:
    assert copy.hash == topo.hash
    assert copy.to_dict() == topo.to_dict()
    assert copy == topo


# -- round trips --------------------------------------------------------------------------------------


@SETTINGS
@given(topologies())
def test_json_round_trip(topo: Topology) -> None:
    assert_same(from_json(topo.to_json()), topo)
    assert_same(Topology.from_json(topo.to_json(indent=None)), topo)
    assert_same(Topology.from_dict(json.loads(topo.to_json())), topo)


@SETTINGS
@given(topologies())
def test_graphml_round_trip(topo: Topology) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "topology.graphml"
        write_graphml(topo, path)
        assert_same(read_graphml(path), topo)


@SETTINGS
@given(topologies())
def test_networkx_round_trip(topo: Topology) -> None:
    graph = topo.to_networkx()
    assert graph.number_of_nodes() == len(topo.nodes)
    assert_same(Topology.from_networkx(graph), topo)


@SETTINGS
@given(topologies())
def test_save_and_load_by_suffix(topo: Topology) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".json", ".graphml", ".GraphML"):
            path = Path(folder) / f"t{suffix}"
            save_topology(topo, path)
            assert_same(load_topology(path), topo)


@SETTINGS
@given(topologies())
def test_objects_and_dicts_build_the_same_topology(topo: Topology) -> None:
    assert_same(Topology.create(list(topo.nodes), list(topo.skips), topo.name, topo.meta), topo)
    assert_same(topo.with_skips(list(topo.skips)), topo)


# -- hashing ------------------------------------------------------------------------------------------


@SETTINGS
@given(topologies(), names)
def test_hash_ignores_names_and_meta(topo: Topology, name: str) -> None:
    renamed = Topology.create(list(topo.nodes), list(topo.skips), name=name, meta={"note": name})
    assert renamed.hash == topo.hash
    assert topo.with_name(name).hash == topo.hash


@SETTINGS
@given(topologies(), st.randoms(use_true_random=False))
def test_hash_ignores_the_order_skips_are_listed_in(topo: Topology, rng: random.Random) -> None:
    skips = list(topo.skips)
    rng.shuffle(skips)
    assert topo.with_skips(skips).hash == topo.hash


@SETTINGS
@given(topologies())
def test_hash_ignores_node_ids(topo: Topology) -> None:
    new_id = {n.id: f"n{k}" for k, n in enumerate(topo.nodes)}
    data = topo.to_dict()
    for node in data["nodes"]:
        node["id"] = new_id[node["id"]]
    for edge in data["skips"]:
        edge["src"], edge["dst"] = new_id[edge["src"]], new_id[edge["dst"]]
    assert Topology.from_dict(data).hash == topo.hash


@SETTINGS
@given(topologies())
def test_hash_ignores_off_edges(topo: Topology) -> None:
    active = [e for e in topo.skips if e.active]
    assert topo.with_skips(active).hash == topo.hash
    taken = {(e.src, e.dst) for e in topo.skips}
    ids = [n.id for n in topo.nodes]
    free = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :] if (a, b) not in taken]
    if free:
        assert topo.with_skips([*topo.skips, SkipEdge(*free[0], kind="off")]).hash == topo.hash


def _with_kind(topo: Topology, index: int, kind: str) -> Topology | None:
    """The topology with skip ``index`` turned into ``kind`` (same alignment), if that is valid."""
    edge = topo.skips[index]
    align = edge.align if EDGE_KINDS[kind].alignments else "identity"
    skips = list(topo.skips)
    skips[index] = SkipEdge(edge.src, edge.dst, kind, align, None)
    try:
        return Topology.create(list(topo.nodes), skips)
    except TopologyError:
        return None


@SETTINGS
@given(topologies(max_skips=4))
def test_hash_changes_when_an_edge_kind_changes(topo: Topology) -> None:
    for index, edge in enumerate(topo.skips):
        for kind in EDGE_KINDS:
            if kind == edge.kind:
                continue
            changed = _with_kind(topo, index, kind)
            if changed is not None:
                assert changed.hash != topo.hash, (edge, kind)


def test_hash_is_stable_across_releases() -> None:
    """Stored results are keyed by this hash: a change of the canonical form must be deliberate."""
    from skipsearch.topology import get_preset

    assert get_preset("resnet20").hash == "25dd3b722f5ad1de"
    assert get_preset("plain20").hash != get_preset("resnet20").hash


# -- invalid input ------------------------------------------------------------------------------------


def assert_one_line_error(exc: pytest.ExceptionInfo[TopologyError], fragment: str | None) -> None:
    message = str(exc.value)
    assert message and "\n" not in message and "\r" not in message, message
    if fragment is not None:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("mutation", MUTATION_NAMES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_invalid_documents_raise_one_line_topology_error(mutation: str, data: st.DataObject) -> None:
    document, fragment = data.draw(invalid_documents(mutation))
    with pytest.raises(TopologyError) as exc:
        Topology.from_dict(document, source="doc.json")
    assert_one_line_error(exc, fragment)
    assert str(exc.value).startswith("doc.json: ")
    # The same document as JSON text fails the same way.
    with pytest.raises(TopologyError) as exc:
        from_json(json.dumps(document), source="doc.json")
    assert_one_line_error(exc, fragment)


@SETTINGS
@given(st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
def test_garbage_text_raises_topology_error(text: str) -> None:
    with pytest.raises(TopologyError) as exc:
        from_json(text)
    assert_one_line_error(exc, None)


@SETTINGS
@given(topologies(max_blocks=3, max_skips=3), st.data())
def test_truncated_json_raises_topology_error(topo: Topology, data: st.DataObject) -> None:
    text = topo.to_json()
    cut = data.draw(st.integers(0, len(text) - 1))
    with pytest.raises(TopologyError) as exc:
        from_json(text[:cut])
    assert_one_line_error(exc, None)


def test_deeply_nested_json_raises_topology_error() -> None:
    with pytest.raises(TopologyError, match="nested too deeply"):
        from_json("[" * 100_000)
