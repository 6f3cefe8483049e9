"""The README's commands, in order, as a new user runs them in an 80-column terminal.

The quickstart study is reduced (fewer trials and epochs, same space and objectives) to keep the
test near a minute. Checks: no table cell is cut mid-value, ``results`` shows only COMPLETE rows by
default, and ``pareto``, ``report`` and the dashboard's data state the same hypervolume and
reference point.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = 80

pytestmark = pytest.mark.slow


def _readme_commands() -> list[str]:
    """Every ``skipsearch ...`` command of the README's quickstart, in order (comments dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    install = re.search(r"<!-- ci:install -->\s*```bash\n(.*?)```", text, re.S)
    assert install is not None
    commands = [c.strip() for c in install.group(1).split("&&") if c.strip().startswith("skipsearch ")]
    watch = re.search(r"Then watch or query the study:\s*```bash\n(.*?)```", text, re.S)
    assert watch is not None
    for line in watch.group(1).splitlines():
        command = line.split("  #")[0].strip()
        if command.startswith("skipsearch "):
            commands.append(command)
    return commands


def _reduced_quickstart(folder: Path) -> None:
    study = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text(encoding="utf-8"))
    study["trials"] = 5
    study["training"] = {**study["training"], "epochs": 2}
    study["sampler"] = {"name": "tpe", "options": {"n_startup_trials": 4}}
    (folder / "studies").mkdir()
    (folder / "studies" / "quickstart.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    import shlex

    args = shlex.split(command)
    if args[1] == "train":  # the README's train uses the task's 10 epochs; one shows the same
        args += ["--epochs", "1"]
    env = {**os.environ, "COLUMNS": str(COLUMNS), "PYTHONPATH": str(ROOT), "SKIPSEARCH_STORAGE": ""}
    env.pop("SKIPSEARCH_STORAGE")
    return subprocess.run(
        [sys.executable, "-m", "skipsearch", *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _assert_nothing_cut(command: str, output: str) -> None:
    assert "…" not in output, f"{command}: a table cell is cut:\n{output}"
    for line in output.splitlines():
        assert len(line) <= COLUMNS, f"{command}: a line wider than {COLUMNS} columns:\n{line}"


def test_readme_commands_in_an_80_column_terminal(tmp_path: Path) -> None:
    commands = _readme_commands()
    assert commands[0] == "skipsearch run studies/quickstart.yaml"
    assert any(c.startswith("skipsearch results ") for c in commands)
    _reduced_quickstart(tmp_path)
    outputs: dict[str, str] = {}
    for command in commands:
        if command.split()[1] == "dashboard":
            continue  # a server; its data is checked below
        done = _run(command, tmp_path)
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stderr}"
        _assert_nothing_cut(command, done.stdout)
        outputs[command.split()[1]] = done.stdout

    # results: only COMPLETE trials unless --state says otherwise, and it says how many others exist
    results = next(c for c in commands if c.startswith("skipsearch results "))
    shown = _run(f"{results} --format json", tmp_path)
    assert shown.returncode == 0 and {r["state"] for r in json.loads(shown.stdout)} <= {"COMPLETE"}
    table = outputs["results"]
    assert "PRUNED" not in table and "FAIL" not in table
    assert table.startswith("no results yet") or "COMPLETE" in table or "more columns" in table

    # one hypervolume: pareto, the report and the dashboard's data agree, reference point included
    summary = json.loads(_run("skipsearch pareto --study quickstart --summary", tmp_path).stdout)
    assert summary["reference_source"] == "study"
    reference = summary["reference_point"]
    assert reference["accuracy"] == 0.0 and reference["macs"] > 0
    stated = _hypervolume_statement(summary)
    assert stated in " ".join(outputs["pareto"].split()), outputs["pareto"]
    report = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert stated[0].upper() + stated[1:] in " ".join(report.split())
    meta = _dashboard_hypervolume(tmp_path / "skipsearch.db")
    assert meta["reference_point"] == pytest.approx(reference)
    assert meta["hypervolume"] == pytest.approx(summary["hypervolume"])
    assert meta["normalised_hypervolume"] == pytest.approx(summary["normalised_hypervolume"])

    # honest defaults: a finished study says so; a failed report leaves no folder behind
    again = _run("skipsearch run studies/quickstart.yaml --n-trials 3", tmp_path)
    assert again.returncode == 0 and "has reached its target" in again.stderr and "--more N" in again.stderr
    missing = _run("skipsearch report --study nope --output nope-report", tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert not (tmp_path / "nope-report").exists()


def _hypervolume_statement(summary: dict[str, object]) -> str:
    from skipsearch.results import hypervolume_text

    objectives = [(o["name"], o["direction"]) for o in summary["objectives"]]  # type: ignore[attr-defined]
    reference = [summary["reference_point"][n] for n, _ in objectives]  # type: ignore[index]
    return hypervolume_text(summary["hypervolume"], reference, objectives, "accuracy")  # type: ignore[arg-type]


def _dashboard_hypervolume(database: Path) -> dict[str, object]:
    """What the dashboard serves as the hypervolume plot's figure (the study's stored plot data)."""
    import optuna
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    from skipsearch.search._plots import HYPERVOLUME_PLOT_ID

    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{database}")
    attrs = study._storage.get_study_system_attrs(study._study_id)
    figure = json.loads(get_plotly_graph_objects(attrs)[HYPERVOLUME_PLOT_ID])
    return figure["layout"]["meta"]
