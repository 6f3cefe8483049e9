"""``skipsearch results`` and ``skipsearch pareto`` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))
from results_helpers import brute_ranks, random_record, random_topology  # a sibling test folder's helper

from skipsearch.results import connect, evaluations, record_evaluations

ROW_KEYS = {"study", "trial_number", "hash", "state", "accuracy", "test_accuracy", "params", "macs", "latency_ms"}


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'results.db'}"
    engine = connect(url)
    rng = random.Random(11)
    topologies = [random_topology(rng) for _ in range(10)]
    records = [random_record(rng, s, i, rng.choice(topologies), levels=4) for s in ("a", "b") for i in range(120)]
    record_evaluations(engine, records)
    engine.dispose()
    return url


def test_results_json_lists_every_row(storage, cli) -> None:
    code, out, err = cli(["results", "--storage", storage, "--format", "json", "--state", "all"])
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 240 and set(rows[0]) >= ROW_KEYS
    assert {r["state"] for r in rows} == {"COMPLETE", "PRUNED", "FAIL"}


def test_results_shows_complete_trials_by_default_and_says_how_many_others(storage, cli) -> None:
    code, out, err = cli(["results", "--storage", storage, "--format", "json"])
    assert code == 0, err
    complete = json.loads(out)
    assert complete and {r["state"] for r in complete} == {"COMPLETE"}
    code, out, _ = cli(["results", "--storage", storage, "--limit", "3"])
    assert code == 0 and f"{240 - len(complete)} other trials in other states" in out
    code, out, _ = cli(["results", "--storage", storage, "--state", "pruned", "--format", "json"])
    assert code == 0 and {r["state"] for r in json.loads(out)} == {"PRUNED"}
    code, out, _ = cli(["results", "--storage", storage, "--where", "accuracy>2"])
    assert code == 0 and out.startswith("no results yet")


def test_results_table_fits_the_terminal_and_has_a_column_per_filter(storage, cli, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    code, out, _ = cli(["results", "--storage", storage, "--where", "kind=add", "--where", "paths>1", "--limit", "4"])
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert "add skips" in lines[0] and "paths" in lines[0] and "--wide shows them" in out
    code, out, _ = cli(["results", "--storage", storage, "--limit", "4", "--wide"])
    assert code == 0 and "latency ms" in out and "hash" in out


def test_results_filters_sorts_and_limits(storage, cli) -> None:
    args = ["results", "--storage", storage, "--study", "b", "--where", "state=COMPLETE", "--where", "kind=add"]
    code, out, err = cli([*args, "--sort", "macs", "--limit", "5", "--format", "csv"])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 5 and {r["study"] for r in rows} == {"b"} and {r["state"] for r in rows} == {"COMPLETE"}
    assert [int(r["macs"]) for r in rows] == sorted(int(r["macs"]) for r in rows)


def test_results_table(storage, cli) -> None:
    code, out, _ = cli(["results", "--storage", storage, "--limit", "3"])
    assert code == 0
    assert "trial" in out and "accuracy" in out and out.count("\n") >= 5


@pytest.mark.parametrize(
    "objectives",
    ["accuracy:max,macs:min", "accuracy:max,macs:min,latency_ms:min", "test_accuracy:max,params:min,latency_ms:min"],
)
def test_pareto_json_is_exactly_the_non_dominated_rows(storage, cli, objectives: str) -> None:
    args = ["pareto", "--storage", storage, "--study", "a", "--study", "b", "--objectives", objectives]
    code, out, err = cli([*args, "--format", "json"])
    assert code == 0, err
    rows = json.loads(out)
    assert rows and set(rows[0]) >= ROW_KEYS
    got = [(r["study"], r["trial_number"]) for r in rows]
    assert len(got) == len(set(got))

    pairs = [(c, d) for c, _, d in (o.partition(":") for o in objectives.split(","))]
    frame = evaluations(connect(storage))
    names = [c for c, _ in pairs]
    frame = frame[(frame["state"] == "COMPLETE") & frame[names].notna().all(axis=1)]
    ranks = brute_ranks(frame[names].to_numpy(dtype=float), [d for _, d in pairs])
    expected = set(zip(frame["study"][ranks == 0], frame["trial_number"][ranks == 0].astype(int), strict=True))
    assert set(got) == expected


def test_pareto_table_footer_summary_and_plots(storage, cli, tmp_path) -> None:
    code, out, err = cli(["pareto", "--storage", storage, "--study", "a"])
    assert code == 0, err
    assert "hypervolume" in out and "reference point accuracy " in out
    png, html = tmp_path / "front.png", tmp_path / "front.html"
    code, out, err = cli(["pareto", "--storage", storage, "--study", "a", "--summary", "--plot", str(png)])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["front_size"] >= 1 and summary["hypervolume"] > 0
    assert set(summary["reference_point"]) == {"accuracy", "macs"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    args = ["pareto", "--storage", storage, "--study", "a", "--format", "csv", "--plot", str(html)]
    code, _, err = cli(args)
    assert code == 0, err
    text = html.read_text()
    assert "Pareto front" in text and "<script src=" not in text  # offline: plotly.js is inlined
    assert len(text) > 1_000_000


@pytest.mark.parametrize(
    "where",
    [
        "accuracy>0.5'",
        "accuracy>0.5; DROP TABLE evaluations",
        "state=COMPLETE UNION SELECT * FROM topologies",
        "accuracy>0 OR 1=1",
        "accuracy>0 --",
        "study=a/*x*/",
        "sleep(5)>0",
    ],
)
def test_where_injection_is_rejected_with_exit_2_and_one_line(storage, cli, where: str) -> None:
    code, out, err = cli(["results", "--storage", storage, "--where", where])
    assert code == 2 and out == ""
    assert err.startswith("error: --where") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["results", "--study", "zzz"], "no evaluations for study 'zzz' (studies with results: a, b)"),
        (["pareto", "--study", "a", "--objectives", "speed:max"], "objective 'speed'"),
        (["pareto", "--study", "a", "--plot", "front.svg"], "must end in .png or .html"),
        (["pareto", "--study", "a", "--reference-point", "1,x"], "--reference-point"),
        (["pareto", "--study", "a", "--reference-point", "1,2,3"], "needs 2 values"),
        (["results", "--sort", "nope"], "--sort 'nope'"),
    ],
)
def test_bad_input_is_one_line(storage, cli, args: list[str], message: str) -> None:
    code, _, err = cli([*args, "--storage", storage])
    assert code == 2 and message in err and err.count("\n") == 1


def test_missing_database_file_is_not_created(tmp_path, cli) -> None:
    path = tmp_path / "typo.db"
    code, _, err = cli(["results", "--storage", f"sqlite:///{path}"])
    assert code == 2 and "no results database" in err and not path.exists()


@pytest.mark.slow
def test_installed_command(storage) -> None:
    """The console script end to end, once (a fresh process, as a user runs it)."""
    args = ["pareto", "--storage", storage, "--study", "a", "--where", "accuracy>0.5;", "--format", "json"]
    command = [sys.executable, "-c", "from skipsearch.cli import main; main()", *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --where") and proc.stderr.count("\n") == 1


def test_pareto_of_one_objective_reports_the_best_value_not_a_hypervolume(storage, cli) -> None:
    args = ["pareto", "--storage", storage, "--study", "a", "--objectives", "accuracy:max"]
    code, out, err = cli(args)
    assert code == 0, err
    assert "one objective: no hypervolume" in out and "best accuracy" in out
    code, out, err = cli([*args, "--summary"])
    summary = json.loads(out)
    assert summary["hypervolume"] is None and summary["reference_point"] is None


def test_pareto_without_a_stored_study_states_its_fallback_reference_point(storage, cli) -> None:
    code, out, err = cli(["pareto", "--storage", storage, "--study", "a", "--summary"])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["reference_source"] == "nadir + 10%"
    assert 0 < summary["normalised_hypervolume"] <= 1
