"""``skipsearch analyze probes`` and the report's probe section on a tiny real study; the
correlations on cases with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from study_helpers import run_study, tiny_study
from typer.testing import CliRunner

from skipsearch.analysis import probe_correlations
from skipsearch.cli import app
from skipsearch.errors import UserError
from skipsearch.tasks import probe_names

TINY = tiny_study("probes-tiny", early_stopping={"enabled": False}, trials=6, analysis={"probes": True})


@pytest.fixture(scope="module")
def study_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('study') / 'tiny.db'}"
    run_study(url, TINY)
    run_study(url, tiny_study("no-probes", trials=1))
    return url


def test_correlations_of_known_orderings() -> None:
    x = np.arange(20.0)
    frame = pd.DataFrame({"up": x, "down": -x, "flat": np.ones(20), "accuracy": x**3, "state": "COMPLETE"})
    table = probe_correlations(frame, metrics=["up", "down", "flat"], bootstrap=200).set_index("metric")
    assert table.loc["up", "spearman"] == 1.0 and table.loc["up", "kendall"] == 1.0
    assert table.loc["up", ["spearman_low", "spearman_high"]].tolist() == pytest.approx([1.0, 1.0])
    assert table.loc["down", "kendall"] == -1.0
    assert np.isnan(table.loc["flat", "spearman"])
    flipped = probe_correlations(frame, metrics=["up"], maximize=False, bootstrap=0).set_index("metric")
    assert flipped.loc["up", "spearman"] == -1.0  # RMSE: lower is better, so the sign turns
    noisy = frame.assign(accuracy=x + np.random.default_rng(0).normal(0, 5, 20))
    row = probe_correlations(noisy, metrics=["up"], bootstrap=300).iloc[0]
    assert row.spearman_low < row.spearman < row.spearman_high and row.kendall_low < row.kendall < row.kendall_high


@pytest.mark.slow
def test_analyze_probes(study_url: str, tmp_path: Path) -> None:
    figure = tmp_path / "probes.png"
    args = ["analyze", "probes", "--storage", study_url, "--study", "probes-tiny", "--bootstrap", "100"]
    result = CliRunner().invoke(app, [*args, "--json", "--figure", str(figure)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["metric"] for r in rows] == [*probe_names(), "params", "macs"]
    assert all(r["n"] == 6 for r in rows)
    assert figure.stat().st_size > 10_000
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0 and "NASWOT" in text.stdout and "Kendall" in text.stdout
    missing = CliRunner().invoke(app, ["analyze", "probes", "--storage", study_url, "--study", "no-probes"])
    assert isinstance(missing.exception, UserError) and "analysis: {probes: true}" in str(missing.exception)


@pytest.mark.slow
def test_the_report_has_a_probe_section(study_url: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["report", "--storage", study_url, "--study", "probes-tiny", "--output", str(out), "--no-analyses"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Zero-cost probes" in page and "NASWOT" in page and (out / "probes.png").is_file()
    plain = tmp_path / "plain"
    args = ["report", "--storage", study_url, "--study", "no-probes", "--output", str(plain), "--no-analyses"]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert "Zero-cost probes" not in (plain / "report.html").read_text(encoding="utf-8")
