"""Block types (ops) a topology node may have: their parameters and output shapes.

This module is pure Python: it knows what each block computes only as far as shapes go, so the
topology layer can validate a graph without torch. :mod:`skipsearch.nn` maps each op to a module.

Shapes exclude the batch dimension: ``(C,)`` for feature vectors, ``(C, L)`` for 1-D signals and
``(C, H, W)`` for images.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Shape = tuple[int, ...]

ACTIVATIONS = ("none", "relu", "tanh", "gelu", "sigmoid", "silu")
NORMS = ("none", "batch", "layer")


class ShapeError(ValueError):
    """A node cannot take the input shape it is given."""


@dataclass(frozen=True)
class Param:
    """One parameter of an op: its type, default (``None`` means required) and allowed values."""

    type: type
    default: Any = None
    choices: tuple[Any, ...] | None = None
    minimum: int | None = None

    def check(self, name: str, value: Any) -> Any:
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"parameter {name!r} must be true or false, got {value!r}")
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"parameter {name!r} must be an integer, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"parameter {name!r} must be >= {self.minimum}, got {value}")
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"parameter {name!r} must be a number, got {value!r}")
            value = float(value)
        elif self.type is str:
            if not isinstance(value, str):
                raise ValueError(f"parameter {name!r} must be a string, got {value!r}")
        elif self.type is list:
            if not isinstance(value, list | tuple) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
            ):
                raise ValueError(f"parameter {name!r} must be a list of positive integers")
            if not 1 <= len(value) <= 3:
                raise ValueError(f"parameter {name!r} must have 1 to 3 dimensions, got {len(value)}")
            value = [int(v) for v in value]
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise ValueError(f"parameter {name!r} must be one of {allowed}; got {value!r}")
        return value


@dataclass(frozen=True)
class OpSpec:
    """What the topology layer knows about one block type."""

    name: str
    doc: str
    params: dict[str, Param]
    out_shape: Callable[[Shape, dict[str, Any]], Shape]
    weighted: bool = True
    """Whether the block has weights; only those count towards a path's length."""

    def normalize(self, params: dict[str, Any]) -> dict[str, Any]:
        """Checks ``params`` and fills in defaults; raises ``ValueError`` naming the parameter."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise ValueError(f"unknown parameter {unknown[0]!r} for op {self.name!r} (known: {known})")
        out = {}
        for key, spec in self.params.items():
            if key in params and params[key] is not None:
                out[key] = spec.check(key, params[key])
            elif spec.default is None:
                raise ValueError(f"op {self.name!r} needs parameter {key!r}")
            else:
                out[key] = spec.default
        return out


def _spatial(shape: Shape, op: str) -> Shape:
    if len(shape) not in (2, 3):
        raise ShapeError(f"op {op!r} needs a 1-D or 2-D feature map (C, L) or (C, H, W), got {shape}")
    return shape[1:]


def _strided(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _conv_shape(shape: Shape, p: dict[str, Any]) -> Shape:
    spatial = _spatial(shape, "conv")
    k, s = p["kernel"], p["stride"]
    out = tuple(_strided(n, k, s, k // 2) for n in spatial)
    if min(out) < 1:
        raise ShapeError(f"conv with stride {s} shrinks {shape} to nothing")
    return (p["channels"], *out)


def _basic_shape(shape: Shape, p: dict[str, Any]) -> Shape:
    return _conv_shape(shape, {"channels": p["channels"], "kernel": 3, "stride": p["stride"]})


def _dense_shape(shape: Shape, p: dict[str, Any]) -> Shape:
    return (p["growth"], *_spatial(shape, "dense"))


def _pooled(shape: Shape, size: int, op: str) -> Shape:
    spatial = _spatial(shape, op)
    if min(spatial) < size:
        raise ShapeError(f"op {op!r} cannot pool {shape} by {size}")
    return (shape[0], *(n // size for n in spatial))


def _transition_shape(shape: Shape, p: dict[str, Any]) -> Shape:
    return (p["channels"], *_pooled(shape, p["pool"], "transition")[1:])


def _up_shape(shape: Shape, p: dict[str, Any]) -> Shape:
    return (p["channels"], *(n * p["factor"] for n in _spatial(shape, "up")))


def _linear_shape(shape: Shape, p: dict[str, Any]) -> Shape:
    if len(shape) != 1:
        raise ShapeError(f"op 'linear' needs a feature vector (C,), got {shape}; add a 'flatten' node")
    return (p["features"],)


def _head_shape(shape: Shape, p: dict[str, Any]) -> Shape:
    if p["pool"] == "avg" and len(shape) == 1:
        raise ShapeError("head with pool 'avg' needs a feature map, got a vector; use pool 'none'")
    return (p["classes"],)


def _seghead_shape(shape: Shape, p: dict[str, Any]) -> Shape:
    return (p["classes"], *_spatial(shape, "seghead"))


def _dropout_shape(shape: Shape, p: dict[str, Any]) -> Shape:
    if not 0.0 <= p["p"] < 1.0:
        raise ShapeError(f"dropout probability must be in [0, 1), got {p['p']}")
    return shape


def _act(default: str) -> Param:
    return Param(str, default, ACTIVATIONS)


OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in [
        OpSpec(
            "input",
            "The network input; ``shape`` excludes the batch dimension.",
            {"shape": Param(list)},
            lambda shape, p: tuple(p["shape"]),
            weighted=False,
        ),
        OpSpec(
            "flatten",
            "Flattens a feature map into a vector.",
            {},
            lambda shape, p: (math.prod(shape),),
            weighted=False,
        ),
        OpSpec(
            "linear",
            "Fully connected layer: act(norm(W x + b)).",
            {
                "features": Param(int, minimum=1),
                "act": _act("relu"),
                "norm": Param(str, "none", NORMS),
                "bias": Param(bool, True),
                "post": _act("none"),
            },
            _linear_shape,
        ),
        OpSpec(
            "conv",
            "Convolution (1-D or 2-D by input rank), 'same' padding: act(norm(conv(x))), "
            "or norm-act-conv when ``preact`` is true.",
            {
                "channels": Param(int, minimum=1),
                "kernel": Param(int, 3, minimum=1),
                "stride": Param(int, 1, minimum=1),
                "act": _act("relu"),
                "norm": Param(str, "batch", ("none", "batch")),
                "preact": Param(bool, False),
                "bias": Param(bool, False),
                "post": _act("none"),
            },
            _conv_shape,
        ),
        OpSpec(
            "basic",
            "ResNet basic block body: conv3x3(stride)-BN-ReLU-conv3x3-BN; ``post`` (ReLU) "
            "applies after the additive skips are merged, as in He et al. 2016.",
            {
                "channels": Param(int, minimum=1),
                "stride": Param(int, 1, minimum=1),
                "post": _act("relu"),
            },
            _basic_shape,
        ),
        OpSpec(
            "dense",
            "DenseNet-BC layer: BN-ReLU-conv1x1(bottleneck*growth)-BN-ReLU-conv3x3(growth).",
            {
                "growth": Param(int, minimum=1),
                "bottleneck": Param(int, 4, minimum=0),
                "post": _act("none"),
            },
            _dense_shape,
        ),
        OpSpec(
            "transition",
            "DenseNet transition: BN-ReLU-conv1x1(channels)-avgpool(pool).",
            {
                "channels": Param(int, minimum=1),
                "pool": Param(int, 2, minimum=1),
                "post": _act("none"),
            },
            _transition_shape,
        ),
        OpSpec(
            "pool",
            "Max or average pooling by ``size`` in every spatial dimension.",
            {"size": Param(int, 2, minimum=1), "mode": Param(str, "max", ("max", "avg"))},
            lambda shape, p: _pooled(shape, p["size"], "pool"),
            weighted=False,
        ),
        OpSpec(
            "up",
            "Upsampling by a transposed convolution (kernel = stride = ``factor``), as in U-Net.",
            {
                "channels": Param(int, minimum=1),
                "factor": Param(int, 2, minimum=1),
                "post": _act("none"),
            },
            _up_shape,
        ),
        OpSpec(
            "head",
            "Classifier: [BN-ReLU if ``preact``] - global average pool (``pool: avg``) or flatten - linear(classes).",
            {
                "classes": Param(int, minimum=1),
                "pool": Param(str, "avg", ("avg", "flatten", "none")),
                "preact": Param(bool, False),
            },
            _head_shape,
        ),
        OpSpec(
            "seghead",
            "Per-pixel classifier for segmentation: conv1x1(classes).",
            {"classes": Param(int, minimum=1)},
            _seghead_shape,
        ),
        OpSpec(
            "activation",
            "An activation on its own, where no block before it takes it (e.g. after a pooling).",
            {"fn": Param(str, "relu", ACTIVATIONS[1:])},
            lambda shape, p: shape,
            weighted=False,
        ),
        OpSpec(
            "dropout",
            "Dropout with probability ``p`` (element-wise; identity in eval mode).",
            {"p": Param(float, 0.5)},
            _dropout_shape,
            weighted=False,
        ),
    ]
}
