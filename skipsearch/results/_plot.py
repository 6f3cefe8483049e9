"""Pictures of a Pareto front: PNG with matplotlib, self-contained HTML with plotly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skipsearch.errors import UserError
from skipsearch.results._pareto import ParetoResult


def plot_pareto(result: ParetoResult, path: str | Path) -> Path:
    """Draws every candidate and the front over the first two objectives to ``path`` (.png or .html)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html"):
        raise UserError(f"--plot {str(path)!r}: the file must end in .png or .html")
    if len(result.objectives) < 2:
        raise UserError("a Pareto plot needs at least two objectives")
    if not path.parent.exists():
        raise UserError(f"--plot {str(path)!r}: folder {str(path.parent)!r} does not exist")
    if suffix == ".png":
        _png(result, path)
    else:
        _html(result, path)
    return path


def _labels(result: ParetoResult) -> tuple[str, str, str]:
    (x, dx), (y, dy) = result.objectives[:2]
    title = f"Pareto front of {', '.join(sorted(set(result.candidates['study'])) or ['(no rows)'])}"
    if len(result.objectives) > 2:
        title += f" (first two of {len(result.objectives)} objectives)"
    return f"{x} ({dx})", f"{y} ({dy})", title


def _front_line(result: ParetoResult) -> tuple[np.ndarray, np.ndarray]:
    x, y = result.objectives[0][0], result.objectives[1][0]
    return result.front[x].to_numpy(dtype=float), result.front[y].to_numpy(dtype=float)


def _png(result: ParetoResult, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xlabel, ylabel, title = _labels(result)
    x, y = result.objectives[0][0], result.objectives[1][0]
    fig = Figure(figsize=(7, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(result.candidates[x], result.candidates[y], s=8, c="0.7", label="evaluated")
    fx, fy = _front_line(result)
    ax.plot(fx, fy, "o-", c="C3", ms=4, drawstyle="steps-post" if len(result.objectives) == 2 else "default")
    ax.lines[-1].set_label("Pareto front")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def _html(result: ParetoResult, path: Path) -> None:
    import plotly.graph_objects as go

    xlabel, ylabel, title = _labels(result)
    x, y = result.objectives[0][0], result.objectives[1][0]
    cand = result.candidates
    fig = go.Figure()
    fig.add_scatter(
        x=cand[x],
        y=cand[y],
        mode="markers",
        name="evaluated",
        marker={"color": "lightgray", "size": 5},
        text=[f"{s} #{t}" for s, t in zip(cand["study"], cand["trial_number"], strict=True)],
    )
    front = result.front
    fig.add_scatter(
        x=front[x],
        y=front[y],
        mode="lines+markers",
        name="Pareto front",
        line={"shape": "hv" if len(result.objectives) == 2 else "linear", "color": "crimson"},
        text=[
            f"{s} #{t}<br>{n} ({h})"
            for s, t, n, h in zip(front["study"], front["trial_number"], front["name"], front["hash"], strict=True)
        ],
    )
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, template="plotly_white")
    fig.write_html(path, include_plotlyjs=True, full_html=True)
