"""Resource limits checked before anything is allocated, and validation that matches what the code
later accepts: each class of issue 13's hostile inputs, with cases of our own."""

from __future__ import annotations

import contextlib
import json
import re
import resource
import sqlite3
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_runner import invoke
from reliability_helpers import SHORT

from skipsearch.errors import UserError
from skipsearch.search import create_study, load_study_config, parse_study_config
from skipsearch.search._limits import check_trial_topology
from skipsearch.search._options import check_sampler_options
from skipsearch.tasks import check_task_size, load_task, planned_size
from skipsearch.topology import (
    Limits,
    Topology,
    TopologyError,
    check_topology,
    footprint,
    get_preset,
    graph_metrics,
    path_length_distribution,
)

pytestmark = [pytest.mark.reliability]


def _one_line(code: int, err: str, *fragments: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _topology(*blocks: dict[str, Any], shape: list[int] | None = None, skips: list[dict] | None = None) -> dict:
    nodes = [{"id": "x", "op": "input", "shape": shape or [1, 32, 32]}, *blocks]
    return {"format": 1, "name": "hostile", "nodes": nodes, "skips": skips or []}


def _chain(blocks: int, span: int = 2) -> Topology:
    """``blocks`` linear layers with an additive skip over every ``span`` of them."""
    nodes = [{"id": "x", "op": "input", "shape": [4]}]
    nodes += [{"id": f"h{i}", "op": "linear", "features": 4} for i in range(blocks)]
    nodes.append({"id": "out", "op": "head", "classes": 2, "pool": "none"})
    skips = [{"src": nodes[i]["id"], "dst": nodes[i + span]["id"]} for i in range(1, len(nodes) - span - 1)]
    return Topology.create(nodes, skips, name=f"chain{blocks}")


def _write(folder: Path, name: str, doc: Any) -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- limits, before allocation ------------------------------------------------------------------


def test_a_billion_channels_is_refused_before_describe_builds_it(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "wide.json",
        _topology({"id": "c1", "op": "conv", "channels": 10**9}, {"id": "o", "op": "head", "classes": 2}),
    )
    rss = _max_rss_mb()
    start = time.perf_counter()
    code, _, err = invoke(["describe", str(path)])
    line = _one_line(code, err, "node 'c1'", "GB of weights exceeds the limit of", "raise limits.memory")
    assert time.perf_counter() - start < 5 and _max_rss_mb() - rss < 200, line
    # Without latency nothing is built: the counts come from the shapes, at once.
    code, out, err = invoke(["describe", str(path), "--json", "--no-latency"])
    assert code == 0, err
    assert json.loads(out)["params"] > 9 * 10**9


def test_limits_come_from_the_environment_and_name_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = _topology(
        {"id": "h", "op": "linear", "features": 25_000},
        {"id": "o", "op": "head", "classes": 2, "pool": "none"},
        shape=[40],
    )
    path = _write(tmp_path, "mlp.json", doc)
    assert invoke(["describe", str(path), "--no-latency"])[0] == 0
    monkeypatch.setenv("SKIPSEARCH_LIMIT_PARAMS", "100000")
    code, _, err = invoke(["describe", str(path)])
    _one_line(code, err, "1,075,002 parameters", "limit of 100,000 parameters", "raise SKIPSEARCH_LIMIT_PARAMS")
    monkeypatch.setenv("SKIPSEARCH_LIMIT_MEMORY", "lots")
    code, _, err = invoke(["describe", str(path)])
    _one_line(code, err, "SKIPSEARCH_LIMIT_MEMORY", "'lots'")
    monkeypatch.setenv("SKIPSEARCH_LIMIT_MEMORY", "2GiB")
    monkeypatch.setenv("SKIPSEARCH_LIMIT_PARAMS", "2e6")
    assert Limits().resolved()["memory"] == 2 * 2**30 and Limits(params=5).value("params") == (
        5,
        "raise limits.params to allow it",
    )
    assert invoke(["describe", str(path), "--json"])[0] == 0


def test_every_limit_is_counted_from_shapes() -> None:
    resnet = get_preset("resnet20")
    size = footprint(resnet)
    assert size.params == 269_722 and size.macs == 40_551_040
    # Training resnet20 on batches of 128: well under a gigabyte, as measured.
    assert 100 * 10**6 < size.memory(128, training=True) < 10**9
    for key, value, fragment in [
        ("params", 10**5, "parameters"),
        ("macs", 10**6, "MACs per sample"),
        ("memory", 10**8, "of memory for training it on batches of 128"),
        ("blocks", 10, "nodes"),
        ("edges", 3, "skip edges"),
    ]:
        with pytest.raises(UserError, match=fragment) as caught:
            check_topology(resnet, Limits(**{key: value}), batch=128, training=True)
        assert f"raise limits.{key} to allow it" in str(caught.value)


def test_task_sizes_are_known_before_the_data_is_made() -> None:
    # teacher: 20 inputs, and the float64 hidden (64) and class (10) scores it computes per sample
    assert planned_size("teacher", {}) == (5500, 20 + 2 * (64 + 10) + 1)
    assert planned_size("teacher", {"train_size": 10**12, "features": 3}) == (10**12 + 1500, 3 + 148 + 1)
    assert planned_size("teacher", {"hidden": 10**9})[1] > 2 * 10**9  # type: ignore[index]
    assert planned_size("shapes-seg", {"size": 64}) == (3000, 3 * 64 * 64)
    assert planned_size("mnist1d", {"num_samples": 100}) == (100, 40)
    assert planned_size("teacher", {"train_size": "many"}) is None  # the builder names the bad type
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"task 'teacher': 1,000,000,001,500 samples exceeds the limit"):
        check_task_size("teacher", {"train_size": 10**12})
    with pytest.raises(UserError, match=r"TB of data exceeds"):
        check_task_size("teacher", {"classes": 10**9})  # numpy would try to allocate 477 GiB
    with pytest.raises(UserError, match=r"epochs x 5,500 samples exceeds the limit of 1,000 sample"):
        check_task_size("teacher", {}, Limits(sample_epochs=1000), epochs=10)
    with pytest.raises(UserError, match=r"TB of data exceeds"):
        check_task_size("shapes-seg", {"size": 20_000}, Limits(samples=10**9))
    assert time.perf_counter() - start < 1


def test_a_study_asking_for_a_trillion_samples_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = {**SHORT, "name": "huge", "task": {"name": "teacher", "options": {"train_size": 10**12}}}
    path = _write(tmp_path, "huge.yaml", yaml.safe_dump(study))
    start = time.perf_counter()
    code, _, err = invoke(["run", str(path), "--storage", url])
    _one_line(code, err, "huge.yaml: task 'teacher':", "samples exceeds the limit", "raise limits.samples")
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "db.sqlite").exists()


def test_study_file_limits_are_not_part_of_the_study_identity(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    tight = {**SHORT, "name": "limited", "limits": {"params": 50}}
    with pytest.raises(
        UserError,
        match=r"limited.yaml: backbone: 330 parameters .*exceeds the limit of 50 parameters; raise limits.params",
    ):
        parse_study_config(tight, "limited.yaml")
    roomy = parse_study_config({**tight, "limits": {"params": 10**6, "memory": "1GB"}}, "limited.yaml")
    assert roomy.limits.memory == 10**9
    create_study(roomy, url)
    again = parse_study_config({**tight, "limits": {"params": 2 * 10**6}}, "limited.yaml")
    study = create_study(again, url)  # the same study, resumed: limits may change between runs
    assert study.user_attrs["skipsearch_config"]["limits"]["params"] == 2 * 10**6
    with pytest.raises(UserError, match=r"limits.memory: .*got 'plenty'"):
        parse_study_config({**tight, "limits": {"memory": "plenty"}}, "limited.yaml")
    with pytest.raises(UserError, match=r"limits.samples: .*greater than or equal to 1"):
        parse_study_config({**tight, "limits": {"samples": 0}}, "limited.yaml")


def test_a_sampled_topology_over_the_limits_fails_its_trial_not_the_worker() -> None:
    config = parse_study_config({**SHORT, "name": "t"}, "t.yaml")
    data = load_task("teacher", **SHORT["task"]["options"])
    wide = config.backbone.build()
    check_trial_topology(config, wide, data)
    tight = config.model_copy(update={"limits": Limits(params=100)})
    with pytest.raises(UserError, match=r"parameters .*exceeds the limit of 100 parameters"):
        check_trial_topology(tight, wide, data)


# -- path counting that cannot blow up ----------------------------------------------------------


def test_ten_thousand_blocks_count_their_paths_in_bounded_memory_and_time() -> None:
    topology = _chain(10_000)
    tracemalloc.start()
    start = time.perf_counter()
    metrics = graph_metrics(topology)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seconds < 10 and peak < 100 * 2**20, (seconds, peak)
    assert not metrics.paths_exact and not metrics.lengths_counted and metrics.path_lengths == {}
    assert metrics.paths_text.startswith("~") and metrics.paths_text.endswith("e+2089")  # Fibonacci: 1.618**10000
    assert metrics.paths_float == 1.7976931348623157e308 and metrics.log2_paths == pytest.approx(6941.4, abs=0.5)
    assert metrics.shortest_path == 3 and metrics.longest_path == 10_001
    assert json.dumps(metrics.to_dict())  # serialisable for describe --json


def test_exact_counts_and_means_agree_with_the_full_distribution() -> None:
    for topology in (_chain(300), _chain(60, span=3), get_preset("resnet20")):
        metrics = graph_metrics(topology)
        dist = path_length_distribution(topology)
        assert metrics.paths_exact and metrics.paths == sum(dist.values())
        assert metrics.mean_path_length == pytest.approx(sum(k * v for k, v in dist.items()) / metrics.paths)
        assert metrics.shortest_path == min(dist) and metrics.longest_path == max(dist)
    # Exact count, distribution too large to count: the mean comes from exact length sums.
    big = graph_metrics(_chain(3_000))
    assert big.paths_exact and not big.lengths_counted and big.paths.bit_length() < 4096
    assert big.mean_path_length == pytest.approx(graph_metrics(_chain(3_000)).mean_path_length)


def test_describe_refuses_ten_thousand_blocks_unless_the_limit_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "chain.json", _chain(10_000).to_json(indent=None))
    code, _, err = invoke(["describe", str(path), "--no-latency"])
    _one_line(code, err, "10,002 nodes exceeds the limit of 2,000 nodes", "SKIPSEARCH_LIMIT_BLOCKS")
    monkeypatch.setenv("SKIPSEARCH_LIMIT_BLOCKS", "20000")
    code, out, err = invoke(["describe", str(path), "--no-latency", "--json"])
    assert code == 0, err
    assert json.loads(out)["paths"].startswith("~") and json.loads(out)["paths_exact"] is False


# -- validation that matches what the code later accepts ----------------------------------------


@pytest.mark.parametrize(
    ("node_id", "why"),
    [("as", "Python keyword"), ("class", "Python keyword"), ("None", "Python keyword"), ("a" * 101, "at most 100")],
)
def test_node_ids_that_generated_code_cannot_hold_are_refused(node_id: str, why: str) -> None:
    with pytest.raises(TopologyError, match=why):
        Topology.from_dict(_topology({"id": node_id, "op": "linear", "features": 3}, shape=[4]))


def test_topology_names_fit_the_schema_and_generated_code(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="at most 200 characters"):
        Topology.from_dict(
            {**_topology({"id": "o", "op": "head", "classes": 2, "pool": "none"}, shape=[4]), "name": "n" * 201}
        )
    from skipsearch.nn import build_model

    for name in ("x²", "none", "٣net", "class"):
        topo = Topology.from_dict(
            {**_topology({"id": "o", "op": "head", "classes": 2, "pool": "none"}, shape=[4]), "name": name}
        )
        assert type(build_model(topo)).__name__.isidentifier()


def test_seeds_names_and_sampler_options_are_checked_where_they_enter(tmp_path: Path) -> None:
    for change, fragment in [
        ({"seed": -1}, "seed: Input should be greater than or equal to 0"),
        ({"seed": 2**32}, "seed: Input should be less than or equal to 4294967295"),
        ({"name": "n" * 201}, "name: String should have at most 200 characters"),
        ({"sampler": {"name": "tpe", "options": {"n_ei_candidates": "24"}}}, "n_ei_candidates: must be an integer"),
        ({"sampler": {"name": "tpe", "options": {"n_ei_candidates": 10**9}}}, "must be between 1 and 100000"),
        ({"sampler": {"name": "nsga2", "options": {"crossover_prob": float("nan")}}}, "must be a finite number"),
        ({"sampler": {"name": "gp", "options": {"gamma": 0.1}}}, "sampler 'gp' takes no option 'gamma'"),
        ({"task": {"name": "teacher", "options": {"data_seed": -5}}}, "task 'teacher': bad option"),
        ({"early_stopping": {"margin": float("inf")}}, "early_stopping.margin: Input should be a finite number"),
        (
            {"hypervolume": {"reference_point": {"accuracy": float("nan")}}},
            "reference_point.accuracy: Input should be a finite",
        ),
        ({"training": {"lr": float("inf")}}, "training.lr: Input should be a finite number"),
    ]:
        with pytest.raises(UserError, match=re.escape(fragment)):
            parse_study_config({**SHORT, "name": "v", **change}, "v.yaml")
    check_sampler_options("predictor", {"n_startup_trials": 3, "fit_config": {"epochs": 20}})
    with pytest.raises(UserError, match=r"fit_config\.epochs: must be an integer"):
        check_sampler_options("predictor", {"fit_config": {"epochs": 2.5}})
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    path = _write(tmp_path, "ok.yaml", yaml.safe_dump({**SHORT, "name": "ok"}))
    code, _, err = invoke(["migrate", "--study-file", str(path), "--study", "s" * 600, "--storage", url])
    _one_line(code, err, "at most 200 characters, got 600")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: " + "[" * 50_000 + "]" * 50_000, "nested too deeply"),
        ("seed: " + "9" * 5000, "Exceeds the limit (4300 digits)"),
        ("name: x\nseed: " + "9" * 306, "less than or equal to 4294967295"),
    ],
)
def test_deep_or_huge_yaml_is_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, "deep.yaml", text)
    with pytest.raises(UserError, match=re.escape(fragment)) as caught:
        load_study_config(path)
    assert "\n" not in str(caught.value)


def test_deep_or_huge_json_topologies_are_one_line(tmp_path: Path) -> None:
    code, _, err = invoke(["describe", str(_write(tmp_path, "deep.json", "[" * 100_000))])
    _one_line(code, err, "nested too deeply")
    huge = '{"format": 1, "nodes": [{"id": "x", "op": "input", "shape": [' + "9" * 5000 + "]}]}"
    code, _, err = invoke(["describe", str(_write(tmp_path, "huge.json", huge))])
    _one_line(code, err, "4300 digits")
    wide = _topology(
        {"id": "h", "op": "linear", "features": 10**306},
        {"id": "o", "op": "head", "classes": 2, "pool": "none"},
        shape=[4],
    )
    code, _, err = invoke(["describe", str(_write(tmp_path, "wide.json", wide))])
    _one_line(code, err, "node 'h'", "about 10^30", "bytes of weights exceeds the limit")


def test_command_line_values_are_bounded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    _one_line(*invoke(["results", "--limit", str(10**10), "--storage", url])[::2], "--limit")
    for bad in ("nan,1", "1,inf", "-inf"):
        code, _, err = invoke(["pareto", "--study", "any", "--reference-point", bad, "--storage", url])
        _one_line(code, err, "--reference-point", "finite")
    for seed in ("-1", str(2**32)):
        code, _, err = invoke(["train", "mlp-deep", "--task", "mnist1d", "--seed", seed])
        _one_line(code, err, "--seed")
    for option, value in [("--lr", "inf"), ("--lr", "nan")]:
        code, _, err = invoke(["train", "mlp-deep", "--task", "teacher", option, value])
        _one_line(code, err, option, "finite")
    code, _, err = invoke(["run", "any.yaml", "--timeout", "inf"])
    _one_line(code, err, "--timeout", "finite")
    code, _, err = invoke(["train", "mlp-deep", "--task", "mnist1d", "--epochs", str(10**12)])
    _one_line(code, err, "epochs x", "exceeds the limit", "sample_epochs")


def test_unwritable_output_folders_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = invoke(["export", "mlp-deep", "--format", "json", "--output", str(blocker / "out")])
    _one_line(code, err, "a-file")

    def read_only(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro"))

    monkeypatch.setattr(Path, "mkdir", read_only)
    code, _, err = invoke(["export", "mlp-deep", "--format", "json", "--output", str(tmp_path / "ro")])
    _one_line(code, err, "ro", "Permission denied")


# -- nothing stored before the whole study file validated ---------------------------------------


def test_a_bad_task_option_stores_nothing_and_the_corrected_file_then_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    bad = {
        **SHORT,
        "name": "fixme",
        "task": {"name": "teacher", "options": {**SHORT["task"]["options"], "hidden": "wide"}},
    }
    path = _write(tmp_path, "fixme.yaml", yaml.safe_dump(bad))
    code, _, err = invoke(["migrate", "--study-file", str(path), "--storage", url])
    _one_line(code, err, "task 'teacher'", "'hidden'")
    if (tmp_path / "db.sqlite").exists():
        with contextlib.closing(sqlite3.connect(tmp_path / "db.sqlite")) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            assert "studies" not in tables or not conn.execute("SELECT * FROM studies").fetchall()
    bad["task"]["options"]["hidden"] = 16
    path.write_text(yaml.safe_dump(bad))
    code, out, err = invoke(["migrate", "--study-file", str(path), "--storage", url])
    assert code == 0, err
    assert "study 'fixme' ready" in out


def test_path_gradients_refuse_a_distribution_too_large_to_count(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from skipsearch.analysis import path_gradients
    from skipsearch.nn import build_model
    from skipsearch.topology import _metrics

    model = build_model(_chain(6))
    x, y = torch.randn(4, 4), torch.tensor([0, 1, 0, 1])
    assert path_gradients(model, x, y, samples=1).topology == "chain6"
    monkeypatch.setattr(_metrics, "DISTRIBUTION_CELLS", 10)
    with pytest.raises(UserError, match="too many paths of too many lengths"):
        path_gradients(model, x, y, samples=1)


def test_limits_take_amounts_as_text() -> None:
    limits = Limits.model_validate({"params": "5e8", "memory": "16GB", "samples": 2.5e6, "edges": 0})
    assert (limits.params, limits.memory, limits.samples, limits.edges) == (5 * 10**8, 16 * 10**9, 2_500_000, 0)
    for bad in ({"params": "x"}, {"params": True}, {"memory": float("nan")}, {"params": 10**19}, {"blocks": 1}):
        with pytest.raises(ValueError, match=str(next(iter(bad)))):
            Limits.model_validate(bad)
