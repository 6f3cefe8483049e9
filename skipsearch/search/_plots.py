"""Custom optuna-dashboard plots of a multi-objective study: hypervolume history and the Pareto front.

optuna-dashboard draws no hypervolume history, and its own Pareto plot knows nothing of topologies.
Both plots are plotly figures stored in the study the way ``optuna_dashboard.save_plotly_graph_object``
stores them (under fixed ids, so a refresh overwrites them) and shown on the study's page. Workers
refresh them from a study callback, at most every ``min_interval`` seconds, and once more when they
finish.

:func:`save_figure` writes optuna-dashboard's storage format itself because importing
``optuna_dashboard`` costs every worker process 1.5-4 s (it pulls in scikit-learn through
``optuna.importance``); a test checks that it writes exactly what ``save_plotly_graph_object`` does.

The hypervolume uses the study's reference point (:mod:`skipsearch.search._hypervolume`), the one
``skipsearch pareto`` and the report use; the plot's title states it with the hypervolume, and the
figure's ``layout.meta`` holds both as numbers. The Pareto plot has the orientation of every
skipsearch Pareto figure (:func:`skipsearch.results.pareto_axes`: cost across, quality up).
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

from skipsearch.results import (
    DOMINATED_COLOUR,
    FRONT_COLOUR,
    axis_label,
    front_mask,
    hypervolume_history,
    hypervolume_text,
    normalised_hypervolume,
    objective_label,
    pareto_axes,
)
from skipsearch.results._pareto import default_reference

HYPERVOLUME_PLOT_ID = "skipsearch-hypervolume-history"
PARETO_PLOT_ID = "skipsearch-pareto-front"

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
    reference, task_metric = _study_reference(study, names, values, directions)
    numbers = [t.number for t in trials]
    history = hypervolume_history(values, directions, reference) if reference else np.zeros(0)
    objectives = list(zip(names, directions, strict=True))
    save_figure(study, HYPERVOLUME_PLOT_ID, hypervolume_figure(numbers, history, objectives, reference, task_metric))
    save_figure(study, PARETO_PLOT_ID, pareto_figure(trials, values, objectives, task_metric))
    return True


def _study_reference(
    study: optuna.Study, names: Sequence[str], values: np.ndarray, directions: Sequence[str]
) -> tuple[tuple[float, ...] | None, str | None]:
    """The study's reference point (objectives' order) and its task's metric name. A study that
    skipsearch did not create gets the nadir + 10% of its trials, not stored."""
    from skipsearch.search._config import StudyConfig
    from skipsearch.search._hypervolume import ensure_reference_point
    from skipsearch.search._study import CONFIG_ATTR
    from skipsearch.tasks import TASKS

    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        return default_reference(values, directions), None
    config = StudyConfig.model_validate(stored)
    point = ensure_reference_point(study, config)
    return tuple(point[name] for name in names), TASKS[config.task.name].metric


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


_NOTE_VERSION = "dashboard:{trial}:note_ver"
_NOTE_TEXT = "dashboard:{trial}:note_str:"


def save_trial_note(storage: Any, study_id: int, trial_id: int, body: str) -> bool:
    """Stores ``body`` (Markdown) as a trial's optuna-dashboard note, as ``optuna_dashboard.save_note``
    does (version 1, chunks of 2045 characters); ``False``, writing nothing, when the trial has a
    note already (one a user wrote in the dashboard stays)."""
    version = _NOTE_VERSION.format(trial=trial_id)
    if version in storage.get_study_system_attrs(study_id):
        return False
    storage.set_study_system_attr(study_id, version, 1)
    prefix = _NOTE_TEXT.format(trial=trial_id)
    for i in range(0, len(body), _CHUNK):
        storage.set_study_system_attr(study_id, f"{prefix}{i // _CHUNK}", body[i : i + _CHUNK])
    return True


# -- figures ------------------------------------------------------------------------------------

_LAYOUT: dict[str, Any] = {
    "template": "none",  # keeps the stored JSON small; the axes get a light grid below
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "xaxis": {"gridcolor": "#e5e5e5", "zeroline": False},
    "yaxis": {"gridcolor": "#e5e5e5", "zeroline": False},
    "hovermode": "closest",
}


def hypervolume_figure(
    numbers: Sequence[int],
    history: np.ndarray,
    objectives: Sequence[tuple[str, str]],
    reference: Sequence[float] | None,
    task_metric: str | None = None,
) -> Any:
    """Hypervolume against trial number (COMPLETE trials); the title states the final value, its
    normalised share and the reference point, ``layout.meta`` holds them as numbers."""
    import plotly.graph_objects as go

    meta: dict[str, Any] = {}
    if reference is None:
        title = "Hypervolume history (no complete trial yet)"
    else:
        final = float(history[-1]) if len(history) else 0.0
        share = normalised_hypervolume(final, reference, objectives)
        stated = hypervolume_text(final, reference, objectives, task_metric)
        title = "Hypervolume history: " + stated.replace(" (", "<br>(", 1)
        meta = {
            "hypervolume": final,
            "normalised_hypervolume": share,
            "reference_point": {n: float(v) for (n, _), v in zip(objectives, reference, strict=True)},
        }
    fig = go.Figure(
        go.Scatter(
            x=list(numbers),
            y=[float(v) for v in history],
            mode="lines+markers",
            line={"shape": "hv", "color": "#1f77b4"},
            marker={"size": 5},
            hovertemplate="trial %{x}<br>hypervolume %{y:,.6g}<extra></extra>",
        ),
        layout=_LAYOUT,
    )
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        xaxis_title="trial",
        yaxis_title="hypervolume",
        meta=meta,
        margin={"t": 70},
    )
    return fig


def pareto_figure(
    trials: Sequence[FrozenTrial],
    values: np.ndarray,
    objectives: Sequence[tuple[str, str]],
    task_metric: str | None = None,
) -> Any:
    """Every COMPLETE trial over two objectives (cost across, quality up), their front in red."""
    import plotly.graph_objects as go

    xi, yi = pareto_axes(objectives)
    (x_name, x_way), (y_name, y_way) = objectives[xi], objectives[yi]
    x_label, y_label = objective_label(x_name, task_metric), objective_label(y_name, task_metric)
    pair = values[:, [xi, yi]] if len(values) else np.zeros((0, 2))
    on = front_mask(pair, [x_way, y_way]) if len(pair) else np.zeros(0, dtype=bool)
    text = [
        f"trial {t.number}<br>{t.user_attrs.get('hash', '')}<br>{t.user_attrs.get('active_skips', '?')} active skips"
        for t in trials
    ]
    hover = f"%{{text}}<br>{x_label} %{{x:,.6g}}<br>{y_label} %{{y:.6g}}<extra></extra>"
    order = np.argsort(pair[on, 0], kind="stable") if on.any() else np.zeros(0, dtype=int)
    fig = go.Figure(layout=_LAYOUT)
    fig.add_trace(
        go.Scatter(
            x=pair[~on, 0].tolist(),
            y=pair[~on, 1].tolist(),
            text=[s for s, o in zip(text, on, strict=True) if not o],
            mode="markers",
            marker={"color": DOMINATED_COLOUR, "size": 6},
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
            line={"shape": "hv" if x_way == "min" else "vh", "color": FRONT_COLOUR},
            marker={"size": 8},
            name="Pareto front",
            hovertemplate=hover,
        )
    )
    trials_word = "trial" if len(pair) == 1 else "trials"
    fig.update_layout(
        title={"text": f"Pareto front: {y_label} vs. {x_label} ({int(on.sum())} of {len(pair)} {trials_word})"},
        xaxis_title=axis_label(x_name, x_way, task_metric),
        yaxis_title=axis_label(y_name, y_way, task_metric),
    )
    return fig
