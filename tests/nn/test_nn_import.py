"""``import_model`` round-trips plain PyTorch models: same parameter count, same outputs for the
same weights (eval and train mode), and one clear line for what it cannot express."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from cli_runner import invoke
from import_models import MODELS, TinyResNet
from reference_models import CifarResNet, randomize_norms
from torch import nn

from skipsearch.nn import ModelImportError, build_model, count_params, import_model, transfer_weights
from skipsearch.topology import SkipEdge, get_preset, load_topology, save_topology

ATOL = 1e-5


def _randomized(make: Callable[[], nn.Module]) -> nn.Module:
    """A fresh model whose BatchNorms have non-default statistics and affine weights, so that a
    wrong pairing of weights, or an ignored buffer, changes the outputs."""
    torch.manual_seed(0)
    model = make()
    randomize_norms(model, torch.Generator().manual_seed(1))
    return model


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_gives_equal_parameters_and_outputs(name: str, tmp_path: Path) -> None:
    make, shape = MODELS[name]
    source = _randomized(make)
    topology = import_model(source, shape)
    # Through the file, as `skipsearch import-model` writes it.
    save_topology(topology, tmp_path / "net.json")
    built = build_model(load_topology(tmp_path / "net.json"))
    assert count_params(built) == count_params(source)
    transfer_weights(source, built)
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(2))
    source.eval()
    built.eval()
    with torch.no_grad():
        torch.testing.assert_close(built(x), source(x), atol=ATOL, rtol=0)


def test_train_mode_steps_match_too() -> None:
    """Batch statistics, running-stat updates and gradients: the built ResNet trains as the source does."""
    source = _randomized(TinyResNet)
    built = build_model(import_model(source, (3, 16, 16)))
    transfer_weights(source, built)
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    source.train()
    built.train()
    expected, actual = source(x), built(x)
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)
    expected.square().sum().backward()
    actual.square().sum().backward()
    torch.testing.assert_close(built.blocks.fc[-1].weight.grad, source.fc.weight.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(built.blocks.layer1_0[1].running_mean, source.layer1[0].bn1.running_mean)


def test_option_a_cifar_resnet_imports_as_the_preset() -> None:
    """The hand-written CIFAR ResNet-20 (zero-padding shortcuts by slicing, akamaster style) is the
    ``resnet20`` preset: the same canonical topology, and the same outputs for the same weights."""
    source = _randomized(lambda: CifarResNet(20))
    topology = import_model(source, (3, 32, 32))
    assert topology.hash == get_preset("resnet20").hash
    assert [e.align for e in topology.skips].count("zero_pad") == 2
    built = build_model(topology)
    transfer_weights(source, built)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    source.eval()
    built.eval()
    with torch.no_grad():
        torch.testing.assert_close(built(x), source(x), atol=ATOL, rtol=0)


def test_structure_of_an_imported_resnet() -> None:
    topology = import_model(TinyResNet(), (3, 16, 16), name="tiny-resnet")
    assert [(n.id, n.op) for n in topology.nodes] == [
        ("x", "input"),
        ("conv1", "conv"),
        ("layer1_0", "basic"),
        ("layer1_1", "basic"),
        ("layer2_0", "basic"),
        ("layer2_1", "basic"),
        ("fc", "head"),
    ]
    assert topology.node("fc").params["pool"] == "avg"
    assert [(e.src, e.dst, e.label) for e in topology.skips] == [
        ("conv1", "layer1_0", "add/identity"),
        ("layer1_0", "layer1_1", "add/identity"),
        ("layer1_1", "layer2_0", "add/project"),
        ("layer2_0", "layer2_1", "add/identity"),
    ]
    assert topology.node("layer2_0").params == {"channels": 16, "stride": 2, "post": "relu"}


def test_weights_load_into_a_model_with_other_skips() -> None:
    """A search changes the skips: the blocks still take the source's weights; new skip modules
    keep their own (``strict=False``) or make a strict transfer fail, naming them."""
    source = _randomized(TinyResNet)
    topology = import_model(source, (3, 16, 16))
    gated = SkipEdge("conv1", "layer1_1", "gated", "identity", 0.0)
    searched = build_model(topology.with_skips([*topology.skips[1:], gated]))
    with pytest.raises(ValueError, match=r"no weights for .skips\.conv1__layer1_1"):
        transfer_weights(source, searched)
    transfer_weights(source.state_dict(), searched, strict=False)
    torch.testing.assert_close(searched.blocks.conv1[0].weight, source.conv1.weight)
    torch.testing.assert_close(searched.skips.layer1_1__layer2_0[0].weight, source.layer2[0].downsample[0].weight)


class _Option(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Option A, but with all the zero channels in front: not what ZeroPadShortcut computes.
        return self.conv(x) + nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 4, 0))


@pytest.mark.parametrize(
    ("model", "shape", "message"),
    [
        (
            nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(), nn.Linear(8, 2)),
            (4,),
            "layer '1' (LeakyReLU): not a supported",
        ),
        (nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten()), (1, 10), "layer '0' (Conv1d): padding"),
        (nn.Sequential(nn.Linear(4, 4)), (3, 5), "cannot take inputs of shape (3, 5)"),
        (nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)), (4,), "layer '0' (BatchNorm1d): a BatchNorm must follow"),
        (nn.LSTM(3, 3), (3,), "cannot trace LSTM"),
        (_Option(), (4, 8, 8), "add (operator.add): a residual sum needs a shortcut that is the identity"),
        (nn.Sequential(nn.Flatten(), nn.Unflatten(1, (2, 2))), (4,), "layer '1' (Unflatten): not a supported layer"),
    ],
)
def test_unsupported_layers_are_named(model: nn.Module, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ModelImportError) as info:
        import_model(model, shape)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_writes_a_topology_file(tmp_path: Path) -> None:
    out = tmp_path / "net.json"
    code, stdout, stderr = invoke(
        [
            "import-model",
            "import_models:TinyResNet",
            "--input-shape",
            "3,16,16",
            "--output",
            str(out),
            "--arg",
            "num_classes=3",
        ]
    )
    assert code == 0, stderr
    assert "11,003 parameters" in stdout
    topology = load_topology(out)
    assert topology.name == "TinyResNet" and len(topology.skips) == 4 and topology.output_shape == (3,)
    code, _, stderr = invoke(
        ["import-model", "import_models:cnn1d", "--input-shape", "1,40", "--output", str(tmp_path / "c.graphml")]
    )
    assert code == 0, stderr
    assert load_topology(tmp_path / "c.graphml").output_shape == (10,)


@pytest.mark.parametrize(
    ("reference", "shape", "message"),
    [
        ("no_such_package_xyz.nets:Net", "4", "cannot import module 'no_such_package_xyz.nets'"),
        ("import_models:Missing", "4", "module 'import_models' has no attribute 'Missing'"),
        ("import_models", "4", "must be 'package.module:attribute'"),
        ("import_models:not_a_model", "4", "gave a str, not a torch.nn.Module"),
        ("import_models:WithLeakyReLU", "4", "layer 'body.1' (LeakyReLU): not a supported layer"),
        ("import_models:mlp", "0,4", "--input-shape: '0,4' must be 1 to 3 positive integers"),
        ("import_models:mlp", "a", "--input-shape: 'a' must be"),
        (
            "import_models:TinyResNet --arg classes=3",
            "3,8,8",
            "raised TypeError: TinyResNet.__init__() got an unexpected",
        ),
        ("import_models:TinyResNet --arg 3", "3,8,8", "--arg '3': write KEY=VALUE"),
    ],
)
def test_cli_bad_models_get_one_line(tmp_path: Path, reference: str, shape: str, message: str) -> None:
    out = tmp_path / "net.json"
    reference, *extra = reference.split(" ")
    code, _, stderr = invoke(["import-model", reference, "--input-shape", shape, "--output", str(out), *extra])
    assert code == 2
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not out.exists()
