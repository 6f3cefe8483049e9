"""``skipsearch dashboard`` end to end: a real server process read through optuna-dashboard's HTTP API,
and the study page rendered by headless Chromium."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import Dashboard

from skipsearch.search._plots import HYPERVOLUME_PLOT_ID, PARETO_PLOT_ID
from skipsearch.topology import Topology

CHROMIUM = "/usr/bin/chromium"


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def _json(url: str) -> Any:
    status, _, body = _get(url)
    assert status == 200
    return json.loads(body)


def _study(dashboard: Dashboard) -> dict[str, Any]:
    studies = _json(f"{dashboard.base}/api/studies")["study_summaries"]
    (summary,) = [s for s in studies if s["study_name"] == dashboard.study.name]
    return summary


@pytest.mark.slow
def test_binds_loopback_and_names_the_artifact_folder(dashboard: Dashboard) -> None:
    text = "".join(dashboard.stderr)
    assert dashboard.base.startswith("http://127.0.0.1:")
    assert "topology pictures from" in text and "skipsearch-artifacts" in text


@pytest.mark.slow
def test_api_serves_trials_with_topology_and_custom_plots(dashboard: Dashboard) -> None:
    summary = _study(dashboard)
    assert summary["directions"] == ["maximize", "minimize"]
    detail = _json(f"{dashboard.base}/api/studies/{summary['study_id']}")
    assert detail["objective_names"] == ["accuracy", "macs"]
    trials = detail["trials"]
    assert len(trials) == 3 and {t["state"] for t in trials} == {"Complete"}
    for trial in trials:
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        topology = Topology.from_json(attrs["topology"])
        assert topology.hash == attrs["hash"]
        assert {"accuracy", "macs", "params"} <= attrs.keys()
    # optuna-dashboard 0.21 returns custom plots as {"id", "graph_object": <plotly JSON text>}.
    plots = {p["id"]: json.loads(p["graph_object"]) for p in detail["plotly_graph_objects"]}
    assert set(plots) == {HYPERVOLUME_PLOT_ID, PARETO_PLOT_ID}
    title = plots[HYPERVOLUME_PLOT_ID]["layout"]["title"]["text"]
    assert "reference point accuracy 0, MACs " in title
    history = plots[HYPERVOLUME_PLOT_ID]["data"][0]
    assert history["x"] == [0, 1, 2] and history["y"] == sorted(history["y"]) and history["y"][-1] > 0
    pareto = plots[PARETO_PLOT_ID]
    assert "accuracy vs. MACs" in pareto["layout"]["title"]["text"]
    assert sum(len(trace["x"]) for trace in pareto["data"]) == 3


@pytest.mark.slow
def test_every_trial_has_a_downloadable_topology_picture(dashboard: Dashboard) -> None:
    summary = _study(dashboard)
    detail = _json(f"{dashboard.base}/api/studies/{summary['study_id']}")
    for trial in detail["trials"]:
        (artifact,) = trial["artifacts"]
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert artifact["filename"] == f"topology-{attrs['hash']}.svg"
        assert artifact["mimetype"] == "image/svg+xml"
        url = f"{dashboard.base}/artifacts/{summary['study_id']}/{trial['trial_id']}/{artifact['artifact_id']}"
        status, kind, body = _get(url)
        assert status == 200 and kind.startswith("image/svg+xml")
        svg = body.decode()
        assert "<svg" in svg and attrs["hash"] in svg  # the title names the topology's hash


@pytest.mark.slow
@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run does)"
)
def test_browser_renders_the_study_page(dashboard: Dashboard, tmp_path: Path) -> None:
    summary = _study(dashboard)
    page = f"{dashboard.base}/dashboard/studies/{summary['study_id']}"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        "--virtual-time-budget=15000",  # lets the page's scripts fetch and draw before the capture
    ]
    shot = tmp_path / "study.png"

    def chromium(profile: str, *extra: str) -> subprocess.CompletedProcess[str]:
        command = [CHROMIUM, *flags, f"--user-data-dir={tmp_path / profile}", *extra, page]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    dom = chromium("profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dashboard.study.name in dom.stdout
    assert "Hypervolume history" in dom.stdout  # the custom plot was drawn on the page
    capture = chromium("profile-shot", f"--screenshot={shot}")
    assert capture.returncode == 0, capture.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a blank page compresses to a few kB


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Runs ``skipsearch dashboard ARGS`` in this process (only for inputs that fail before serving)."""
    from skipsearch.cli import main

    monkeypatch.setattr(sys, "argv", ["skipsearch", "dashboard", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.err + captured.out


@pytest.mark.parametrize("storage", ["nonsense://x", "sqlite:///{tmp}/missing.db", "sqlite:///{tmp}/no/such/x.db"])
def test_bad_storage_is_one_line_and_exit_2(
    storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = _main(monkeypatch, capsys, "--storage", storage.format(tmp=tmp_path), "--port", "0")
    assert code == 2, output
    assert output.count("\n") == 1 and output.startswith("error: --storage")
    assert not (tmp_path / "missing.db").exists()  # a viewer never creates a database


def test_password_is_never_printed(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    url = "postgresql+psycopg://someone:s3cr3t-pw@127.0.0.1:1/db"
    code, output = _main(monkeypatch, capsys, "--storage", url, "--port", "0")
    assert code == 2
    assert "s3cr3t-pw" not in output
    assert "someone:***@127.0.0.1:1" in output
