"""Backbone families: builders that lay out the blocks (and the family's usual skips) of a network.

Each builder returns a validated :class:`Topology`. ``skips`` selects the family's canonical skip
edges (``"residual"`` / ``"dense"`` / ``"unet"``) or none (``"none"``), so that a search space can
start from the plain backbone and switch candidates on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from skipsearch.topology._graph import Topology

Dict = dict[str, Any]


def mlp(
    input_features: int,
    hidden: Sequence[int],
    classes: int,
    *,
    act: str = "relu",
    norm: str = "none",
    residual: bool = True,
    name: str = "mlp",
) -> Topology:
    """A multilayer perceptron ``h1..hN``; with ``residual``, an identity add edge into every
    hidden layer whose width equals its predecessor's."""
    nodes: list[Dict] = [{"id": "x", "op": "input", "shape": [input_features]}]
    skips: list[Dict] = []
    width = input_features
    for i, features in enumerate(hidden, start=1):
        nodes.append({"id": f"h{i}", "op": "linear", "features": features, "act": act, "norm": norm})
        if residual and features == width:
            skips.append({"src": nodes[-2]["id"], "dst": f"h{i}", "kind": "add"})
        width = features
    nodes.append({"id": "head", "op": "head", "classes": classes, "pool": "none"})
    return Topology.create(nodes, skips, name=name)


def resnet(
    input_shape: Sequence[int],
    stages: Sequence[tuple[int, int, int]],
    classes: int,
    *,
    stem_channels: int | None = None,
    stem_kernel: int = 3,
    shortcut: str = "zero_pad",
    residual: bool = True,
    name: str = "resnet",
) -> Topology:
    """A ResNet of basic blocks (He et al. 2016), 1-D or 2-D by ``input_shape``.

    ``stages`` lists ``(channels, blocks, stride)``; the first block of a stage takes the stride.
    ``shortcut`` aligns the skip where the shape changes: ``zero_pad`` (option A) or ``project``
    (option B); identity shortcuts elsewhere. ``residual=False`` gives the plain network.
    """
    stem = stem_channels or stages[0][0]
    nodes: list[Dict] = [
        {"id": "x", "op": "input", "shape": list(input_shape)},
        {"id": "stem", "op": "conv", "channels": stem, "kernel": stem_kernel},
    ]
    skips: list[Dict] = []
    width = stem
    for s, (channels, blocks, stride) in enumerate(stages, start=1):
        for b in range(1, blocks + 1):
            block_stride = stride if b == 1 else 1
            node_id = f"s{s}b{b}"
            nodes.append({"id": node_id, "op": "basic", "channels": channels, "stride": block_stride})
            if residual:
                changes = block_stride != 1 or channels != width
                skips.append(
                    {
                        "src": nodes[-2]["id"],
                        "dst": node_id,
                        "kind": "add",
                        "align": shortcut if changes else "identity",
                    }
                )
            width = channels
    nodes.append({"id": "head", "op": "head", "classes": classes, "pool": "avg"})
    return Topology.create(nodes, skips, name=name)


def cifar_resnet(
    depth: int,
    *,
    shortcut: str = "zero_pad",
    residual: bool = True,
    name: str | None = None,
    input_shape: Sequence[int] = (3, 32, 32),
    classes: int = 10,
) -> Topology:
    """The CIFAR-10 ResNets of He et al. (2016, sec. 4.2): depth ``6n+2``, 16-32-64 channels.

    ``input_shape`` and ``classes`` put the same network on other data (1-D signals included)."""
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    return resnet(
        input_shape,
        [(16, n, 1), (32, n, 2), (64, n, 2)],
        classes,
        shortcut=shortcut,
        residual=residual,
        name=name or f"resnet{depth}",
    )


def densenet(
    input_shape: Sequence[int],
    block_layers: Sequence[int],
    classes: int,
    *,
    growth: int = 12,
    bottleneck: int = 4,
    compression: float = 0.5,
    dense: bool = True,
    name: str = "densenet",
) -> Topology:
    """DenseNet-BC (Huang et al. 2017): stem conv with ``2*growth`` channels, dense blocks whose
    layers see the concatenation of every earlier feature map in the block, and compressing
    transitions between blocks. ``dense=False`` drops the concat edges (a plain chain)."""
    nodes: list[Dict] = [
        {"id": "x", "op": "input", "shape": list(input_shape)},
        {"id": "stem", "op": "conv", "channels": 2 * growth, "norm": "none", "act": "none"},
    ]
    skips: list[Dict] = []
    block_input, width = "stem", 2 * growth
    for d, layers in enumerate(block_layers, start=1):
        members = [block_input]
        for i in range(1, layers + 1):
            node_id = f"d{d}l{i}"
            nodes.append({"id": node_id, "op": "dense", "growth": growth, "bottleneck": bottleneck})
            members.append(node_id)
        last = d == len(block_layers)
        width = width + layers * growth if dense else growth
        if last:
            nodes.append({"id": "head", "op": "head", "classes": classes, "pool": "avg", "preact": True})
        else:
            width = int(width * compression)
            nodes.append({"id": f"t{d}", "op": "transition", "channels": width})
        if dense:
            # Every member feeds every later member of the block and the node after it.
            targets = [*members[1:], nodes[-1]["id"]]
            for j, dst in enumerate(targets, start=1):
                skips += [{"src": src, "dst": dst, "kind": "concat"} for src in members[: j - 1]]
        block_input = nodes[-1]["id"]
    return Topology.create(nodes, skips, name=name)


def unet(
    input_shape: Sequence[int],
    classes: int,
    *,
    base: int = 16,
    levels: int = 2,
    skip_kind: str = "concat",
    name: str = "unet",
) -> Topology:
    """U-Net (Ronneberger et al. 2015): per level two convs then max-pool down, a bottleneck, and
    per level a transposed-conv upsample and two convs, whose first takes the encoder's features
    through a skip edge of ``skip_kind`` (``concat`` as in the paper, or ``off``)."""
    nodes: list[Dict] = [{"id": "x", "op": "input", "shape": list(input_shape)}]
    skips: list[Dict] = []
    for level in range(1, levels + 1):
        channels = base * 2 ** (level - 1)
        nodes += [
            {"id": f"e{level}a", "op": "conv", "channels": channels},
            {"id": f"e{level}b", "op": "conv", "channels": channels},
            {"id": f"p{level}", "op": "pool", "size": 2},
        ]
    bottom = base * 2**levels
    nodes += [{"id": "m1", "op": "conv", "channels": bottom}, {"id": "m2", "op": "conv", "channels": bottom}]
    for level in range(levels, 0, -1):
        channels = base * 2 ** (level - 1)
        nodes += [
            {"id": f"u{level}", "op": "up", "channels": channels},
            {"id": f"d{level}a", "op": "conv", "channels": channels},
            {"id": f"d{level}b", "op": "conv", "channels": channels},
        ]
        skips.append({"src": f"e{level}b", "dst": f"d{level}a", "kind": skip_kind})
    nodes.append({"id": "out", "op": "seghead", "classes": classes})
    return Topology.create(nodes, skips, name=name)


FAMILIES: dict[str, Callable[..., Topology]] = {
    name: value
    for name, value in list(globals().items())
    if inspect.isfunction(value) and value.__module__ == __name__ and not name.startswith("_")
}
"""Every family builder by name (a study file's ``backbone.family``)."""
