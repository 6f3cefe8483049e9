"""The ``file`` and ``module`` tasks: loading, splits, scaling, regression metrics, fingerprints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import Invoke
from user_data_helpers import write_images, write_table

from skipsearch.errors import UserError
from skipsearch.tasks import evaluate, fingerprint, load_task
from skipsearch.tasks._files import file_task


def test_table_one_hot_and_stratified_splits(tmp_path: Path) -> None:
    data = file_task(file=str(write_table(tmp_path / "t.csv", 200)), target="label")
    # a, b, c plus colour one-hot (blue, green, red): 6 features; classes high/low/mid sorted
    assert data.input_shape == (6,) and data.num_outputs == 3 and data.metric == "accuracy"
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (140, 30, 30)
    everything = torch.cat([data.y_train, data.y_val, data.y_test])
    for part in (data.y_val, data.y_test):  # stratified: each split has about the pool's class shares
        shares = torch.bincount(part, minlength=3) / len(part)
        assert torch.allclose(shares, torch.bincount(everything, minlength=3) / len(everything), atol=0.05)
    # scaling is fitted on the training split: its features are standardised, the others nearly
    assert torch.allclose(data.x_train.mean(0), torch.zeros(6), atol=1e-5)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(6), atol=1e-4)
    assert not torch.allclose(data.x_val.mean(0), torch.zeros(6), atol=1e-5)


def test_splits_are_seeded_and_test_split_is_fixed(tmp_path: Path) -> None:
    path = str(write_table(tmp_path / "t.csv", 100))
    a, b, c = (file_task(file=path, target="label", seed=s) for s in (0, 0, 1))
    assert torch.equal(a.x_val, b.x_val) and not torch.equal(a.x_val, c.x_val)
    assert torch.equal(a.y_test, c.y_test)  # the test split depends on data_seed only


def test_parquet_regression_with_rmse_in_target_units(tmp_path: Path) -> None:
    data = file_task(file=str(write_table(tmp_path / "t.parquet", 150, regression=True)), target="value", metric="rmse")
    assert data.regression and data.num_outputs == 1 and data.y_train.dtype == torch.float32
    assert data.y_train.shape == (len(data.x_train), 1) and data.target_scale is not None
    predict_mean = torch.nn.Linear(6, 1)
    torch.nn.init.zeros_(predict_mean.weight), torch.nn.init.zeros_(predict_mean.bias)
    rmse, loss = evaluate(predict_mean, data.x_test, data.y_test, "rmse", target_scale=data.target_scale)
    assert rmse == pytest.approx(math.sqrt(loss) * data.target_scale[0], rel=1e-6)
    r2, _ = evaluate(predict_mean, data.x_test, data.y_test, "r2")
    assert r2 < 0.1  # predicting the training mean explains nothing


def test_npz_with_test_split_and_npy_pair(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 2, 5)), np.arange(60) % 3
    np.savez(tmp_path / "a.npz", x=x, y=y, x_test=x[:10], y_test=y[:10])
    data = file_task(file=str(tmp_path / "a.npz"))
    assert data.input_shape == (2, 5) and len(data.x_test) == 10 and data.num_classes == 3
    np.save(tmp_path / "x.npy", x), np.save(tmp_path / "y.npy", y)
    pair = file_task(file=str(tmp_path / "x.npy"), target=str(tmp_path / "y.npy"))
    assert len(pair.x_train) + len(pair.x_val) + len(pair.x_test) == 60


def test_image_folder_resize_and_colour(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "img", classes=3, per_class=10)
    data = file_task(file=str(folder))
    assert data.input_shape == (1, 12, 12) and data.num_classes == 3
    rgb = file_task(file=str(folder), size=[8, 6], color="rgb")
    assert rgb.input_shape == (3, 8, 6)


def test_segmentation_folder(tmp_path: Path) -> None:
    from PIL import Image

    for part in ("images", "masks"):
        (tmp_path / "seg" / part).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3)).astype(np.uint8)).save(tmp_path / "seg/images" / f"{i}.png")
        Image.fromarray(rng.integers(0, 3, (8, 8)).astype(np.uint8)).save(tmp_path / "seg/masks" / f"{i}.png")
    data = load_task("file", file=str(tmp_path / "seg"))
    assert data.metric == "miou" and data.input_shape == (3, 8, 8) and data.y_train.shape[1:] == (8, 8)
    assert data.num_classes == 3


def test_fingerprint_follows_content_and_moved_files_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_table(tmp_path / "t.csv")
    digest = fingerprint(path)
    assert file_task(file=str(path), target="label").fingerprint == digest
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    path.rename(moved / "t.csv")
    monkeypatch.setenv("SKIPSEARCH_DATA_PATH", str(moved))
    assert file_task(file=str(path), target="label", fingerprint=digest).fingerprint == digest
    (moved / "t.csv").write_text((moved / "t.csv").read_text().replace("red", "pink"))
    with pytest.raises(UserError, match="differs from the study's"):
        file_task(file=str(moved / "t.csv"), target="label", fingerprint=digest)


def test_module_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_data.py").write_text(
        "import numpy as np\n"
        "def load(n=50):\n"
        "    x = np.random.default_rng(0).normal(size=(n, 4))\n"
        "    return {'x': x, 'y': x.sum(1)}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    data = load_task("module", module="my_data:load", args={"n": 80}, metric="r2")
    assert data.metric == "r2" and len(data.x_train) + len(data.x_val) + len(data.x_test) == 80


def test_entry_point_tasks_join_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from skipsearch.tasks import TASKS, TaskSpec, TrainConfig, _registry

    spec = TaskSpec("plugin-task", "from a package", (3,), 2, "accuracy", TrainConfig(), lambda seed=0: None)
    entry = importlib.metadata.EntryPoint("plugin-task", "plugin_pkg:SPEC", "skipsearch.tasks")
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda group: [entry] if group == "skipsearch.tasks" else []
    )
    monkeypatch.setattr(importlib.metadata.EntryPoint, "load", lambda self: spec)
    monkeypatch.setattr(_registry, "_discovered", False)
    try:
        assert _registry.discover_tasks()["plugin-task"] is spec
    finally:
        TASKS.pop("plugin-task", None)


def test_tasks_command_lists_tasks(cli: Invoke) -> None:
    code, out, err = cli(["tasks", "--no-sizes", "--json"])
    assert code == 0, err
    names = {row["name"]: row for row in json.loads(out)["tasks"]}
    assert {"mnist1d", "digits", "shapes-seg", "teacher", "file", "module"} <= set(names)
    assert names["shapes-seg"]["metric"] == "miou" and names["file"]["input_shape"] is None


def test_regression_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import r2_score, root_mean_squared_error

    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(300, 4)), dtype=torch.float32)
    y = torch.tensor(rng.normal(size=(300, 2)), dtype=torch.float32)
    model = torch.nn.Linear(4, 2)
    pred = model(x).detach().numpy()
    scale = (2.0, 0.5)
    rmse, _ = evaluate(model, x, y, "rmse", batch_size=64, target_scale=scale)
    expected = root_mean_squared_error((y.numpy() * scale).ravel(), (pred * scale).ravel())
    assert rmse == pytest.approx(expected, rel=1e-5)
    r2, _ = evaluate(model, x, y, "r2", batch_size=64)
    assert r2 == pytest.approx(r2_score(y.numpy(), pred), rel=1e-5)
    with pytest.raises(ValueError, match="outputs of shape"):
        evaluate(torch.nn.Linear(4, 3), x, y, "rmse")
