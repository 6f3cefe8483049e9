"""How metrics and objectives are named for people, and the best value each can reach.

One place, keyed by metric name, so that every table, plot and report says "mIoU" for a
segmentation task's quality and "MACs" for multiply-accumulates, whatever command drew it.
"""

from __future__ import annotations

import math

METRIC_LABELS: dict[str, str] = {
    "accuracy": "accuracy",
    "miou": "mIoU",
    "rmse": "RMSE",
    "r2": "R²",
    "macs": "MACs",
    "params": "parameters",
    "flops": "FLOPs",
    "latency_ms": "latency (ms)",
    "test_accuracy": "test accuracy",
    "loss": "loss",
}
"""Display names of the task metrics (``TaskSpec.metric``) and of the cost and result columns."""

IDEAL_VALUES: dict[str, float] = {"accuracy": 1.0, "miou": 1.0, "r2": 1.0, "test_accuracy": 1.0}
"""The best value a maximised metric can reach; minimised metrics (costs, RMSE) are best at 0."""

TASK_METRICS = ("accuracy", "miou", "rmse", "r2")
"""The task metrics (``TaskSpec.metric``); a study's quality objective is named by one of them and
its value lives in the results' ``accuracy`` column."""

QUALITY_OBJECTIVES = (*TASK_METRICS, "test_accuracy")
"""Objective names and columns that hold the task's own metric, not a cost."""


def metric_label(name: str) -> str:
    """``"miou"`` -> ``"mIoU"``; an unknown name is shown as it is."""
    return METRIC_LABELS.get(name, name)


def objective_label(name: str, task_metric: str | None = None) -> str:
    """The display name of an objective or results column: the quality objective (``accuracy``)
    takes the name of the task's metric (``mIoU``, ``RMSE``, ...), costs their own."""
    if name in QUALITY_OBJECTIVES and task_metric:
        label = metric_label(task_metric)
        return f"test {label}" if name == "test_accuracy" else label
    return metric_label(name)


def ideal_value(name: str, direction: str, task_metric: str | None = None) -> float:
    """The best reachable value of an objective (NaN when unbounded: a maximised cost)."""
    metric = task_metric if name in QUALITY_OBJECTIVES and task_metric else name
    if direction == "max":
        return IDEAL_VALUES.get(metric, IDEAL_VALUES.get(name, math.nan))
    return 0.0


def format_number(value: float | int | None, digits: int = 4) -> str:
    """A number for people: thousands separators for counts, ``digits`` significant digits
    otherwise (``0.04979999999999999`` -> ``0.0498``, ``153651.2`` -> ``153,651``)."""
    if value is None:
        return "-"
    number = float(value)
    if math.isnan(number):
        return "-"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if float(number).is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    if abs(number) >= 10**digits:
        return f"{number:,.0f}"
    text = f"{number:.{digits}g}"
    return text if "e" in text or abs(number) < 1000 else f"{number:,.{max(digits - 4, 0)}f}"
