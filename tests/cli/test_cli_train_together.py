"""``skipsearch train`` with several topologies or a seed sweep: trained together, each as alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def skipsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skipsearch", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_a_seed_sweep_and_several_topologies_match_their_lone_runs(tmp_path: Path) -> None:
    common = ["--task", "mnist1d", "--epochs", "1", "--threads", "1", "--json"]
    sweep = skipsearch("train", "mlp-deep", "mlp-deep-plain", "--seeds", "0-1", *common, cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    runs = json.loads(sweep.stdout)
    assert [(r["topology"], r["seed"]) for r in runs] == [
        ("mlp-deep", 0),
        ("mlp-deep", 1),
        ("mlp-deep-plain", 0),
        ("mlp-deep-plain", 1),
    ]
    alone = skipsearch("train", "mlp-deep-plain", "--seeds", "1", *common, cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    one = json.loads(alone.stdout)
    assert one["val_loss"] == pytest.approx(runs[3]["val_loss"], rel=1e-4)
    assert abs(one["val_metric"] - runs[3]["val_metric"]) <= 0.01


def test_bad_seeds_are_one_clear_line(tmp_path: Path) -> None:
    for bad in ("3-x", "1,1", ""):
        out = skipsearch("train", "mlp-deep", "--task", "mnist1d", "--seeds", bad, cwd=tmp_path)
        assert out.returncode == 2 and "--seeds" in out.stderr and "Traceback" not in out.stderr
