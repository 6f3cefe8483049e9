"""``skipsearch run`` / ``worker`` as a user runs them: real processes, real SQLite files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
import yaml

pytestmark = pytest.mark.slow  # every test runs the real command in a new process; the fixture trains a study

TINY = {
    "name": "cli-tiny",
    "task": "mnist1d",
    "backbone": {"family": "mlp", "args": {"input_features": 40, "hidden": [16, 16], "classes": 10}},
    "space": {"max_span": 2, "choices": ["off", "add", "concat"]},
    "objectives": ["accuracy:max", "macs:min"],
    "sampler": {"name": "random"},
    "training": {"epochs": 1},
    "trials": 3,
}


def skipsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skipsearch", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with study.yaml and the skipsearch.db a default `run` left there."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "study.yaml").write_text(yaml.safe_dump(TINY))
    result = skipsearch("run", "study.yaml", "--quiet", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "Pareto front of cli-tiny" in result.stdout
    return folder


def _trial_count(folder: Path) -> int:
    return len(optuna.load_study(study_name="cli-tiny", storage=f"sqlite:///{folder / 'skipsearch.db'}").trials)


def test_run_uses_the_default_sqlite_file(finished: Path) -> None:
    assert _trial_count(finished) == 3


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["run", "missing.yaml"], ["missing.yaml: no such study file"]),
        (["run", "study.yaml", "--storage", "nonsense"], ["--storage", "not a database URL"]),
        (["run", "study.yaml", "--storage", "mysqlx+nodriver://h/db"], ["unknown database kind"]),
        (["run", "study.yaml", "--storage", "sqlite:///no/such/folder/x.db"], ["does not exist"]),
        (["run", "study.yaml", "--workers", "0"], ["--workers"]),
        (["run", "study.yaml", "--bogus"], ["--bogus"]),
        (["worker", "--study", "nope"], ["no study named 'nope'", "cli-tiny"]),
    ],
)
def test_bad_input_is_one_line_and_loses_nothing(finished: Path, args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(skipsearch(*args, cwd=finished), *fragments)
    assert _trial_count(finished) == 3


def test_bad_study_file_names_file_and_key(finished: Path) -> None:
    (finished / "bad.yaml").write_text(yaml.safe_dump({**TINY, "space": {"max_span": 1, "colour": 1}}))
    assert_one_line_error(skipsearch("run", "bad.yaml", cwd=finished), "bad.yaml", "space.colour", "unknown key")


def test_unreachable_server_never_shows_the_password(finished: Path) -> None:
    url = "postgresql+psycopg://someone:s3cret@127.0.0.1:9/db"
    result = skipsearch("run", "study.yaml", "--storage", url, cwd=finished)
    assert_one_line_error(result, "cannot connect")
    assert "s3cret" not in result.stderr + result.stdout


def test_worker_joins_and_raises_the_target(finished: Path) -> None:
    result = skipsearch("worker", "--study", "cli-tiny", "--n-trials", "4", "--quiet", cwd=finished)
    assert result.returncode == 0, result.stderr
    assert _trial_count(finished) == 4


def test_dashboard_reads_the_study_and_topology_attributes(finished: Path) -> None:
    """What `optuna-dashboard sqlite:///skipsearch.db` serves, through its own WSGI app."""
    from optuna_dashboard import wsgi

    app = wsgi(f"sqlite:///{finished / 'skipsearch.db'}")

    def get(path: str) -> dict:
        environ: dict = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h, *a: status.append(s)))
        assert status[0].startswith("200"), status
        return json.loads(body)

    studies = get("/api/studies")["study_summaries"]
    study = next(s for s in studies if s["study_name"] == "cli-tiny")
    detail = get(f"/api/studies/{study['study_id']}")
    trial = detail["trials"][0]
    attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
    assert {"topology", "hash", "macs", "accuracy"} <= set(attrs)
    assert json.loads(attrs["topology"])["format"] == 1
