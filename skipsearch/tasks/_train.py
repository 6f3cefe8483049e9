"""The training loop every trial and ``skipsearch train`` run."""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from skipsearch.errors import UserError
from skipsearch.nn import Cost, SwitchSkip, build_model, built_topology, cpu_threads, model_cost, switch_penalty
from skipsearch.tasks._config import TrainConfig
from skipsearch.tasks._data import TaskData, reshape_for
from skipsearch.tasks._metrics import evaluate, task_loss
from skipsearch.topology import Topology

ShouldStop = Callable[[int, float], bool]

EpochHook = Callable[[int, int, float], None]
"""Called with ``(epoch, epochs, val_metric)`` as a run starts (epoch 0, NaN) and after each epoch."""

_EPOCH_HOOK: ContextVar[EpochHook | None] = ContextVar("skipsearch_epoch_hook", default=None)


@contextmanager
def observe_epochs(hook: EpochHook) -> Iterator[None]:
    """Every training run inside the block reports its epochs to ``hook`` (progress bars of the
    commands that train: ``train``, ``export``, ``reproduce``, ``analyze``); study workers set none."""
    token = _EPOCH_HOOK.set(hook)
    try:
        yield
    finally:
        _EPOCH_HOOK.reset(token)


@dataclass
class TrainResult:
    """What one training run achieved.

    ``status`` is ``ok``; ``diverged`` when the loss became NaN or infinite (``reason`` says where;
    ``val_metric`` and ``val_loss`` are then NaN and no test metric is computed); or ``stopped``
    when ``should_stop`` ended the run early.
    """

    status: str
    reason: str | None
    val_metric: float
    """Validation metric of the final model: what a search optimises."""
    val_loss: float
    test_metric: float | None
    """Test metric of the final model, computed once at the end (``None`` if not asked or diverged)."""
    curve: list[float]
    """Validation metric after each epoch."""
    epochs_run: int
    train_seconds: float
    """Wall time of training and the per-epoch validation, nothing else."""
    train_loss: float
    """Mean training loss (with the switch penalty) over the last epoch."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's and torch's global generators (call it before building a model,
    so its initial weights follow from the seed)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seeded_model(topology: Topology, seed: int) -> fx.GraphModule:
    """``topology``'s model with the initial weights of ``seed``: every global generator is seeded
    first (:func:`seed_everything`), as a trial of that seed builds it."""
    seed_everything(seed)
    return build_model(topology)


@dataclass(frozen=True)
class TopologyRun:
    """A topology trained from its seed: the trained model, its cost, the training's result."""

    model: fx.GraphModule
    cost: Cost
    result: TrainResult


def train_topology(topology: Topology, data: TaskData, config: TrainConfig, *, seed: int) -> TopologyRun:
    """Builds ``topology``'s model from ``seed`` and trains it as a study trial does (``train`` and
    exports use this; the study objective interleaves its own steps). Data that does not fit the
    topology's input fails before any work. The cost has no latency: a training run's figures are
    accuracy and size."""
    reshape_for(data, topology.input_shape)
    model = seeded_model(topology, seed)
    cost = model_cost(model, topology.input_shape, latency=False)
    return TopologyRun(model, cost, train_model(model, data, config, seed=seed))


def resolve_device(name: str) -> torch.device:
    """The torch device for a :attr:`TrainConfig.device` setting."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("training device 'cuda' was asked for, but CUDA is not available")
    return torch.device(name)


def train_model(
    model: nn.Module,
    data: TaskData,
    config: TrainConfig,
    *,
    seed: int,
    should_stop: ShouldStop | None = None,
    evaluate_test: bool = True,
) -> TrainResult:
    """Trains ``model`` in place on ``data``'s train split and validates it after each epoch.

    Inputs are viewed as the model's topology input shape (:func:`reshape_for`). ``seed`` fixes
    the batch order (a private generator) and seeds torch's global generator for anything random
    inside the model, so on the CPU the same seed and initial weights give identical results.
    The loss is cross-entropy (mean squared error for a regression task) plus
    ``config.switch_penalty`` times :func:`skipsearch.nn.switch_penalty`.
    A NaN or infinite loss ends the run with status ``diverged`` (no exception). After each epoch
    ``should_stop(epoch, val_metric)`` (epochs count from 1) may end the run: status ``stopped``;
    exceptions it raises (e.g. ``optuna.TrialPruned``) propagate. The test split is evaluated once,
    for the final model, when ``evaluate_test`` is true and the run did not diverge.
    ``config.threads`` holds for this call only; torch's previous thread count is restored.
    """
    device = resolve_device(config.device)
    with cpu_threads(config.threads):
        return _train(model, data, config, device, seed, should_stop, evaluate_test)


def _train(
    model: nn.Module,
    data: TaskData,
    config: TrainConfig,
    device: torch.device,
    seed: int,
    should_stop: ShouldStop | None,
    evaluate_test: bool,
) -> TrainResult:
    topology = built_topology(model)  # plain torch models train too
    if topology is not None:
        data = reshape_for(data, topology.input_shape)
    model.to(device)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_val, y_val = data.x_val.to(device), data.y_val.to(device)

    optimizer = _optimizer(model, config)
    batches = _batch_bounds(len(x_train), config.batch_size)
    scheduler = _scheduler(optimizer, config, len(batches))
    # The switches, collected once: walking every module of a deep model each batch would cost more.
    switches = nn.ModuleList(m for m in model.modules() if isinstance(m, SwitchSkip))
    penalty = config.switch_penalty if len(switches) else 0.0
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    curve: list[float] = []
    status, reason = "ok", None
    val_metric = val_loss = train_loss = math.nan
    start = time.perf_counter()
    hook = _EPOCH_HOOK.get()
    if hook is not None:
        hook(0, config.epochs, math.nan)
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        for number, (begin, end) in enumerate(batches, start=1):
            index = order[begin:end]
            loss = task_loss(model(x_train[index]), y_train[index])
            if penalty:
                loss = loss + penalty * switch_penalty(switches)
            if not torch.isfinite(loss):  # one scalar check per batch: the loop's only sync
                status, reason = "diverged", f"loss became {float(loss.detach())} at epoch {epoch}, batch {number}"
                train_loss = float(loss.detach())
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if config.schedule == "cosine":
                scheduler.step()
            loss_sum += loss.detach() * (end - begin)
        if status == "diverged":
            val_metric = val_loss = math.nan
            break
        if config.schedule == "step":
            scheduler.step()
        train_loss = float(loss_sum) / batches[-1][1]
        val_metric, val_loss = evaluate(model, x_val, y_val, data.metric, target_scale=data.target_scale)
        if not math.isfinite(val_loss):
            status, reason = "diverged", f"validation loss became {val_loss} after epoch {epoch}"
            val_metric = val_loss = math.nan
            break
        curve.append(val_metric)
        if hook is not None:
            hook(epoch, config.epochs, val_metric)
        if should_stop is not None and should_stop(epoch, val_metric):
            status, reason = "stopped", f"stopped early after epoch {epoch} of {config.epochs}"
            break
    train_seconds = time.perf_counter() - start

    test_metric = None
    if evaluate_test and status != "diverged":
        test_metric, _ = evaluate(model, data.x_test, data.y_test, data.metric, target_scale=data.target_scale)
    return TrainResult(
        status=status,
        reason=reason,
        val_metric=val_metric,
        val_loss=val_loss,
        test_metric=test_metric,
        curve=curve,
        epochs_run=len(curve),
        train_seconds=train_seconds,
        train_loss=train_loss,
    )


def _batch_bounds(samples: int, batch_size: int) -> list[tuple[int, int]]:
    """``(begin, end)`` of each batch of an epoch. A last batch of one sample is dropped:
    batch normalisation cannot train on it."""
    bounds = [(b, min(b + batch_size, samples)) for b in range(0, samples, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds.pop()
    return bounds


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # Scalar parameters are the gates of skip edges (scalar/switch kinds): architecture
    # parameters that weight decay must not pull towards zero.
    params = [p for p in model.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [
        {"params": [p for p in params if p.dim() > 0], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() == 0], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.Adam(groups, lr=config.lr)


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int) -> Any:
    if config.schedule == "cosine":  # stepped per batch
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    if config.schedule == "step":  # stepped per epoch
        milestones = [config.epochs // 2, (3 * config.epochs) // 4]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    return None
