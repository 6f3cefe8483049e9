"""Choosing and exporting trials of a real (tiny) study; weights, bundles and their reproduction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import Invoke
from export_helpers import TINY_STUDY, assert_one_line_error, files_under
from study_helpers import run_study

from skipsearch.export import (
    export_topology,
    knee_index,
    read_manifest,
    reproduce_bundle,
    select_trial,
)
from skipsearch.results import connect, evaluations, pareto
from skipsearch.search import create_study, parse_study_config, run_worker


@pytest.fixture(scope="module")
def study_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('study') / 'study.db'}"
    run_study(url, TINY_STUDY)
    return url


@pytest.fixture(scope="module")
def rows(study_url: str):
    return evaluations(connect(study_url), [TINY_STUDY["name"]])


def test_knee_of_two_objectives_is_farthest_from_the_extremes_line() -> None:
    front = np.array([[0.9, 100.0], [0.85, 40.0], [0.6, 10.0], [0.5, 5.0]])  # accuracy max, macs min
    assert knee_index(front, ["max", "min"]) == 1
    assert knee_index(front[:2], ["max", "min"]) == 0  # two members: no knee, the first


def test_knee_of_three_objectives_is_closest_to_the_ideal_plane() -> None:
    front = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.3, 0.3, 0.3]])
    assert knee_index(front, ["min", "min", "min"]) == 3


@pytest.mark.slow
def test_selectors_find_the_trial(study_url: str, rows) -> None:
    name = TINY_STUDY["name"]
    front = pareto(connect(study_url), [name]).front
    best = select_trial(study_url, name, rank=1)
    assert best.trial_number == int(front.iloc[0]["trial_number"]) and best.selector == "rank 1"
    assert best.recipe is not None and best.recipe.seed == 1 and best.recipe.train_config.epochs == 1
    last = select_trial(study_url, name, rank=len(front))
    assert last.trial_number == int(front.iloc[-1]["trial_number"])
    knee = select_trial(study_url, name, knee=True)
    assert knee.trial_number in set(front["trial_number"].astype(int))
    row = rows.iloc[-1]
    by_trial = select_trial(study_url, name, trial=int(row["trial_number"]))
    assert by_trial.topology.hash == row["hash"] and by_trial.metrics["accuracy"] == pytest.approx(row["accuracy"])
    assert select_trial(study_url, name, hash=row["hash"][:6]).topology.hash == row["hash"]


@pytest.mark.slow
def test_weights_retrain_to_the_trials_metrics(study_url: str, tmp_path: Path) -> None:
    chosen = select_trial(study_url, TINY_STUDY["name"], rank=1)
    result = export_topology(chosen.topology, "weights", tmp_path, name=chosen.stem, recipe=chosen.recipe)
    assert [p.name for p in result.files] == [f"tiny_export_trial{chosen.trial_number}.weights.pt"]
    assert result.metrics["accuracy"] == pytest.approx(chosen.metrics["accuracy"], abs=1e-9)
    assert result.metrics["loss"] == pytest.approx(chosen.metrics["loss"], rel=1e-6)
    state = torch.load(result.files[0], weights_only=True)
    assert set(state) == set(chosen.topology and _built_keys(chosen.topology))


def _built_keys(topology) -> set[str]:
    from skipsearch.nn import build_model

    return set(build_model(topology).state_dict())


@pytest.mark.slow
def test_bundle_then_reproduce(study_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Invoke) -> None:
    monkeypatch.chdir(tmp_path)
    name = TINY_STUDY["name"]
    args = ["export", "--storage", study_url, "--study", name, "--pick", "knee", "--format", "bundle"]
    code, out, err = cli([*args, "--output", "bundles", "--json"])
    assert code == 0, err
    summary = json.loads(out)
    trial = summary["selection"]["trial"]
    folder = tmp_path / "bundles" / f"tiny_export_trial{trial}"
    assert files_under(folder) == {
        "manifest.json", "topology.json", "topology.graphml", "model.py", "model.pt", "model.torchscript.pt",
        "model.onnx",
    }  # fmt: skip
    _, manifest, topology = read_manifest(folder)
    assert manifest["study"] == name and manifest["trial"] == trial and manifest["selector"] == "knee"
    assert manifest["hash"] == topology.hash and manifest["seed"] == 1 and manifest["task"] == "mnist1d"
    for package in ("python", "torch", "optuna", "skipsearch", "onnx", "onnxruntime"):
        assert manifest["versions"][package]
    assert manifest["metrics"]["accuracy"] == pytest.approx(manifest["trial_metrics"]["accuracy"], abs=1e-9)

    report = reproduce_bundle(folder)
    assert report.reproduced and report.weights_max_difference == 0.0
    assert {m.name for m in report.metrics} >= {"accuracy", "test_accuracy", "loss", "params", "macs"}

    code, out, err = cli(["reproduce", str(folder), "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["reproduced"] is True and all(m["difference"] == 0 for m in data["metrics"])
    code, out, _ = cli(["reproduce", str(folder)])
    assert code == 0 and "reproduced within tolerance" in out and "accuracy" in out

    manifest["metrics"]["accuracy"] += 0.5  # a changed recorded metric shows as a difference
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code, out, _ = cli(["reproduce", str(folder), "--json"])
    data = json.loads(out)
    assert code == 1 and data["reproduced"] is False and data["problems"] == []
    assert [m["difference"] for m in data["metrics"] if m["name"] == "accuracy"] == [pytest.approx(-0.5)]

    (folder / "model.pt").write_bytes(b"")  # a changed file is refused before any training
    code, out, err = cli(["reproduce", str(folder), "--json"])
    assert_one_line_error(code, err, "model.pt", "differs from the manifest's")


@pytest.mark.parametrize(
    ("selector", "fragments"),
    [
        (["--trial", "99"], ["--trial 99", "no evaluated trial 99"]),
        (["--hash", "ffffffffffffffff"], ["--hash", "no trial"]),
        (["--hash", "xyz"], ["--hash", "prefix"]),
        (["--rank", "50"], ["--rank 50", "member"]),
        (["--rank", "0"], ["--rank 0"]),
        (["--pick", "elbow"], ["--pick 'elbow'"]),
        (["--rank", "1", "--trial", "0"], ["exactly one"]),
        ([], ["exactly one"]),
    ],
)
@pytest.mark.slow
def test_bad_selectors_exit_2_with_one_line(
    study_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Invoke,
    selector: list[str],
    fragments: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["export", "--storage", study_url, "--study", TINY_STUDY["name"], *selector]
    code, _, err = cli([*args, "--format", "json", "--output", "o"])
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_unknown_study_and_missing_database_exit_2(
    study_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Invoke
) -> None:
    monkeypatch.chdir(tmp_path)
    base = ["export", "--format", "json", "--output", "o", "--rank", "1"]
    code, _, err = cli([*base, "--storage", study_url, "--study", "nope"])
    assert_one_line_error(code, err, "'nope'", TINY_STUDY["name"])
    code, _, err = cli([*base, "--storage", "sqlite:///missing.db", "--study", "x"])
    assert_one_line_error(code, err, "missing.db")
    assert files_under(tmp_path) == set()


@pytest.mark.slow
@pytest.mark.postgres
def test_select_and_retrain_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    create_study(parse_study_config({**TINY_STUDY, "trials": 2}, "tiny.yaml"), postgres_url)
    run_worker(postgres_url, TINY_STUDY["name"])
    chosen = select_trial(postgres_url, TINY_STUDY["name"], rank=1)
    assert chosen.recipe is not None and chosen.recipe.seed == TINY_STUDY["seed"]
    result = export_topology(chosen.topology, "weights", tmp_path, recipe=chosen.recipe)
    assert result.metrics["accuracy"] == pytest.approx(chosen.metrics["accuracy"], abs=1e-9)
