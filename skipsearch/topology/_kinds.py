"""Skip-edge kinds: what each one joins, which alignments and initial value it takes, its cost.

This is one half of a pair of registries, as :data:`~skipsearch.topology.OPS` pairs with
:data:`skipsearch.nn.BLOCK_BUILDERS`: :data:`EDGE_KINDS` says what a kind is as far as the graph
goes (validation, shapes, cost, drawing, search choices), and :data:`skipsearch.nn.SKIP_BUILDERS`
builds the module an additive kind computes with. A new kind is one :class:`EdgeKind` here and one
builder there; everything else (validation, search spaces, exports, drawings, the tests' lists of
kinds) reads these two dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from skipsearch.topology._ops import Shape

ALIGNMENTS = ("identity", "zero_pad", "project")
"""How an additive edge matches the source's shape to the destination's."""

Joins = Literal["nothing", "input", "output"]


def _no_gate(dst: Shape) -> tuple[int, int]:
    return 0, 0


def _one_scalar(dst: Shape) -> tuple[int, int]:
    return 1, 0


def _channel_gate(dst: Shape) -> tuple[int, int]:
    # A linear map channels -> channels on the pooled source: weights plus biases, one MAC a weight.
    channels = dst[0]
    return channels * channels + channels, channels * channels


@dataclass(frozen=True)
class EdgeKind:
    """One kind of skip edge.

    ``joins`` says where the source enters the destination: ``output`` (added to the body's
    output, after ``align``; the *additive* kinds), ``input`` (concatenated to its input along the
    channels) or ``nothing`` (``off``: the edge stays in the graph without effect). ``default_init``
    is the initial value of the edge's one parameter (``None``: the kind takes no ``init``);
    ``switchable`` kinds are learnable on/off gates that a penalty pushes towards off and
    :func:`skipsearch.nn.resolve_switches` removes. ``gate_cost(dst_shape)`` is ``(parameters,
    MACs)`` per sample of what the kind adds on top of its alignment. ``label`` is what the edge
    computes, ``color`` the colour it is drawn in.
    """

    name: str
    joins: Joins
    label: str
    color: str | None = None
    default_init: float | None = None
    switchable: bool = False
    gate_cost: Callable[[Shape], tuple[int, int]] = _no_gate

    @property
    def additive(self) -> bool:
        return self.joins == "output"

    @property
    def active(self) -> bool:
        return self.joins != "nothing"

    @property
    def alignments(self) -> tuple[str, ...]:
        """Alignments the kind takes: every one for additive kinds, none (only ``identity``) otherwise."""
        return ALIGNMENTS if self.additive else ()


EDGE_KINDS: dict[str, EdgeKind] = {
    spec.name: spec
    for spec in (
        EdgeKind("off", "nothing", "nothing; stays in the graph so a search can switch it on"),
        EdgeKind("add", "output", "F(x) + align(x)", color="#1f77b4"),
        EdgeKind("concat", "input", "F(cat(inputs, x))", color="#d62728"),
        EdgeKind(
            "gated",
            "output",
            "F(x) + g(x) * x, g(x) = sigmoid(W pool(x) + b) per channel, b = init",
            color="#2ca02c",
            default_init=0.0,
            gate_cost=_channel_gate,
        ),
        EdgeKind(
            "scalar",
            "output",
            "F(x) + a * x, learned a, starts at init",
            color="#ff7f0e",
            default_init=1.0,
            gate_cost=_one_scalar,
        ),
        EdgeKind(
            "switch",
            "output",
            "F(x) + sigmoid(s) * x, learned s",
            color="#9467bd",
            default_init=3.0,
            switchable=True,
            gate_cost=_one_scalar,
        ),
    )
}
"""Every skip-edge kind by name, in the order choices and legends list them. Register a kind by
adding its :class:`EdgeKind` (and, for an additive kind, its builder in
:data:`skipsearch.nn.SKIP_BUILDERS`)."""


def edge_kind(name: str) -> EdgeKind:
    """The registered kind ``name``; ``KeyError`` naming the known kinds otherwise."""
    try:
        return EDGE_KINDS[name]
    except KeyError:
        raise KeyError(f"unknown edge kind {name!r} (known: {', '.join(EDGE_KINDS)})") from None
