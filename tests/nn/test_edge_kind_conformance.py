"""Every registered edge kind, and one registered here for the test, through every consumer.

A kind is one :class:`~skipsearch.topology.EdgeKind` in ``EDGE_KINDS`` plus (if additive) one
:class:`~skipsearch.nn.SkipBuilder` in ``SKIP_BUILDERS``. The ``tanh`` kind below is registered
only for the duration of a test; that it is built, counted, exported as PyTorch source and ONNX,
drawn and searched without any other change is what the registries promise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch
from torch import nn

from skipsearch.export import pytorch_source
from skipsearch.export._onnx import write_onnx
from skipsearch.export._pytorch import check_source
from skipsearch.nn import SKIP_BUILDERS, SkipBuilder, build_model, model_cost
from skipsearch.search._config import SpaceConfig
from skipsearch.search._space import SearchSpace
from skipsearch.topology import EDGE_KINDS, EdgeKind, SkipEdge, Topology, topology_cost
from skipsearch.viz import draw_topology, edge_color

README = Path(__file__).resolve().parents[2] / "README.md"


class TanhSkip(nn.Module):
    """``tanh(w) * x`` with one learned ``w``: a throwaway kind for the conformance test."""

    def __init__(self, align: nn.Module, init: float) -> None:
        super().__init__()
        self.align = align
        self.weight = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.weight) * self.align(x)


TANH = EdgeKind("tanh", "output", "F(x) + tanh(w) * x", color="#17becf", default_init=0.5, gate_cost=lambda dst: (1, 0))
TANH_BUILDER = SkipBuilder(
    lambda aligned, edge, dst: TanhSkip(aligned if aligned is not None else nn.Identity(), edge.init or 0.0),
    TanhSkip,
    lambda module, edge: [f"init={float(edge.init or 0.0)!r}"],
)


@pytest.fixture
def tanh_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Registers the ``tanh`` kind in both registries; unregistered after the test."""
    monkeypatch.setitem(EDGE_KINDS, TANH.name, TANH)
    monkeypatch.setitem(SKIP_BUILDERS, TANH.name, TANH_BUILDER)
    yield TANH.name


@pytest.fixture(params=[*EDGE_KINDS, "tanh"])
def kind(request: pytest.FixtureRequest) -> str:
    """Every registered kind, and the throwaway one."""
    if request.param == "tanh":
        request.getfixturevalue("tanh_kind")
    return str(request.param)


def backbone() -> Topology:
    """1-D convolutions of equal shapes from c1 on, and one that halves the length, so every kind
    and every alignment (identity into c3, zero_pad and project into c4) has an edge it fits."""
    nodes = [
        {"id": "x", "op": "input", "shape": [2, 8]},
        {"id": "c1", "op": "conv", "channels": 4},
        {"id": "c2", "op": "conv", "channels": 4},
        {"id": "c3", "op": "conv", "channels": 4},
        {"id": "c4", "op": "conv", "channels": 6, "stride": 2},
        {"id": "head", "op": "head", "classes": 3},
    ]
    return Topology.create(nodes, name="conformance")


def with_kind(kind: str) -> Topology:
    edges = [SkipEdge("c1", "c3", kind, init=EDGE_KINDS[kind].default_init)]
    for align in EDGE_KINDS[kind].alignments[1:]:  # the shape-changing alignments
        src = "c2" if align == "zero_pad" else "c3"
        edges.append(SkipEdge(src, "c4", kind, align, EDGE_KINDS[kind].default_init))
    return backbone().with_skips(edges)


def test_every_additive_kind_has_a_builder_and_every_builder_a_kind() -> None:
    assert {k for k, spec in EDGE_KINDS.items() if spec.additive} == set(SKIP_BUILDERS)


def test_the_readme_table_lists_every_kind_with_its_label() -> None:
    table = README.read_text().split("| edge kind | computes | from |")[1].split("\n\n")[0]
    rows = {m[1]: m[2].replace("`", "") for m in re.finditer(r"^\| `(\w+)` \| (.+?) \|", table, re.M)}
    assert set(rows) == set(EDGE_KINDS)
    for name, spec in EDGE_KINDS.items():
        assert rows[name].startswith(spec.label), name


def test_the_kind_is_built_and_counted_exactly(kind: str) -> None:
    topology = with_kind(kind)
    torch.manual_seed(0)
    model = build_model(topology)
    assert model(torch.randn(5, 2, 8)).shape == (5, 3)
    expected = topology_cost(topology)
    cost = model_cost(model, topology.input_shape, latency=False)
    assert (cost.params, cost.macs) == (expected.params, expected.macs)
    skip_modules = dict(model.skips.named_children()) if hasattr(model, "skips") else {}
    builder = SKIP_BUILDERS.get(kind)
    if builder is not None and builder.module is not None:
        assert isinstance(skip_modules["c1__c3"], builder.module)


def test_the_kind_is_exported_as_pytorch_source_and_onnx(kind: str, tmp_path: Path) -> None:
    topology = with_kind(kind)
    torch.manual_seed(0)
    model = build_model(topology).eval()
    example = torch.randn(4, 2, 8)
    source, class_name = pytorch_source(model, topology)
    builder = SKIP_BUILDERS.get(kind)
    if builder is not None and builder.module is not None:
        assert f"class {builder.module.__name__}(nn.Module)" in source
    check_source(source, class_name, model, example)  # loads the state dict strictly, computes the same
    write_onnx(model, example, tmp_path / "model.onnx")  # checks the file with onnxruntime


def test_the_kind_is_drawn_in_its_colour(kind: str, tmp_path: Path) -> None:
    topology = with_kind(kind)
    draw_topology(topology, tmp_path / "t.svg")
    svg = (tmp_path / "t.svg").read_text()
    count = len(topology.active_skips)
    assert (f"{kind} ({count})" in svg) == EDGE_KINDS[kind].active
    if EDGE_KINDS[kind].active:
        assert edge_color(kind) == EDGE_KINDS[kind].color and edge_color(kind) in svg


def test_the_kind_is_searched(kind: str) -> None:
    space = SearchSpace(backbone(), SpaceConfig(edges=[{"src": "c1", "dst": "c3"}], choices=["off", "add", kind]))
    (candidate,) = space.candidates
    label = f"{kind}/identity" if EDGE_KINDS[kind].alignments else kind
    assert label in candidate.choices
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({candidate.param: label})
    topology = space.sample(study.ask())
    assert [(e.src, e.dst, e.kind) for e in topology.skips] == [("c1", "c3", kind)]
