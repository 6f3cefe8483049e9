"""Custom optuna-dashboard plots of a multi-objective study: hypervolume history and the Pareto front.

optuna-dashboard draws no hypervolume history, and its own Pareto plot knows nothing of topologies.
Both plots are plotly figures stored in the study the way ``optuna_dashboard.save_plotly_graph_object``
stores them (under fixed ids, so a refresh overwrites them) and shown on the study's page. Workers
refresh them from a study callback, at most every ``min_interval`` seconds, and once more when they
finish.

:func:`save_figure` writes optuna-dashboard's storage format itself because importing
``optuna_dashboard`` costs every worker process 1.5-4 s (it pulls in scikit-learn through
``optuna.importance``); a test checks that it writes exactly what ``save_plotly_graph_object`` does.

The hypervolume reference point is fixed per study: on the first refresh it is each objective's
worst value so far pushed as far again from zero (accuracy 0, twice the largest MACs), rounded to
two significant digits, and stored in the study. It only moves if a later trial is worse still, so
the curve never changes scale under a running study. The plot's title states it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from skipsearch.results import front_mask, hypervolume_history

HYPERVOLUME_PLOT_ID = "skipsearch-hypervolume-history"
PARETO_PLOT_ID = "skipsearch-pareto-front"
REFERENCE_ATTR = "skipsearch:hypervolume_reference"
"""Study system attribute holding the hypervolume reference point (a list, the objectives' order)."""

_logger = logging.getLogger("skipsearch.dashboard")


class DashboardPlots:
    """Study callback refreshing the custom dashboard plots, throttled to one refresh per ``min_interval`` s.

    The first finished trial refreshes at once; :meth:`refresh` forces one (the worker calls it
    when it stops). A failed refresh is logged and never stops the study.
    """

    def __init__(self, min_interval: float = 20.0) -> None:
        self.min_interval = min_interval
        self._last = -math.inf
        self.refreshes = 0
        self.seconds = 0.0
        """Time spent in refreshes so far (the callback's whole cost)."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if time.monotonic() - self._last >= self.min_interval:
            self.refresh(study)

    def refresh(self, study: optuna.Study) -> bool:
        """Recomputes and stores both plots; ``False`` when the study has too few objectives or failed."""
        start = time.monotonic()
        self._last = start
        try:
            return save_dashboard_plots(study)
        except Exception as exc:
            _logger.warning("dashboard plots not refreshed (%s: %s)", type(exc).__name__, exc)
            return False
        finally:
            self.refreshes += 1
            self.seconds += time.monotonic() - start


def save_dashboard_plots(study: optuna.Study) -> bool:
    """Stores the hypervolume-history and Pareto-front figures in ``study``; ``False`` for single-objective
    studies (optuna-dashboard's own history plot covers them)."""
    if len(study.directions) < 2:
        return False
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    names = list(study.metric_names or [f"objective {i}" for i in range(len(study.directions))])
    directions = ["max" if d == optuna.study.StudyDirection.MAXIMIZE else "min" for d in study.directions]
    values = np.array([t.values for t in trials], dtype=float).reshape(-1, len(directions))
    finite = np.isfinite(values).all(axis=1)
    trials, values = [t for t, ok in zip(trials, finite, strict=True) if ok], values[finite]
    reference = _reference(study, values, directions)
    numbers = [t.number for t in trials]
    history = hypervolume_history(values, directions, reference) if reference else np.zeros(0)
    save_figure(study, HYPERVOLUME_PLOT_ID, hypervolume_figure(numbers, history, names, reference))
    save_figure(study, PARETO_PLOT_ID, pareto_figure(trials, values, names, directions))
    return True


_PLOT_DATA_PREFIX = "dashboard:plot_data:"
_CHUNK = 2045
"""optuna-dashboard 0.21's format: a figure's JSON in chunks of 2045 characters, in study system
attributes ``dashboard:plot_data:<id>:<i>``; chunks left over from a longer figure are emptied."""


def save_figure(study: optuna.Study, graph_object_id: str, figure: Any) -> None:
    """Stores a plotly figure as an optuna-dashboard custom plot, as ``save_plotly_graph_object`` does."""
    storage, study_id = study._storage, study._study_id  # type: ignore[attr-defined]
    text = figure.to_json()
    prefix = f"{_PLOT_DATA_PREFIX}{graph_object_id}:"
    chunks = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)]
    for i, chunk in enumerate(chunks):
        storage.set_study_system_attr(study_id, f"{prefix}{i}", chunk)
    stale = sum(key.startswith(prefix) for key in storage.get_study_system_attrs(study_id))
    for i in range(len(chunks), stale):
        storage.set_study_system_attr(study_id, f"{prefix}{i}", "")


# -- numerics -----------------------------------------------------------------------------------


def reference_point(values: np.ndarray, directions: Sequence[str]) -> tuple[float, ...] | None:
    """Each objective's worst value pushed as far again from zero, rounded outwards to 2 significant digits."""
    if len(values) == 0:
        return None
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    worst = (np.asarray(values, dtype=float) * sign).max(axis=0)
    return tuple(float(s * _round_up(w + abs(w))) + 0.0 for s, w in zip(sign, worst, strict=True))  # no -0.0


def _round_up(value: float) -> float:
    """``value`` rounded up to two significant digits (0 stays 0)."""
    if value == 0 or not math.isfinite(value):
        return value
    scale = 10 ** (math.floor(math.log10(abs(value))) - 1)
    return math.ceil(value / scale) * scale


def _reference(study: optuna.Study, values: np.ndarray, directions: Sequence[str]) -> tuple[float, ...] | None:
    """The study's stored reference point, set or widened (and stored) when needed."""
    storage, study_id = study._storage, study._study_id  # type: ignore[attr-defined]  # no public system attrs
    stored = storage.get_study_system_attrs(study_id).get(REFERENCE_ATTR)
    if stored is not None and len(stored) != len(directions):
        stored = None
    fresh = reference_point(values, directions)
    if fresh is None:
        return tuple(stored) if stored else None
    if stored is not None:
        sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
        if np.all(values * sign <= np.asarray(stored) * sign):
            return tuple(float(v) for v in stored)
        fresh = tuple(float(s * max(a * s, b * s)) for s, a, b in zip(sign, stored, fresh, strict=True))
    storage.set_study_system_attr(study_id, REFERENCE_ATTR, list(fresh))
    return fresh


# -- figures ------------------------------------------------------------------------------------

_LAYOUT: dict[str, Any] = {
    "template": "none",  # keeps the stored JSON small; the axes get a light grid below
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "xaxis": {"gridcolor": "#e5e5e5", "zeroline": False},
    "yaxis": {"gridcolor": "#e5e5e5", "zeroline": False},
    "hovermode": "closest",
}


def _format(value: float) -> str:
    value += 0.0  # -0.0 prints as 0
    return f"{value:,.6g}" if abs(value) < 1e15 else f"{value:.3g}"


def hypervolume_figure(
    numbers: Sequence[int], history: np.ndarray, names: Sequence[str], reference: Sequence[float] | None
) -> Any:
    """Hypervolume against trial number (COMPLETE trials), the reference point in the title."""
    import plotly.graph_objects as go

    if reference is None:
        title = "Hypervolume history (no complete trial yet)"
    else:
        ref = ", ".join(f"{n}={_format(v)}" for n, v in zip(names, reference, strict=True))
        title = f"Hypervolume history (reference point {ref})"
    fig = go.Figure(
        go.Scatter(
            x=list(numbers),
            y=[float(v) for v in history],
            mode="lines+markers",
            line={"shape": "hv", "color": "#1f77b4"},
            marker={"size": 5},
            hovertemplate="trial %{x}<br>hypervolume %{y:.6g}<extra></extra>",
        ),
        layout=_LAYOUT,
    )
    fig.update_layout(title={"text": title, "font": {"size": 13}}, xaxis_title="trial", yaxis_title="hypervolume")
    return fig


def _plot_axes(names: Sequence[str]) -> tuple[int, int]:
    """(x, y) objective indices: MACs across and the task metric (accuracy, mIoU, RMSE, R²) up where
    both are objectives, else the first two."""
    metric = next((n for n in ("accuracy", "miou", "rmse", "r2") if n in names), None)
    if metric is not None and "macs" in names:
        return names.index("macs"), names.index(metric)
    return 1, 0


def pareto_figure(
    trials: Sequence[FrozenTrial], values: np.ndarray, names: Sequence[str], directions: Sequence[str]
) -> Any:
    """Every COMPLETE trial over two objectives (accuracy vs. MACs where present), their front in red."""
    import plotly.graph_objects as go

    xi, yi = _plot_axes(names)
    pair = values[:, [xi, yi]] if len(values) else np.zeros((0, 2))
    on = front_mask(pair, [directions[xi], directions[yi]]) if len(pair) else np.zeros(0, dtype=bool)
    text = [
        f"trial {t.number}<br>{t.user_attrs.get('hash', '')}<br>{t.user_attrs.get('active_skips', '?')} active skips"
        for t in trials
    ]
    hover = f"%{{text}}<br>{names[xi]} %{{x:.6g}}<br>{names[yi]} %{{y:.6g}}<extra></extra>"
    order = np.argsort(pair[on, 0], kind="stable") if on.any() else np.zeros(0, dtype=int)
    fig = go.Figure(layout=_LAYOUT)
    fig.add_trace(
        go.Scatter(
            x=pair[~on, 0].tolist(),
            y=pair[~on, 1].tolist(),
            text=[s for s, o in zip(text, on, strict=True) if not o],
            mode="markers",
            marker={"color": "#b0b0b0", "size": 6},
            name="dominated",
            hovertemplate=hover,
        )
    )
    front_text = [s for s, o in zip(text, on, strict=True) if o]
    fig.add_trace(
        go.Scatter(
            x=pair[on, 0][order].tolist(),
            y=pair[on, 1][order].tolist(),
            text=[front_text[i] for i in order],
            mode="lines+markers",
            # The staircase of the dominated region: its corners lie on the worse side along x.
            line={"shape": "hv" if directions[xi] == "min" else "vh", "color": "#d62728"},
            marker={"size": 8},
            name="Pareto front",
            hovertemplate=hover,
        )
    )
    fig.update_layout(
        title={"text": f"Pareto front: {names[yi]} vs. {names[xi]} ({int(on.sum())} of {len(pair)} trials)"},
        xaxis_title=f"{names[xi]} ({directions[xi]})",
        yaxis_title=f"{names[yi]} ({directions[yi]})",
    )
    return fig
