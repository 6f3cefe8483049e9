"""The training loop: determinism, divergence, early stopping, switch penalty, settings."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from skipsearch.errors import UserError
from skipsearch.nn import build_model, switch_states
from skipsearch.tasks import TrainConfig, load_task, seed_everything, train_model, train_topology
from skipsearch.topology import Topology, families

FAST = TrainConfig(epochs=2, batch_size=256, lr=3e-3, threads=1)


def tiny_cnn() -> nn.Module:
    return build_model(families.resnet((1, 40), [(4, 1, 1), (8, 1, 2)], 10, shortcut="project"))


def tiny_mlp(skip_kind: str = "add") -> nn.Module:
    topo = families.mlp(40, [16, 16, 16], 10)
    skips = [{**e.to_dict(), "kind": skip_kind} for e in topo.skips]
    return build_model(Topology.create(list(topo.nodes), skips, name="tiny-mlp"))


def run(model_factory, config: TrainConfig = FAST, seed: int = 0, **kwargs):
    seed_everything(seed)
    model = model_factory()
    return model, train_model(model, load_task("mnist1d"), config, seed=seed, **kwargs)


@pytest.mark.slow
def test_same_seed_same_result_and_weights() -> None:
    model_a, a = run(tiny_cnn)  # also checks (40,) inputs are viewed as the CNN's (1, 40)
    model_b, b = run(tiny_cnn)
    assert a.status == "ok" and a.reason is None and a.epochs_run == 2 and len(a.curve) == 2
    assert (a.val_metric, a.val_loss, a.test_metric, a.curve, a.train_loss) == (
        b.val_metric,
        b.val_loss,
        b.test_metric,
        b.curve,
        b.train_loss,
    )
    for (name, p), q in zip(model_a.state_dict().items(), model_b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    _, c = run(tiny_cnn, seed=1)
    assert c.val_loss != a.val_loss
    assert a.val_metric == a.curve[-1] and 0.1 < a.val_metric <= 1 and 0 <= a.test_metric <= 1
    assert a.train_seconds > 0 and math.isfinite(a.train_loss)


@pytest.mark.slow
def test_training_learns() -> None:
    _, result = run(tiny_mlp, FAST.updated(epochs=3, batch_size=64))
    assert result.curve[-1] > 0.2  # chance is 0.1


@pytest.mark.slow
def test_huge_learning_rate_diverges_with_a_reason() -> None:
    _, result = run(tiny_mlp, FAST.updated(optimizer="sgd", lr=1e10))
    assert result.status == "diverged"
    assert result.reason is not None and result.reason.startswith("loss became")
    assert "at epoch 1, batch" in result.reason
    assert math.isnan(result.val_metric) and result.test_metric is None


class _Infinite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(40, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * float("inf")


@pytest.mark.slow
def test_infinite_output_diverges_at_the_first_batch() -> None:
    _, result = run(_Infinite)
    assert result.status == "diverged"
    assert result.reason in {"loss became nan at epoch 1, batch 1", "loss became inf at epoch 1, batch 1"}
    assert result.epochs_run == 0 and result.curve == []


@pytest.mark.slow
def test_should_stop_is_asked_after_each_epoch_and_honoured() -> None:
    calls: list[tuple[int, float]] = []

    def should_stop(epoch: int, metric: float) -> bool:
        calls.append((epoch, metric))
        return epoch == 2

    _, result = run(tiny_mlp, FAST.updated(epochs=5), should_stop=should_stop)
    assert result.status == "stopped" and result.epochs_run == 2
    assert calls == [(1, result.curve[0]), (2, result.curve[1])]
    assert result.reason == "stopped early after epoch 2 of 5"
    assert result.test_metric is not None


@pytest.mark.slow
def test_no_test_metric_unless_asked() -> None:
    _, result = run(tiny_mlp, FAST.updated(epochs=1), evaluate_test=False)
    assert result.status == "ok" and result.test_metric is None


@pytest.mark.slow
def test_switch_penalty_reaches_the_switch_logits() -> None:
    config = FAST.updated(epochs=1, optimizer="sgd", lr=0.01, momentum=0.0, schedule="none")
    model_free, _ = run(lambda: tiny_mlp("switch"), config.updated(switch_penalty=0.0))
    model_pen, _ = run(lambda: tiny_mlp("switch"), config.updated(switch_penalty=100.0))
    free, penalised = switch_states(model_free), switch_states(model_pen)
    assert free.keys() == penalised.keys() and len(free) == 2
    # Each batch, the penalty alone moves every logit by lr * 100 * sigmoid'(logit) ~ 0.25 or less.
    assert all(penalised[k] < free[k] - 0.05 for k in free)


@pytest.mark.slow
def test_step_schedule_and_gradient_clipping_run() -> None:
    _, result = run(tiny_mlp, FAST.updated(epochs=2, schedule="step", grad_clip=1.0, optimizer="adamw"))
    assert result.status == "ok"


@pytest.mark.slow
def test_threads_apply_to_the_call_only() -> None:
    before = torch.get_num_threads()
    seen: list[int] = []
    run(tiny_mlp, FAST.updated(epochs=1, threads=1), should_stop=lambda e, m: seen.append(torch.get_num_threads()))
    assert seen == [1] and torch.get_num_threads() == before


@pytest.mark.slow
def test_segmentation_task_trains() -> None:
    topo = Topology.create(
        [
            {"id": "x", "op": "input", "shape": [1, 32, 32]},
            {"id": "c1", "op": "conv", "channels": 4},
            {"id": "out", "op": "seghead", "classes": 3},
        ],
        [],
    )
    seed_everything(0)
    result = train_model(build_model(topo), load_task("shapes-seg"), FAST.updated(epochs=1), seed=0)
    assert result.status == "ok" and 0 < result.val_metric <= 1


def test_incompatible_input_shape_is_a_user_error() -> None:
    seed_everything(0)
    model = build_model(families.mlp(64, [8], 10))
    with pytest.raises(UserError, match="cannot be viewed"):
        train_model(model, load_task("mnist1d"), FAST, seed=0)


@pytest.mark.slow
def test_train_topology_is_the_trial_recipe() -> None:
    topology = families.resnet((1, 40), [(4, 1, 1), (8, 1, 2)], 10, shortcut="project")
    trained = train_topology(topology, load_task("mnist1d"), FAST, seed=0)
    model, result = run(tiny_cnn)  # seed, build, train by hand
    assert trained.result.curve == result.curve and trained.result.test_metric == result.test_metric
    for p, q in zip(trained.model.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    assert trained.cost.params == sum(p.numel() for p in model.parameters()) and trained.cost.macs > 0
    with pytest.raises(UserError, match="cannot be viewed"):  # before any model is built
        train_topology(families.mlp(64, [8], 10), load_task("mnist1d"), FAST, seed=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_user_error() -> None:
    with pytest.raises(UserError, match="CUDA is not available"):
        train_model(tiny_mlp(), load_task("mnist1d"), FAST.updated(device="cuda"), seed=0)


def test_train_config_validation() -> None:
    assert TrainConfig().epochs == 10 and TrainConfig().schedule == "cosine"
    with pytest.raises(ValidationError):
        TrainConfig(epochs=0)
    with pytest.raises(ValidationError):
        TrainConfig(epoch=3)  # extra keys are forbidden
    with pytest.raises(ValidationError):
        TrainConfig(switch_penalty=-1)
    assert FAST.updated(lr=None, epochs=7) == FAST.model_copy(update={"epochs": 7})
