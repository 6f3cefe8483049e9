"""Modules for additive skip edges: shape alignment and the learned scalings.

The classes use nothing but torch, so :mod:`skipsearch.export` copies their source into the
standalone model files it writes.

An additive edge contributes ``gate * align(x)`` to its destination's output, where ``align`` is
one of :class:`ZeroPadShortcut` (ResNet option A), :class:`ProjectionShortcut` (option B) or
nothing (identity), and ``gate`` is 1 (``add``), a learned scalar (``scalar``), an input-dependent
sigmoid gate (``gated``) or a learnable on/off switch (``switch``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from skipsearch.nn._blocks import batch_norm, conv_nd
from skipsearch.topology import EDGE_KINDS, Shape, SkipEdge


class ZeroPadShortcut(nn.Module):
    """ResNet option A: subsample by ``stride``, then pad channels with zeros on both sides.

    Padding splits evenly (front gets the smaller half), as in the reference CIFAR ResNet code.
    """

    def __init__(self, stride: int, pad_front: int, pad_back: int, spatial_dims: int) -> None:
        super().__init__()
        self.stride, self.pad_front, self.pad_back = stride, pad_front, pad_back
        self.spatial_dims = spatial_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride] if self.spatial_dims == 1 else x[:, :, :: self.stride, :: self.stride]
        pad = [0, 0] * self.spatial_dims + [self.pad_front, self.pad_back]
        return nn.functional.pad(x, pad)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad=({self.pad_front}, {self.pad_back})"


class ProjectionShortcut(nn.Sequential):
    """ResNet option B: a strided 1x1 convolution (a linear map for vectors) and BatchNorm."""

    def __init__(self, src: Shape, dst: Shape) -> None:
        dims = len(src) - 1
        if dims == 0:
            super().__init__(nn.Linear(src[0], dst[0], bias=False), nn.BatchNorm1d(dst[0]))
        else:
            stride = src[1] // dst[1]
            super().__init__(conv_nd(dims)(src[0], dst[0], 1, stride, bias=False), batch_norm(dims, dst[0]))


def make_alignment(edge: SkipEdge, src: Shape, dst: Shape) -> nn.Module | None:
    """The module that maps the source shape to the destination's; ``None`` for identity."""
    if edge.align == "identity":
        return None
    if edge.align == "project":
        return ProjectionShortcut(src, dst)
    stride = src[1] // dst[1] if len(src) > 1 else 1
    pad = dst[0] - src[0]
    return ZeroPadShortcut(stride, pad // 2, pad - pad // 2, len(src) - 1)


class ScalarSkip(nn.Module):
    """``a * x`` with a learned scalar ``a`` (ReZero-style when initialised at 0)."""

    def __init__(self, align: nn.Module, init: float) -> None:
        super().__init__()
        self.align = align
        self.scale = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.align(x)


class GatedSkip(nn.Module):
    """``sigmoid(W pool(x) + b) * x``: a per-channel gate computed from the (aligned) input.

    For feature maps the gate reads the global average of each channel (squeeze-excitation
    style); for vectors it reads the vector itself (highway-network style). ``init`` is the
    initial bias ``b``; ``W`` starts at zero, so every gate starts at ``sigmoid(init)``.
    """

    def __init__(self, align: nn.Module, channels: int, spatial_dims: int, init: float) -> None:
        super().__init__()
        self.align = align
        self.spatial_dims = spatial_dims
        self.gate = nn.Linear(channels, channels)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.align(x)
        if self.spatial_dims == 0:
            return torch.sigmoid(self.gate(x)) * x
        pooled = x.flatten(2).mean(-1)
        g = torch.sigmoid(self.gate(pooled))
        # A list, not ``*`` unpacking, so that the model stays scriptable by TorchScript.
        return g.view([g.shape[0], g.shape[1]] + [1] * self.spatial_dims) * x


class SwitchSkip(nn.Module):
    """A deactivable skip: ``sigmoid(logit) * x`` with one learnable ``logit``.

    The training loop adds ``penalty * sum of switch gates`` (:func:`switch_penalty`) to the loss
    so that unneeded switches turn off; :func:`skipsearch.nn.resolve_switches` then removes the
    switches below a threshold from the topology and keeps the others as fixed scalars.
    """

    def __init__(self, align: nn.Module, init: float) -> None:
        super().__init__()
        self.align = align
        self.logit = nn.Parameter(torch.tensor(float(init)))

    @property
    def value(self) -> torch.Tensor:
        return torch.sigmoid(self.logit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logit) * self.align(x)


@dataclass(frozen=True)
class SkipBuilder:
    """How an additive edge kind becomes a module, and how an export writes that module again.

    ``build(aligned, edge, dst)`` returns the module the edge calls on its source, given the
    alignment module ``aligned`` (``None`` for identity) and the destination's output shape, or
    ``None`` for a plain sum of the aligned source. ``module`` is the class it builds (its source
    is copied into exported model files, so it may use nothing but torch), and
    ``arguments(module, edge)`` the constructor's arguments after the alignment, as Python source.
    """

    build: Callable[[nn.Module | None, SkipEdge, Shape], nn.Module | None]
    module: type[nn.Module] | None = None
    arguments: Callable[[Any, SkipEdge], list[str]] = lambda module, edge: []


def _init(edge: SkipEdge) -> float:
    assert edge.init is not None  # validation fills in the kind's default
    return edge.init


def _or_identity(aligned: nn.Module | None) -> nn.Module:
    return aligned if aligned is not None else nn.Identity()


def _init_argument(edge: SkipEdge) -> str:
    return f"init={float(edge.init if edge.init is not None else 0.0)!r}"


SKIP_BUILDERS: dict[str, SkipBuilder] = {
    "add": SkipBuilder(lambda aligned, edge, dst: aligned),
    "scalar": SkipBuilder(
        lambda aligned, edge, dst: ScalarSkip(_or_identity(aligned), _init(edge)),
        ScalarSkip,
        lambda m, edge: [_init_argument(edge)],
    ),
    "gated": SkipBuilder(
        lambda aligned, edge, dst: GatedSkip(_or_identity(aligned), dst[0], len(dst) - 1, _init(edge)),
        GatedSkip,
        lambda m, edge: [str(m.gate.in_features), f"spatial_dims={m.spatial_dims}", _init_argument(edge)],
    ),
    "switch": SkipBuilder(
        lambda aligned, edge, dst: SwitchSkip(_or_identity(aligned), _init(edge)),
        SwitchSkip,
        lambda m, edge: [_init_argument(edge)],
    ),
}
"""Additive edge kind -> its :class:`SkipBuilder`; the other half of
:data:`skipsearch.topology.EDGE_KINDS`. The module of a ``switchable`` kind has a ``value``: the
open fraction the switch penalty sums."""


def make_skip(edge: SkipEdge, src: Shape, dst: Shape) -> nn.Module | None:
    """The module an additive edge calls on its source; ``None`` for a plain identity add."""
    builder = SKIP_BUILDERS.get(edge.kind)
    if builder is None or not edge.additive:
        raise ValueError(f"skip edge {edge.src}->{edge.dst}: kind {edge.kind!r} has no additive module builder")
    return builder.build(make_alignment(edge, src, dst), edge, dst)


def switch_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The modules of ``switchable`` edge kinds in ``model``, by ``src__dst`` name."""
    types = tuple(
        b.module
        for kind, b in SKIP_BUILDERS.items()
        if b.module is not None and kind in EDGE_KINDS and EDGE_KINDS[kind].switchable
    )
    return {name.removeprefix("skips."): m for name, m in model.named_modules() if isinstance(m, types)}


def switch_value(module: nn.Module) -> torch.Tensor:
    """The open fraction of a switchable kind's module (its ``value``), differentiable."""
    value = module.value
    assert isinstance(value, torch.Tensor)
    return value


def switch_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of the open fractions of every switch edge (0 when the model has none)."""
    values = [switch_value(m) for m in switch_modules(model).values()]
    return torch.stack(values).sum() if values else torch.zeros(())
