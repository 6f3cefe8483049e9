"""Zero-cost probes: known answers on linear and one-layer networks, every block and edge kind,
and no side effects on the model or the random stream."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from skipsearch import metrics as schema
from skipsearch.nn import build_model
from skipsearch.tasks import PROBES, compute_probes, flow_ratio, gradient_norms, load_task, probe_batch, probe_names
from skipsearch.topology import OPS, Topology, get_preset


def linear_chain(act: str = "none", widths: tuple[int, ...] = (3, 2), inputs: int = 4) -> Topology:
    nodes = [{"id": "x", "op": "input", "shape": [inputs]}]
    nodes += [{"id": f"h{i}", "op": "linear", "features": w, "act": act, "bias": False} for i, w in enumerate(widths)]
    return Topology.create(nodes)


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.dim() > 1]


def test_every_schema_probe_has_a_computation() -> None:
    assert set(schema.probe_names()) == set(PROBES)
    assert probe_names() == schema.probe_names()


def test_synflow_of_a_linear_chain_is_depth_times_the_path_sum() -> None:
    # With |W| and an all-ones input, R = 1^T |W2| |W1| 1; R is 1-homogeneous in each layer's
    # weights, so sum_theta theta dR/dtheta over one layer is R (Euler), and over two layers 2R.
    torch.manual_seed(0)
    model = build_model(linear_chain())
    w1, w2 = (w.detach().double().abs().numpy() for w in weights(model))
    path_sum = float(np.ones(2) @ w2 @ w1 @ np.ones(4))
    x, y = torch.randn(8, 4), torch.randn(8, 2)
    assert compute_probes(model, x, y, ["synflow"])["synflow"] == pytest.approx(2 * path_sum, rel=1e-12)


def test_snip_and_grad_norm_match_the_hand_computed_gradient() -> None:
    torch.manual_seed(1)
    model = build_model(linear_chain())
    w1, w2 = (w.detach().double().numpy() for w in weights(model))
    x, t = torch.randn(8, 4), torch.randn(8, 2)
    xs, ts = x.double().numpy(), t.double().numpy()
    hidden = xs @ w1.T
    out = hidden @ w2.T
    d_out = 2 * (out - ts) / out.size  # mean squared error over every element
    g2 = d_out.T @ hidden
    g1 = (d_out @ w2).T @ xs
    scores = compute_probes(model, x, t, ["snip", "grad_norm"])
    assert scores["snip"] == pytest.approx(np.abs(w1 * g1).sum() + np.abs(w2 * g2).sum(), rel=1e-5)
    assert scores["grad_norm"] == pytest.approx(np.linalg.norm(g1) + np.linalg.norm(g2), rel=1e-5)


def test_jacob_cov_of_a_linear_model_has_one_eigenvalue_b() -> None:
    # Every sample's Jacobian of a linear map is the same vector: the correlation matrix is all
    # ones, with eigenvalues B (once) and 0 (B - 1 times).
    model = build_model(linear_chain())
    b, k = 6, 1e-5
    x, y = torch.randn(b, 4), torch.randn(b, 2)
    expected = -((math.log(b + k) + 1 / (b + k)) + (b - 1) * (math.log(k) + 1 / k))
    assert compute_probes(model, x, y, ["jacob_cov"])["jacob_cov"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "gelu"])
def test_naswot_is_the_log_determinant_of_the_hamming_kernel(act: str) -> None:
    # Identity weights: the codes are the signs of the inputs, [1,0,0], [0,1,0], [1,1,0]; with
    # N_A = 3 units K = 3 - Hamming = [[3,1,2],[1,3,2],[2,2,3]], det 8. Non-ReLU activations give
    # the sign code of their pre-activation, the same codes.
    model = build_model(linear_chain(act, widths=(3,), inputs=3))
    with torch.no_grad():
        weights(model)[0].copy_(torch.eye(3))
    x = torch.tensor([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [1.0, 1.0, -1.0]])
    score = compute_probes(model, x, torch.zeros(3, 3), ["naswot"])["naswot"]
    assert score == pytest.approx(math.log(8.0), rel=1e-12)


def test_naswot_of_equal_codes_is_singular_and_stored_as_missing() -> None:
    model = build_model(linear_chain("relu", widths=(3,), inputs=3))
    x = torch.ones(4, 3)
    assert compute_probes(model, x, torch.zeros(4, 3), ["naswot"])["naswot"] is None


def test_gradflow_is_the_flow_ratio_on_the_probe_batch() -> None:
    torch.manual_seed(0)
    model = build_model(get_preset("mlp-deep"))
    data = load_task("mnist1d", seed=0)
    x, y = probe_batch(data, (40,), seed=3)
    norms, _ = gradient_norms(model, x, y)
    assert compute_probes(model, x, y, ["gradflow"])["gradflow"] == pytest.approx(flow_ratio(norms))


def _every_edge_kind() -> Topology:
    nodes = [{"id": "x", "op": "input", "shape": [1, 16]}]
    nodes += [
        {"id": "c1", "op": "conv", "channels": 4},
        {"id": "a1", "op": "activation", "fn": "tanh"},
        {"id": "c2", "op": "conv", "channels": 4, "act": "gelu"},
        {"id": "d1", "op": "dropout", "p": 0.2},
        {"id": "c3", "op": "conv", "channels": 8, "stride": 2, "act": "silu"},
        {"id": "f", "op": "flatten"},
        {"id": "l1", "op": "linear", "features": 16, "act": "sigmoid"},
        {"id": "l2", "op": "linear", "features": 16},
        {"id": "head", "op": "head", "classes": 10, "pool": "none"},
    ]
    skips = [
        {"src": "c1", "dst": "c2", "kind": "add"},
        {"src": "x", "dst": "c3", "kind": "concat"},
        {"src": "c2", "dst": "c3", "kind": "gated", "align": "project"},
        {"src": "l1", "dst": "l2", "kind": "scalar"},
        {"src": "f", "dst": "l1", "kind": "switch", "align": "project"},
        {"src": "c1", "dst": "d1", "kind": "off"},
    ]
    return Topology.create(nodes, skips, name="every-kind")


CASES = {
    "every-edge-kind": _every_edge_kind,
    "resnet20": lambda: get_preset("resnet20"),
    "unet-small": lambda: get_preset("unet-small"),
    "cnn1d-mnist1d": lambda: get_preset("cnn1d-mnist1d"),
    "densenet-bc-100": lambda: get_preset("densenet-bc-100"),
}


def test_the_cases_cover_every_block_and_edge_kind() -> None:
    topologies = [make() for make in CASES.values()]
    assert {n.op for t in topologies for n in t.nodes} >= set(OPS)
    assert {e.kind for t in topologies for e in t.skips} >= {"add", "concat", "gated", "scalar", "switch", "off"}


@pytest.mark.parametrize("case", list(CASES))
def test_every_probe_runs_on_every_block_and_edge_kind(case: str) -> None:
    torch.manual_seed(0)
    topology = CASES[case]()
    model = build_model(topology)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((8, *topology.input_shape), generator=gen)
    out_shape = topology.output_shape
    y = torch.randint(0, out_shape[0], (8, *out_shape[1:]), generator=gen)
    scores = compute_probes(model, x, y)
    assert set(scores) == set(probe_names())
    for name, value in scores.items():
        assert value is not None and math.isfinite(value), (name, value)


def test_probes_leave_the_model_and_the_random_stream_alone() -> None:
    torch.manual_seed(0)
    model = build_model(_every_edge_kind())
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(8, 1, 16), torch.randint(0, 10, (8,))
    rng = torch.get_rng_state()
    first = compute_probes(model, x, y)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert compute_probes(model, x, y) == first  # deterministic on the CPU


def test_the_probe_batch_is_seeded_and_the_same_for_every_topology() -> None:
    data = load_task("mnist1d", seed=0)
    a, ya = probe_batch(data, (40,), seed=5)
    b, yb = probe_batch(data, (1, 40), seed=5)
    assert torch.equal(a, b.reshape(len(b), 40)) and torch.equal(ya, yb)
    assert not torch.equal(probe_batch(data, (40,), seed=6)[0], a)


def test_an_unknown_probe_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown probe 'nope'"):
        compute_probes(build_model(linear_chain()), torch.randn(2, 4), torch.randn(2, 2), ["nope"])
