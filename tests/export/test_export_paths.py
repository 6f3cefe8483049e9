"""Export writes inside --output only: the relative-path rule, symbolic links, names from user text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import Invoke
from export_helpers import assert_one_line_error, files_under

from skipsearch.errors import UserError
from skipsearch.export import OutputDir, export_topology, resolve_output, slug
from skipsearch.topology import get_preset


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc", "etc"), ("resnet20", "resnet20"), ("a/b\\c d", "a_b_c_d"), ("..", "topology"), ("", "topology")],
)
def test_slug_keeps_plain_names_and_drops_path_syntax(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_relative_output_must_stay_in_the_current_directory(tmp_path: Path) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    assert resolve_output("out/x", cwd=work) == (work / "out" / "x").resolve()
    assert resolve_output("out/../y", cwd=work) == (work / "y").resolve()
    for climbing in ("../../x", "..", "out/../../x"):
        with pytest.raises(UserError, match="must stay inside the current directory"):
            resolve_output(climbing, cwd=work)
    assert resolve_output(tmp_path / "elsewhere", cwd=work) == (tmp_path / "elsewhere").resolve()  # explicit


def test_relative_symlink_out_of_the_current_directory_is_refused(tmp_path: Path) -> None:
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (work / "link").symlink_to(outside)
    with pytest.raises(UserError, match="must stay inside"):
        resolve_output("link", cwd=work)


def test_planted_symlink_inside_the_output_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "resnet20.json").symlink_to(target)
    with pytest.raises(UserError, match="symbolic link"):
        export_topology(get_preset("resnet20"), "json", out)
    assert target.read_text() == "keep me"


def test_output_dir_takes_plain_names_only(tmp_path: Path) -> None:
    out = OutputDir(tmp_path / "out")
    for bad in ("../x", "a/b", "..", "", "/etc/passwd"):
        with pytest.raises(UserError):
            out.path(bad)
    assert out.path("ok.json") == (tmp_path / "out" / "ok.json").resolve()


def test_a_topology_named_like_a_path_is_written_inside(tmp_path: Path) -> None:
    out = tmp_path / "out"
    topology = get_preset("mlp-deep-plain").with_name("../../etc")
    export_topology(topology, "json", out)
    export_topology(topology, "graphml", out)
    assert files_under(out) == {"etc.json", "etc.graphml"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.slow
def test_cli_refuses_a_climbing_output_with_one_line(tmp_path: Path) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "skipsearch", "export", "resnet20", "--format", "json", "--output", "../../x"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(result.returncode, result.stderr, "--output '../../x'", "current directory")
    assert not (tmp_path / "x").exists() and list(tmp_path.rglob("*.json")) == []


def test_cli_writes_a_preset_in_each_plain_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Invoke) -> None:
    monkeypatch.chdir(tmp_path)
    for fmt in ("json", "graphml", "pytorch"):
        code, out, err = cli(["export", "mlp-deep-plain", "--format", fmt, "--output", "o"])
        assert code == 0, err
        assert "wrote o" + os.sep in out
    assert files_under(tmp_path / "o") == {
        "mlp_deep_plain.json",
        "mlp_deep_plain.graphml",
        "mlp_deep_plain.py",
        "mlp_deep_plain.pt",
    }


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["export", "resnet20", "--format", "weights", "--output", "o"], ["--format weights trains", "--task"]),
        (["export", "resnet20", "--format", "json", "--output", "o", "--rank", "1"], ["--rank", "--study"]),
        (["export", "--format", "json", "--output", "o"], ["TOPOLOGY", "--study"]),
        (["export", "no-such-preset", "--format", "json", "--output", "o"], ["no-such-preset"]),
        (["export", "resnet20", "--format", "zip", "--output", "o"], ["--format"]),
        (["export", "resnet20", "--format", "pytorch", "--output", "o", "--weights", "nope.pt"], ["nope.pt"]),
        (["reproduce", "."], ["not a bundle"]),
    ],
)
def test_cli_bad_input_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Invoke,
    args: list[str],
    fragments: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(args)
    assert_one_line_error(code, err, *fragments)
    assert files_under(tmp_path) == set()
