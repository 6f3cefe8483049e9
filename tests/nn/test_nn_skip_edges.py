"""Forward semantics and gradients of every skip-edge kind and alignment.

Most cases use a two-node topology ``x -> b`` whose body ``b`` is a bare linear layer or
convolution (no norm, no activation), so that the expected output can be written down:
``F(x) + gate * align(x)`` for the additive kinds. Gradients are checked with
``torch.autograd.gradcheck`` in double precision, with respect to the input and every parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.autograd import gradcheck
from torch.func import functional_call

from skipsearch.nn import (
    GatedSkip,
    ScalarSkip,
    SwitchSkip,
    build_model,
    count_params,
    resolve_switches,
    switch_penalty,
    switch_states,
)
from skipsearch.topology import EDGE_KINDS, Topology

ADDITIVE = tuple(k for k, spec in EDGE_KINDS.items() if spec.additive)

# Layouts of a stage change by stride 2 with more channels: input shape, destination node.
CHANGES: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "vector": ((3,), {"op": "linear", "features": 6, "act": "none"}),
    "1d": ((3, 8), {"op": "conv", "channels": 6, "stride": 2, "act": "none", "norm": "none"}),
    "2d": ((3, 4, 4), {"op": "conv", "channels": 6, "stride": 2, "act": "none", "norm": "none"}),
}
# The same layouts without a change of shape, for identity edges.
SAME: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "vector": ((4,), {"op": "linear", "features": 4, "act": "none"}),
    "1d": ((3, 8), {"op": "conv", "channels": 3, "act": "none", "norm": "none"}),
    "2d": ((3, 4, 4), {"op": "conv", "channels": 3, "act": "none", "norm": "none"}),
}


def two_nodes(shape: tuple[int, ...], dst: dict[str, Any], edges: list[dict[str, Any]] = ()) -> Topology:  # type: ignore[assignment]
    return Topology.create([{"id": "x", "op": "input", "shape": list(shape)}, {"id": "b", **dst}], list(edges))


def randomize(model: nn.Module, seed: int = 0) -> None:
    """Random values for every parameter and BatchNorm statistic (a zero-initialised gate weight
    would hide half of the gated formula)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * 0.5)
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.3)
                module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=gen))


def skip_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Skip modules by ``src__dst`` (a GraphModule has no ``skips`` attribute when it has none)."""
    prefix = "skips."
    return {n.removeprefix(prefix): m for n, m in model.named_modules() if n.startswith(prefix) and n.count(".") == 1}


def first_layer(model: fx.GraphModule, node: str) -> nn.Module:
    """The weighted layer of a block: a linear block without a norm is one module."""
    block = model.get_submodule(f"blocks.{node}")
    return block if isinstance(block, nn.Linear) else block[0]


def body(model: fx.GraphModule, x: torch.Tensor) -> torch.Tensor:
    """``F(x)`` of the destination, computed from its weights by hand."""
    layer = first_layer(model, "b")
    if isinstance(layer, nn.Linear):
        return F.linear(x, layer.weight, layer.bias)
    conv = F.conv1d if x.dim() == 3 else F.conv2d
    return conv(x, layer.weight, layer.bias, stride=layer.stride, padding=layer.padding)


def zero_pad(x: torch.Tensor, channels: int, stride: int) -> torch.Tensor:
    """Option A by hand: subsample, then zero channels split evenly (the front gets the smaller half)."""
    if x.dim() == 3:
        x = x[:, :, ::stride]
    elif x.dim() == 4:
        x = x[:, :, ::stride, ::stride]
    pad = channels - x.shape[1]
    front = torch.zeros(x.shape[0], pad // 2, *x.shape[2:], dtype=x.dtype)
    back = torch.zeros(x.shape[0], pad - pad // 2, *x.shape[2:], dtype=x.dtype)
    return torch.cat([front, x, back], dim=1)


def project(proj: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Option B by hand: strided 1x1 convolution (or linear map) and BatchNorm with running stats."""
    layer, norm = proj[0], proj[1]
    if isinstance(layer, nn.Linear):
        y = F.linear(x, layer.weight)
    else:
        conv = F.conv1d if x.dim() == 3 else F.conv2d
        y = conv(x, layer.weight, stride=layer.stride)
    view = (1, -1) + (1,) * (y.dim() - 2)
    mean, var = norm.running_mean.view(view), norm.running_var.view(view)
    return (y - mean) / torch.sqrt(var + norm.eps) * norm.weight.view(view) + norm.bias.view(view)


def expected_term(model: fx.GraphModule, kind: str, align: str, x: torch.Tensor) -> torch.Tensor:
    """``gate * align(x)`` of the edge ``x -> b``, by hand from the edge module's parameters."""
    out_channels = model.meta["topology"].shapes["b"][0]
    skip = skip_modules(model).get("x__b")
    align_module = skip.align if isinstance(skip, ScalarSkip | GatedSkip | SwitchSkip) else skip
    stride = x.shape[2] // model.meta["topology"].shapes["b"][1] if x.dim() > 2 else 1
    if align == "identity":
        aligned = x
    elif align == "zero_pad":
        aligned = zero_pad(x, out_channels, stride)
    else:
        aligned = project(align_module, x)
    if kind == "add":
        return aligned
    if kind == "scalar":
        return skip.scale * aligned
    if kind == "switch":
        return torch.sigmoid(skip.logit) * aligned
    pooled = aligned.flatten(2).mean(-1) if aligned.dim() > 2 else aligned
    gate = torch.sigmoid(F.linear(pooled, skip.gate.weight, skip.gate.bias))
    return gate.view(*gate.shape, *([1] * (aligned.dim() - 2))) * aligned


def gradcheck_model(model: nn.Module, x: torch.Tensor) -> None:
    """gradcheck in double precision with respect to the input and the skip edges' parameters
    (the bodies are standard torch layers). ``fast_mode`` checks random projections of the
    Jacobian, which is enough to catch a wrong or missing gradient at a fraction of the cost."""
    model = model.double()
    params = [(n, p) for n, p in model.named_parameters() if n.startswith("skips.")]
    names = [n for n, _ in params]
    values = [p.detach().clone().requires_grad_(True) for _, p in params]

    def run(inp: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        return functional_call(model, dict(zip(names, params, strict=True)), (inp,))

    assert gradcheck(run, (x.double().requires_grad_(True), *values), eps=1e-6, atol=1e-5, fast_mode=True)


def batch(shape: tuple[int, ...], n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


# -- off ------------------------------------------------------------------------------------------


def test_off_edge_has_no_effect_and_no_parameters() -> None:
    shape, dst = CHANGES["2d"]
    # An off edge needs no alignment: 3 channels at 4x4 into 6 at 2x2 with identity is fine.
    without = two_nodes(shape, dst)
    with_off = two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": "off"}])
    plain, off = build_model(without), build_model(with_off)
    assert skip_modules(off) == {}
    assert count_params(off) == count_params(plain)
    assert list(off.state_dict()) == list(plain.state_dict())
    off.load_state_dict(plain.state_dict())
    x = batch(shape)
    assert torch.equal(off(x), plain(x))
    assert off.code == plain.code
    assert with_off.hash == without.hash


# -- add --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(SAME))
def test_add_is_the_body_plus_the_identity_exactly(layout: str) -> None:
    shape, dst = SAME[layout]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": "add"}]))
    randomize(model)
    x = batch(shape)
    with torch.no_grad():
        assert torch.equal(model(x), body(model, x) + x)
        for param in model.parameters():
            param.zero_()
        assert torch.equal(model(x), x)  # a zero body leaves exactly the identity


@pytest.mark.parametrize("layout", list(SAME))
def test_add_passes_the_output_gradient_straight_to_the_source(layout: str) -> None:
    shape, dst = SAME[layout]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": "add"}]))
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    x = batch(shape).requires_grad_(True)
    upstream = batch(shape, seed=1)
    (model(x) * upstream).sum().backward()
    assert torch.equal(x.grad, upstream)
    randomize(model)
    gradcheck_model(model, batch(shape, n=1))


def test_add_with_post_activation_applies_it_after_the_sum() -> None:
    shape, dst = SAME["vector"]
    model = build_model(two_nodes(shape, {**dst, "post": "tanh"}, [{"src": "x", "dst": "b"}]))
    randomize(model)
    x = batch(shape)
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.tanh(body(model, x) + x))


# -- concat -----------------------------------------------------------------------------------------


def _concat_chain(width_c: int = 5) -> Topology:
    nodes = [
        {"id": "x", "op": "input", "shape": [2]},
        {"id": "a", "op": "linear", "features": 3, "act": "tanh"},
        {"id": "b", "op": "linear", "features": 4, "act": "tanh"},
        {"id": "c", "op": "linear", "features": width_c, "act": "none"},
    ]
    # Listed in descending order on purpose: the input order is the backbone order regardless.
    skips = [{"src": "a", "dst": "c", "kind": "concat"}, {"src": "x", "dst": "c", "kind": "concat"}]
    return Topology.create(nodes, skips)


def test_concat_widens_the_destination_input_in_ascending_source_order() -> None:
    topo = _concat_chain()
    assert topo.input_sources("c") == ["x", "a", "b"]
    assert topo.shapes["c"] == (5,)  # the output keeps its own width
    model = build_model(topo)
    assert first_layer(model, "c").in_features == 2 + 3 + 4
    plain = build_model(topo.with_skips([]))
    assert count_params(model) - count_params(plain) == 5 * (2 + 3)

    seen: list[torch.Tensor] = []
    model.get_submodule("blocks.c").register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = batch((2,))
    with torch.no_grad():
        out = model(x)
        a = model.get_submodule("blocks.a")(x)
        b = model.get_submodule("blocks.b")(a)
        expected_input = torch.cat([x, a, b], dim=1)
    assert torch.equal(seen[0], expected_input)
    assert torch.equal(out, model.get_submodule("blocks.c")(expected_input))


def test_concat_of_feature_maps_adds_channels() -> None:
    nodes = [
        {"id": "x", "op": "input", "shape": [2, 8]},
        {"id": "a", "op": "conv", "channels": 3},
        {"id": "b", "op": "conv", "channels": 4},
    ]
    topo = Topology.create(nodes, [{"src": "x", "dst": "b", "kind": "concat"}])
    assert build_model(topo).get_submodule("blocks.b.0").in_channels == 2 + 3


def test_concat_gradient_reaches_every_source() -> None:
    model = build_model(_concat_chain())
    x = batch((2,)).requires_grad_(True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # The part of c's weight that reads x gets a gradient, so x's features arrive there.
    assert first_layer(model, "c").weight.grad[:, :2].abs().sum() > 0
    gradcheck_model(model, batch((2,), n=1))


# -- gated ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(SAME))
def test_gated_is_a_sigmoid_gate_of_the_pooled_source(layout: str) -> None:
    shape, dst = SAME[layout]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": "gated"}]))
    randomize(model)
    x = batch(shape)
    with torch.no_grad():
        torch.testing.assert_close(model(x), body(model, x) + expected_term(model, "gated", "identity", x))


def test_gated_starts_open_at_sigmoid_of_its_init() -> None:
    shape, dst = SAME["2d"]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": "gated", "init": 1.5}]))
    x = batch(shape)
    with torch.no_grad():
        expected = body(model, x) + torch.sigmoid(torch.tensor(1.5)) * x
        torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize("layout", list(SAME))
def test_gated_gradient_reaches_gate_weight_and_bias(layout: str) -> None:
    shape, dst = SAME[layout]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": "gated"}]))
    randomize(model)
    model(batch(shape)).pow(2).sum().backward()
    gate = model.get_submodule("skips.x__b").gate
    assert gate.weight.grad is not None and gate.weight.grad.abs().sum() > 0
    assert gate.bias.grad is not None and gate.bias.grad.abs().sum() > 0
    gradcheck_model(model, batch(shape, n=1, seed=1))


# -- scalar ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(SAME))
def test_scalar_scales_the_identity_and_learns_from_its_correlation_with_the_gradient(layout: str) -> None:
    shape, dst = SAME[layout]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": "scalar", "init": 0.3}]))
    scale = model.get_submodule("skips.x__b").scale
    assert scale.item() == pytest.approx(0.3)
    x, upstream = batch(shape), batch(shape, seed=1)
    out = model(x)
    torch.testing.assert_close(out, body(model, x) + 0.3 * x)
    (out * upstream).sum().backward()
    # d/da of sum(upstream * (F(x) + a x)) = sum(x * dL/dout)
    torch.testing.assert_close(scale.grad, (x * upstream).sum())
    gradcheck_model(model, batch(shape, n=1, seed=2))


def test_scalar_zero_init_is_rezero_no_skip_at_start() -> None:
    shape, dst = SAME["vector"]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": "scalar", "init": 0}]))
    x = batch(shape)
    with torch.no_grad():
        assert torch.equal(model(x), body(model, x) + 0.0 * x)


# -- switch ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(SAME))
def test_switch_is_a_sigmoid_of_one_logit(layout: str) -> None:
    shape, dst = SAME[layout]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": "switch", "init": -0.7}]))
    x = batch(shape)
    out = model(x)
    torch.testing.assert_close(out, body(model, x) + torch.sigmoid(torch.tensor(-0.7)) * x)
    assert switch_states(model) == {"x__b": pytest.approx(float(torch.sigmoid(torch.tensor(-0.7))))}
    gradcheck_model(model, batch(shape, n=1, seed=1))


def _switch_net(logits: dict[str, float]) -> fx.GraphModule:
    """A small 2-D network with four switch edges, one per alignment case, with the given logits."""
    nodes = [
        {"id": "x", "op": "input", "shape": [4, 8, 8]},
        {"id": "c1", "op": "conv", "channels": 4},
        {"id": "c2", "op": "conv", "channels": 8, "stride": 2},
        {"id": "c3", "op": "conv", "channels": 8, "post": "relu"},
        {"id": "head", "op": "head", "classes": 3},
    ]
    edges = [
        {"src": "x", "dst": "c1", "kind": "switch"},
        {"src": "c1", "dst": "c2", "kind": "switch", "align": "project"},
        {"src": "c1", "dst": "c3", "kind": "switch", "align": "zero_pad"},
        {"src": "c2", "dst": "c3", "kind": "switch"},
        {"src": "x", "dst": "head", "kind": "off"},
    ]
    torch.manual_seed(0)
    model = build_model(Topology.create(nodes, edges, name="switches"))
    randomize(model)
    with torch.no_grad():
        for name, logit in logits.items():
            model.get_submodule(f"skips.{name}").logit.fill_(logit)
    return model.eval()


LOGITS = {"x__c1": 2.0, "c1__c2": -3.0, "c1__c3": 0.5, "c2__c3": -1.0}


def test_switch_penalty_sums_the_gates_and_pushes_every_logit_down() -> None:
    model = _switch_net(LOGITS)
    penalty = switch_penalty(model)
    expected = sum(torch.sigmoid(torch.tensor(v)) for v in LOGITS.values())
    torch.testing.assert_close(penalty, expected)
    penalty.backward()
    for name, value in LOGITS.items():
        gate = torch.sigmoid(torch.tensor(value))
        torch.testing.assert_close(model.get_submodule(f"skips.{name}").logit.grad, gate * (1 - gate))
    assert float(switch_penalty(build_model(two_nodes(*SAME["vector"])))) == 0.0


def test_resolve_switches_drops_closed_gates_and_fixes_open_ones() -> None:
    model = _switch_net(LOGITS)
    resolved, new = resolve_switches(model)
    kinds = {(e.src, e.dst): e for e in resolved.skips}
    assert kinds["c1", "c2"].kind == "off" and kinds["c2", "c3"].kind == "off"
    assert kinds["x", "c1"].kind == "scalar" and kinds["c1", "c3"].kind == "scalar"
    assert kinds["c1", "c3"].align == "zero_pad"
    assert kinds["x", "c1"].init == pytest.approx(float(torch.sigmoid(torch.tensor(2.0))))
    assert set(skip_modules(new)) == {"x__c1", "c1__c3"}
    assert not new.training
    assert switch_states(new) == {}

    # The resolved model computes what the trained one did once the closed gates are exactly 0.
    closed = _switch_net({**LOGITS, "c1__c2": -torch.inf, "c2__c3": -torch.inf})
    x = batch((4, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(new(x), closed(x), atol=1e-6, rtol=1e-6)


def test_resolve_switches_keeps_outputs_identical_when_every_gate_is_open() -> None:
    model = _switch_net({name: 1.0 for name in LOGITS})
    resolved, new = resolve_switches(model)
    assert {e.kind for e in resolved.active_skips} == {"scalar"}
    x = batch((4, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(new(x), model(x), atol=1e-6, rtol=1e-6)


def test_resolve_switches_threshold_decides_which_gates_stay() -> None:
    model = _switch_net(LOGITS)
    resolved, _ = resolve_switches(model, threshold=0.95)
    assert [e.kind for e in resolved.skips if e.src != "x" or e.dst != "head"] == ["off"] * 4


# -- alignments across a stage change -----------------------------------------------------------------


@pytest.mark.parametrize("layout", list(CHANGES))
@pytest.mark.parametrize("channels", [6, 7])
def test_zero_pad_subsamples_and_pads_zero_channels_evenly(layout: str, channels: int) -> None:
    shape, dst = CHANGES[layout]
    dst = {**dst, "features" if layout == "vector" else "channels": channels}
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "align": "zero_pad"}]))
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    x = batch(shape).requires_grad_(True)
    out = model(x)
    stride = 1 if layout == "vector" else 2
    expected = zero_pad(x.detach(), channels, stride)
    assert torch.equal(out, expected)
    front = (channels - 3) // 2
    assert torch.equal(out[:, :front], torch.zeros_like(out[:, :front]))
    assert torch.equal(out[:, front + 3 :], torch.zeros_like(out[:, front + 3 :]))

    # The gradient reaches exactly the subsampled source positions.
    upstream = batch(tuple(out.shape[1:]), seed=1)
    (out * upstream).sum().backward()
    want = torch.zeros_like(x)
    if layout == "vector":
        want[:] = upstream[:, front : front + 3]
    elif layout == "1d":
        want[:, :, ::2] = upstream[:, front : front + 3]
    else:
        want[:, :, ::2, ::2] = upstream[:, front : front + 3]
    assert torch.equal(x.grad, want)


@pytest.mark.parametrize("layout", list(CHANGES))
def test_project_is_a_strided_1x1_map_with_batchnorm(layout: str) -> None:
    shape, dst = CHANGES[layout]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "align": "project"}]))
    randomize(model)
    model.eval()
    proj = model.get_submodule("skips.x__b")
    assert proj[0].weight.shape[:2] == (6, 3) and proj[0].weight[0].numel() == 3  # a 1x1 map
    x = batch(shape).requires_grad_(True)
    out = model(x)
    torch.testing.assert_close(out, body(model, x) + project(proj, x))
    with torch.no_grad():
        for param in model.blocks.parameters():
            param.zero_()
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # through the projection alone


@pytest.mark.parametrize("layout", list(CHANGES))
@pytest.mark.parametrize("align", ["zero_pad", "project"])
@pytest.mark.parametrize("kind", ADDITIVE)
def test_every_kind_with_every_alignment(kind: str, align: str, layout: str) -> None:
    shape, dst = CHANGES[layout]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": kind, "align": align}]))
    randomize(model, seed=5)
    model.eval()
    x = batch(shape)
    with torch.no_grad():
        torch.testing.assert_close(model(x), body(model, x) + expected_term(model, kind, align, x))
    gradcheck_model(model, batch(shape, n=1, seed=1))


@pytest.mark.parametrize("layout", list(SAME))
@pytest.mark.parametrize("kind", ADDITIVE)
def test_every_kind_with_identity_alignment(kind: str, layout: str) -> None:
    shape, dst = SAME[layout]
    model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": kind}]))
    randomize(model, seed=6)
    x = batch(shape)
    with torch.no_grad():
        torch.testing.assert_close(model(x), body(model, x) + expected_term(model, kind, "identity", x))


def test_skip_modules_are_named_by_their_edge() -> None:
    shape, dst = CHANGES["2d"]
    kinds: dict[str, Callable[[nn.Module], bool]] = {
        "scalar": lambda m: isinstance(m, ScalarSkip),
        "gated": lambda m: isinstance(m, GatedSkip),
        "switch": lambda m: isinstance(m, SwitchSkip),
    }
    for kind, check in kinds.items():
        model = build_model(two_nodes(shape, dst, [{"src": "x", "dst": "b", "kind": kind, "align": "zero_pad"}]))
        assert check(model.get_submodule("skips.x__b"))
