"""Named topologies: the classic architectures, exactly as published, and the project's baselines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from skipsearch.topology import families
from skipsearch.topology._graph import Topology, TopologyError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    build: Callable[[], Topology]


def _cifar(depth: int, **kwargs: object) -> Callable[[], Topology]:
    return lambda: families.cifar_resnet(depth, **kwargs)  # type: ignore[arg-type]


_PRESETS = [
    Preset("resnet20", "CIFAR ResNet-20, option-A shortcuts (He et al. 2016), 0.27M params", _cifar(20)),
    Preset("resnet32", "CIFAR ResNet-32, option-A shortcuts, 0.46M params", _cifar(32)),
    Preset("resnet44", "CIFAR ResNet-44, option-A shortcuts, 0.66M params", _cifar(44)),
    Preset("resnet56", "CIFAR ResNet-56, option-A shortcuts, 0.85M params", _cifar(56)),
    Preset("resnet110", "CIFAR ResNet-110, option-A shortcuts, 1.7M params", _cifar(110)),
    Preset(
        "resnet20-proj",
        "CIFAR ResNet-20 with projection (option-B) shortcuts where the shape changes",
        _cifar(20, shortcut="project", name="resnet20-proj"),
    ),
    Preset(
        "plain20",
        "ResNet-20's backbone without any skip (He et al.'s plain-20)",
        _cifar(20, residual=False, name="plain20"),
    ),
    Preset(
        "densenet-bc-100",
        "DenseNet-BC, L=100, k=12, for CIFAR-10 (Huang et al. 2017), 0.77M params",
        lambda: families.densenet((3, 32, 32), [16, 16, 16], 10, growth=12, name="densenet-bc-100"),
    ),
    Preset(
        "unet-small",
        "Two-level U-Net for 1x32x32 images and 3 classes, two concat skips",
        lambda: families.unet((1, 32, 32), 3, base=16, levels=2, name="unet-small"),
    ),
    Preset(
        "mlp-deep",
        "20 hidden tanh layers of width 128 on mnist1d (40 features), identity skips",
        lambda: families.mlp(40, [128] * 20, 10, act="tanh", name="mlp-deep"),
    ),
    Preset(
        "mlp-deep-plain",
        "mlp-deep without skips: gradients vanish",
        lambda: families.mlp(40, [128] * 20, 10, act="tanh", residual=False, name="mlp-deep-plain"),
    ),
    Preset(
        "cnn1d-mnist1d",
        "1-D residual CNN for mnist1d (1x40 signals): 32-64-128 channels, 6 basic blocks",
        lambda: families.resnet(
            (1, 40),
            [(32, 2, 1), (64, 2, 2), (128, 2, 2)],
            10,
            stem_kernel=5,
            shortcut="project",
            name="cnn1d-mnist1d",
        ),
    ),
]

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}
"""Every preset by name."""


def get_preset(name: str) -> Topology:
    if name not in PRESETS:
        raise TopologyError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name].build()
