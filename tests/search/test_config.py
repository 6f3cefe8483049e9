from pathlib import Path

import pytest
import yaml

from skipsearch.errors import UserError
from skipsearch.search import load_study_config, parse_study_config

STUDIES = sorted(Path(__file__).parents[2].joinpath("studies").glob("*.yaml"))

BASE = {
    "name": "t",
    "task": "mnist1d",
    "backbone": {"preset": "mlp-deep"},
    "space": {"max_span": 1, "choices": ["off", "add"]},
    "objectives": ["accuracy:max", "macs:min"],
}


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_shipped_study_files_are_valid(path: Path) -> None:
    config = load_study_config(path)
    assert config.name == path.stem
    assert config.train_config.epochs >= 1


def test_shipped_studies_include_the_required_ones() -> None:
    names = {p.stem for p in STUDIES}
    assert {"quickstart", "mnist1d-resnet", "mlp-deep-vanishing", "digits-densenet", "shapes-unet"} <= names


def test_shorthands_and_task_defaults() -> None:
    config = parse_study_config({**BASE, "training": {"lr": 0.5}}, "x.yaml")
    assert [(o.name, o.direction) for o in config.objectives] == [("accuracy", "maximize"), ("macs", "minimize")]
    assert config.task.name == "mnist1d"
    assert config.train_config.lr == 0.5
    assert config.multi_objective


def test_yaml_bare_off_is_the_off_kind(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE).replace("- 'off'", "- off"))
    assert load_study_config(path).space.choices == ["off", "add"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"bogus": 1}, "bogus: unknown key"),
        ({"space": {"max_span": 1, "colour": "red"}}, "space.colour: unknown key"),
        ({"space": {"max_span": 1, "choices": ["teleport"]}}, "unknown edge kind 'teleport'"),
        ({"space": {"choices": ["add"]}}, "max_span"),
        ({"objectives": ["accuracy:max", "accuracy:max"]}, "distinct"),
        ({"objectives": ["speed:max"]}, "objectives.0.name"),
        ({"backbone": {"preset": "resnet9000"}}, "unknown preset 'resnet9000'"),
        ({"task": "cifar100"}, "task.name: unknown task 'cifar100'"),
        ({"training": {"lr": -1}}, "training.lr"),
        ({"training": {"epoch": 3}}, "training.epoch: unknown key"),
        ({"trials": 0}, "trials"),
        ({"sampler": {"name": "annealing"}}, "sampler.name"),
        ({"training": {"threads": 2**31 - 1}}, "training.threads"),
        ({"execution": {"threads_per_worker": 10**6}}, "execution.threads_per_worker"),
    ],
)
def test_bad_study_files_name_the_key(tmp_path: Path, change: dict, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**BASE, **change}))
    with pytest.raises(UserError) as info:
        load_study_config(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message
    assert "\n" not in message


@pytest.mark.parametrize("text", ["name: [unclosed", "- just\n- a list\n", ""])
def test_unparseable_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=r"bad\.yaml"):
        load_study_config(path)


def test_missing_file() -> None:
    with pytest.raises(UserError, match="no such study file"):
        load_study_config("does/not/exist.yaml")


def test_bad_sampler_options_are_caught_when_loading(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**BASE, "sampler": {"name": "random", "options": {"n_startup_trials": 3}}}))
    with pytest.raises(UserError, match=r"sampler\.options: .*n_startup_trials"):
        load_study_config(path)
