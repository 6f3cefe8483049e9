"""Topologies and a tiny study shared by the export tests."""

from __future__ import annotations

from pathlib import Path

from study_helpers import tiny_study

from skipsearch.topology import Topology, families

TINY_STUDY = tiny_study(
    "tiny-export",
    seed=1,
    space={"max_span": 2, "choices": ["off", "add", "scalar", "gated", "concat"]},
    execution={"heartbeat_interval": 2, "grace_period": 10},
)
"""Four one-epoch trials of a 3-layer MLP: about 10 s on a laptop CPU."""


def mixed_mlp() -> Topology:
    """An MLP with every edge kind and alignment: gated, scalar, switch, concat, add; zero_pad and project."""
    base = families.mlp(40, [16, 24, 24, 32, 16], 10, act="tanh", residual=False, name="mlp-mixed")
    skips = [
        {"src": "h1", "dst": "h2", "kind": "gated", "align": "zero_pad"},
        {"src": "h2", "dst": "h3", "kind": "scalar"},
        {"src": "h1", "dst": "h3", "kind": "switch", "align": "zero_pad"},
        {"src": "h3", "dst": "h4", "kind": "add", "align": "project"},
        {"src": "h2", "dst": "h5", "kind": "concat"},
        {"src": "h4", "dst": "h5", "kind": "gated", "align": "project"},
        {"src": "x", "dst": "h2", "kind": "scalar", "align": "project", "init": 0.5},
    ]
    return Topology.create(list(base.nodes), skips, name="mlp-mixed")


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
