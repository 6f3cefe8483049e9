"""``skipsearch.viz.draw_topology``: pictures of topologies as files and on given Axes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from skipsearch.topology import EDGE_KINDS, SkipEdge, Topology, families, get_preset
from skipsearch.viz import draw_topology, edge_color


def _mlp_with_every_kind() -> Topology:
    topo = families.mlp(input_features=40, hidden=[32] * 7, classes=10, residual=False, name="mlp7")
    ids = [n.id for n in topo.nodes]
    kinds = [k for k, spec in EDGE_KINDS.items() if spec.active]
    # From h1 on every width is 32, so identity alignment fits every additive edge.
    return topo.with_skips([SkipEdge(ids[i + 1], ids[i + 3], kind) for i, kind in enumerate(kinds)])


def test_svg_names_every_node_and_colours_edges_by_kind(tmp_path: Path) -> None:
    topo = _mlp_with_every_kind()
    path = tmp_path / "t.svg"
    draw_topology(topo, path)
    svg = path.read_text()
    ET.fromstring(svg)  # well-formed XML
    texts = "".join(ET.fromstring(svg).itertext())
    for node in topo.nodes:
        assert node.id in texts and node.op in texts
    assert topo.hash in texts
    for kind in (k for k, spec in EDGE_KINDS.items() if spec.active):
        assert f"{kind} (1)" in texts  # the legend counts the edges of each kind
        assert edge_color(kind) in svg


def test_equal_topologies_give_equal_files(tmp_path: Path) -> None:
    topo = get_preset("resnet20")
    draw_topology(topo, tmp_path / "a.svg")
    draw_topology(topo, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


@pytest.mark.parametrize("preset", ["unet-small", "densenet-bc-100", "mlp-deep-plain"])
def test_presets_draw_to_png(preset: str, tmp_path: Path) -> None:
    path = tmp_path / f"{preset}.png"
    draw_topology(get_preset(preset), path)
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5_000


def test_draws_onto_a_given_axes() -> None:
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert draw_topology(get_preset("resnet20"), ax, title="mine") is ax
    assert ax.get_title(loc="left") == "mine"
    assert len(ax.collections) == 1  # the nine residual edges are one collection


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must end in"):
        draw_topology(get_preset("resnet20"), tmp_path / "t.jpg")
