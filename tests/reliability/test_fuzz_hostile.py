"""Hostile input, generated (hypothesis): study files, topology files, bundles and command-line values
of the kinds issue 13 found (huge numbers, deep nesting, keywords, requests for absurd sizes).

Every case must end in success or a one-line error with exit code 2 (``reproduce`` may also exit 1,
"not reproduced", with its report), never a traceback; the stored study's trials and results rows
must not change; and each case stays within bounded time and memory. The suite runs under small
limits from the environment (``SKIPSEARCH_LIMIT_*``), as a shared deployment would set them.

With ``-s`` it prints, per family, the cases tried, how many succeeded and how many exited 2, the
slowest case and the process's peak memory: the figures of docs/reliability.md.
"""

from __future__ import annotations

import copy
import json
import os
import random
import resource
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_runner import invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import SHORT
from test_bad_input import BASE_STUDY, _inside, _mutated, _snapshot

from skipsearch.export import Recipe, export_topology
from skipsearch.search import create_study, parse_study_config, run_worker
from skipsearch.tasks import TASKS
from skipsearch.topology import families

pytestmark = [pytest.mark.reliability, pytest.mark.slow]  # the store trains a study, the bundle a tiny MLP

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

LIMITS = {
    "SKIPSEARCH_LIMIT_MEMORY": "512MB",
    "SKIPSEARCH_LIMIT_PARAMS": "5000000",
    "SKIPSEARCH_LIMIT_SAMPLES": "20000",
    "SKIPSEARCH_LIMIT_SAMPLE_EPOCHS": "2000",
    "SKIPSEARCH_LIMIT_BLOCKS": "500",
}
"""Small limits for the suite: no case may allocate more than a few hundred MB or train for long."""

CASE_SECONDS = 30.0
"""The slowest a single case may be (the slowest measured is under 3 s; this leaves room for load)."""

CASE_MEMORY_MB = 1024
"""How far the process's peak memory may rise over the whole suite."""

STATS: dict[str, Counter[str]] = {}
SLOWEST: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def small_limits() -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in LIMITS}
    os.environ.update(LIMITS)
    start_rss = _rss_mb()
    started = time.perf_counter()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        summary = {
            family: {**counts, "slowest_s": round(SLOWEST.get(family, 0.0), 2)} for family, counts in STATS.items()
        }
        summary["peak_rss_mb"] = {"start": round(start_rss), "end": round(_rss_mb())}  # type: ignore[assignment]
        summary["seconds"] = round(time.perf_counter() - started, 1)  # type: ignore[assignment]
        print("\nfuzz-hostile " + json.dumps(summary))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(family: str, args: list[str], *, allow_1: bool = False) -> tuple[int, str, str]:
    """Runs one case, checks the outcome's form and its time and memory, and counts it."""
    rss = _rss_mb()
    start = time.perf_counter()
    code, out, err = invoke(args)
    seconds = time.perf_counter() - start
    assert code in ((0, 1, 2) if allow_1 else (0, 2)), (code, args, err[-800:])
    assert "Traceback" not in err, err
    if code == 2:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error: "), err
    assert seconds < CASE_SECONDS, (seconds, args)
    assert _rss_mb() - rss < CASE_MEMORY_MB, (args, _rss_mb(), rss)
    counts = STATS.setdefault(family, Counter())
    counts["cases"] += 1
    counts[{0: "succeeded", 1: "not_reproduced", 2: "exit_2"}[code]] += 1
    SLOWEST[family] = max(SLOWEST.get(family, 0.0), seconds)
    return code, out, err


# -- hostile values ---------------------------------------------------------------------------

_hostile = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(
        [10**12, 10**306, -(10**306), 2**32, 2**63, 10**18 + 1, 0, -1, 1e308, float("nan"), float("inf"), True]
    ),
    st.sampled_from(["as", "class", "None", "x²", "1e999", "8GB", "a" * 300, "", "\x00", "../x", "h1->h2", "nan"]),
    st.recursive(st.none() | st.integers(0, 3) | st.text(max_size=3), lambda c: st.lists(c, max_size=2), max_leaves=4),
)


@st.composite
def _hostile_mutation(draw: st.DrawFn, base: dict) -> dict:
    """``base`` with one or two values replaced by hostile ones (or the generic mutations of
    ``test_bad_input``)."""
    if draw(st.booleans()):
        return draw(_mutated(base))
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 2))):
        paths = _leaf_paths(doc)
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = draw(_hostile)
    return doc


def _leaf_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _leaf_paths(item, (*prefix, key))] or [prefix]
    if isinstance(value, list) and value:
        return [p for i, item in enumerate(value) for p in _leaf_paths(item, (*prefix, i))]
    return [prefix] if prefix else []


_deep_text = st.integers(500, 60_000).map(lambda n: "a: " + "[" * n + "]" * n)
_long_number = st.integers(300, 6000).map(lambda n: "seed: " + "9" * n + "\n")


# -- the stored study every case must leave alone ------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{folder / 'store.db'}"
    config = parse_study_config({**SHORT, "name": BASE_STUDY, "trials": 2}, "base.yaml")
    create_study(config, url)
    run_worker(url, BASE_STUDY)
    (folder / "study.yaml").write_text(yaml.safe_dump({**SHORT, "name": "valid"}))
    return folder, url


_STUDY = {**SHORT, "name": "hostile", "limits": {"params": 100_000, "macs": 10**7, "blocks": 100}}


@FUZZ
@given(doc=st.one_of(st.just(_STUDY), _hostile_mutation(_STUDY), _deep_text, _long_number))
def test_hostile_study_files(store: tuple[Path, str], doc: Any) -> None:
    folder, url = store
    path = folder / "hostile.yaml"
    try:
        text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    except (yaml.YAMLError, ValueError):  # a value PyYAML cannot write: nothing to test
        return
    path.write_text(text, encoding="utf-8")
    before = _snapshot(folder)
    args = ["migrate", "--study-file", str(path), "--storage", url]
    with _inside(folder):
        code, _, _ = _run("study files", args)
    after = _snapshot(folder)
    assert after[:3] == before[:3]  # the base study's trials and rows; a valid file may add a study
    if code == 2:
        assert after == before  # nothing stored by a refused file


_TOPOLOGY = json.loads(families.mlp(input_features=20, hidden=[8, 8], classes=10, residual=True).to_json())


def _chain_text(blocks: int, span: int) -> str:
    nodes = [{"id": "x", "op": "input", "shape": [4]}]
    nodes += [{"id": f"h{i}", "op": "linear", "features": 4} for i in range(blocks)]
    nodes.append({"id": "o", "op": "head", "classes": 2, "pool": "none"})
    skips = [{"src": nodes[i]["id"], "dst": nodes[i + span]["id"]} for i in range(1, len(nodes) - span - 1)]
    return json.dumps({"format": 1, "name": "chain", "nodes": nodes, "skips": skips})


@FUZZ
@given(
    doc=st.one_of(
        st.just(_TOPOLOGY),
        _hostile_mutation(_TOPOLOGY),
        st.builds(_chain_text, st.integers(1, 3000), st.integers(2, 4)),
        _deep_text.map(lambda text: text[3:]),
        st.integers(300, 6000).map(lambda n: '{"format": 1, "nodes": [' + "9" * n + "]}"),
    ),
    latency=st.booleans(),
)
def test_hostile_topology_files(store: tuple[Path, str], doc: Any, latency: bool) -> None:
    folder, _ = store
    path = folder / "hostile.json"
    try:
        text = doc if isinstance(doc, str) else json.dumps(doc)
    except ValueError:  # an int json cannot write (over 4300 digits): nothing to test
        return
    path.write_text(text, encoding="utf-8")
    _run("topology files", ["describe", str(path), "--json", *([] if latency else ["--no-latency"])])


_VALUE = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.sampled_from(
        ["nan", "inf", "-inf", "-1", str(2**32), str(10**10), "9" * 5000, "as", "a" * 600, "1e999", "0x10", "teacher"]
    ),
    st.sampled_from(["mlp-deep", "resnet20", "json", "graphml", "pytorch", "bundle", "1,2", "nan,1", "0.5,1e9"]),
)
_COMMANDS = [
    ["train", "mlp-deep", "--task", "teacher", "--seed", "{}"],
    ["train", "mlp-deep", "--task", "{}"],
    ["train", "mlp-deep", "--task", "teacher", "--epochs", "{}", "--batch-size", "{}"],
    ["train", "mlp-deep", "--task", "teacher", "--lr", "{}"],
    ["pareto", "--study", BASE_STUDY, "--reference-point", "{}"],
    ["results", "--limit", "{}"],
    ["results", "--where", "macs<{}"],
    ["describe", "{}", "--no-latency"],
    ["export", "{}", "--format", "json", "--output", "out"],
    ["export", "mlp-deep", "--format", "{}", "--output", "out"],
    ["migrate", "--study-file", "study.yaml", "--study", "{}"],
]


@settings(FUZZ, max_examples=40)
@given(template=st.sampled_from(_COMMANDS), value=_VALUE)
def test_hostile_cli_values(store: tuple[Path, str], template: list[str], value: str) -> None:
    folder, url = store
    if value == BASE_STUDY:
        value = "x"
    args = [value if part == "{}" else part for part in template]
    if args[0] in ("pareto", "results", "migrate"):
        args += ["--storage", url]
    before = _snapshot(folder)
    with _inside(folder):
        _run("command-line values", args)
    after = _snapshot(folder)
    assert after[:3] == before[:3]


# -- bundles ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    topology = families.mlp(20, [8, 8], 10, residual=True, name="fuzzed-bundle")
    options = {"train_size": 200, "val_size": 100, "test_size": 100}
    recipe = Recipe("teacher", TASKS["teacher"].default_config.updated(epochs=1, batch_size=50, threads=1), 1, options)
    result = export_topology(topology, "bundle", tmp_path_factory.mktemp("bundle"), name="net", recipe=recipe)
    return result.files[0].parent


_FILE_ACTIONS = ("flip", "truncate", "append", "delete", "extra", "zero-checksum")


@FUZZ
@given(
    change=st.one_of(
        st.tuples(st.just("manifest"), st.integers(0, 2**32)),
        st.tuples(st.sampled_from(_FILE_ACTIONS), st.integers(0, 2**32)),
        st.tuples(st.just("text"), st.integers(0, 2**32)),
    ),
    manifest_change=st.data(),
)
def test_hostile_bundles(bundle: Path, change: tuple[str, int], manifest_change: st.DataObject) -> None:
    action, seed = change
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(shutil.copytree(bundle, Path(tmp) / "net"))
        manifest_path = folder / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        names = sorted(manifest["files"])
        target = rng.choice(names)
        if action == "manifest":
            changed = manifest_change.draw(_hostile_mutation(manifest))
            try:
                manifest_path.write_text(json.dumps(changed))
            except ValueError:
                return
        elif action == "text":
            manifest_path.write_text(manifest_change.draw(st.one_of(st.text(max_size=50), _deep_text)))
        elif action == "zero-checksum":
            manifest["files"][target] = "0" * 64
            manifest_path.write_text(json.dumps(manifest))
        elif action == "extra":
            (folder / "extra.py").write_text("print('not listed')\n")
            target = "extra.py"
        else:
            _damage(folder / target, action, rng)
        code, out, err = _run("bundles", ["reproduce", str(folder), "--json"], allow_1=True)
    if action in _FILE_ACTIONS:  # a file that differs from the manifest is refused, by name
        assert code == 2 and target in err, (action, target, err)
    if code == 1:
        assert json.loads(out)["reproduced"] is False


def _damage(path: Path, action: str, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    if action == "flip" and data:
        data[rng.randrange(len(data))] ^= 1 + rng.randrange(255)
    elif action == "truncate":
        data = data[: rng.randrange(len(data))] if data else data
    elif action == "append":
        data += b"\x00"
    if action == "delete":
        path.unlink()
    else:
        path.write_bytes(bytes(data))
