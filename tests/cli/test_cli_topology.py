"""``skipsearch describe`` and ``skipsearch presets``: sizes of the classic networks, through the CLI
and through the API, against the published figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from skipsearch.cli import app, main
from skipsearch.cli._topology import describe_topology
from skipsearch.nn import build_model, count_params, model_cost
from skipsearch.topology import PRESETS, get_preset, save_topology

runner = CliRunner()

# He et al. (2016), table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M (option A: no shortcut parameters).
RESNET_PARAMS = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
}
REQUIRED_KEYS = {"name", "hash", "params", "macs", "flops", "nodes", "skip_edges", "paths"}


def describe(name: str) -> dict[str, Any]:
    result = runner.invoke(app, ["describe", name, "--json", "--no-latency"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_describe_resnet20_as_a_real_command() -> None:
    """The installed entry point, in a fresh process (``python -m skipsearch`` runs the same main)."""
    proc = subprocess.run(
        [sys.executable, "-m", "skipsearch", "describe", "resnet20", "--json", "--no-latency"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert set(info) >= REQUIRED_KEYS
    assert info["name"] == "resnet20"
    assert info["params"] == 269_722
    assert info["macs"] == pytest.approx(40.8e6, rel=0.01)  # 40.8M multiply-adds (He et al.)
    assert info["flops"] == 2 * info["macs"]
    assert info["paths"] == 2**9
    assert info["latency_ms"] is None
    assert info["hash"] == get_preset("resnet20").hash


def test_describe_json_fields() -> None:
    info = describe("resnet20")
    assert set(info) >= REQUIRED_KEYS
    assert info["input_shape"] == [3, 32, 32] and info["output_shape"] == [10]
    assert [n["id"] for n in info["nodes"]][:3] == ["x", "stem", "s1b1"]
    assert info["nodes"][-1] == {
        "id": "head",
        "op": "head",
        "classes": 10,
        "pool": "avg",
        "preact": False,
        "shape": [10],
    }
    assert len(info["skip_edges"]) == 9
    for edge in info["skip_edges"]:
        assert {"src", "dst", "kind"} <= set(edge)
    assert {"src": "s1b3", "dst": "s2b1", "kind": "add", "align": "zero_pad"} in info["skip_edges"]
    assert info["path_lengths"]["7"] == 126
    assert (info["shortest_path"], info["longest_path"]) == (2, 11)
    json.dumps(info)  # plain JSON all through


@pytest.mark.parametrize("name", list(RESNET_PARAMS))
def test_cifar_resnet_params_via_cli(name: str) -> None:
    info = describe(name)
    assert info["params"] == RESNET_PARAMS[name]
    blocks = 3 * ((int(name.removeprefix("resnet")) - 2) // 6)
    assert info["paths"] == 2**blocks


@pytest.mark.parametrize("name", list(RESNET_PARAMS))
def test_cifar_resnet_params_via_api(name: str) -> None:
    assert count_params(build_model(get_preset(name))) == RESNET_PARAMS[name]


def test_resnet20_macs_via_api() -> None:
    topo = get_preset("resnet20")
    cost = model_cost(build_model(topo), topo.input_shape, latency=False)
    assert cost.params == 269_722
    assert cost.macs == pytest.approx(40.8e6, rel=0.01)
    assert cost.latency_ms is None


def test_resnet20_proj_uses_projections() -> None:
    info = describe("resnet20-proj")
    assert info["params"] == 272_474  # + two 1x1 convolutions with BatchNorm: 16*32+64 + 32*64+128
    assert 272_474 - 269_722 == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    projected = [e for e in info["skip_edges"] if e.get("align") == "project"]
    assert [(e["src"], e["dst"]) for e in projected] == [("s1b3", "s2b1"), ("s2b3", "s3b1")]
    assert count_params(build_model(get_preset("resnet20-proj"))) == 272_474


def test_densenet_bc_100_size() -> None:
    """Huang et al. (2017) report 0.8M parameters for DenseNet-BC (L=100, k=12); the exact count
    of the architecture as described (and of common reimplementations) is 769,162, i.e. 0.77M."""
    info = describe("densenet-bc-100")
    assert info["params"] == 769_162
    assert 0.77 <= round(info["params"] / 1e6, 2) <= 0.80
    assert info["paths"] == 2**48
    assert {e["kind"] for e in info["skip_edges"]} == {"concat"}
    api = describe_topology(get_preset("densenet-bc-100"), latency=False)
    assert api["params"] == info["params"] and api["macs"] == info["macs"]


def test_plain20_has_resnet20_params_and_one_path() -> None:
    info = describe("plain20")
    assert info["params"] == RESNET_PARAMS["resnet20"]
    assert info["paths"] == 1 and info["skip_edges"] == []


def test_describe_reads_topology_files(tmp_path: Path) -> None:
    topo = get_preset("mlp-deep").with_name("my-mlp")
    for suffix in (".json", ".graphml"):
        path = tmp_path / f"net{suffix}"
        save_topology(topo, path)
        info = describe(str(path))
        assert info["name"] == "my-mlp"
        assert info["hash"] == get_preset("mlp-deep").hash
        assert info["params"] == (40 * 128 + 128) + 19 * (128 * 128 + 128) + (128 * 10 + 10)


def test_describe_prints_a_table_without_json() -> None:
    result = runner.invoke(app, ["describe", "cnn1d-mnist1d", "--no-latency"])
    assert result.exit_code == 0, result.output
    assert "cnn1d-mnist1d" in result.stdout and "params" in result.stdout
    assert "not measured" in result.stdout


def test_presets_json_lists_every_preset() -> None:
    result = runner.invoke(app, ["presets", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [p["name"] for p in listed] == list(PRESETS)
    assert all(p["description"] for p in listed)


def test_describe_of_a_bad_topology_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": 1, "nodes": [{"id": "x", "op": "input", "shape": [3]}]}), encoding="utf-8")
    for target in ("no-such-preset", str(bad)):
        monkeypatch.setattr(sys, "argv", ["skipsearch", "describe", target, "--json"])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
        out, err = capsys.readouterr()
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and target in lines[0]
