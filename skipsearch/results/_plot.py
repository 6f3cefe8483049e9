"""Pictures of a Pareto front: PNG with matplotlib, self-contained HTML with plotly.

Every Pareto figure of skipsearch (this one, the report's, the dashboard's) has the same
orientation, colours and labels: cost across, quality up (:func:`pareto_axes`), evaluated trials
in :data:`DOMINATED_COLOUR`, the front in :data:`FRONT_COLOUR`, axes named by :func:`axis_label`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skipsearch.errors import FieldError, UserError
from skipsearch.results._labels import QUALITY_OBJECTIVES, objective_label
from skipsearch.results._pareto import ParetoResult

FRONT_COLOUR = "#d62728"
DOMINATED_COLOUR = "#b0b0b0"


def pareto_axes(objectives: Sequence[tuple[str, str]]) -> tuple[int, int]:
    """(x, y) objective indices of a Pareto figure: quality up (the task metric, else the first
    maximised objective, else the first), the first other objective (a cost) across."""
    names = [n for n, _ in objectives]
    y = next((i for i, n in enumerate(names) if n in QUALITY_OBJECTIVES), None)
    if y is None:
        y = next((i for i, (_, d) in enumerate(objectives) if d == "max"), 0)
    x = next(i for i in range(len(names)) if i != y)
    return x, y


def axis_label(name: str, direction: str, task_metric: str | None = None) -> str:
    """``"MACs (lower is better)"``, ``"mIoU (higher is better)"``."""
    return f"{objective_label(name, task_metric)} ({'higher' if direction == 'max' else 'lower'} is better)"


def plot_pareto(result: ParetoResult, path: str | Path, task_metric: str | None = None) -> Path:
    """Draws every candidate and the front to ``path`` (.png or .html), cost across and quality up."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html"):
        raise FieldError("plot", repr(str(path)), "the file must end in .png or .html")
    if len(result.objectives) < 2:
        raise UserError("a Pareto plot needs at least two objectives")
    if not path.parent.exists():
        raise FieldError("plot", repr(str(path)), f"folder {str(path.parent)!r} does not exist")
    if suffix == ".png":
        _png(result, path, task_metric)
    else:
        _html(result, path, task_metric)
    return path


def _labels(result: ParetoResult, task_metric: str | None) -> tuple[str, str, str]:
    xi, yi = pareto_axes(result.objectives)
    (x, dx), (y, dy) = result.objectives[xi], result.objectives[yi]
    title = f"Pareto front of {', '.join(sorted(set(result.candidates['study'])) or ['(no rows)'])}"
    if len(result.objectives) > 2:
        title += f" (two of {len(result.objectives)} objectives)"
    return axis_label(x, dx, task_metric), axis_label(y, dy, task_metric), title


def _columns(result: ParetoResult) -> tuple[str, str]:
    xi, yi = pareto_axes(result.objectives)
    return result.objectives[xi][0], result.objectives[yi][0]


def _front_line(result: ParetoResult) -> tuple[np.ndarray, np.ndarray]:
    x, y = _columns(result)
    front = result.front.sort_values(x, kind="stable")
    return front[x].to_numpy(dtype=float), front[y].to_numpy(dtype=float)


def _png(result: ParetoResult, path: Path, task_metric: str | None) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xlabel, ylabel, title = _labels(result, task_metric)
    x, y = _columns(result)
    fig = Figure(figsize=(7, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(result.candidates[x], result.candidates[y], s=8, c=DOMINATED_COLOUR, label="evaluated")
    fx, fy = _front_line(result)
    ax.plot(fx, fy, "o-", c=FRONT_COLOUR, ms=4, drawstyle="steps-post" if len(result.objectives) == 2 else "default")
    ax.lines[-1].set_label("Pareto front")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def _html(result: ParetoResult, path: Path, task_metric: str | None) -> None:
    import plotly.graph_objects as go

    xlabel, ylabel, title = _labels(result, task_metric)
    x, y = _columns(result)
    cand = result.candidates
    fig = go.Figure()
    fig.add_scatter(
        x=cand[x],
        y=cand[y],
        mode="markers",
        name="evaluated",
        marker={"color": DOMINATED_COLOUR, "size": 5},
        text=[f"{s} #{t}" for s, t in zip(cand["study"], cand["trial_number"], strict=True)],
    )
    front = result.front.sort_values(x, kind="stable")
    fig.add_scatter(
        x=front[x],
        y=front[y],
        mode="lines+markers",
        name="Pareto front",
        line={"shape": "hv" if len(result.objectives) == 2 else "linear", "color": FRONT_COLOUR},
        text=[
            f"{s} #{t}<br>{n} ({h})"
            for s, t, n, h in zip(front["study"], front["trial_number"], front["name"], front["hash"], strict=True)
        ],
    )
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, template="plotly_white")
    fig.write_html(path, include_plotlyjs=True, full_html=True)
