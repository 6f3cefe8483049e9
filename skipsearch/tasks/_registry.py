"""The named tasks and :func:`load_task`."""

from __future__ import annotations

import inspect
import json
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skipsearch.errors import UserError
from skipsearch.tasks import _datasets, _files, _plugins, _shapes
from skipsearch.tasks._config import TrainConfig
from skipsearch.tasks._data import TaskData


@dataclass(frozen=True)
class TaskSpec:
    """What a task is, before loading its data: shapes, metric, and default training settings."""

    name: str
    description: str
    input_shape: tuple[int, ...]
    """Input shape with default options (other ranks are reachable, see :func:`reshape_for`)."""
    num_classes: int
    metric: str
    """``accuracy``, ``miou`` (mean intersection over union of the classes, for segmentation),
    ``rmse`` or ``r2`` (regression). For the ``file`` and ``module`` tasks, the default of their
    ``metric`` option: see :meth:`metric_for`."""
    default_config: TrainConfig
    """Training settings that train the task's reference model well; copy before changing."""
    build: Callable[..., TaskData]

    def metric_for(self, options: dict[str, Any]) -> str:
        """The task's metric with these options (the user's data states its own)."""
        if "metric" in inspect.signature(self.build).parameters and options.get("metric"):
            return str(options["metric"])
        if self.name == "file" and options.get("kind") == "segmentation":
            return "miou"
        return self.metric


_THREADS = 1
"""CPU threads of the tasks' default settings. Their models are too small to gain much from a
second thread, and OpenMP threads that spin-wait collapse when other processes share the cores:
on a 2-core machine with other work running, mnist1d's CNN took 28-48 ms per batch on one thread
but over 1 s on two, and unet-small on shapes-seg 16 s for 2 epochs on one thread, 99 s on two."""

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            "mnist1d",
            "MNIST-1D (Greydanus 2020): 40-sample 1-D signals, 10 classes, 3500/500/1000 split",
            (40,),
            10,
            "accuracy",
            TrainConfig(epochs=10, batch_size=128, optimizer="adam", lr=3e-3, schedule="cosine", threads=_THREADS),
            _datasets.mnist1d,
        ),
        TaskSpec(
            "digits",
            "scikit-learn 8x8 digits, standardised, 10 classes, 1077/360/360 split",
            (64,),
            10,
            "accuracy",
            TrainConfig(epochs=30, batch_size=64, optimizer="adam", lr=1e-3, schedule="cosine", threads=_THREADS),
            _datasets.digits,
        ),
        TaskSpec(
            "shapes-seg",
            "Synthetic 1x32x32 images of circles and squares, 3-class segmentation (mIoU), 2000/500/500",
            (1, 32, 32),
            3,
            "miou",
            TrainConfig(epochs=6, batch_size=32, optimizer="adam", lr=3e-3, schedule="cosine", threads=_THREADS),
            _shapes.shapes_seg,
        ),
        TaskSpec(
            "teacher",
            "Gaussian vectors (20) labelled by a random teacher MLP, 10 classes, 4000/500/1000 split",
            (20,),
            10,
            "accuracy",
            TrainConfig(epochs=20, batch_size=128, optimizer="adam", lr=1e-3, schedule="cosine", threads=_THREADS),
            _datasets.teacher,
        ),
        TaskSpec(
            "file",
            "Your dataset on disk: a table (.csv, .parquet), arrays (.npz, .npy) or an image folder",
            (),
            0,
            "accuracy",
            TrainConfig(epochs=20, batch_size=64, optimizer="adam", lr=1e-3, schedule="cosine", threads=_THREADS),
            _files.file_task,
        ),
        TaskSpec(
            "module",
            "Your dataset from code: 'pkg.data:load' returning arrays x, y (and x_test, y_test)",
            (),
            0,
            "accuracy",
            TrainConfig(epochs=20, batch_size=64, optimizer="adam", lr=1e-3, schedule="cosine", threads=_THREADS),
            _plugins.module_task,
        ),
    ]
}
"""Every task by name (tasks of installed packages join at the first :func:`discover_tasks`)."""

USER_DATA_TASKS = ("file", "module")
"""Tasks whose data the user brings: their shapes and sizes are known once loaded."""

_discovered = False


def discover_tasks() -> dict[str, TaskSpec]:
    """:data:`TASKS` with the tasks of the ``skipsearch.tasks`` entry points added (once per process;
    a name the package already has is refused)."""
    global _discovered
    if not _discovered:
        _discovered = True
        for spec in _plugins.entry_point_specs():
            if spec.name in TASKS and TASKS[spec.name] is not spec:
                raise UserError(f"entry point task {spec.name!r}: a task of that name exists already")
            TASKS[spec.name] = spec
    return TASKS


_CACHE: OrderedDict[tuple[str, int, str], TaskData] = OrderedDict()
_CACHE_SIZE = 8


def _file_stamps(options: dict[str, Any]) -> str:
    """Size and modification time of the files an option names: a file rewritten in place is read
    (and its fingerprint checked) again rather than served from the cache."""
    stamps = []
    for value in options.values():
        if isinstance(value, str) and os.path.sep in value and os.path.exists(value):
            stat = os.stat(value)
            stamps.append(f"{value}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(stamps)


def load_task(name: str, *, seed: int = 0, **options: Any) -> TaskData:
    """The data of task ``name``; ``seed`` picks the train/validation split.

    ``options`` are the task builder's keyword arguments (e.g. ``shape="1d"`` for mnist1d); an
    unknown task, an unknown option or a bad value raises :class:`UserError`. Results are cached in
    the process: the same arguments return the same object (do not modify its tensors).
    """
    spec = TASKS.get(name) or discover_tasks().get(name)
    if spec is None:
        raise UserError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    known = [p for p in inspect.signature(spec.build).parameters if p != "seed"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UserError(f"task {name!r}: unknown option {unknown[0]!r} (known: {', '.join(known)})")
    key = (name, seed, json.dumps(options, sort_keys=True, default=repr) + _file_stamps(options))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    try:
        data = spec.build(seed=seed, **options)
    except (TypeError, ValueError) as exc:  # a value of the wrong type deep in numpy
        raise UserError(f"task {name!r}: bad option: {exc}") from None
    except UserError as exc:
        raise UserError(f"task {name!r}: {exc}") from None
    _CACHE[key] = data
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return data
