"""Bad input, generated: study files, topology JSON and command-line values.

Every case must end in success or a one-line error with exit code 2, never a traceback, and must
not change what the storage holds (the trials and results rows of an existing study).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_runner import invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import SHORT, skipsearch_command

from skipsearch.search import create_study, parse_study_config, run_worker
from skipsearch.topology import families

# The fixture trains a tiny study; one test spawns real processes.
pytestmark = [pytest.mark.reliability, pytest.mark.slow]

BASE_STUDY = "base-study-0"
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

# -- the stored study every case must leave alone ------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{folder / 'store.db'}"
    config = parse_study_config({**SHORT, "name": BASE_STUDY, "trials": 3}, "base.yaml")
    create_study(config, url)
    run_worker(url, BASE_STUDY)
    return folder, url


def _snapshot(folder: Path) -> tuple[Any, ...]:
    """The base study's Optuna trials and results rows, as plain tuples."""
    with contextlib.closing(sqlite3.connect(folder / "store.db")) as conn:
        trials = conn.execute(
            "SELECT t.number, t.state, v.objective, v.value FROM trials t JOIN studies s USING (study_id) "
            "LEFT JOIN trial_values v USING (trial_id) WHERE s.study_name = ? ORDER BY 1, 3",
            (BASE_STUDY,),
        ).fetchall()
        params = conn.execute("SELECT COUNT(*) FROM trial_params").fetchone()
        rows = conn.execute("SELECT * FROM evaluations WHERE study = ? ORDER BY trial_number", (BASE_STUDY,)).fetchall()
        studies = conn.execute("SELECT study_name FROM studies ORDER BY 1").fetchall()
    return tuple(trials), params, tuple(rows), tuple(studies)


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    """Runs in ``folder`` so that a relative path from a generated value lands there."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _assert_clean(code: int, err: str, args: list[str]) -> None:
    assert code in (0, 2), (code, args, err[-800:])
    assert "Traceback" not in err, err
    if code == 2:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error: "), err


# -- generated values -------------------------------------------------------------------------

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(min_value=-2, max_value=64), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(min_value=-2, max_value=64), max_size=2),
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


@st.composite
def _mutated(draw: st.DrawFn, base: dict) -> dict:
    """``base`` with one to three keys replaced by random values, deleted, or an unknown key added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(_leaf)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(_leaf)
    return doc


_STUDY = {**SHORT, "name": "fuzzed"}
_TOPOLOGY = json.loads(families.mlp(input_features=20, hidden=[8, 8], classes=10, residual=True).to_json())


# -- the fuzz targets -------------------------------------------------------------------------


@FUZZ
@given(doc=st.one_of(_mutated(_STUDY), st.text(max_size=200), st.binary(max_size=100)))
def test_study_files(store: tuple[Path, str], doc: Any) -> None:
    folder, url = store
    path = folder / "study.yaml"
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    else:
        path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    before = _snapshot(folder)
    args = ["migrate", "--study-file", str(path), "--storage", url]
    with _inside(folder):
        code, _, err = invoke(args)
    _assert_clean(code, err, args)
    after = _snapshot(folder)
    assert after[:3] == before[:3] if code == 0 else after == before


@FUZZ
@given(doc=st.one_of(_mutated(_TOPOLOGY), st.text(max_size=200)))
def test_topology_json(store: tuple[Path, str], doc: Any) -> None:
    folder, _ = store
    path = folder / "topology.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    args = ["describe", str(path), "--json", "--no-latency"]
    code, _, err = invoke(args)
    _assert_clean(code, err, args)


_VALUE = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.sampled_from(["accuracy>0.5", "macs<=", "kind=add", "edge=h1->h3", "-accuracy", "nan", "1e999", "--help"]),
)
_COMMANDS = [
    ["results", "--where", "{}"],
    ["results", "--sort", "{}"],
    ["results", "--limit", "{}"],
    ["results", "--format", "{}"],
    ["pareto", "--study", "{}"],
    ["recover", "--study", "{}", "--no-wait"],
    ["worker", "--study", "{}", "--n-trials", "1"],
    ["worker", "--study", BASE_STUDY, "--timeout", "{}", "--max-trials", "{}"],
    ["migrate", "--study-file", "{}"],
]


@FUZZ
@given(template=st.sampled_from(_COMMANDS), value=_VALUE)
def test_cli_values(store: tuple[Path, str], template: list[str], value: str) -> None:
    folder, url = store
    if value == BASE_STUDY or (value.lstrip("-").isdigit() and "--timeout" in template):
        value = "0"  # a valid worker run would train: keep to rejected values for that one
    args = [value if part == "{}" else part for part in template] + ["--storage", url]
    before = _snapshot(folder)
    with _inside(folder):
        code, _, err = invoke(args)
    _assert_clean(code, err, args)
    assert _snapshot(folder) == before


@pytest.mark.parametrize(
    "args",
    [
        ["describe", "no-such-topology.json"],
        ["migrate", "--study-file", "bad.yaml"],
        ["results", "--where", "accuracy >>> 1"],
        ["worker", "--study", "no-such-study"],
    ],
)
def test_real_processes_print_one_line(store: tuple[Path, str], args: list[str]) -> None:
    """The console script itself: exit 2, one line on stderr, no traceback."""
    folder, url = store
    (folder / "bad.yaml").write_text("name: [unclosed\n")
    env = {**os.environ, "SKIPSEARCH_STORAGE": url}
    before = _snapshot(folder)
    done = subprocess.run(
        [*skipsearch_command(), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert _snapshot(folder) == before
