"""Hand-written reference models that the compiler benchmark times the built models against.

``ResNet20`` is the CIFAR ResNet-20 of He et al. (2016) exactly as in the widely used reference
implementation by Yerlan Idelbayev (github.com/akamaster/pytorch_resnet_cifar10): option-A
shortcuts through a lambda layer, ``out += shortcut(x)`` in place, functional ReLUs. ``DeepMLP``
is what the ``mlp-deep`` preset describes, written the way one would by hand: ``h1 = tanh(W1 x)``,
then ``h_i = tanh(W_i h_{i-1}) + h_{i-1}`` for ``i = 2..20``, then a linear classifier.

Both have their parameters and buffers in the same order as the built model, so
:func:`copy_weights` can pair them up by position.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class LambdaLayer(nn.Module):
    def __init__(self, lambd: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lambd(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            # Option A: subsample, then zero-pad the channels (planes // 4 on each side).
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class ResNet20(nn.Module):
    """akamaster's ``resnet20()``: ``ResNet(BasicBlock, [3, 3, 3])``."""

    def __init__(self, num_blocks: tuple[int, int, int] = (3, 3, 3), num_classes: int = 10) -> None:
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(64, num_blocks[2], stride=2)
        self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        out = self.linear(out)
        return out


class DeepMLP(nn.Module):
    """The ``mlp-deep`` preset by hand: 20 tanh layers of width 128, identity skips from layer 2 on."""

    def __init__(self, in_features: int = 40, width: int = 128, depth: int = 20, classes: int = 10) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.first(x))
        for layer in self.hidden:
            h = torch.tanh(layer(h)) + h
        return self.head(h)


class DeepMLPModules(nn.Module):
    """``mlp-deep`` by hand from the same modules as the built blocks: ``Sequential(Linear, Tanh)``.

    Not the benchmark's reference: it tells how much of the gap to :class:`DeepMLP` comes from
    the block modules themselves (a ``Sequential`` and a ``Tanh`` call per layer) rather than
    from the generated forward.
    """

    def __init__(self, in_features: int = 40, width: int = 128, depth: int = 20, classes: int = 10) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.Linear(in_features, width), nn.Tanh())
        self.hidden = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.Tanh()) for _ in range(depth - 1))
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        for block in self.hidden:
            h = block(h) + h
        return self.head(h)


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copies every parameter and buffer of ``src`` into ``dst``, pairing them by position.

    Raises ``ValueError`` if the two models do not have the same tensors in the same order.
    """
    src_state, dst_state = src.state_dict(), dst.state_dict()
    if len(src_state) != len(dst_state):
        raise ValueError(f"{len(src_state)} tensors in the source, {len(dst_state)} in the destination")
    for (src_key, src_value), (dst_key, dst_value) in zip(src_state.items(), dst_state.items(), strict=True):
        if src_value.shape != dst_value.shape:
            raise ValueError(f"{src_key} {tuple(src_value.shape)} != {dst_key} {tuple(dst_value.shape)}")
    dst.load_state_dict(dict(zip(dst_state, src_state.values(), strict=True)))
