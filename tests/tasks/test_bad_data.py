"""Bad user data: one line naming the file, column, row or image; exit code 2; nothing stored.

Each case runs ``skipsearch run study.yaml`` in-process: the data is checked while the study file
is read, before the storage is opened, so the database file must not even exist afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_runner import Invoke
from user_data_helpers import write_images, write_study, write_table


def run_fails(cli: Invoke, folder: Path, task: Any, *fragments: str, **changes: Any) -> None:
    write_study(folder, task, **changes)
    code, _, err = cli(["run", str(folder / "study.yaml"), "--storage", f"sqlite:///{folder / 'out.db'}", "--quiet"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not (folder / "out.db").exists()


def _csv(folder: Path, change: Callable[[pd.DataFrame], None]) -> str:
    path = write_table(folder / "data.csv")
    frame = pd.read_csv(path)
    change(frame)
    frame.to_csv(path, index=False)
    return "data.csv"


def test_missing_file(cli: Invoke, tmp_path: Path) -> None:
    run_fails(cli, tmp_path, {"file": "nowhere.csv", "target": "label"}, "nowhere.csv", "no such file")


def test_no_such_target_column(cli: Invoke, tmp_path: Path) -> None:
    write_table(tmp_path / "data.csv")
    run_fails(cli, tmp_path, {"file": "data.csv", "target": "lable"}, "data.csv", "no column 'lable'", "label")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_infinite_feature(cli: Invoke, tmp_path: Path, value: float) -> None:
    def spoil(frame: pd.DataFrame) -> None:
        frame.loc[6, "b"] = value

    task = {"file": _csv(tmp_path, spoil), "target": "label"}
    run_fails(cli, tmp_path, task, "data.csv", "row 7", "column 'b'", "not a finite value")


def test_continuous_target_for_classification(cli: Invoke, tmp_path: Path) -> None:
    write_table(tmp_path / "data.csv", regression=True)
    run_fails(cli, tmp_path, {"file": "data.csv", "target": "value"}, "data.csv", "'value'", "regression")


def test_labels_that_are_not_classes(cli: Invoke, tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.zeros((30, 6)), y=np.r_[np.arange(29) % 3, -1])
    run_fails(cli, tmp_path, {"file": "a.npz"}, "a.npz", "label -1", "element 29", "negative")


def test_x_and_y_of_different_lengths(cli: Invoke, tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.zeros((30, 6)), y=np.arange(29) % 3)
    run_fails(cli, tmp_path, {"file": "a.npz"}, "a.npz", "30 samples", "29")


def test_images_of_mixed_sizes(cli: Invoke, tmp_path: Path) -> None:
    folder = write_images(tmp_path / "img")
    write_images(tmp_path / "odd", classes=1, per_class=1, size=10)
    (tmp_path / "odd/class0/000.png").rename(folder / "class1" / "zz.png")
    run_fails(cli, tmp_path, {"file": "img"}, "zz.png", "10x10", "12x12", "'size'")


def test_images_of_mixed_modes(cli: Invoke, tmp_path: Path) -> None:
    folder = write_images(tmp_path / "img")
    write_images(tmp_path / "odd", classes=1, per_class=1, mode="RGB")
    (tmp_path / "odd/class0/000.png").rename(folder / "class1" / "zz.png")
    run_fails(cli, tmp_path, {"file": "img"}, "zz.png", "mode RGB", "'color'")


def test_empty_class_folder(cli: Invoke, tmp_path: Path) -> None:
    write_images(tmp_path / "img")
    (tmp_path / "img" / "class2").mkdir()
    run_fails(cli, tmp_path, {"file": "img"}, "class2", "empty class folder")


def test_file_too_large_for_memory(cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skipsearch.tasks import _files

    monkeypatch.setattr(_files, "available_memory", lambda: 1000)
    write_table(tmp_path / "data.csv")
    run_fails(cli, tmp_path, {"file": "data.csv", "target": "label"}, "data.csv", "GiB of memory", "available")


def test_module_that_does_not_import(cli: Invoke, tmp_path: Path) -> None:
    run_fails(cli, tmp_path, {"module": "no_such_pkg.data:load"}, "no_such_pkg.data:load", "cannot import")


def test_module_returning_the_wrong_type(cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad_data_mod.py").write_text("def load():\n    return [1, 2, 3]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run_fails(cli, tmp_path, {"module": "bad_data_mod:load"}, "bad_data_mod:load", "returned list", "'x' and 'y'")


def test_accuracy_objective_on_a_regression_task(cli: Invoke, tmp_path: Path) -> None:
    write_table(tmp_path / "data.csv", regression=True)
    task = {"file": "data.csv", "target": "value", "metric": "rmse"}
    run_fails(cli, tmp_path, task, "'accuracy' is not this task's metric", "rmse:min")
    run_fails(cli, tmp_path, task, "rmse is minimised", objectives=["rmse:max", "macs:min"])


def test_worker_refuses_changed_data(cli: Invoke, tmp_path: Path) -> None:
    from skipsearch.search import create_study, load_study_config

    write_table(tmp_path / "data.csv")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    create_study(load_study_config(write_study(tmp_path, {"file": "data.csv", "target": "label"})), url)
    write_table(tmp_path / "data.csv", seed=1)  # the same file name, other numbers
    code, _, err = cli(["worker", "--study", "mine", "--storage", url, "--quiet"])
    assert code == 2 and err.count("\n") == 1 and "differs from the study's" in err, err


def test_backbone_that_does_not_fit_the_data(cli: Invoke, tmp_path: Path) -> None:
    write_table(tmp_path / "data.csv")  # 6 features, 3 classes
    task = {"file": "data.csv", "target": "label"}
    wide = {"family": "mlp", "args": {"input_features": 8, "hidden": [16], "classes": 3}}
    run_fails(cli, tmp_path, task, "backbone", "8 values", "(6 values)", backbone=wide)
    two = {"family": "mlp", "args": {"input_features": 6, "hidden": [16], "classes": 2}}
    run_fails(cli, tmp_path, task, "backbone", "2 outputs", "3 classes", backbone=two)
