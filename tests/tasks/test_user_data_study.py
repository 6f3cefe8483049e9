"""Studies on the user's own data, end to end through the command line (in-process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from cli_runner import Invoke
from user_data_helpers import write_images, write_study, write_table

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer.py"


def ok(cli: Invoke, *args: str) -> str:
    code, out, err = cli(list(args))
    assert code == 0, err
    return out


def test_table_study_pareto_report_bundle_and_reproduce(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_table(data / "cells.csv", 150)
    study = write_study(tmp_path, {"file": "data/cells.csv", "target": "label"}, trials=3)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    ok(cli, "run", str(study), "--storage", url, "--quiet")
    rows = json.loads(ok(cli, "results", "--study", "mine", "--storage", url, "--format", "json"))
    assert len(rows) == 3 and all(r["task"] == "file" for r in rows)
    front = ok(cli, "pareto", "--study", "mine", "--storage", url)
    assert "accuracy" in front and "hypervolume" in front
    ok(cli, "report", "--study", "mine", "--storage", url, "--output", str(tmp_path / "report"))
    ok(
        cli,
        "export",
        "--format",
        "bundle",
        "--study",
        "mine",
        "--rank",
        "1",
        "--storage",
        url,
        "--output",
        str(tmp_path / "out"),
    )
    bundle = next((tmp_path / "out").iterdir())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["task"] == "file" and len(manifest["task_options"]["fingerprint"]) == 64
    ok(cli, "reproduce", str(bundle))

    # On another machine the data lies elsewhere: reproduce names the file, then finds it by content.
    (data / "cells.csv").rename(tmp_path / "cells.csv")
    code, _, err = cli(["reproduce", str(bundle)])
    assert code == 2 and "cells.csv" in err and "fingerprint" in err and err.count("\n") == 1, err
    monkeypatch.setenv("SKIPSEARCH_DATA_PATH", str(tmp_path))
    ok(cli, "reproduce", str(bundle))


def test_regression_study_minimises_rmse(cli: Invoke, tmp_path: Path) -> None:
    write_table(tmp_path / "values.parquet", 150, regression=True)
    task = {"file": "values.parquet", "target": "value", "metric": "rmse"}
    backbone = {"family": "mlp", "args": {"input_features": 6, "hidden": [16, 16], "classes": 1}}
    study = write_study(tmp_path, task, backbone=backbone, objectives=["rmse:min", "macs:min"], trials=4)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    ok(cli, "run", str(study), "--storage", url, "--quiet")
    stored = optuna.load_study(study_name="mine", storage=url)
    assert stored.metric_names == ["rmse", "macs"]  # what the dashboard shows
    assert stored.directions == [optuna.study.StudyDirection.MINIMIZE] * 2
    summary = json.loads(ok(cli, "pareto", "--study", "mine", "--storage", url, "--summary"))
    assert summary["objectives"][0] == {"name": "accuracy", "direction": "min"}  # the task metric's column
    front = json.loads(ok(cli, "pareto", "--study", "mine", "--storage", url, "--format", "json"))
    rmse = [row["accuracy"] for row in front]
    assert rmse == sorted(rmse) and all(v > 0.1 for v in rmse)  # RMSE in the target's units (spread ~3.6)
    ok(cli, "report", "--study", "mine", "--storage", url, "--output", str(tmp_path / "report"))


def test_image_folder_trains_a_small_cnn_study(cli: Invoke, tmp_path: Path) -> None:
    write_images(tmp_path / "pictures", classes=2, per_class=16)
    backbone = {
        "family": "resnet",
        "args": {"input_shape": [1, 12, 12], "stages": [[8, 1, 1], [16, 1, 2]], "classes": 2, "residual": False},
    }
    space = {"max_span": 3, "choices": ["off", "add"]}
    study = write_study(tmp_path, {"file": "pictures"}, backbone=backbone, space=space, trials=2)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    ok(cli, "run", str(study), "--storage", url, "--quiet")
    rows = json.loads(ok(cli, "results", "--study", "mine", "--storage", url, "--format", "json"))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]
    assert all(0 <= r["accuracy"] <= 1 for r in rows)


def test_python_api_example_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--trials", "3", "--epochs", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "3 trials" in result.stdout and "exported the knee" in result.stdout
    assert (tmp_path / "breast-cancer-export").is_dir()


def test_python_api_regression_from_arrays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.datasets import load_diabetes

    import skipsearch

    monkeypatch.chdir(tmp_path)
    x, y = load_diabetes(return_X_y=True)
    settings = {"name": "diabetes", "metric": "rmse", "hidden": [16, 16], "trials": 3, "training": {"epochs": 1}}
    settings |= {"sampler": {"name": "random"}, "storage": f"sqlite:///{tmp_path / 'api.db'}"}
    study = skipsearch.Study.from_arrays(x, y, **settings)
    assert study.config.objective_pairs == [("accuracy", "min"), ("macs", "min")]
    results = study.run().results()
    assert len(results) == 3 and (results["rmse"] == results["accuracy"]).all()
    front = study.pareto()
    assert list(front["rmse"]) == sorted(front["rmse"]) and (front["rmse"] > 1).all()  # in the target's units
    files = study.export(tmp_path / "out", format="json", rank=1)
    assert [f.suffix for f in files] == [".json"]
    # The same arrays again: the same data file, so the stored study resumes instead of refusing.
    again = skipsearch.Study.from_arrays(x, y, **settings)
    assert len(again.run().results()) == 3
