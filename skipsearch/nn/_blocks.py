"""PyTorch modules for the block types of :mod:`skipsearch.topology._ops`.

Each builder takes the block's merged input shape and its parameters and returns a plain
``nn.Sequential`` of standard layers, so state-dict keys read like a hand-written model's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from skipsearch.topology import Shape

ACTIVATION_MODULES: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
}

ACTIVATION_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "gelu": nn.functional.gelu,
    "sigmoid": torch.sigmoid,
    "silu": nn.functional.silu,
}
"""Functional forms, used for a node's ``post`` activation in the generated forward code."""


def conv_nd(dims: int) -> type[nn.Conv1d] | type[nn.Conv2d]:
    return nn.Conv1d if dims == 1 else nn.Conv2d


def batch_norm(dims: int, channels: int) -> nn.Module:
    """BatchNorm for a feature map of ``dims`` spatial dimensions (0 means a vector)."""
    return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)


def _act(name: str, inplace: bool = True) -> list[nn.Module]:
    """The activation as a list of zero or one module; in place only where the input is private."""
    if name == "relu":
        return [nn.ReLU(inplace=inplace)]
    return [] if name == "none" else [ACTIVATION_MODULES[name]()]


class LinearAct(nn.Linear):
    """``act(W x + b)`` as one module: a linear block without a norm.

    One module call per layer, as in a hand-written MLP (``torch.tanh(layer(h))``), instead of a
    ``Sequential`` of a linear and an activation module: in small MLPs, where a train step is mostly
    dispatch, those two extra calls per layer cost a few percent.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, act: str = "none") -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.linear(x, self.weight, self.bias)
        if self.act == "relu":
            return torch.relu(y)
        if self.act == "tanh":
            return torch.tanh(y)
        if self.act == "gelu":
            return nn.functional.gelu(y)
        if self.act == "sigmoid":
            return torch.sigmoid(y)
        if self.act == "silu":
            return nn.functional.silu(y)
        return y

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, act={self.act!r}"


def _linear(shape: Shape, p: dict[str, Any]) -> nn.Module:
    if p["norm"] == "none":
        return LinearAct(shape[0], p["features"], bias=p["bias"], act=p["act"])
    layers: list[nn.Module] = [nn.Linear(shape[0], p["features"], bias=p["bias"])]
    if p["norm"] == "batch":
        layers.append(nn.BatchNorm1d(p["features"]))
    elif p["norm"] == "layer":
        layers.append(nn.LayerNorm(p["features"]))
    return nn.Sequential(*layers, *_act(p["act"]))


def _conv(shape: Shape, p: dict[str, Any]) -> nn.Module:
    dims, k = len(shape) - 1, p["kernel"]
    conv = conv_nd(dims)(shape[0], p["channels"], k, p["stride"], k // 2, bias=p["bias"])
    use_norm = p["norm"] == "batch"
    if p["preact"]:
        norm = [batch_norm(dims, shape[0])] if use_norm else []
        # Without a norm first, the activation would overwrite the input other edges read.
        return nn.Sequential(*norm, *_act(p["act"], inplace=use_norm), conv)
    norm = [batch_norm(dims, p["channels"])] if use_norm else []
    return nn.Sequential(conv, *norm, *_act(p["act"]))


def _basic(shape: Shape, p: dict[str, Any]) -> nn.Module:
    dims, conv, c = len(shape) - 1, conv_nd(len(shape) - 1), p["channels"]
    return nn.Sequential(
        conv(shape[0], c, 3, p["stride"], 1, bias=False),
        batch_norm(dims, c),
        nn.ReLU(inplace=True),
        conv(c, c, 3, 1, 1, bias=False),
        batch_norm(dims, c),
    )


def _dense(shape: Shape, p: dict[str, Any]) -> nn.Module:
    dims, conv, g, b = len(shape) - 1, conv_nd(len(shape) - 1), p["growth"], p["bottleneck"]
    if b == 0:
        return nn.Sequential(batch_norm(dims, shape[0]), nn.ReLU(inplace=True), conv(shape[0], g, 3, 1, 1, bias=False))
    return nn.Sequential(
        batch_norm(dims, shape[0]),
        nn.ReLU(inplace=True),
        conv(shape[0], b * g, 1, bias=False),
        batch_norm(dims, b * g),
        nn.ReLU(inplace=True),
        conv(b * g, g, 3, 1, 1, bias=False),
    )


def _transition(shape: Shape, p: dict[str, Any]) -> nn.Module:
    dims = len(shape) - 1
    pool = nn.AvgPool2d(p["pool"]) if dims == 2 else nn.AvgPool1d(p["pool"])
    return nn.Sequential(
        batch_norm(dims, shape[0]), nn.ReLU(inplace=True), conv_nd(dims)(shape[0], p["channels"], 1, bias=False), pool
    )


def _pool(shape: Shape, p: dict[str, Any]) -> nn.Module:
    dims, size = len(shape) - 1, p["size"]
    if p["mode"] == "max":
        return nn.MaxPool2d(size) if dims == 2 else nn.MaxPool1d(size)
    return nn.AvgPool2d(size) if dims == 2 else nn.AvgPool1d(size)


def _up(shape: Shape, p: dict[str, Any]) -> nn.Module:
    dims, f = len(shape) - 1, p["factor"]
    cls = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose1d
    return nn.Sequential(cls(shape[0], p["channels"], f, f))


def _head(shape: Shape, p: dict[str, Any]) -> nn.Module:
    dims = len(shape) - 1
    layers: list[nn.Module] = []
    if p["preact"]:
        layers += [batch_norm(dims, shape[0]), nn.ReLU(inplace=True)]
    features = shape[0]
    if p["pool"] == "avg":
        layers += [nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool1d(1), nn.Flatten()]
    elif p["pool"] == "flatten" or dims > 0:
        layers.append(nn.Flatten())
        features = 1
        for n in shape:
            features *= n
    return nn.Sequential(*layers, nn.Linear(features, p["classes"]))


def _seghead(shape: Shape, p: dict[str, Any]) -> nn.Module:
    return nn.Sequential(conv_nd(len(shape) - 1)(shape[0], p["classes"], 1))


BLOCK_BUILDERS: dict[str, Callable[[Shape, dict[str, Any]], nn.Module]] = {
    "flatten": lambda shape, p: nn.Flatten(),
    "linear": _linear,
    "conv": _conv,
    "basic": _basic,
    "dense": _dense,
    "transition": _transition,
    "pool": _pool,
    "up": _up,
    "head": _head,
    "seghead": _seghead,
    # Not in place: the input may also feed skip edges.
    "activation": lambda shape, p: ACTIVATION_MODULES[p["fn"]](),
    "dropout": lambda shape, p: nn.Dropout(p["p"]),
}
"""Op name -> ``builder(merged_input_shape, params) -> nn.Module``."""
