"""A task's data size, known before its data is made, checked against the limits.

The generated tasks take their sizes as options (``train_size: 1000000000000`` would allocate until
killed); :func:`planned_size` reads them with the builder's defaults and :func:`check_task_size`
refuses them before the builder runs. Data the user brings (files, modules) is sized by loading it
(file loaders check memory themselves), then :func:`check_loaded` applies the same limits.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from skipsearch.tasks._config import TrainConfig
from skipsearch.tasks._data import TaskData
from skipsearch.tasks._registry import TASKS, discover_tasks
from skipsearch.topology import Limits, Topology, check_data, check_topology, check_training

_SPLITS = ("train_size", "val_size", "test_size")


def _teacher_values(s: dict[str, Any]) -> int:
    """teacher: the inputs, and the float64 products of the teacher network (hidden and class
    scores per sample), plus its weight matrices spread over the samples."""
    features, hidden, classes = s["features"], s["hidden"], s["classes"]
    weights = 2 * (features * hidden + hidden * classes)
    return features + 2 * (hidden + classes) + -(-weights // max(1, _split_total(s)))


def _split_total(s: dict[str, Any]) -> int:
    return sum(v for k in _SPLITS if isinstance(v := s.get(k), int))


_VALUES: dict[str, tuple[tuple[str, ...], Any]] = {
    "teacher": (("features", "hidden", "classes"), _teacher_values),
    "shapes-seg": (("size",), lambda s: 3 * s["size"] ** 2),  # the image and its int64 mask
}
"""Per task: the options that set the values per sample, and how."""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def planned_size(name: str, options: dict[str, Any]) -> tuple[int, int] | None:
    """``(samples, values per sample)`` task ``name`` makes with ``options``; ``None`` when only
    loading can tell (the user's data, options of the wrong type that the builder refuses)."""
    spec = TASKS.get(name) or discover_tasks().get(name)
    if spec is None or not spec.input_shape:
        return None
    settings = {
        key: p.default for key, p in inspect.signature(spec.build).parameters.items() if p.default is not p.empty
    }
    settings.update(options)
    if "num_samples" in settings:
        sizes = [_int(settings["num_samples"])]
    else:
        sizes = [_int(settings.get(key)) for key in _SPLITS if key in settings]
    if not sizes or any(size is None for size in sizes):
        return None
    values = math.prod(spec.input_shape)
    if name in _VALUES:
        keys, per_sample = _VALUES[name]
        if any(_int(settings.get(key)) is None for key in keys):
            return None
        values = per_sample(settings)
    return sum(s for s in sizes if s is not None), values


def check_task_size(
    name: str, options: dict[str, Any], limits: Limits | None = None, epochs: int | None = None
) -> None:
    """Refuses a generated task's options that ask for more samples or memory than the limits (and,
    given ``epochs``, more epochs x samples), before any data is made."""
    planned = planned_size(name, options)
    if planned is None:
        return
    samples, values = planned
    check_data(samples, values, limits, where=f"task {name!r}")
    if epochs is not None:
        check_training(epochs, samples, limits, where=f"task {name!r}")


def check_loaded(data: TaskData, limits: Limits | None = None, epochs: int | None = None) -> None:
    """The same limits on data already loaded (the user's files and modules)."""
    samples = len(data.x_train) + len(data.x_val) + len(data.x_test)
    check_data(samples, math.prod(data.input_shape), limits, where=f"task {data.name!r}")
    if epochs is not None:
        check_training(epochs, len(data.x_train), limits, where=f"task {data.name!r}")


def check_run(topology: Topology, data: TaskData, config: TrainConfig, limits: Limits | None = None) -> None:
    """Everything a training run of ``topology`` on ``data`` would take, before its model is built:
    the network (its training memory at the batch size the data allows) and epochs x samples."""
    batch = max(1, min(config.batch_size, len(data.x_train)))
    check_topology(topology, limits, batch=batch, training=True)
    check_training(config.epochs, len(data.x_train), limits, where=f"task {data.name!r}")
