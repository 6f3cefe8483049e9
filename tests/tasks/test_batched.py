"""Fused training of many topologies: every member ends as training it alone would leave it."""

from __future__ import annotations

import dataclasses
import logging
import math

import pytest
import torch

from skipsearch.nn import build_model
from skipsearch.tasks import TaskData, TrainConfig, TrainResult, load_task, seed_everything, train_model
from skipsearch.tasks import _batched as batched
from skipsearch.tasks._batched import fusion_key, train_batched
from skipsearch.topology import Topology, families

pytestmark = pytest.mark.slow

CONFIG = TrainConfig(epochs=2, batch_size=64, lr=3e-3, threads=1)


def double_data(samples: int = 512) -> TaskData:
    data = load_task("mnist1d")
    return dataclasses.replace(
        data,
        x_train=data.x_train[:samples].double(),
        y_train=data.y_train[:samples],
        x_val=data.x_val[:300].double(),
        y_val=data.y_val[:300],
        x_test=data.x_test[:300].double(),
        y_test=data.y_test[:300],
    )


def mlp_members(norm: str = "batch") -> list[Topology]:
    """Every additive kind and alignment, and concat edges into blocks and into the head."""
    base = families.mlp(40, [16, 16, 24, 16], 10, act="tanh", residual=False, norm=norm)

    def topo(name: str, *edges: dict) -> Topology:
        return Topology.create(list(base.nodes), list(edges), name=name)

    return [
        topo("add", {"src": "h1", "dst": "h2", "kind": "add"}),
        topo(
            "concat-scalar",
            {"src": "h1", "dst": "h3", "kind": "concat"},
            {"src": "h1", "dst": "h2", "kind": "scalar", "init": 0.5},
        ),
        topo(
            "project-gated",
            {"src": "x", "dst": "h2", "kind": "concat"},
            {"src": "h2", "dst": "h3", "kind": "add", "align": "project"},
            {"src": "h3", "dst": "h4", "kind": "gated", "align": "project", "init": 1.0},
        ),
        topo(
            "zero-pad-switch",
            {"src": "h2", "dst": "h3", "kind": "add", "align": "zero_pad"},
            {"src": "h1", "dst": "h2", "kind": "switch", "init": 1.0},
            {"src": "h3", "dst": "head", "kind": "concat"},
        ),
        topo("plain"),
    ]


def stacked_mlp_members() -> list[Topology]:
    """Members :class:`MlpStack` trains: every stacked kind, identity and projection alignments, the
    same edge with different kinds in different members, and concat edges into blocks and the head."""
    base = families.mlp(40, [16, 16, 24, 16], 10, act="tanh", residual=False, norm="none")

    def topo(name: str, *edges: dict) -> Topology:
        return Topology.create(list(base.nodes), list(edges), name=name)

    return [
        topo("add-concat", {"src": "h1", "dst": "h2", "kind": "add"}, {"src": "x", "dst": "h2", "kind": "concat"}),
        topo(
            "scalar-project",
            {"src": "h1", "dst": "h2", "kind": "scalar", "init": 0.5},
            {"src": "h2", "dst": "h3", "kind": "scalar", "align": "project", "init": 0.7},
            {"src": "h3", "dst": "head", "kind": "add", "align": "project"},
        ),
        topo(
            "switch-concat",
            {"src": "h1", "dst": "h2", "kind": "switch", "init": 1.0},
            {"src": "h2", "dst": "h4", "kind": "concat"},
            {"src": "h3", "dst": "h4", "kind": "switch", "align": "project", "init": 0.5},
            {"src": "h3", "dst": "head", "kind": "concat"},
        ),
        topo("add-project", {"src": "h2", "dst": "h3", "kind": "add", "align": "project"}),
        topo("plain"),
    ]


def built(topology: Topology, seed: int, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    seed_everything(seed)
    return build_model(topology).to(dtype)


def assert_same(alone: TrainResult, fused: TrainResult, tol: float, metric_tol: float | None = None) -> None:
    metric_tol = tol * 10 if metric_tol is None else metric_tol
    assert (fused.status, fused.reason, fused.epochs_run) == (alone.status, alone.reason, alone.epochs_run)
    for a, b in [(alone.val_loss, fused.val_loss), (alone.train_loss, fused.train_loss)]:
        assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol * max(1.0, abs(a)), (a, b)
    assert fused.curve == pytest.approx(alone.curve, abs=metric_tol)
    if alone.test_metric is None:
        assert fused.test_metric is None
    else:
        assert fused.test_metric == pytest.approx(alone.test_metric, abs=metric_tol)


def compare(topologies, data, config, seeds, stops=None, dtype=torch.float64, tol=1e-6, metric_tol=None):
    alone_models = [built(t, s, dtype) for t, s in zip(topologies, seeds, strict=True)]
    stop_list = stops or [None] * len(topologies)
    alone = [
        train_model(m, data, config, seed=s, should_stop=stop)
        for m, s, stop in zip(alone_models, seeds, stop_list, strict=True)
    ]
    fused_models = [built(t, s, dtype) for t, s in zip(topologies, seeds, strict=True)]
    fused = train_batched(fused_models, data, config, seeds=seeds, should_stop=stops)
    for a, f in zip(alone, fused, strict=True):
        assert_same(a, f, tol, metric_tol)
    return alone_models, fused_models, fused


def test_every_edge_kind_alignment_concat_and_batchnorm_match_alone_in_float64() -> None:
    members = mlp_members()
    assert len({fusion_key(t) for t in members}) == 1
    config = CONFIG.updated(grad_clip=1.0, weight_decay=1e-4, switch_penalty=1e-2)
    alone_models, fused_models, _ = compare(members, double_data(), config, seeds=[0, 1, 2, 3, 4], tol=1e-9)
    # The trained weights come back into each model (a bias whose gradient cancels to ~1e-9 differs there).
    for a, f in zip(alone_models, fused_models, strict=True):
        for (name, p), q in zip(a.state_dict().items(), f.state_dict().values(), strict=True):
            assert torch.allclose(p.double(), q.double(), rtol=1e-6, atol=1e-7), name


def test_stacked_mlp_members_match_alone_in_float64_and_leave_one_by_one() -> None:
    members = stacked_mlp_members()
    models = [built(t, 0) for t in members]
    assert isinstance(batched.make_stack(models, torch.device("cpu"), 0.0), batched.MlpStack)
    config = CONFIG.updated(epochs=3, grad_clip=1.0, weight_decay=1e-4, switch_penalty=1e-2)
    stops = [None, lambda epoch, value: epoch >= 1, None, lambda epoch, value: epoch >= 2, None]
    alone_models, fused_models, fused = compare(
        members, double_data(), config, seeds=[0, 1, 2, 3, 4], stops=stops, tol=1e-9
    )
    assert [r.epochs_run for r in fused] == [3, 1, 3, 2, 3]
    for a, f in zip(alone_models, fused_models, strict=True):
        assert a.state_dict().keys() == f.state_dict().keys()
        for (name, p), q in zip(a.state_dict().items(), f.state_dict().values(), strict=True):
            assert p.dtype == q.dtype and torch.allclose(p.double(), q.double(), rtol=1e-6, atol=1e-7), name


def test_stacked_mlp_members_with_per_member_batches_and_adam_match_alone() -> None:
    members = stacked_mlp_members()[:3]
    config = CONFIG.updated(optimizer="adamw", schedule="cosine", weight_decay=1e-3)
    compare(members, double_data(256), config, seeds=[3, 4, 5], tol=1e-9)


def test_blocks_without_a_stacked_form_train_as_a_union_network() -> None:
    models = [built(t, 0) for t in mlp_members(norm="none")]  # gated edges and zero padding
    assert isinstance(batched.make_stack(models, torch.device("cpu"), 0.0), batched.UnionStack)


@pytest.mark.parametrize("optimizer,schedule", [("sgd", "step"), ("adamw", "cosine")])
def test_optimizers_and_schedules_match_alone(optimizer: str, schedule: str) -> None:
    config = CONFIG.updated(optimizer=optimizer, schedule=schedule, lr=0.01, epochs=3)
    compare(mlp_members(norm="layer")[:3], double_data(256), config, seeds=[5, 5, 5], tol=1e-9)


def test_convolutions_with_zero_pad_and_projection_shortcuts_match_alone() -> None:
    members = [
        families.resnet((1, 40), [(4, 1, 1), (8, 1, 2)], 10, shortcut=shortcut, name=f"r-{shortcut}")
        for shortcut in ("project", "zero_pad")
    ] + [families.resnet((1, 40), [(4, 1, 1), (8, 1, 2)], 10, residual=False, name="plain")]
    compare(members, double_data(256), CONFIG, seeds=[0, 0, 0], tol=1e-9)


def test_a_stopped_and_a_diverged_member_leave_without_touching_the_others() -> None:
    members = mlp_members(norm="none")[:3]
    data = double_data(256)
    config = CONFIG.updated(epochs=3, optimizer="sgd", lr=0.05)
    stops = [None, lambda epoch, value: epoch >= 1, None]
    _, _, fused = compare(members, data, config, seeds=[0, 1, 2], stops=stops, tol=1e-9)
    assert [r.status for r in fused] == ["ok", "stopped", "ok"] and fused[1].epochs_run == 1

    blown = build_model(members[2]).double()
    with torch.no_grad():  # a member whose outputs are infinite diverges at its first batch
        blown.get_submodule("blocks.head")[-1].weight.fill_(float("inf"))
    seed_everything(0)
    healthy = build_model(members[0]).double()
    seed_everything(0)
    reference = train_model(build_model(members[0]).double(), data, config, seed=0)
    out = train_batched([healthy, blown], data, config, seeds=[0, 0])
    assert out[1].status == "diverged" and out[1].reason is not None and "at epoch 1, batch 1" in out[1].reason
    assert out[1].test_metric is None and math.isnan(out[1].val_metric)
    assert_same(reference, out[0], 1e-9)


def test_float32_members_match_within_tolerance() -> None:
    data = load_task("mnist1d")
    data = dataclasses.replace(data, x_train=data.x_train[:1024], y_train=data.y_train[:1024])
    # Float32 sums in another order: losses agree to about 1e-4 (relative); an accuracy of a barely
    # trained model may move by up to 1% (near-tied logits flip): the stated float32 tolerance.
    _, _, fused = compare(
        mlp_members(), data, CONFIG, seeds=[0, 1, 2, 3, 4], dtype=torch.float32, tol=2e-4, metric_tol=0.01
    )
    assert all(r.status == "ok" for r in fused)


def test_unfusable_members_train_alone_and_the_log_says_why(caplog: pytest.LogCaptureFixture) -> None:
    base = families.mlp(40, [16, 16], 10, residual=False)
    nodes = [*base.nodes[:2], {"id": "drop", "op": "dropout", "p": 0.1}, *base.nodes[2:]]
    dropout = Topology.create(nodes, [], name="with-dropout")
    other = families.mlp(40, [8, 8], 10, name="narrow")
    members = [*mlp_members()[:2], dropout, other]
    with caplog.at_level(logging.INFO, logger="skipsearch.batched"):
        compare(members, double_data(256), CONFIG, seeds=[0, 1, 2, 3], tol=1e-9)
    assert "training with-dropout alone: dropout" in caplog.text
    assert "training narrow alone: no other member" in caplog.text


def test_out_of_memory_shrinks_the_group(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    real = batched._train_group

    def small_memory(models, *args, **kwargs):
        if len(models) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(models, *args, **kwargs)

    monkeypatch.setattr(batched, "_train_group", small_memory)
    with caplog.at_level(logging.WARNING, logger="skipsearch.batched"):
        compare(mlp_members()[:4], double_data(256), CONFIG, seeds=[0, 1, 2, 3], tol=1e-9)
    assert "out of memory training 4 models together; going on as groups of 2 and 2" in caplog.text


def test_auto_group_size_on_the_cpu_and_a_cpu_allocation_failure_counts_as_out_of_memory() -> None:
    config = TrainConfig()
    assert batched.auto_batch_size(families.mlp(40, [16], 10), config, torch.device("cpu")) == batched.AUTO_CPU_BATCH
    assert batched._out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate"))
    assert not batched._out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_a_parameter_that_does_not_fit_the_group_trains_alone(caplog: pytest.LogCaptureFixture) -> None:
    members = mlp_members(norm="none")[:2]
    models = [built(t, 0) for t in members]
    # A model whose weights were resized by hand no longer matches its topology's shapes.
    models[1].get_submodule("blocks.h1").weight = torch.nn.Parameter(torch.zeros(16, 7, dtype=torch.float64))
    # Alone, the broken model fails as train_model fails on it.
    with caplog.at_level(logging.INFO, logger="skipsearch.batched"), pytest.raises(RuntimeError):
        train_batched(models, double_data(256), CONFIG, seeds=[0, 0])
    assert "training 2 models one at a time" in caplog.text and "does not fit the group's" in caplog.text


def test_every_members_value_is_heard_before_any_member_decides() -> None:
    heard: list[tuple[str, int, int]] = []

    class Peer:
        def __init__(self, member: int) -> None:
            self.member = member

        def observe(self, epoch: int, value: float) -> None:
            heard.append(("observe", epoch, self.member))

        def __call__(self, epoch: int, value: float) -> bool:
            heard.append(("decide", epoch, self.member))
            return self.member == 0 and epoch == 1  # the first member leaves; the second still hears itself

    members = stacked_mlp_members()[:2]
    models = [built(t, 0) for t in members]
    results = train_batched(models, double_data(256), CONFIG, seeds=[0, 1], should_stop=[Peer(0), Peer(1)])
    assert [r.epochs_run for r in results] == [1, 2]
    assert heard == [
        ("observe", 1, 0), ("observe", 1, 1), ("decide", 1, 0), ("decide", 1, 1),
        ("observe", 2, 1), ("decide", 2, 1),
    ]  # fmt: skip
