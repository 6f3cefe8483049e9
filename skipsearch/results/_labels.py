"""How metrics and objectives are named for people, and the best value each can reach.

Labels and ideal values come from the metric schema (:mod:`skipsearch.metrics`), so that every
table, plot and report says "mIoU" for a segmentation task's quality and "MACs" for
multiply-accumulates, whatever command drew it.
"""

from __future__ import annotations

import math

from skipsearch import metrics as schema

TASK_METRICS = schema.TASK_METRICS
"""The task metrics (``TaskSpec.metric``); a study's quality objective is named by one of them and
its value lives in the results' ``accuracy`` column."""

QUALITY_OBJECTIVES = (*TASK_METRICS, "test_accuracy")
"""Objective names and columns that hold the task's own metric, not a cost."""


def metric_label(name: str) -> str:
    """``"miou"`` -> ``"mIoU"`` (the label of :mod:`skipsearch.metrics`); an unknown name as it is."""
    return schema.label(name)


def objective_label(name: str, task_metric: str | None = None) -> str:
    """The display name of an objective or results column: the quality objective (``accuracy``)
    takes the name of the task's metric (``mIoU``, ``RMSE``, ...), costs their own."""
    if name in QUALITY_OBJECTIVES and task_metric:
        label = metric_label(task_metric)
        return f"test {label}" if name == "test_accuracy" else label
    return metric_label(name)


def ideal_value(name: str, direction: str, task_metric: str | None = None) -> float:
    """The best reachable value of an objective (NaN when unbounded: a maximised cost or a probe)."""
    metric = schema.get(task_metric if name in QUALITY_OBJECTIVES and task_metric else name)
    if direction == "max":
        return metric.ideal if metric is not None and metric.direction == "max" else math.nan
    if metric is not None and metric.source == "probe":
        return math.nan  # a probe (a log score) has no natural floor
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
