"""Paths and effective depth: the routed forward pass and the per-path gradients."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from skipsearch.analysis import node_path_distributions, path_gradients, routed_forward
from skipsearch.analysis._paths import Route, effective_range
from skipsearch.nn import build_model
from skipsearch.tasks import seed_everything
from skipsearch.topology import SkipEdge, Topology, families, path_length_distribution


def _mixed() -> Topology:
    """Every kind of edge the router must handle: identity add, projection, scalar, concat."""
    base = families.mlp(12, [16, 16, 8, 8], 5, act="tanh", residual=False)
    return base.with_skips(
        [
            SkipEdge("h1", "h2", "add"),
            SkipEdge("x", "h3", "add", "project"),
            SkipEdge("h2", "h4", "scalar", "project", 0.5),
            SkipEdge("h1", "h3", "concat"),
        ]
    )


def _all_routes(topology: Topology) -> list[Route]:
    """Every input-to-output path, as routes (exhaustive, for small graphs)."""

    def walk(node: str) -> list[Route]:
        if node == topology.nodes[0].id:
            return [{}]
        out = []
        entries = [("body", s) for s in topology.input_sources(node)]
        entries += [("skip", e.src) for e in topology.incoming(node) if e.additive]
        for mode, src in entries:
            out += [{**r, node: (mode, src)} for r in walk(src)]
        return out

    return walk(topology.nodes[-1].id)


def test_routed_forward_is_the_model() -> None:
    topo = _mixed()
    seed_everything(0)
    model = build_model(topo).eval()
    x = torch.randn(7, 12)
    assert torch.allclose(routed_forward(model, x), model(x), atol=1e-6)


def test_path_gradients_add_up_to_the_full_gradient() -> None:
    """Forward values are unchanged and each route keeps one path's backward edges, so the
    per-path input gradients of all paths sum exactly to the ordinary input gradient."""
    topo = _mixed()
    seed_everything(1)
    model = build_model(topo).eval()
    x, y = torch.randn(6, 12), torch.randint(0, 5, (6,))
    routes = _all_routes(topo)
    assert len(routes) == sum(path_length_distribution(topo).values())
    total = torch.zeros_like(x)
    for route in routes:
        inp = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(routed_forward(model, inp, route), y), inp)
        total += grad
    inp = x.clone().requires_grad_(True)
    (full,) = torch.autograd.grad(F.cross_entropy(model(inp), y), inp)
    assert torch.allclose(total, full, atol=1e-5)


def test_node_distributions_end_in_the_topology_metric() -> None:
    topo = _mixed()
    assert node_path_distributions(topo)[topo.nodes[-1].id] == path_length_distribution(topo)


def test_residual_gradient_comes_from_short_paths() -> None:
    plain = families.mlp(10, [16] * 8, 4, act="tanh", residual=False)
    residual = families.mlp(10, [16] * 8, 4, act="tanh")
    x, y = torch.randn(32, 10), torch.randint(0, 4, (32,))
    seed_everything(0)
    chain = path_gradients(build_model(plain), x, y, samples=2)
    assert chain.lengths == [9] and chain.share == [1.0] and chain.effective_range == (9, 9)
    seed_everything(0)
    res = path_gradients(build_model(residual), x, y, samples=4)
    assert res.longest == 9 and sum(res.counts) == 2**7
    assert abs(sum(res.share) - 1) < 1e-9
    assert res.mean_length < res.longest - 2 and res.effective_range[1] < res.longest
    assert res.to_dict()["lengths"][0]["length"] == res.lengths[0]


def test_effective_range_is_the_shortest_covering_run() -> None:
    assert effective_range([1, 2, 3, 4], [0.05, 0.45, 0.46, 0.04]) == (2, 3)
    assert effective_range([1, 2, 3], [0.0, 0.0, 1.0]) == (3, 3)
