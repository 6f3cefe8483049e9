"""Smoke tests of the probe benches: tiny budgets, the reports get written. Figures of so short a
run mean nothing, so no bound is checked. (The probe-fed predictor search, ``--searches
predictor-probes``, is left to the bench: its sampler is tested in tests/search/test_probe_study.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(script: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=400, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_ranking_bench(tmp_path: Path) -> None:
    out, plot = tmp_path / "r.json", tmp_path / "p.png"
    _run("probes_ranking.py", "--n", "14", "--pool", "8", "--ceiling", "4", "--epochs", "1", "--draws", "1",
         "--fit-epochs", "2", "--jobs", "1", "--out", str(out), "--plot", str(plot))  # fmt: skip
    report = json.loads(out.read_text())
    assert [r["metric"] for r in report["correlations"]][-2:] == ["params", "macs"]
    assert set(report["predictor"]) >= {"graph@20", "probes@20", "graph@100", "probes@100"}
    assert len(report["rows"]) == 14 and plot.stat().st_size > 0


@pytest.mark.slow
def test_prescreen_and_speed_benches(tmp_path: Path) -> None:
    _run("probes_prescreen.py", "--seeds", "0", "--trials", "2", "--epochs", "1", "--out", str(tmp_path / "q.json"))
    summary = json.loads((tmp_path / "q.json").read_text())["summary"]
    assert 0 < summary["random_at_3n"] <= 1 and 0 < summary["prescreen_at_n"] <= 1
    _run("probes_speed.py", "--topologies", "2", "--repeats", "1", "--out", str(tmp_path / "s.json"))
    assert json.loads((tmp_path / "s.json").read_text())["all_probes_seconds"]["median"] > 0
