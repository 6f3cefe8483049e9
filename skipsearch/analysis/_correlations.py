"""Topology metrics against outcomes: do more paths, longer effective depth or more skips go with
higher accuracy or cost, across the stored evaluations of one or more studies?"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

GRAPH_METRICS = ("log2_paths", "mean_path_length", "shortest_path", "longest_path", "active_skips", "max_concat_fan_in")
"""Graph metrics of the results table (``log2_paths`` is ``log2(paths)``: counts span many orders)."""
OUTCOMES = ("accuracy", "test_accuracy", "macs", "params", "latency_ms")

CORRELATION_COLUMNS = ["metric", "outcome", "n", "spearman", "spearman_p", "pearson", "pearson_p"]


def metric_correlations(
    frame: pd.DataFrame,
    metrics: Sequence[str] = GRAPH_METRICS,
    outcomes: Sequence[str] = OUTCOMES,
) -> pd.DataFrame:
    """Spearman (rank) and Pearson correlation, with p-values, of every graph metric with every
    outcome over the COMPLETE rows of an :func:`skipsearch.results.evaluations` frame.

    Pairs with fewer than 3 rows or a constant column get NaN.
    """
    frame = frame[frame["state"] == "COMPLETE"] if "state" in frame.columns else frame
    frame = frame.copy()
    if "paths" in frame.columns:
        frame["log2_paths"] = np.log2(frame["paths"].astype(float))
    rows = []
    for metric in metrics:
        for outcome in outcomes:
            if metric not in frame.columns or outcome not in frame.columns:
                continue
            pair = frame[[metric, outcome]].astype(float).dropna()
            pair = pair[np.isfinite(pair).all(axis=1)]
            x, y = pair[metric].to_numpy(), pair[outcome].to_numpy()
            if len(pair) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
                rows.append([metric, outcome, len(pair), math.nan, math.nan, math.nan, math.nan])
                continue
            rho, rho_p = stats.spearmanr(x, y)
            r, r_p = stats.pearsonr(x, y)
            rows.append([metric, outcome, len(pair), float(rho), float(rho_p), float(r), float(r_p)])
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
