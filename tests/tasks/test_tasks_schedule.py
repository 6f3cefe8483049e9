"""Learning-rate schedules really step: the rate each optimizer step used, recorded from inside it."""

from __future__ import annotations

import math

import pytest
import torch

from skipsearch.nn import build_model
from skipsearch.tasks import TrainConfig, load_task, seed_everything, train_model
from skipsearch.topology import families

pytestmark = pytest.mark.slow  # each test trains a tiny MLP for 16 steps


def _rates(monkeypatch: pytest.MonkeyPatch, config: TrainConfig) -> list[float]:
    """The learning rate of every optimizer step of a short run."""
    seen: list[float] = []
    original = torch.optim.Adam.step

    def step(self: torch.optim.Optimizer, *args: object, **kwargs: object) -> object:
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    seed_everything(0)
    model = build_model(families.mlp(40, [8], 10, residual=False))
    data = load_task("mnist1d")
    result = train_model(model, data, config, seed=0, evaluate_test=False)
    assert result.status == "ok"
    return seen


BASE = TrainConfig(epochs=4, batch_size=1024, lr=0.01, threads=1)
"""mnist1d's 3500 training samples: 4 batches an epoch (the last one partial), 16 steps."""


def test_cosine_anneals_per_batch_to_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    rates = _rates(monkeypatch, BASE.updated(schedule="cosine"))
    steps = len(rates)
    assert steps == 16
    expected = [0.01 * (1 + math.cos(math.pi * i / steps)) / 2 for i in range(steps)]
    assert rates == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_the_default_schedule_is_cosine(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TrainConfig().schedule == "cosine"
    default = TrainConfig(epochs=BASE.epochs, batch_size=BASE.batch_size, lr=BASE.lr, threads=1)
    rates = _rates(monkeypatch, default)
    assert rates == pytest.approx([0.01 * (1 + math.cos(math.pi * i / 16)) / 2 for i in range(16)], rel=1e-9)


def test_step_divides_by_ten_at_half_and_three_quarters(monkeypatch: pytest.MonkeyPatch) -> None:
    rates = _rates(monkeypatch, BASE.updated(schedule="step"))
    per_epoch = [rates[i * 4] for i in range(4)]  # epochs 1..4; milestones after epochs 2 and 3
    assert per_epoch == pytest.approx([0.01, 0.01, 0.001, 0.0001])
    assert all(rates[i] == per_epoch[i // 4] for i in range(16))


def test_none_keeps_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(_rates(monkeypatch, BASE.updated(schedule="none"))) == {0.01}
