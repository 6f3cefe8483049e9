"""Smoke test of ``bench/search_efficiency.py``: one seed, a tiny budget, the report and the plot get written.
Hypervolumes of so short a run mean nothing, so no bound is checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "search_efficiency.py"


@pytest.mark.slow
def test_tiny_run_writes_report_and_plot(tmp_path: Path) -> None:
    out, plot = tmp_path / "r.json", tmp_path / "p.png"
    cmd = [sys.executable, str(SCRIPT), "--seeds", "0", "--trials", "9", "--epochs", "1"]
    done = subprocess.run(
        [*cmd, "--out", str(out), "--plot", str(plot)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    curves = report["curves"]
    assert [len(curves[name][0]) for name in ("random", "tpe", "nsga2", "predictor")] == [27, 9, 9, 9]
    assert all(0 < c[0][-1] <= 1 for c in curves.values())
    assert plot.stat().st_size > 0
