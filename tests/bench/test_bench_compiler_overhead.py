"""Smoke test of ``bench/compiler_overhead.py``: it runs, checks that each built model and its
hand-written twin compute the same, and writes its JSON report. The timings of so short a run
mean nothing, so the bound is lifted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "compiler_overhead.py"


@pytest.mark.slow
def test_quick_run_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--rounds", "1", "--max-ratio", "1000", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["passed"] is True
    assert [r["case"] for r in report["results"]] == ["resnet20", "mlp-deep"]
    assert all(r["cpu"]["built_ms"] > 0 and r["wall"]["reference_ms"] > 0 for r in report["results"])
