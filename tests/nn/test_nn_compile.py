"""``build_model``: the generated straight-line code computes the topology's semantics, and the
result is an ordinary ``fx.GraphModule`` that TorchScript can script and trace."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from torch import fx, nn

from skipsearch.nn import build_model
from skipsearch.topology import PRESETS, Topology, get_preset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "topology"))
from topology_strategies import topologies  # a sibling test folder's helper

POST = {"relu": torch.relu, "tanh": torch.tanh, "gelu": torch.nn.functional.gelu, "sigmoid": torch.sigmoid}


def interpret(model: fx.GraphModule, x: torch.Tensor) -> torch.Tensor:
    """The topology's semantics, evaluated node by node with the model's own modules::

    inp = cat(outputs of prev and concat sources, ascending) ; y = body(inp)
    y = y + sum(skip(out[src]) for additive edges) ; out = post(y)
    """
    topology: Topology = model.meta["topology"]
    out = {topology.nodes[0].id: x}
    for node in topology.nodes[1:]:
        sources = topology.input_sources(node.id)
        inp = torch.cat([out[s] for s in sources], dim=1) if len(sources) > 1 else out[sources[0]]
        y = model.get_submodule(f"blocks.{node.id}")(inp)
        for edge in topology.incoming(node.id):
            if edge.additive:
                term = out[edge.src]
                name = f"skips.{edge.src}__{edge.dst}"
                if edge.kind != "add" or edge.align != "identity":
                    term = model.get_submodule(name)(term)
                y = y + term
        post = node.params.get("post", "none")
        out[node.id] = y if post == "none" else POST[post](y)
    return out[topology.nodes[-1].id]


def every_kind() -> Topology:
    """A small 2-D network with every edge kind and alignment, and a post activation."""
    nodes = [
        {"id": "x", "op": "input", "shape": [3, 8, 8]},
        {"id": "stem", "op": "conv", "channels": 4},
        {"id": "c1", "op": "conv", "channels": 4, "post": "relu"},
        {"id": "c2", "op": "conv", "channels": 8, "stride": 2},
        {"id": "c3", "op": "conv", "channels": 8, "post": "gelu"},
        {"id": "d1", "op": "dense", "growth": 4},
        {"id": "t1", "op": "transition", "channels": 8},
        {"id": "head", "op": "head", "classes": 5},
    ]
    edges = [
        {"src": "stem", "dst": "c1", "kind": "add"},
        {"src": "x", "dst": "c1", "kind": "off"},
        {"src": "c1", "dst": "c2", "kind": "gated", "align": "project"},
        {"src": "stem", "dst": "c2", "kind": "scalar", "align": "zero_pad", "init": 0.5},
        {"src": "c1", "dst": "c3", "kind": "switch", "align": "zero_pad"},
        {"src": "c2", "dst": "d1", "kind": "concat"},
        {"src": "c2", "dst": "t1", "kind": "concat"},
        {"src": "c3", "dst": "t1", "kind": "concat"},
        {"src": "c1", "dst": "t1", "kind": "add", "align": "project"},
    ]
    return Topology.create(nodes, edges, name="every kind")


CASES = {
    "every-kind": (every_kind, 3),
    "resnet20-proj": (lambda: get_preset("resnet20-proj"), 2),
    "densenet-bc-100": (lambda: get_preset("densenet-bc-100"), 1),
    "unet-small": (lambda: get_preset("unet-small"), 2),
    "cnn1d-mnist1d": (lambda: get_preset("cnn1d-mnist1d"), 4),
    "mlp-deep": (lambda: get_preset("mlp-deep"), 4),
}


def _built_case(case: str) -> tuple[Topology, nn.Module, torch.Tensor]:
    """The case's topology, its model (seed 0, eval mode) and a random input batch."""
    make, n = CASES[case]
    topology = make()
    torch.manual_seed(0)
    return topology, build_model(topology).eval(), torch.randn(n, *topology.input_shape)


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_model_computes_the_topology_semantics(case: str) -> None:
    topology, model, x = _built_case(case)
    n = len(x)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (n, *topology.output_shape)
        torch.testing.assert_close(out, interpret(model, x), atol=1e-6, rtol=1e-6)


def _straight_line(code: str) -> bool:
    """Whether ``forward`` is a sequence of assignments and one return: no loop, branch or comprehension."""
    tree = ast.parse(code)
    forward = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "forward")
    banned = (ast.For, ast.While, ast.If, ast.IfExp, ast.comprehension, ast.Lambda, ast.Try, ast.With)
    if any(isinstance(n, banned) for n in ast.walk(forward)):
        return False
    return all(isinstance(s, ast.Assign | ast.Return | ast.Expr) for s in forward.body)


@pytest.mark.parametrize("name", [*PRESETS, "every-kind"])
def test_built_model_is_a_graph_module_with_straight_line_code(name: str) -> None:
    topology = every_kind() if name == "every-kind" else get_preset(name)
    model = build_model(topology)
    assert isinstance(model, fx.GraphModule)
    assert model.meta["topology"] is topology
    assert _straight_line(model.code)
    # One call per block, named after the node.
    for node in topology.nodes[1:]:
        assert isinstance(model.get_submodule(f"blocks.{node.id}"), nn.Module)
        assert f"self.blocks.{node.id}(" in model.code


def test_straight_line_check_rejects_a_loop() -> None:
    assert not _straight_line("def forward(self, x):\n    for i in range(3):\n        x = x + 1\n    return x\n")


def test_skip_modules_are_named_src__dst() -> None:
    model = build_model(every_kind())
    names = {n for n, _ in model.named_children()}
    assert names == {"blocks", "skips"}
    skips = {n.removeprefix("skips.") for n, _ in model.named_modules() if n.count(".") == 1 and "skips." in n}
    # add/identity needs no module; off and concat have none.
    assert skips == {"c1__c2", "stem__c2", "c1__c3", "c1__t1"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated, still supported
@pytest.mark.parametrize("case", ["every-kind", "mlp-deep"])
def test_torchscript_script_and_trace_match(case: str) -> None:
    topology, model, x = _built_case(case)
    n = len(x)
    with torch.no_grad():
        expected = model(x)
        scripted = torch.jit.script(model)
        traced = torch.jit.trace(model, x)
        other = torch.randn(n + 1, *topology.input_shape)
        torch.testing.assert_close(scripted(x), expected)
        torch.testing.assert_close(traced(x), expected)
        torch.testing.assert_close(scripted(other), model(other))
        torch.testing.assert_close(traced(other), model(other))


@pytest.mark.slow
def test_built_models_train_like_any_module() -> None:
    """A gradient step through every edge kind changes the skip parameters too."""
    torch.manual_seed(0)
    model = build_model(every_kind())
    before = {k: v.clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    for name in ["skips.stem__c2.scale", "skips.c1__c3.logit", "skips.c1__c2.gate.bias"]:
        assert not torch.equal(before[name], dict(model.named_parameters())[name]), name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_random_topologies_compile_to_their_semantics(topology: Topology) -> None:
    torch.manual_seed(0)
    model = build_model(topology).eval()
    assert _straight_line(model.code)
    x = torch.randn(2, *topology.input_shape)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, *topology.output_shape)
        torch.testing.assert_close(out, interpret(model, x), atol=1e-6, rtol=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated, still supported
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies(max_blocks=4))
def test_random_topologies_are_scriptable(topology: Topology) -> None:
    model = build_model(topology).eval()
    x = torch.randn(2, *topology.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(x), model(x))


def test_node_ids_that_are_module_attributes_are_a_clear_error() -> None:
    from skipsearch.topology import Topology, TopologyError

    topo = Topology.create(
        [
            {"id": "x", "op": "input", "shape": [4]},
            {"id": "train", "op": "linear", "features": 3},
            {"id": "h", "op": "head", "classes": 2, "pool": "none"},
        ]
    )
    with pytest.raises(TopologyError, match="node 'train'"):
        build_model(topo)
