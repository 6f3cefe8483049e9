"""``skipsearch report`` and the study-level ``analyze`` commands on a tiny real study."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from study_helpers import run_study, tiny_study
from typer.testing import CliRunner

from skipsearch.cli import app

pytestmark = pytest.mark.slow  # the fixture trains a tiny study

TINY = tiny_study("report-tiny", early_stopping={"enabled": False})


@pytest.fixture(scope="module")
def study_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('study') / 'tiny.db'}"
    run_study(url, TINY)
    return url


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def test_report_is_self_contained(study_url: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    _invoke("report", "--storage", study_url, "--study", TINY["name"], "--output", str(out), "--top", "2")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in out.glob("*.png")) == ["gradients.png", "pareto.png", "paths.png", "topologies.png"]
    assert page.count('src="data:image/png;base64,') == 4
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page must not fetch anything"
    for heading in ("Pareto front", "best topologies", "gradient flow", "Paths and effective depth", "each edge"):
        assert heading in page
    assert "report-tiny" in page and "fANOVA" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs headless Chromium (/usr/bin/chromium)")
def test_report_renders_in_headless_chromium(study_url: str, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "report"
    _invoke("report", "--storage", study_url, "--study", TINY["name"], "--output", str(out), "--no-analyses")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            shutil.which("chromium") or "chromium",
            *("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1600"),
            *("--no-first-run", "--disable-extensions", "--disable-background-networking"),
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            f"--screenshot={shot}",
            (out / "report.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # The Pareto front is drawn in matplotlib's C3 red (214, 39, 40): only a rendered figure has it.
    red = (abs(pixels - np.array([214, 39, 40])).sum(axis=2) < 60).sum()
    assert red > 50, "the embedded figures did not render"


def test_analyze_edges_and_metrics(study_url: str) -> None:
    edges = json.loads(_invoke("analyze", "edges", "--storage", study_url, "--study", TINY["name"], "--json"))
    assert edges["trials"] == 4 and edges["effects"]
    assert {e["objective"] for e in edges["effects"]} == {"accuracy", "macs"}
    assert set(edges["fanova"]) == {"accuracy", "macs"}
    text = _invoke("analyze", "edges", "--storage", study_url, "--study", TINY["name"], "--no-importances")
    assert "edge " in text and " as " in text
    metrics = json.loads(_invoke("analyze", "metrics", "--storage", study_url, "--json"))
    assert {m["metric"] for m in metrics} >= {"log2_paths", "active_skips"}


def test_analyze_a_stored_trial(study_url: str) -> None:
    rows = json.loads(
        _invoke(
            "analyze",
            "gradients",
            "--storage",
            study_url,
            "--study",
            TINY["name"],
            "--trial",
            "0",
            "--no-train",
            "--json",
        )
    )
    assert rows[0]["label"] == "trial 0" and rows[0]["stage"] == "init"
    paths = json.loads(
        _invoke("analyze", "paths", "--storage", study_url, "--study", TINY["name"], "--trial", "0", "--json")
    )
    assert paths[0]["gradients"]["stage"] == "init" and paths[0]["metrics"]["paths"] >= 1
