"""Do the zero-cost probes rank topologies as training does? Rank correlations with intervals.

For every probe (and the plain cost baselines, parameters and MACs, which many proxies fail to
beat), Spearman's rho and Kendall's tau with the trained metric over the COMPLETE evaluations, each
with a percentile bootstrap interval (rows resampled with replacement). A minimised task metric
(RMSE) is negated first, so a positive correlation always means "ranks the better networks higher".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from skipsearch import metrics as schema

BASELINES = ("params", "macs")
"""Cost columns every probe is compared with."""

PROBE_COLUMNS = ["metric", "n", "spearman", "spearman_low", "spearman_high", "kendall", "kendall_low", "kendall_high"]


def probe_correlations(
    frame: pd.DataFrame,
    target: str = "accuracy",
    metrics: Sequence[str] | None = None,
    *,
    maximize: bool = True,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Spearman and Kendall correlation of each metric (default: the probes, then :data:`BASELINES`)
    with ``target`` over the COMPLETE rows of an :func:`skipsearch.results.evaluations` frame, with
    ``confidence`` bootstrap intervals; rows with either value missing are left out of that pair.
    Pairs with fewer than 3 rows, or a constant column, get NaN. Columns: :data:`PROBE_COLUMNS`."""
    if "state" in frame.columns:
        frame = frame[frame["state"] == "COMPLETE"]
    names = list(metrics) if metrics is not None else [*schema.probe_names(), *BASELINES]
    rng = np.random.default_rng(seed)
    rows = []
    for name in names:
        if name not in frame.columns or target not in frame.columns:
            continue
        pair = frame[[name, target]].astype(float).dropna()
        pair = pair[np.isfinite(pair).all(axis=1)]
        x, y = pair[name].to_numpy(), pair[target].to_numpy() * (1.0 if maximize else -1.0)
        rows.append([name, len(pair), *_with_interval(x, y, bootstrap, confidence, rng)])
    return pd.DataFrame(rows, columns=PROBE_COLUMNS)


def _with_interval(
    x: np.ndarray, y: np.ndarray, bootstrap: int, confidence: float, rng: np.random.Generator
) -> list[float]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return [math.nan] * 6
    rho, tau = _rank_correlations(x, y)
    draws = []
    for _ in range(bootstrap):
        index = rng.integers(0, len(x), len(x))
        if np.ptp(x[index]) > 0 and np.ptp(y[index]) > 0:
            draws.append(_rank_correlations(x[index], y[index]))
    if not draws:
        return [rho, math.nan, math.nan, tau, math.nan, math.nan]
    low, high = 50 * (1 - confidence), 50 * (1 + confidence)
    values = np.array(draws)
    rho_low, rho_high = np.percentile(values[:, 0], [low, high])
    tau_low, tau_high = np.percentile(values[:, 1], [low, high])
    return [rho, float(rho_low), float(rho_high), tau, float(tau_low), float(tau_high)]


def _rank_correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return float(stats.spearmanr(x, y).statistic), float(stats.kendalltau(x, y).statistic)


def scatter_metrics(frame: pd.DataFrame, metrics: Sequence[str] | None = None) -> list[str]:
    """The metrics a scatter figure shows: those of ``metrics`` (default: probes, then baselines)
    that have values."""
    names = [n for n in (metrics or [*schema.probe_names(), *BASELINES]) if n in frame.columns]
    return [n for n in names if frame[n].notna().any()]


def draw_probe_scatter(
    fig: Any, frame: pd.DataFrame, target: str = "accuracy", metrics: Sequence[str] | None = None, title: str = ""
) -> None:
    """One scatter panel per metric (x, log-scaled for log-scale metrics) against ``target`` (y),
    drawn into the matplotlib figure ``fig`` (COMPLETE rows)."""
    if "state" in frame.columns:
        frame = frame[frame["state"] == "COMPLETE"]
    names = scatter_metrics(frame, metrics)
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, name in zip(axes, names, strict=False):
        pair = frame[[name, target]].astype(float).dropna()
        metric = schema.get(name)
        x = pair[name].to_numpy()
        if metric is not None and metric.log_scale and len(x) and (x > 0).all():
            ax.set_xscale("log")
        ax.scatter(x, pair[target], s=10, alpha=0.7)
        ax.set_xlabel(schema.label(name))
        ax.set_ylabel(schema.label(target))
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()


def plot_probe_scatter(
    frame: pd.DataFrame, path: str, target: str = "accuracy", metrics: Sequence[str] | None = None, title: str = ""
) -> None:
    """:func:`draw_probe_scatter` into a PNG file at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(4, max(1, len(scatter_metrics(frame, metrics))))
    rows = max(1, math.ceil(len(scatter_metrics(frame, metrics)) / cols))
    fig = Figure(figsize=(3.2 * cols, 2.8 * rows + (0.4 if title else 0)), dpi=110)
    FigureCanvasAgg(fig)
    draw_probe_scatter(fig, frame, target, metrics, title)
    fig.savefig(path)
