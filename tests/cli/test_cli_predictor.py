"""``skipsearch predictor train|eval`` and the dataset from the results tables, on a real SQLite study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from study_helpers import run_study, tiny_study
from typer.testing import CliRunner

from skipsearch.cli import app
from skipsearch.errors import UserError
from skipsearch.predictor import dataset_from_results
from skipsearch.results import connect

pytestmark = pytest.mark.slow  # the fixture trains a tiny study

TINY = tiny_study("pred-cli", early_stopping={"enabled": False}, trials=6)


@pytest.fixture(scope="module")
def study_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('pred') / 's.db'}"
    run_study(url, TINY)
    return url


def test_dataset_from_results(study_url: str) -> None:
    topologies, targets = dataset_from_results(connect(study_url), ["pred-cli"], ["accuracy", "macs"])
    assert len(topologies) == len({t.hash for t in topologies}) >= 2
    assert targets.shape == (len(topologies), 2) and (targets[:, 0] <= 1).all()
    with pytest.raises(UserError, match="no completed trials"):
        dataset_from_results(connect(study_url), ["nope"])


def test_train_then_eval(study_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    model = tmp_path / "p.pt"
    args = ["--study", "pred-cli", "--storage", study_url, "--json"]
    result = runner.invoke(app, ["predictor", "train", *args, "--out", str(model), "--epochs", "20", "--members", "2"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["trained_on"] == 3 and scores["held_out"]["n"] == 3
    assert -1 <= scores["held_out"]["kendall_tau"] <= 1
    result = runner.invoke(app, ["predictor", "eval", *args, "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["held_out"]["n"] == 6
    missing = runner.invoke(app, ["predictor", "eval", *args, "--model", str(tmp_path / "none.pt")])
    assert isinstance(missing.exception, UserError)


@pytest.mark.slow
def test_probe_features(study_url: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'probes.db'}"
    run_study(url, tiny_study("pred-probes", early_stopping={"enabled": False}, trials=6, analysis={"probes": True}))
    runner = CliRunner()
    model = tmp_path / "p.pt"
    args = ["--study", "pred-probes", "--storage", url, "--json"]
    train = ["predictor", "train", *args, "--out", str(model), "--epochs", "20", "--members", "2"]
    result = runner.invoke(app, [*train, "--features", "probes"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["features"] == [
        "graph",
        "synflow",
        "naswot",
        "grad_norm",
        "snip",
        "jacob_cov",
        "gradflow",
    ]
    result = runner.invoke(app, ["predictor", "eval", *args, "--model", str(model)])  # reads the saved features
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["held_out"]["n"] == 6
    result = runner.invoke(app, [*train, "--features", "naswot,synflow"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, [*train, "--features", "depth"])
    assert isinstance(bad.exception, UserError) and "--features 'depth'" in str(bad.exception)
    plain = ["predictor", "train", "--study", "pred-cli", "--storage", study_url, "--out", str(model)]
    lacking = runner.invoke(app, [*plain, "--features", "probes"])
    assert isinstance(lacking.exception, UserError) and "analysis: {probes: true}" in str(lacking.exception)
