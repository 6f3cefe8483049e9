"""The metric schema: every metric skipsearch measures, described once.

A :class:`Metric` says what a number is (name, description, unit, integer or real), which way is
better, where it comes from (``training``, ``cost``, ``probe``, ``graph``) and how people read it
(its label). The study file's objectives and constraints, the results columns and ``--where``
fields, Pareto objectives, exports, bundles, the dashboard's labels and the predictor's inputs are
all derived from :data:`METRICS`. Adding a metric is one :func:`register` call (plus, for a probe,
its computation in :mod:`skipsearch.tasks._probes`); probes are stored in the long
``metric_values`` table, so a new probe needs no database migration.

This module imports nothing of skipsearch (nor torch, nor SQL): every layer may read it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Source = Literal["training", "cost", "probe", "graph"]
Direction = Literal["max", "min"]

SOURCES: tuple[str, ...] = ("training", "cost", "probe", "graph")


@dataclass(frozen=True)
class Metric:
    """One measured quantity of a trial or a topology.

    ``direction`` is the natural one (``None`` for bookkeeping numbers that are not better either
    way); ``objective`` says whether a study may optimise or constrain it; ``storage`` names where
    its value lives: ``evaluations`` (a column of that table), ``topologies`` (a column of the
    topology's row) or ``metric_values`` (one row per evaluation and metric: every probe).
    ``ideal`` is the best value it can reach (NaN when unbounded), which normalises hypervolumes.
    """

    name: str
    description: str
    unit: str
    type: Literal["float", "int"]
    direction: Direction | None
    source: Source
    label: str
    objective: bool = False
    storage: Literal["evaluations", "topologies", "metric_values"] = "evaluations"
    ideal: float = math.nan
    log_scale: bool = False
    """Whether its values span orders of magnitude (plots, correlations of raw values are unaffected
    by it; the predictor reads ``log10`` of such a metric)."""
    alias_of: str | None = None
    """For task metrics other than ``accuracy``: the column that holds them (``accuracy``)."""

    @property
    def is_probe(self) -> bool:
        return self.source == "probe"


_REGISTRY: dict[str, Metric] = {}


def register(metric: Metric, *, replace: bool = False) -> Metric:
    """Adds ``metric`` to the schema; a probe must also have a computation
    (:func:`skipsearch.tasks.register_probe`). A name given twice is an error unless ``replace``."""
    if metric.source not in SOURCES:
        raise ValueError(f"metric {metric.name!r}: source must be one of {', '.join(SOURCES)}")
    if metric.source == "probe" and metric.storage != "metric_values":
        raise ValueError(f"metric {metric.name!r}: probes are stored in metric_values")
    if metric.name in _REGISTRY and not replace:
        raise ValueError(f"metric {metric.name!r} is already registered")
    _REGISTRY[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    """Removes a metric (tests that add a dummy one take it out again)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> Metric | None:
    """The metric called ``name``, or ``None``."""
    return _REGISTRY.get(name)


def all_metrics() -> Iterator[Metric]:
    """Every registered metric, in registration order (the order of results columns)."""
    return iter(list(_REGISTRY.values()))


def by_source(source: str) -> list[Metric]:
    return [m for m in _REGISTRY.values() if m.source == source]


def probe_names() -> tuple[str, ...]:
    """Names of the training-free probes (stored in ``metric_values``)."""
    return tuple(m.name for m in _REGISTRY.values() if m.source == "probe")


def stored_metric_names() -> tuple[str, ...]:
    """Keys an evaluation record's ``metrics`` may hold: every stored metric but the graph's own."""
    return tuple(m.name for m in _REGISTRY.values() if m.source != "graph" and m.alias_of is None)


def column_names() -> tuple[str, ...]:
    """The results columns of the metrics (every metric that is not an alias), in schema order."""
    return tuple(m.name for m in _REGISTRY.values() if m.alias_of is None)


def column_of(name: str) -> str:
    """Where a metric's value is stored: ``miou`` -> ``accuracy``, the others their own name."""
    metric = _REGISTRY.get(name)
    return metric.alias_of or name if metric is not None else name


def objective_names() -> tuple[str, ...]:
    """Names a study file may use in ``objectives`` and ``constraints``."""
    return tuple(m.name for m in _REGISTRY.values() if m.objective)


def natural_direction(name: str) -> str:
    """``max`` or ``min``: how a bare objective name is optimised (``min`` for unknown names)."""
    metric = _REGISTRY.get(name)
    return metric.direction if metric is not None and metric.direction is not None else "min"


def label(name: str) -> str:
    """The display name (``"miou"`` -> ``"mIoU"``); an unknown name is shown as it is."""
    metric = _REGISTRY.get(name)
    return metric.label if metric is not None else name


# -- the schema ----------------------------------------------------------------------------------

TASK_METRICS = ("accuracy", "miou", "rmse", "r2")
"""The task metrics (a task's validation metric); the value of whichever one a task uses is stored
in the ``accuracy`` column, and a study's quality objective is named by it."""

register(
    Metric(
        "accuracy",
        "the task's validation metric (the one a search optimises): accuracy, or mIoU, RMSE, R²",
        "fraction",
        "float",
        "max",
        "training",
        "accuracy",
        objective=True,
        ideal=1.0,
    )
)
register(
    Metric(
        "miou",
        "mean intersection over union on the validation split (segmentation tasks)",
        "fraction",
        "float",
        "max",
        "training",
        "mIoU",
        objective=True,
        ideal=1.0,
        alias_of="accuracy",
    )
)
register(
    Metric(
        "rmse",
        "root mean squared error on the validation split (regression tasks)",
        "target unit",
        "float",
        "min",
        "training",
        "RMSE",
        objective=True,
        ideal=0.0,
        alias_of="accuracy",
    )
)
register(
    Metric(
        "r2",
        "coefficient of determination on the validation split (regression tasks)",
        "1",
        "float",
        "max",
        "training",
        "R²",
        objective=True,
        ideal=1.0,
        alias_of="accuracy",
    )
)
register(
    Metric(
        "test_accuracy",
        "the task's metric of the final model on the test split",
        "fraction",
        "float",
        "max",
        "training",
        "test accuracy",
        ideal=1.0,
    )
)
register(Metric("loss", "validation loss of the final model", "nats", "float", "min", "training", "loss"))
register(
    Metric("params", "trainable parameters", "count", "int", "min", "cost", "parameters", objective=True, ideal=0.0)
)
register(
    Metric(
        "macs",
        "multiply-accumulates of one forward pass of one sample",
        "count",
        "int",
        "min",
        "cost",
        "MACs",
        objective=True,
        ideal=0.0,
    )
)
register(
    Metric(
        "flops",
        "floating-point operations of one forward pass of one sample",
        "count",
        "int",
        "min",
        "cost",
        "FLOPs",
        objective=True,
        ideal=0.0,
    )
)
register(
    Metric(
        "latency_ms",
        "measured forward latency",
        "ms",
        "float",
        "min",
        "cost",
        "latency (ms)",
        objective=True,
        ideal=0.0,
    )
)
register(Metric("train_seconds", "wall-clock training time", "s", "float", None, "training", "training time (s)"))
register(Metric("epochs", "epochs trained (fewer when stopped early)", "count", "int", None, "training", "epochs"))
register(
    Metric(
        "grad_ratio_init",
        "first/last hidden block weight-gradient norm ratio at initialisation",
        "ratio",
        "float",
        None,
        "training",
        "gradient ratio at init",
    )
)
register(
    Metric(
        "grad_ratio",
        "first/last hidden block weight-gradient norm ratio after training",
        "ratio",
        "float",
        None,
        "training",
        "gradient ratio",
    )
)
# Probes: scored at initialisation on one seeded batch, before any training (skipsearch.tasks._probes).
register(
    Metric(
        "synflow",
        "synaptic flow, sum |theta dR/dtheta| on an all-ones input (Tanaka et al. 2020)",
        "1",
        "float",
        "max",
        "probe",
        "synflow",
        objective=True,
        storage="metric_values",
        log_scale=True,
    )
)
register(
    Metric(
        "naswot",
        "log-determinant of the kernel of binary activation codes (Mellor et al. 2021)",
        "nats",
        "float",
        "max",
        "probe",
        "NASWOT",
        objective=True,
        storage="metric_values",
    )
)
register(
    Metric(
        "grad_norm",
        "Euclidean norm of the loss gradient over all weights (Abdelfattah et al. 2021)",
        "1",
        "float",
        "max",
        "probe",
        "grad norm",
        objective=True,
        storage="metric_values",
    )
)
register(
    Metric(
        "snip",
        "sum of |theta * dL/dtheta| over all weights (Lee et al. 2019; Abdelfattah et al. 2021)",
        "1",
        "float",
        "max",
        "probe",
        "SNIP",
        objective=True,
        storage="metric_values",
    )
)
register(
    Metric(
        "jacob_cov",
        "-sum(log(l + k) + 1/(l + k)) over input-Jacobian correlation eigenvalues l (Abdelfattah 2021)",
        "1",
        "float",
        "max",
        "probe",
        "jacob_cov",
        objective=True,
        storage="metric_values",
    )
)
register(
    Metric(
        "gradflow",
        "first/last hidden block gradient ratio at initialisation, on the probe batch",
        "ratio",
        "float",
        "max",
        "probe",
        "gradient flow",
        objective=True,
        storage="metric_values",
        log_scale=True,
    )
)
# Graph metrics of the topology itself (the topologies table).
register(
    Metric(
        "nodes",
        "blocks of the topology, input and output included",
        "count",
        "int",
        None,
        "graph",
        "nodes",
        storage="topologies",
    )
)
register(
    Metric("active_skips", "active skip edges", "count", "int", None, "graph", "active skips", storage="topologies")
)
register(
    Metric(
        "paths", "input-to-output paths", "count", "float", None, "graph", "paths", storage="topologies", log_scale=True
    )
)
register(
    Metric(
        "shortest_path",
        "blocks on the shortest input-to-output path",
        "count",
        "int",
        None,
        "graph",
        "shortest path",
        storage="topologies",
    )
)
register(
    Metric(
        "longest_path",
        "blocks on the longest input-to-output path",
        "count",
        "int",
        None,
        "graph",
        "longest path",
        storage="topologies",
    )
)
register(
    Metric(
        "mean_path_length",
        "mean length of the input-to-output paths",
        "blocks",
        "float",
        None,
        "graph",
        "mean path length",
        storage="topologies",
    )
)
register(
    Metric(
        "max_concat_fan_in",
        "largest number of inputs of one concatenation",
        "count",
        "int",
        None,
        "graph",
        "max concat fan-in",
        storage="topologies",
    )
)
