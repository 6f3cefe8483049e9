"""Drawing a :class:`~skipsearch.topology.Topology`: the backbone as a left-to-right chain of labelled
boxes, skip edges as arcs coloured by kind.

Additive edges (add, scalar, gated, switch) arc above the chain because they join a node's
*output*; concat edges arc below because they join its *input*. Each kind's colour is its
:class:`~skipsearch.topology.EdgeKind`'s. Each node's box names its id, op and
output shape. The arcs of one kind form one collection, so even DenseNet-BC-100's 408 edges draw in
well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from skipsearch.topology import EDGE_KINDS, Topology

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def edge_color(kind: str) -> str:
    """The colour edges of ``kind`` are drawn in (its :class:`~skipsearch.topology.EdgeKind`'s), grey if it has none."""
    spec = EDGE_KINDS.get(kind)
    return spec.color if spec is not None and spec.color else "0.5"


_NODE_FACE = {"input": "#eeeeee", "head": "#fde9c8", "seghead": "#fde9c8"}
_MAX_WIDTH_IN = 40.0
"""Widest figure (inches) a path gets; longer backbones squeeze their boxes instead."""
MIN_FILE_WIDTH_IN = 9.0
"""Narrowest picture file (inches; 648 pt, 864 CSS pixels): a short backbone is still drawn large
enough to read where a page shows it at its own size (the dashboard's trial notes)."""


def draw_topology(topology: Topology, path_or_ax: str | Path | Axes, *, title: str | None = None) -> Axes:
    """Draws ``topology`` onto an Axes, or into a file (``.svg``, ``.png`` or ``.pdf``, by suffix).

    Returns the Axes drawn on (for a file, the Axes of the figure that was saved). SVG text stays
    text (selectable, small) and carries no date, so equal topologies give equal files.
    """
    if isinstance(path_or_ax, str | Path):
        return _draw_to_file(topology, Path(path_or_ax), title)
    _draw(topology, path_or_ax, title)
    return path_or_ax


def _draw_to_file(topology: Topology, path: Path, title: str | None) -> Axes:
    import matplotlib
    from matplotlib.figure import Figure

    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("svg", "png", "pdf"):
        raise ValueError(f"{path}: the file must end in .svg, .png or .pdf")
    n = len(topology.nodes)
    width = max(min(1.5 + 1.05 * n, _MAX_WIDTH_IN), MIN_FILE_WIDTH_IN)
    below = any(e.concatenated for e in topology.active_skips)
    fig = Figure(figsize=(width, 3.4 if below else 2.4))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.88))
    _draw(topology, ax, title)
    metadata = {"Date": None} if suffix == "svg" else None
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "skipsearch"}):
        fig.savefig(path, format=suffix, metadata=metadata, dpi=100)
    return ax


def _draw(topology: Topology, ax: Axes, title: str | None) -> None:
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D

    n = len(topology.nodes)
    index = topology.index
    ax.plot(range(n), [0] * n, color="0.35", lw=1.2, zorder=1)
    for x, node in enumerate(topology.nodes):
        shape = "×".join(str(d) for d in topology.shapes[node.id])
        ax.text(
            x,
            0,
            f"{node.id}\n{node.op}\n{shape}",
            ha="center",
            va="center",
            fontsize=7,
            zorder=3,
            bbox={"boxstyle": "round,pad=0.3", "fc": _NODE_FACE.get(node.op, "#dbe9f6"), "ec": "0.35", "lw": 0.8},
        )
    below = any(e.concatenated for e in topology.active_skips)
    longest = max((index[e.dst] - index[e.src] for e in topology.active_skips), default=1)
    by_kind: dict[str, list] = {}
    for edge in topology.active_skips:
        src, dst = index[edge.src], index[edge.dst]
        by_kind.setdefault(edge.kind, []).append(_arc(src, dst, longest, below=edge.concatenated))
    handles = []
    for kind, paths in by_kind.items():
        color = edge_color(kind)
        ax.add_collection(PathCollection(paths, facecolor="none", edgecolor=color, linewidth=1.3, alpha=0.8, zorder=2))
        handles.append(Line2D([], [], color=color, lw=1.5, label=f"{kind} ({len(paths)})"))
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-1.15 if below else -0.3, 1.3)
    ax.set_axis_off()
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=False, ncol=len(handles))
    if title is None:
        title = f"{topology.name}  ·  {topology.hash}  ·  {len(topology.active_skips)} active skip edges"
    if title:
        ax.set_title(title, fontsize=9, loc="left")


def _arc(src: int, dst: int, longest: int, *, below: bool) -> object:
    """A quadratic Bezier arc from node ``src`` to node ``dst``, peaking between 0.35 and 1 (the
    longest span); it starts and ends under the node boxes, which are drawn on top."""
    from matplotlib.path import Path as MplPath

    peak = 0.35 + 0.65 * (dst - src) / longest
    control = 2 * peak * (-1 if below else 1)  # a quadratic Bezier peaks halfway to its control point
    vertices = [(src, 0.0), ((src + dst) / 2, control), (dst, 0.0)]
    return MplPath(vertices, [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3])
