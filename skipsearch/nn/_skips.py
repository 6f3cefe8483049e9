"""Modules for additive skip edges: shape alignment and the learned scalings.

The classes use nothing but torch, so :mod:`skipsearch.export` copies their source into the
standalone model files it writes.

An additive edge contributes ``gate * align(x)`` to its destination's output, where ``align`` is
one of :class:`ZeroPadShortcut` (ResNet option A), :class:`ProjectionShortcut` (option B) or
nothing (identity), and ``gate`` is 1 (``add``), a learned scalar (``scalar``), an input-dependent
sigmoid gate (``gated``) or a learnable on/off switch (``switch``).
"""

from __future__ import annotations

import torch
from torch import nn

from skipsearch.nn._blocks import batch_norm, conv_nd
from skipsearch.topology import Shape, SkipEdge


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


def make_skip(edge: SkipEdge, src: Shape, dst: Shape) -> nn.Module | None:
    """The module an additive edge calls on its source; ``None`` for a plain identity add."""
    align = make_alignment(edge, src, dst)
    if edge.kind == "add":
        return align
    align = align if align is not None else nn.Identity()
    assert edge.init is not None
    if edge.kind == "scalar":
        return ScalarSkip(align, edge.init)
    if edge.kind == "gated":
        return GatedSkip(align, dst[0], len(dst) - 1, edge.init)
    if edge.kind == "switch":
        return SwitchSkip(align, edge.init)
    raise ValueError(f"skip edge {edge.src}->{edge.dst}: kind {edge.kind!r} is not additive")


def switch_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of the open fractions of every switch edge (0 when the model has none)."""
    values = [m.value for m in model.modules() if isinstance(m, SwitchSkip)]
    return torch.stack(values).sum() if values else torch.zeros(())
