"""``skipsearch report``: one self-contained HTML page (and PNG files) that explains a study.

The page embeds its figures as base64 PNG images and its style inline: no script, stylesheet or
font is fetched from anywhere, so it opens offline, from a mail attachment or a CI artifact. It
shows the Pareto front and the hypervolume over trials, the best topologies drawn as graphs,
gradient flow and path-length histograms of the best topology against the backbone without skips,
and the edge-effect table with Optuna's fANOVA importances.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from skipsearch.analysis._edges import (
    MIN_TRIALS_PER_ARM,
    describe_effects,
    edge_effects,
    edge_table,
    effect_scale,
    estimable,
    needs_trials_text,
    param_importances,
)
from skipsearch.analysis._gradients import GradientFlow, analysis_batch, gradient_flow
from skipsearch.analysis._paths import PathGradients, path_gradients
from skipsearch.errors import FieldError
from skipsearch.nn import cpu_threads
from skipsearch.results import format_number, objective_label
from skipsearch.topology import Topology, graph_metrics
from skipsearch.viz import draw_topology

MAX_HV_POINTS = 200
"""The hypervolume-over-trials curve is evaluated at most at this many trial counts."""


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    html: Path
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Page:
    """The HTML body being assembled, and the figures written so far."""

    out: Path
    parts: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def figure(self, fig: Any, name: str, caption: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        data = buf.getvalue()
        path = self.out / f"{name}.png"
        path.write_bytes(data)
        self.figures.append(path)
        encoded = base64.b64encode(data).decode("ascii")
        self.add(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )


def _figure(width: float = 7.0, height: float = 4.0) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def write_report(
    storage_url: str,
    study_name: str,
    output_dir: str | Path,
    *,
    study: Any,
    config: Any,
    reference: dict[str, float],
    top: int = 3,
    analyses: bool = True,
    path_samples: int = 4,
    threads: int | None = 1,
    on_step: Callable[[str], None] | None = None,
) -> Report:
    """Writes ``report.html`` and its PNG figures for study ``study_name`` into ``output_dir``.

    ``analyses`` runs the gradient-flow and path-gradient measurements (at initialisation, a few
    seconds for small networks) with ``threads`` CPU threads; ``top`` best topologies are drawn.
    ``on_step`` hears the name of each section as it starts (a progress display). ``study`` is the
    Optuna study (read-only), ``config`` its validated configuration (a
    :class:`skipsearch.search.StudyConfig`) and ``reference`` its stored hypervolume reference point:
    the caller loads them (this package does not import the search).
    """
    step = on_step or (lambda name: None)
    from skipsearch.results import connect, evaluations, pareto
    from skipsearch.tasks import TASKS

    start = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    engine = connect(storage_url)
    frame = evaluations(engine, [study_name])
    objectives = config.objective_pairs
    metric = TASKS[config.task.name].metric
    page = _Page(out)
    _header(page, study_name, config, frame)
    done = frame[frame["state"] == "COMPLETE"]
    if done.empty:
        page.add("<p>No trial has completed yet: nothing more to show.</p>")
    else:
        step("Pareto front")
        point = [reference[n] for n, _ in objectives]
        result = pareto(engine, [study_name], objectives, reference_point=point, reference_source="study")
        _pareto_section(page, result, objectives, metric)
        step("best topologies")
        best = _best_topologies(engine, result.front, top)
        _topology_section(page, best, result.front, objectives)
        if analyses and best:
            backbone = config.backbone.build().with_name(f"{config.backbone.build().name} (no skips)")
            step("gradient flow and paths")
            with cpu_threads(threads):
                _analysis_section(page, config, best[0], backbone, path_samples)
        step("edge effects")
        _edge_section(page, study, [name for name, _ in objectives])
        step("zero-cost probes")
        _probe_section(page, done, metric)
    seconds = time.perf_counter() - start
    page.add(f"<footer>Generated by skipsearch report in {seconds:.1f} s.</footer>")
    path = out / "report.html"
    path.write_text(_document(f"skipsearch report: {study_name}", "\n".join(page.parts)), encoding="utf-8")
    engine.dispose()
    return Report(path, page.figures, seconds)


# -- sections ---------------------------------------------------------------------------------------


def _header(page: _Page, name: str, config: Any, frame: pd.DataFrame) -> None:
    states = frame["state"].value_counts().to_dict() if not frame.empty else {}
    objectives = ", ".join(f"{o.name} ({o.direction})" for o in config.objectives)
    page.add(f"<h1>Study <code>{html.escape(name)}</code></h1>")
    if config.description:
        page.add(f"<p class=lead>{html.escape(config.description)}</p>")
    rows = [
        ("Task", config.task.name),
        ("Backbone", config.backbone.build().name),
        ("Candidate edge choices", ", ".join(config.space.choices)),
        ("Objectives", objectives),
        ("Sampler", config.sampler.name),
        ("Trials", ", ".join(f"{v} {k.lower()}" for k, v in sorted(states.items())) or "none"),
    ]
    page.add(_kv_table(rows))
    page.add(
        "<p>Each trial switched candidate skip edges of the backbone on (as one of the kinds above) or off, "
        "trained the resulting network and measured it. The sections below show what the search found and "
        "why the best networks work.</p>"
    )


def _pareto_section(page: _Page, result: Any, objectives: Sequence[tuple[str, str]], metric: str) -> None:
    from skipsearch.results import DOMINATED_COLOUR, FRONT_COLOUR, axis_label, hypervolume_text, pareto_axes

    page.add("<h2>Trade-off: the Pareto front</h2>" if len(objectives) > 1 else "<h2>The best trials</h2>")
    cand = result.candidates.sort_values("trial_number")
    fig = _figure(11, 4)
    ax1, ax2 = fig.subplots(1, 2)
    if len(objectives) > 1:
        xi, yi = pareto_axes(objectives)
        (x_name, x_way), (y_name, y_way) = objectives[xi], objectives[yi]
        ax1.scatter(cand[x_name], cand[y_name], s=12, c=DOMINATED_COLOUR, label="completed trials")
        front = result.front.sort_values(x_name)
        ax1.plot(front[x_name], front[y_name], "o-", c=FRONT_COLOUR, ms=5, label="Pareto front", drawstyle="steps-post")
        ax1.set(
            xlabel=axis_label(x_name, x_way, metric),
            ylabel=axis_label(y_name, y_way, metric),
            title="Every completed trial and the front",
        )
        ax1.legend(fontsize=8)
    else:
        (y_name, y_way) = objectives[0]
        ax1.scatter(cand["trial_number"], cand[y_name], s=12, c=DOMINATED_COLOUR)
        ax1.set(xlabel="trial", ylabel=axis_label(y_name, y_way, metric), title="Every completed trial")
    ax1.grid(alpha=0.3)
    counts, curve = _progress(result, objectives)
    ax2.plot(counts, curve, c="C0")
    label = "hypervolume of the front so far" if len(objectives) > 1 else f"best {objective_label(y_name, metric)}"
    ax2.set(xlabel="completed trials (in trial order)", ylabel=label, title=label[0].upper() + label[1:])
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    page.figure(
        fig, "pareto", "Left: each grey dot is a trained topology, red the non-dominated ones. Right: progress."
    )
    complete = f"{len(cand)} completed {'trial' if len(cand) == 1 else 'trials'}"
    if len(objectives) > 1:
        stated = hypervolume_text(result.hypervolume, result.reference_point, objectives, metric)
        page.add(
            f"<p>{len(result.front)} of {complete} are on the front. {html.escape(stated[0].upper() + stated[1:])}. "
            "The reference point was chosen when the study was created (the quality objective at 0, each cost "
            "1.1 times that of the costliest topology in the search space, unless the study file gives one) "
            "and is stored with the study: <code>skipsearch pareto</code> and the dashboard report the same "
            "number. The normalised value is the share of the box between the reference point and a perfect "
            "network that costs nothing; it can only grow as trials are added.</p>"
        )
    else:
        best_by = html.escape(objective_label(y_name, metric))
        page.add(f"<p>{complete}; the best ({len(result.front)} shown) by {best_by}.</p>")
    columns = ["trial_number", "name", "hash", *[o for o, _ in objectives], "params", "active_skips", "paths"]
    shown = result.front[[c for c in dict.fromkeys(columns) if c in result.front.columns]]
    page.add(_frame_table(shown.rename(columns=lambda c: _column_label(c, metric))))


def _column_label(column: str, metric: str) -> str:
    return {"trial_number": "trial", "active_skips": "active skips"}.get(column) or objective_label(column, metric)


def _progress(result: Any, objectives: Sequence[tuple[str, str]]) -> tuple[list[int], list[float]]:
    from skipsearch.results import hypervolume_history

    cand = result.candidates.sort_values("trial_number")
    names = [o for o, _ in objectives]
    directions = [d for _, d in objectives]
    values = cand[names].to_numpy(dtype=float)
    n = len(values)
    counts = sorted({max(1, round(n * k / MAX_HV_POINTS)) for k in range(1, MAX_HV_POINTS + 1)} | {n})
    if len(objectives) == 1:
        best = np.maximum.accumulate if directions[0] == "max" else np.minimum.accumulate
        history = best(values[:, 0])
    else:
        history = hypervolume_history(values, directions, result.reference_point)
    return counts, [float(history[count - 1]) for count in counts]


def _best_topologies(engine: Any, front: pd.DataFrame, top: int) -> list[Topology]:
    from skipsearch.results import TopologyRow

    hashes = list(dict.fromkeys(front["hash"].tolist()))[:top]
    if not hashes:
        return []
    with engine.connect() as conn:
        rows = dict(
            conn.execute(sa.select(TopologyRow.hash, TopologyRow.json).where(TopologyRow.hash.in_(hashes))).all()
        )
    return [Topology.from_json(rows[h]) for h in hashes if h in rows]


def _topology_section(
    page: _Page, best: list[Topology], front: pd.DataFrame, objectives: Sequence[tuple[str, str]]
) -> None:
    page.add("<h2>The best topologies</h2>")
    page.add(
        "<p>Blocks run left to right (straight arrows: the backbone). Arcs above are additive skips "
        "(<i>add</i>: identity; <i>scalar</i>: a learned factor; <i>gated</i>, <i>switch</i>), arcs below are "
        "<i>concat</i> skips that widen the destination's input. Ordered by the first objective.</p>"
    )
    if not best:
        return
    fig = _figure(11, 2.1 * len(best))
    axes = fig.subplots(len(best), 1, squeeze=False)[:, 0]
    by_hash = front.drop_duplicates("hash").set_index("hash")
    for ax, topo in zip(axes, best, strict=True):
        row = by_hash.loc[topo.hash]
        scores = ", ".join(f"{o}={_fmt(row[o])}" for o, _ in objectives)
        draw_topology(topo, ax, title=f"{topo.name} ({topo.hash}): {scores}, {len(topo.active_skips)} active skips")
    fig.tight_layout()
    page.figure(fig, "topologies", "The best topologies of the front, drawn as graphs.")


def _analysis_section(page: _Page, config: Any, best: Topology, backbone: Topology, samples: int) -> None:
    from skipsearch.tasks import load_task, seeded_model

    data = load_task(config.task.name, seed=config.seed, **config.task.options)
    flows: list[GradientFlow] = []
    paths: list[PathGradients] = []
    for topo in (best, backbone):
        flows.append(gradient_flow(topo, data, seed=config.seed)[0])
        model = seeded_model(topo, config.seed)
        x, y = analysis_batch(data, topo, 128)
        paths.append(path_gradients(model, x, y, samples=samples, seed=config.seed))
    page.add("<h2>Why it wins: gradient flow</h2>")
    page.add(
        "<p>The norm of the loss gradient with respect to each hidden block's weights, at initialisation, on "
        "one batch of training data. When it shrinks by orders of magnitude towards the input "
        "(first/last ratio below 1e-3), the first blocks barely learn: vanishing gradients. Skip edges give "
        "the gradient a short way back.</p>"
    )
    fig = _figure(9, 3.8)
    ax = fig.subplots()
    for flow, style in zip(flows, ("o-", "s--"), strict=True):
        ax.semilogy(list(flow.norms), list(flow.norms.values()), style, ms=4, label=f"{flow.topology}")
    ax.set(xlabel="block (input side left)", ylabel="weight-gradient norm", title="Gradient norm per block at init")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    page.figure(fig, "gradients", "Gradient flow of the best topology and of the backbone without skips.")
    page.add(
        _kv_table([(f.topology, f"first/last ratio {f.ratio:.3g} ({f.first} / {f.last}): {f.status}") for f in flows])
    )
    page.add("<h2>Paths and effective depth</h2>")
    page.add(
        "<p>Skips turn one deep chain into many paths of different lengths (the number of weighted blocks a "
        "path passes through). Left: how many paths have each length. Right: the share of the input gradient "
        "that the paths of each length carry (Veit et al. 2016: sampled paths, gradient routed along one path "
        "at a time, at initialisation). Most of the gradient comes from paths far shorter than the network.</p>"
    )
    fig = _figure(11, 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    width = 0.4
    for k, (pg, color) in enumerate(zip(paths, ("C0", "C1"), strict=True)):
        offset = (k - 0.5) * width
        ax1.bar(np.array(pg.lengths) + offset, [float(c) for c in pg.counts], width, color=color, label=pg.topology)
        ax2.bar(np.array(pg.lengths) + offset, pg.share, width, color=color, label=pg.topology)
    ax1.set_yscale("log")
    ax1.set(xlabel="path length (weighted blocks)", ylabel="number of paths", title="Path-length distribution")
    ax2.set(xlabel="path length (weighted blocks)", ylabel="share of the gradient", title="Gradient per path length")
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    page.figure(fig, "paths", "Path-length histograms and gradient-weighted path lengths.")
    rows = []
    for topo, pg in zip((best, backbone), paths, strict=True):
        metrics = graph_metrics(topo)
        rows.append(
            (
                topo.name,
                f"{metrics.paths_text} paths, lengths {metrics.shortest_path}-{metrics.longest_path}; "
                "gradient-weighted "
                f"mean length {pg.mean_length:.2f}, 90% of the gradient from lengths "
                f"{pg.effective_range[0]}-{pg.effective_range[1]}",
            )
        )
    page.add(_kv_table(rows))


def _edge_section(page: _Page, study: Any, objectives: list[str]) -> None:
    page.add("<h2>What each edge does</h2>")
    frame, edges, names = edge_table(study, objectives)
    if len(frame) < 3 or not edges:
        page.add(f"<p>Edge effects need at least 3 completed trials (this study has {len(frame)}).</p>")
        return
    effects = edge_effects(frame, edges, names)
    method = effects["method"].iloc[0] if not effects.empty else "ols"
    how = (
        "a least-squares regression of each objective on indicators of every (edge, kind) against <i>off</i>, "
        "with robust (HC3) 95% intervals"
        if method == "ols"
        else "the difference of means between trials with the edge as that kind and trials with it off, "
        "with Welch 95% intervals (too few trials for the full regression). These are not adjusted for the "
        "other edges: edges that the sampler switched on together share each other's effects"
    )
    page.add(
        f"<p>Effect of switching one candidate edge from <i>off</i> to a kind, estimated by {how}. "
        "Intervals that exclude 0 are in bold. Quality is in percentage points. An effect is shown only when at "
        f"least {MIN_TRIALS_PER_ARM} trials had the edge as that kind and {MIN_TRIALS_PER_ARM} had it off. "
        "Below the table, the clearest effects in words.</p>"
    )
    page.add(_effects_table(effects))
    lines = describe_effects(_strongest(effects, names[0], 12))
    if lines:
        page.add("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in lines) + "</ul>")
    page.add("<h3>Which edges matter most (fANOVA)</h3>")
    rows = []
    for i, name in enumerate(names[: len(study.directions)]):
        importances = param_importances(study, i)
        top = sorted(importances.items(), key=lambda kv: -kv[1])[:8]
        rows.append((name, ", ".join(f"{k}: {v:.2f}" for k, v in top) or "not enough variation"))
    page.add(
        "<p>Optuna's fANOVA: the share of each objective's variance explained by each edge's choice.</p>"
        + _kv_table(rows)
    )


def _probe_section(page: _Page, done: pd.DataFrame, metric: str) -> None:
    """Probe scores at initialisation against the trained metric (studies that scored probes)."""
    from skipsearch import metrics as schema
    from skipsearch.analysis._probes import draw_probe_scatter, probe_correlations, scatter_metrics
    from skipsearch.tasks import METRIC_DIRECTIONS

    probes = [n for n in schema.probe_names() if n in done.columns and done[n].notna().any()]
    if not probes:
        return
    page.add("<h2>Zero-cost probes: do they rank as training does?</h2>")
    table = probe_correlations(done, maximize=METRIC_DIRECTIONS.get(metric, "max") == "max", bootstrap=500)
    table = table.assign(metric=[schema.label(m) for m in table["metric"]])
    page.add(
        f"<p>Each probe was scored on the untrained network from one seeded batch. Rank correlation of each with "
        f"the trained validation {html.escape(schema.label(metric))} over {len(done)} completed trials, with 95% "
        "bootstrap intervals; parameters and MACs are the baselines a useful probe must beat.</p>"
    )
    page.add(_frame_table(table.round(3)))
    count = len(scatter_metrics(done))
    cols = min(4, max(1, count))
    fig = _figure(3.0 * cols, 2.6 * max(1, math.ceil(count / cols)))
    draw_probe_scatter(fig, done, "accuracy")
    page.figure(fig, "probes", f"Probes at initialisation (x) against the trained {schema.label(metric)} (y).")


def _strongest(effects: pd.DataFrame, objective: str, count: int) -> pd.DataFrame:
    """The rows of the ``count`` (edge, kind) pairs with the clearest effect on ``objective``:
    intervals that exclude 0 first, then known intervals, then by the size of the effect."""
    rows = effects[(effects["objective"] == objective) & np.isfinite(effects["effect"])]
    excludes_zero = (rows["ci_low"] > 0) | (rows["ci_high"] < 0)
    order = rows.assign(_clear=excludes_zero, _known=np.isfinite(rows["se"]), _size=rows["effect"].abs())
    order = order.sort_values(["_clear", "_known", "_size"], ascending=False)
    keys = list(zip(order["edge"], order["kind"], strict=True))[:count]
    pairs = pd.Series(list(zip(effects["edge"], effects["kind"], strict=True)), index=effects.index)
    chosen = effects[pairs.isin(keys)]
    return chosen.assign(_rank=[keys.index(k) for k in pairs[chosen.index]]).sort_values("_rank", kind="stable")


# -- HTML helpers -----------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.7em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left}th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.lead{font-size:1.1em;color:#444}footer{margin-top:3em;font-size:.8em;color:#777}
"""


def _document(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float | np.floating | int | np.integer):
        return format_number(float(value))
    return str(value)


def _frame_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for value in record:
            numeric = isinstance(value, int | float | np.integer | np.floating)
            cells.append(f"<td{' class=num' if numeric else ''}>{html.escape(_fmt(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _effects_table(effects: pd.DataFrame) -> str:
    if effects.empty:
        return "<p>No edge was ever switched on.</p>"
    objectives = list(dict.fromkeys(effects["objective"]))
    head = "<tr><th>edge</th><th>kind</th><th>trials on/off</th>" + "".join(
        f"<th>{html.escape(objective_label(o))} effect (95% CI)</th>" for o in objectives
    )
    rows = []
    for (edge, kind), group in effects.groupby(["edge", "kind"], sort=False):
        by_obj = group.set_index("objective")
        first = group.iloc[0]
        cells = [html.escape(edge), html.escape(kind), f"{first.n_on}/{first.n_off}"]
        for o in objectives:
            r = by_obj.loc[o]
            if not estimable(r):
                cells.append(f"<i>{html.escape(needs_trials_text(r))}</i>")
                continue
            scale, unit = effect_scale(o)
            text = f"{_signed(r.effect * scale)}{unit} ({_signed(r.ci_low * scale)} to {_signed(r.ci_high * scale)})"
            significant = r.ci_low > 0 or r.ci_high < 0
            cells.append(f"<b>{html.escape(text)}</b>" if significant else html.escape(text))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table>{head}</tr>{''.join(rows)}</table>"


def _signed(value: float) -> str:
    text = format_number(value, digits=3) if abs(value) < 1000 else format_number(round(value))
    return text if value < 0 else f"+{text}"


def check_output_dir(path: str | Path) -> Path:
    """The report folder, checked: it may exist (files are overwritten) but must not be a file."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise FieldError("output", repr(str(out)), "exists and is not a folder")
    return out
