"""Parameters and multiply-accumulates of a topology, counted from its shapes without building it.

The counts are those of the model :func:`skipsearch.nn.build_model` builds, layer for layer:
weights, biases and BatchNorm/LayerNorm affine parameters, and MACs of the linear and convolution
layers as ``torch.utils.flop_counter`` counts them (one MAC per weight per output position, bias
not counted). A test checks both against the built model on every preset and on random
topologies, so commands that only need the numbers (``describe --no-latency``) need no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skipsearch.topology._graph import SkipEdge, Topology
from skipsearch.topology._ops import Shape


@dataclass(frozen=True)
class Layer:
    """One weight layer: parameters it holds and MACs of one forward pass on one sample."""

    params: int
    macs: int = 0


@dataclass(frozen=True)
class TopologyCost:
    """Totals of one forward pass on one sample; ``flops`` is ``2 * macs`` as flop_counter counts.

    ``activations`` estimates the values one sample's forward pass produces and a backward pass
    keeps: every weight layer's output plus the block's own and each merge's (the basis of
    :mod:`skipsearch.topology._limits`' memory estimate, not an exact count).
    """

    params: int
    macs: int
    activations: int = 0

    @property
    def flops(self) -> int:
        return 2 * self.macs


def _norm(channels: int) -> Layer:
    """BatchNorm or LayerNorm: a scale and a shift per channel (running statistics are buffers)."""
    return Layer(2 * channels)


def _linear(inputs: int, outputs: int, bias: bool = True) -> Layer:
    return Layer(inputs * outputs + (outputs if bias else 0), inputs * outputs)


def _conv(c_in: int, c_out: int, kernel: int, out: Shape, bias: bool = False) -> Layer:
    """A convolution whose output has shape ``out`` (channels first)."""
    weights = c_in * c_out * kernel ** (len(out) - 1)
    return Layer(weights + (c_out if bias else 0), weights * math.prod(out[1:]))


def _linear_block(x: Shape, y: Shape, p: dict[str, Any]) -> list[Layer]:
    return [_linear(x[0], p["features"], p["bias"]), *([_norm(p["features"])] if p["norm"] != "none" else [])]


def _conv_block(x: Shape, y: Shape, p: dict[str, Any]) -> list[Layer]:
    norm = [_norm(x[0] if p["preact"] else p["channels"])] if p["norm"] == "batch" else []
    return [_conv(x[0], p["channels"], p["kernel"], y, p["bias"]), *norm]


def _basic_block(x: Shape, y: Shape, p: dict[str, Any]) -> list[Layer]:
    c = p["channels"]
    return [_conv(x[0], c, 3, y), _norm(c), _conv(c, c, 3, y), _norm(c)]


def _dense_block(x: Shape, y: Shape, p: dict[str, Any]) -> list[Layer]:
    g, b, spatial = p["growth"], p["bottleneck"], x[1:]
    if b == 0:
        return [_norm(x[0]), _conv(x[0], g, 3, (g, *spatial))]
    return [_norm(x[0]), _conv(x[0], b * g, 1, (b * g, *spatial)), _norm(b * g), _conv(b * g, g, 3, (g, *spatial))]


def _transition_block(x: Shape, y: Shape, p: dict[str, Any]) -> list[Layer]:
    return [_norm(x[0]), _conv(x[0], p["channels"], 1, (p["channels"], *x[1:]))]


def _up_block(x: Shape, y: Shape, p: dict[str, Any]) -> list[Layer]:
    # Transposed: flop_counter counts one MAC per weight per *input* position.
    weights = x[0] * p["channels"] * p["factor"] ** (len(x) - 1)
    return [Layer(weights + p["channels"], weights * math.prod(x[1:]))]


def _head_block(x: Shape, y: Shape, p: dict[str, Any]) -> list[Layer]:
    norm = [_norm(x[0])] if p["preact"] else []
    features = x[0] if p["pool"] == "avg" else math.prod(x)
    return [*norm, _linear(features, p["classes"])]


def _seghead_block(x: Shape, y: Shape, p: dict[str, Any]) -> list[Layer]:
    return [_conv(x[0], p["classes"], 1, y, bias=True)]


BLOCK_LAYERS: dict[str, Callable[[Shape, Shape, dict[str, Any]], list[Layer]]] = {
    "linear": _linear_block,
    "conv": _conv_block,
    "basic": _basic_block,
    "dense": _dense_block,
    "transition": _transition_block,
    "up": _up_block,
    "head": _head_block,
    "seghead": _seghead_block,
}
"""Op name -> ``layers(merged_input_shape, output_shape, params)``; ops not listed hold no weights."""


def skip_layers(edge: SkipEdge, src: Shape, dst: Shape) -> list[Layer]:
    """Weight layers of an additive edge: its alignment and its gate (the kind's ``gate_cost``)."""
    layers = [_linear(src[0], dst[0], bias=False) if len(src) == 1 else _conv(src[0], dst[0], 1, dst), _norm(dst[0])]
    align = layers if edge.align == "project" else []
    params, macs = edge.spec.gate_cost(dst)
    return [*align, Layer(params, macs)] if params or macs else align


def node_costs(topology: Topology) -> dict[str, TopologyCost]:
    """Parameters, MACs and activations of every block (skip edges count at their destination)."""
    shapes = topology.shapes
    out: dict[str, TopologyCost] = {}
    for node in topology.nodes[1:]:
        sources = topology.input_sources(node.id)
        merged = (sum(shapes[s][0] for s in sources), *shapes[sources[0]][1:])
        size = math.prod(shapes[node.id])
        layers = BLOCK_LAYERS[node.op](merged, shapes[node.id], node.params) if node.op in BLOCK_LAYERS else []
        values = size * (len(layers) + 1) + (math.prod(merged) if len(sources) > 1 else 0)
        for edge in topology.incoming(node.id):
            if edge.additive:
                skip = skip_layers(edge, shapes[edge.src], shapes[node.id])
                layers += skip
                values += size * (len(skip) + 1)
        params, macs = sum(layer.params for layer in layers), sum(layer.macs for layer in layers)
        out[node.id] = TopologyCost(params=params, macs=macs, activations=values)
    return out


def topology_cost(topology: Topology) -> TopologyCost:
    """Parameters and MACs of the model built from ``topology``, for one sample."""
    costs = node_costs(topology).values()
    return TopologyCost(
        params=sum(c.params for c in costs),
        macs=sum(c.macs for c in costs),
        activations=math.prod(topology.input_shape) + sum(c.activations for c in costs),
    )
