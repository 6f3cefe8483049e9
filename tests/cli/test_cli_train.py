"""``skipsearch train`` as a user runs it."""

from __future__ import annotations

import json

import pytest

from skipsearch.topology import families, save_topology


@pytest.mark.slow
def test_train_json_on_a_tiny_budget(tmp_path, cli) -> None:
    path = tmp_path / "tiny.json"
    save_topology(families.mlp(40, [16, 16], 10, name="tiny"), path)
    code, out, err = cli(["train", str(path), "--task", "mnist1d", "--epochs", "1", "--seed", "3", "--json"])
    assert code == 0, err
    info = json.loads(out)
    assert info["topology"] == "tiny" and info["task"] == "mnist1d" and info["metric"] == "accuracy"
    assert info["status"] == "ok" and info["epochs"] == 1 and info["seed"] == 3
    assert 0 <= info["val_metric"] <= 1 and 0 <= info["test_metric"] <= 1
    assert info["params"] == 40 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    assert info["macs"] > 0 and info["train_seconds"] > 0 and info["config"]["epochs"] == 1


@pytest.mark.slow
def test_train_prints_a_summary(cli) -> None:
    code, out, err = cli(["train", "mlp-deep", "--task", "mnist1d", "--epochs", "1", "--lr", "0.01"])
    assert code == 0, err
    assert "mlp-deep on mnist1d" in out and "test accuracy" in out and "params" in out


def test_unknown_task_is_one_line_and_exit_2(cli) -> None:
    code, out, err = cli(["train", "mlp-deep", "--task", "imagenet"])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: unknown task 'imagenet'")


def test_bad_flag_value_is_one_line_and_exit_2(cli) -> None:
    code, _, err = cli(["train", "mlp-deep", "--task", "mnist1d", "--epochs", "0"])
    assert code == 2 and err.count("\n") == 1 and "--epochs" in err
