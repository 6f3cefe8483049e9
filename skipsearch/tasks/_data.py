"""The in-memory dataset of a task, and fitting its inputs to a topology's input shape."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from skipsearch import metrics as schema
from skipsearch.errors import UserError

METRICS = schema.TASK_METRICS
"""Task metrics: ``accuracy`` and ``miou`` (classification, segmentation) are maximised, ``rmse``
minimised and ``r2`` maximised (regression)."""

REGRESSION_METRICS = ("rmse", "r2")

METRIC_DIRECTIONS: dict[str, str] = {name: schema.natural_direction(name) for name in METRICS}
"""Whether a larger (``max``) or a smaller (``min``) value of each task metric is better (the
directions of :mod:`skipsearch.metrics`)."""


@dataclass(frozen=True)
class TaskData:
    """Train, validation and test splits of one task, as tensors on the CPU.

    ``x_*`` are float32 batches of ``input_shape``; ``y_*`` are int64 class labels (one per sample,
    or one per pixel for segmentation), or for regression (metric ``rmse`` or ``r2``) float32
    targets of shape ``(samples, num_outputs)``, standardised with the training split's mean and
    standard deviation (``target_scale`` holds those deviations, so RMSE is reported in the
    target's own units). A search sees only train and validation; the test split is for
    reporting the final model. :func:`skipsearch.tasks.load_task` caches and shares these
    objects, so never modify the tensors in place.

    A backbone builder sized by the data (``auto``) reads :attr:`input_shape` (one sample, no batch
    dimension) and :attr:`num_outputs` (classes, or target columns for regression).
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    metric: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    target_scale: tuple[float, ...] | None = None
    """Regression: the training targets' standard deviation per output (``None``: unscaled)."""
    fingerprint: str | None = None
    """Content hash of the files the data came from (``None`` for generated data)."""

    @property
    def num_outputs(self) -> int:
        """Outputs a model needs: the number of classes, or of regression targets."""
        return self.num_classes

    @property
    def regression(self) -> bool:
        return self.metric in REGRESSION_METRICS

    def __repr__(self) -> str:  # the default would print every tensor
        sizes = f"{len(self.x_train)}/{len(self.x_val)}/{len(self.x_test)}"
        return (
            f"TaskData({self.name!r}, input_shape={self.input_shape}, num_classes={self.num_classes}, "
            f"metric={self.metric!r}, train/val/test={sizes})"
        )


def reshape_for(data: TaskData, input_shape: tuple[int, ...] | list[int]) -> TaskData:
    """``data`` with its inputs viewed as ``input_shape`` (no batch dimension).

    Lets one dataset feed topologies of several input ranks: mnist1d's ``(40,)`` vectors become the
    ``(1, 40)`` signals a 1-D CNN takes, digits' ``(64,)`` vectors the ``(1, 8, 8)`` images a 2-D
    CNN takes, without copying. The number of input values must match; otherwise a
    :class:`UserError` names both shapes. :func:`skipsearch.tasks.train_model` calls this with the
    model's topology, so callers rarely need it.
    """
    shape = tuple(int(n) for n in input_shape)
    if shape == data.input_shape:
        return data
    if math.prod(shape) != math.prod(data.input_shape):
        raise UserError(
            f"task {data.name!r} has inputs of shape {_fmt(data.input_shape)}, "
            f"which cannot be viewed as the topology's input shape {_fmt(shape)}"
        )
    return dataclasses.replace(
        data,
        input_shape=shape,
        x_train=data.x_train.view(-1, *shape),
        x_val=data.x_val.view(-1, *shape),
        x_test=data.x_test.view(-1, *shape),
    )


def split_train_val(
    x: np.ndarray, y: np.ndarray, val_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded random split of a pool of samples into train and validation parts."""
    if not 0 < val_size < len(x):
        raise UserError(f"val_size must be between 1 and {len(x) - 1}, got {val_size}")
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:val_size], order[val_size:]
    return x[train], y[train], x[val], y[val]


def split_fixed_test(
    x: np.ndarray, y: np.ndarray, sizes: tuple[int, int, int], seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(train, val, test)`` pairs of generated samples: the last ``sizes[2]`` are the fixed test
    split; ``seed`` picks the ``sizes[1]`` validation samples among the others."""
    pool = sizes[0] + sizes[1]
    x_train, y_train, x_val, y_val = split_train_val(x[:pool], y[:pool], sizes[1], seed)
    return (x_train, y_train), (x_val, y_val), (x[pool:], y[pool:])


def check_split_sizes(train_size: Any, val_size: Any, test_size: Any) -> tuple[int, int, int]:
    """The three split sizes of a generated task's options, each an integer >= 1."""
    names = ("train_size", "val_size", "test_size")
    train, val, test = (check_int(n, v, 1) for n, v in zip(names, (train_size, val_size, test_size), strict=True))
    return train, val, test


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UserError(f"option {name!r} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"option {name!r} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise UserError(f"option {name!r} must be at most {maximum:,}, got {value!r}")
    return value


def make_task_data(
    name: str,
    metric: str,
    num_classes: int,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    **extra: Any,
) -> TaskData:
    """Packs numpy splits (inputs already of the task's shape) into float32 inputs and int64 labels
    (float32 targets for a regression metric); ``extra`` are further :class:`TaskData` fields."""
    label_type = np.float32 if metric in REGRESSION_METRICS else np.int64

    def tensors(pair: tuple[np.ndarray, np.ndarray]) -> tuple[Tensor, Tensor]:
        x, y = pair
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(
            np.ascontiguousarray(y, dtype=label_type)
        )

    x_train, y_train = tensors(train)
    x_val, y_val = tensors(val)
    x_test, y_test = tensors(test)
    return TaskData(
        name=name,
        input_shape=tuple(x_train.shape[1:]),
        num_classes=num_classes,
        metric=metric,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        **extra,
    )


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
