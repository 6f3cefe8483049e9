"""Hand-written reference networks, the classic way, to check what ``build_model`` compiles.

Each class is written the way the architecture is usually written by hand, not derived from a
topology: the CIFAR ResNet as in Yerlan Idelbayev's reference implementation
(github.com/akamaster/pytorch_resnet_cifar10, option-A shortcuts through a ``LambdaLayer``), the
DenseNet-BC as in torchvision's ``densenet.py`` (``_DenseLayer``/``_DenseBlock``/``_Transition``)
with the CIFAR stem of Huang et al. (one 3x3 convolution with ``2k`` channels), and a residual tanh
MLP. Their parameters and buffers come in the same order as the built model's, so
:func:`load_by_order` pairs them by position.

Only torch is imported, so benchmarks can load this file by path.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

# -- CIFAR ResNet (He et al. 2016, sec. 4.2), akamaster style -------------------------------------


class LambdaLayer(nn.Module):
    def __init__(self, lambd: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lambd(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, option: str = "A") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option == "A":
                # Subsample, then pad planes // 4 zero channels on each side (16 -> 32 -> 64).
                self.shortcut = LambdaLayer(
                    lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)
                )
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class CifarResNet(nn.Module):
    """``ResNet(BasicBlock, [n, n, n])``: depth ``6n + 2``, 16-32-64 channels, 10 classes."""

    def __init__(self, depth: int = 20, num_classes: int = 10, option: str = "A") -> None:
        super().__init__()
        n = (depth - 2) // 6
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, n, 1, option)
        self.layer2 = self._make_layer(32, n, 2, option)
        self.layer3 = self._make_layer(64, n, 2, option)
        self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, planes: int, num_blocks: int, stride: int, option: str) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s, option))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.linear(out)


# -- DenseNet-BC (Huang et al. 2017), torchvision style -------------------------------------------


class _DenseLayer(nn.Module):
    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)

    def forward(self, prev_features: list[torch.Tensor]) -> torch.Tensor:
        concated_features = torch.cat(prev_features, 1)
        bottleneck_output = self.conv1(self.relu1(self.norm1(concated_features)))
        return self.conv2(self.relu2(self.norm2(bottleneck_output)))


class _DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, init_features: torch.Tensor) -> torch.Tensor:
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNetBC(nn.Module):
    """DenseNet-BC for CIFAR: a 3x3 stem with ``2 * growth_rate`` channels, dense blocks of
    bottleneck layers, transitions compressing by ``compression``, BN-ReLU-avgpool-linear head."""

    def __init__(
        self,
        growth_rate: int = 12,
        block_config: tuple[int, ...] = (16, 16, 16),
        bn_size: int = 4,
        compression: float = 0.5,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        num_features = 2 * growth_rate
        self.features = nn.Sequential(
            OrderedDict([("conv0", nn.Conv2d(3, num_features, kernel_size=3, stride=1, padding=1, bias=False))])
        )
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(num_layers, num_features, bn_size, growth_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                trans = _Transition(num_features, int(num_features * compression))
                self.features.add_module(f"transition{i + 1}", trans)
                num_features = int(num_features * compression)
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        out = F.relu(features, inplace=True)
        out = F.adaptive_avg_pool2d(out, (1, 1))
        out = torch.flatten(out, 1)
        return self.classifier(out)


# -- Residual tanh MLP ------------------------------------------------------------------------------


class ResidualTanhMLP(nn.Module):
    """``h1 = tanh(W1 x + b1)``, ``h_i = tanh(W_i h_{i-1} + b_i) + h_{i-1}`` for ``i = 2..depth``,
    then a linear classifier: the ``mlp-deep`` preset with ``residual=True``."""

    def __init__(
        self, in_features: int = 40, width: int = 128, depth: int = 20, num_classes: int = 10, residual: bool = True
    ) -> None:
        super().__init__()
        self.residual = residual
        self.first = nn.Linear(in_features, width)
        self.hidden = nn.ModuleList([nn.Linear(width, width) for _ in range(depth - 1)])
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.first(x))
        if self.residual:  # one branch outside the loop: the benchmark times this model's steps
            for layer in self.hidden:
                h = torch.tanh(layer(h)) + h
        else:
            for layer in self.hidden:
                h = torch.tanh(layer(h))
        return self.classifier(h)


REFERENCES: dict[str, Callable[[], nn.Module]] = {
    "resnet20": lambda: CifarResNet(20),
    "resnet20-proj": lambda: CifarResNet(20, option="B"),
    "densenet-bc-100": lambda: DenseNetBC(12, (16, 16, 16)),
    "mlp-deep": lambda: ResidualTanhMLP(40, 128, 20, 10),
    "mlp-deep-plain": lambda: ResidualTanhMLP(40, 128, 20, 10, residual=False),
}
"""Preset name -> constructor of its hand-written twin."""


def load_by_order(src: nn.Module | Mapping[str, torch.Tensor], dst: nn.Module) -> None:
    """Copies every parameter and buffer of ``src`` (a module or a state dict) into ``dst``,
    pairing state-dict entries by position.

    Raises ``AssertionError`` naming the first pair whose shapes differ, or if the counts differ.
    """
    src_state = src.state_dict() if isinstance(src, nn.Module) else src
    dst_state = dst.state_dict()
    assert len(src_state) == len(dst_state), f"{len(src_state)} entries in the source, {len(dst_state)} in dst"
    for (src_key, src_value), (dst_key, dst_value) in zip(src_state.items(), dst_state.items(), strict=True):
        assert src_value.shape == dst_value.shape, (
            f"{src_key} {tuple(src_value.shape)} != {dst_key} {tuple(dst_value.shape)}"
        )
    dst.load_state_dict(dict(zip(dst_state, src_state.values(), strict=True)))


def randomize_norms(model: nn.Module, generator: torch.Generator) -> None:
    """Gives every BatchNorm non-default affine parameters and running statistics, so that a
    mismatched pairing (or an ignored buffer) changes the outputs."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.2 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
