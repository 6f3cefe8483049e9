"""Backbones a user brings: a topology file next to the study file, a Python function, every
family, and input/output sizes left to the task (``auto``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from cli_runner import invoke
from optuna.trial import TrialState

from skipsearch.nn import import_model
from skipsearch.search import StudyConfig, create_study, load_study_config, parse_study_config, run_worker
from skipsearch.topology import families, save_topology

STUDY: dict[str, Any] = {
    "name": "own-net",
    "seed": 0,
    "task": "digits",
    "space": {"max_span": 2, "choices": ["off", "add"]},
    "objectives": ["accuracy:max", "params:min"],
    "sampler": {"name": "random"},
    "training": {"epochs": 1, "batch_size": 256},
    "trials": 2,
}


def _study_file(folder: Path, backbone: dict[str, Any], **changes: Any) -> Path:
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({**STUDY, "backbone": backbone, **changes}))
    return path


def _module(folder: Path, body: str) -> str:
    """Writes a module of ``body`` into ``folder``; returns its (unique) name."""
    name = f"nets_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text("from skipsearch.topology import families\n\n" + body)
    return name


def _mlp_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_topology(families.mlp(64, [16, 16, 16], 10, name="mine"), path)


@pytest.mark.parametrize("suffix", [".json", ".graphml"])
def test_file_backbone_is_found_next_to_the_study_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    _mlp_file(tmp_path / "nets" / f"mine{suffix}")
    path = _study_file(tmp_path, {"file": f"nets/mine{suffix}", "keep_skips": True})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_study_config(path)
    backbone = config.backbone.build()
    assert backbone.name == "mine" and [n.id for n in backbone.nodes] == ["x", "h1", "h2", "h3", "head"]
    assert len(backbone.skips) == 2  # keep_skips: the file's own residual edges stay
    # The stored configuration carries the topology: a worker elsewhere needs no file.
    (tmp_path / "nets" / f"mine{suffix}").unlink()
    stored = StudyConfig.model_validate(config.model_dump(mode="json"))
    assert stored.backbone.build() == backbone


def test_module_backbone_with_auto_classes(tmp_path: Path) -> None:
    name = _module(tmp_path, "def make(width, classes):\n    return families.mlp(64, [width, width], classes)\n")
    path = _study_file(tmp_path, {"module": f"{name}:make", "args": {"width": 8, "classes": "auto"}})
    config = load_study_config(path)
    assert config.backbone.args == {"width": 8, "classes": 10}
    assert config.backbone.build().output_shape == (10,)


def test_every_family_and_auto_shapes() -> None:
    config = parse_study_config(
        {
            **STUDY,
            "backbone": {"family": "cifar_resnet", "args": {"depth": 8, "input_shape": "auto", "classes": "auto"}},
        },
        "s.yaml",
    )
    # digits gives vectors of 64 values: a convolutional family sees them as a 1-channel signal.
    assert config.backbone.args == {"depth": 8, "input_shape": [1, 64], "classes": 10}
    assert config.backbone.build().input_shape == (1, 64)
    config = parse_study_config(
        {**STUDY, "backbone": {"family": "mlp", "args": {"input_features": "auto", "hidden": [8], "classes": "auto"}}},
        "s.yaml",
    )
    assert config.backbone.build().input_shape == (64,)
    assert set(families.FAMILIES) == {"mlp", "resnet", "cifar_resnet", "densenet", "unet"}


def test_import_model_output_is_a_study_backbone(tmp_path: Path) -> None:
    from torch import nn

    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    save_topology(import_model(net, (64,)), tmp_path / "net.json")
    config = load_study_config(_study_file(tmp_path, {"file": "net.json"}))
    assert [n.op for n in config.backbone.build().nodes] == ["input", "linear", "linear", "head"]


BAD_NETS = """import torch

def make():
    return torch.nn.Linear(2, 2)

def broken():
    raise RuntimeError("no GPU here")
"""


@pytest.mark.parametrize(
    ("backbone", "message"),
    [
        ({"file": "nets/missing.json"}, "backbone.file: nets/missing.json: no such topology file"),
        ({"file": "bad.json"}, "bad.json: invalid JSON at line 1 column 2"),
        ({"file": "bad.json", "args": {"a": 1}}, "backbone: 'args' is for 'family' and 'module' backbones"),
        (
            {"module": "no_such_package_xyz.nets:make"},
            "backbone.module: cannot import module 'no_such_package_xyz.nets'",
        ),
        ({"module": "NETS:nothing"}, "backbone.module: module 'NETS' has no attribute 'nothing'"),
        ({"module": "NETS"}, "backbone.module: 'NETS' must be 'package.module:attribute'"),
        ({"module": "NETS:make"}, "backbone.module: NETS:make: returned a Linear, not a skipsearch Topology"),
        ({"module": "NETS:broken"}, "backbone.module: NETS:broken: raised RuntimeError: no GPU here"),
        ({"module": "NETS:make", "args": {"width": 3}}, "raised TypeError: make() got an unexpected keyword"),
        ({"family": "vgg"}, "backbone: unknown family 'vgg' (known: mlp, resnet, cifar_resnet, densenet, unet)"),
        ({"family": "cifar_resnet", "args": {"depth": 9}}, "backbone.args: CIFAR ResNet depth must be 6n+2, got 9"),
        ({"family": "mlp", "args": {"width": "auto"}}, "backbone.args.width: 'auto' is only for input_shape"),
        ({"family": "mlp", "file": "x.json"}, "give exactly one of 'preset', 'family', 'file' or 'module'"),
    ],
)
def test_bad_backbones_get_one_line_and_store_nothing(tmp_path: Path, backbone: dict[str, Any], message: str) -> None:
    (tmp_path / "bad.json").write_text("{nodes: []}")
    nets = _module(tmp_path, BAD_NETS)
    backbone = {k: v.replace("NETS", nets) if isinstance(v, str) else v for k, v in backbone.items()}
    path = _study_file(tmp_path, backbone)
    db = tmp_path / "s.db"
    code, _, stderr = invoke(["run", str(path), "--storage", f"sqlite:///{db}", "--quiet"])
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1
    assert stderr.startswith(f"error: {path}: ")
    assert message.replace("NETS", nets) in stderr
    assert not db.exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "module", "cifar_resnet"])
def test_tiny_studies_on_own_backbones_run(tmp_path: Path, kind: str) -> None:
    if kind == "file":
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(64, 24), torch.nn.Tanh(), torch.nn.Linear(24, 24), torch.nn.Tanh())
        net.append(torch.nn.Linear(24, 10))
        (tmp_path / "nets").mkdir()
        save_topology(import_model(net, (64,), name="imported"), tmp_path / "nets" / "net.json")
        backbone: dict[str, Any] = {"file": "nets/net.json"}
    elif kind == "module":
        name = _module(tmp_path, "def make(n_in, classes):\n    return families.mlp(n_in, [16, 16, 16], classes)\n")
        backbone = {"module": f"{name}:make", "args": {"n_in": 64, "classes": "auto"}}
    else:
        backbone = {"family": "cifar_resnet", "args": {"depth": 8, "input_shape": "auto", "classes": "auto"}}
    path = _study_file(tmp_path, backbone)
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = load_study_config(path)
    create_study(config, url)
    for leftover in [tmp_path / "nets" / "net.json", *tmp_path.glob("nets_*.py")]:
        leftover.unlink(missing_ok=True)  # the worker reads the backbone from the storage
    study = run_worker(url, config.name)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE for t in trials)
    assert all(0.0 <= t.user_attrs["accuracy"] <= 1.0 and t.user_attrs["params"] > 0 for t in trials)
    assert isinstance(study, optuna.Study)


def test_auto_shapes_come_from_the_users_data(tmp_path: Path) -> None:
    rows = ["a,b,c,label"] + [f"{i % 7},{i % 5},{i % 3},{'xyz'[i % 3]}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    backbone = {"family": "mlp", "args": {"input_features": "auto", "hidden": [8], "classes": "auto"}}
    path = _study_file(tmp_path, backbone, task={"file": "t.csv", "target": "label"})
    topology = load_study_config(path).backbone.build()
    assert topology.input_shape == (3,) and topology.output_shape == (3,)
