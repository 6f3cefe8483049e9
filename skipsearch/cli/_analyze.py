"""``skipsearch analyze ...`` (gradients, paths, lesion, edges, metrics) and ``skipsearch report``.

A TOPOLOGY argument is a preset name, a topology file, or a study file (``.yaml``): for a study
file the analysis runs on two topologies, its backbone without skips (``no-skips``) and with every
candidate edge switched to its first choice other than ``off`` (``all-skips``), on the study's task
with the study's training settings. ``--storage URL --study NAME --trial N`` analyses a stored
trial's topology on its study's task instead.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from skipsearch.cli._common import DEFAULT_STORAGE, StorageOption, connect
from skipsearch.cli._progress import training_progress
from skipsearch.errors import UserError

analyze_app = typer.Typer(
    name="analyze",
    help="Why a topology wins: gradient flow, paths, lesions, edge effects, metric correlations.",
    no_args_is_help=True,
)


@analyze_app.callback()
def _with_progress(ctx: typer.Context) -> None:
    """Why a topology wins: gradient flow, paths, lesions, edge effects, metric correlations."""
    ctx.with_resource(training_progress("training"))  # a bar per model an analysis trains


TopologyArg = Annotated[
    str | None,
    typer.Argument(help="A preset, a topology file (.json, .graphml) or a study file (.yaml)."),
]
TaskOption = Annotated[str | None, typer.Option(help="Task (default: the study's, for study files and trials).")]
StudyOption = Annotated[str | None, typer.Option("--study", help="Study name (with --storage).")]
TrialOption = Annotated[int | None, typer.Option("--trial", help="Analyse this stored trial (with --storage/--study).")]
EpochsOption = Annotated[int | None, typer.Option(min=1, help="Training epochs (default: the task's or study's).")]
SeedOption = Annotated[
    int | None, typer.Option(help="Seed of the initial weights and batch order (default: 0 or the study's).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    app.add_typer(analyze_app)
    app.command("report")(report)


@dataclass
class _Target:
    """What to analyse: labelled topologies, the seed and (with a task) the training recipe."""

    topologies: list[tuple[str, Any]]
    seed: int
    recipe: Any = None  # a skipsearch.tasks.Recipe: imported when a command runs, not with the CLI


def _resolve(
    topology: str | None,
    task: str | None,
    storage: str,
    study: str | None,
    trial: int | None,
    epochs: int | None,
    seed: int | None,
    need_task: bool = True,
) -> _Target:
    from skipsearch.tasks import TASKS, Recipe
    from skipsearch.topology import load_topology

    config = None
    if trial is not None:
        if study is None:
            raise UserError("--trial needs --study (and --storage, unless it is the default)")
        topos, config = _stored_trial(storage, study, trial)
    elif topology is None:
        raise UserError("give a TOPOLOGY (preset, topology file or study file) or --storage/--study/--trial")
    elif topology.endswith((".yaml", ".yml")):
        topos, config = _study_file_topologies(topology)
    else:
        topos = [(topology, load_topology(topology))]
    if seed is None:
        seed = config.seed if config is not None else 0
    task = task or (config.task.name if config is not None else None)
    if task is None:
        if need_task:
            raise UserError("--task is required for a preset or topology file (e.g. --task mnist1d)")
        return _Target(topos, seed)
    if task not in TASKS:
        raise UserError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    if config is not None and task == config.task.name:  # the study's own task: its settings
        options, train = dict(config.task.options), config.train_config
    else:
        options, train = {}, TASKS[task].default_config
    return _Target(topos, seed, Recipe(task, train.updated(epochs=epochs), seed, options))


def _study_file_topologies(path: str) -> tuple[list[tuple[str, Any]], Any]:
    from skipsearch.search import SearchSpace, load_study_config

    config = load_study_config(path)
    backbone = config.backbone.build()
    space = SearchSpace(backbone, config.space)
    edges = list(backbone.skips)
    for cand in space.candidates:
        edges.append(space.edge(cand.src, cand.dst, next(c for c in cand.choices if c != "off")))
    full = backbone.with_skips(edges).with_name(f"{backbone.name}-all-skips")
    return [("no-skips", backbone.with_name(f"{backbone.name}-no-skips")), ("all-skips", full)], config


def _stored_trial(storage: str, study_name: str, number: int) -> tuple[list[tuple[str, Any]], Any]:
    from skipsearch.search import load_study, topology_of

    connect(storage, existing=True).dispose()  # a missing SQLite file is an error, not a new database
    study, config = load_study(storage, study_name, read_only=True)
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    topo = topology_of(trials[0]) if trials else None
    if topo is None:
        raise UserError(f"--trial {number}: study {study_name!r} has no evaluated trial with that number")
    return [(f"trial {number}", topo)], config


def _console() -> Console:
    return Console(width=max(100, Console().width))


# -- analyze gradients ----------------------------------------------------------------------------


@analyze_app.command("gradients")
def gradients(
    topology: TopologyArg = None,
    task: TaskOption = None,
    storage: StorageOption = DEFAULT_STORAGE,
    study: StudyOption = None,
    trial: TrialOption = None,
    train: Annotated[bool, typer.Option(help="Also measure after training (--no-train: at init only).")] = True,
    epochs: EpochsOption = None,
    seed: SeedOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Training samples in the measured batch.")] = 512,
    nodes: Annotated[bool, typer.Option("--nodes", help="Also print the norm of every block.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Per-block weight-gradient norms at init (and after training); flags vanishing (first/last
    hidden-block ratio < 1e-3) or exploding (> 1e3) flow."""
    from skipsearch.analysis import gradient_flow

    target = _resolve(topology, task, storage, study, trial, epochs, seed)
    recipe = target.recipe
    data = recipe.load_data()
    results = []
    for label, topo in target.topologies:
        for flow in gradient_flow(
            topo, data, train=recipe.train_config if train else None, seed=recipe.seed, batch_size=batch_size
        ):
            results.append((label, flow))
    if as_json:
        print(json.dumps([{"label": label, **flow.to_dict()} for label, flow in results], indent=2))
        return
    table = Table("topology", "stage", "first", "last", "first/last", "flow", "loss", "val metric")
    for label, flow in results:
        style = {"vanishing": "red", "exploding": "red"}.get(flow.status, "green")
        metric = "-" if flow.accuracy is None else f"{flow.accuracy:.4f}"
        table.add_row(
            label,
            flow.stage,
            flow.first,
            flow.last,
            f"{flow.ratio:.3g}",
            f"[{style}]{flow.status}[/]",
            f"{flow.loss:.4f}",
            metric,
        )
    console = _console()
    console.print(table)
    if nodes:
        for label, flow in results:
            console.print(f"{label} ({flow.stage}): " + ", ".join(f"{k}={v:.3g}" for k, v in flow.norms.items()))


# -- analyze paths --------------------------------------------------------------------------------


@analyze_app.command("paths")
def paths(
    topology: TopologyArg = None,
    task: TaskOption = None,
    storage: StorageOption = DEFAULT_STORAGE,
    study: StudyOption = None,
    trial: TrialOption = None,
    epochs: Annotated[
        int, typer.Option(min=0, help="Train this many epochs before measuring (0: measure at init).")
    ] = 0,
    samples: Annotated[int, typer.Option(min=1, help="Sampled paths per length.")] = 8,
    seed: SeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """Path-length distribution; with a task, also the gradient each path length carries and the
    effective depth (Veit et al. 2016)."""
    from skipsearch.analysis import analysis_batch, path_gradients
    from skipsearch.nn import cpu_threads
    from skipsearch.tasks import seeded_model, train_model
    from skipsearch.topology import graph_metrics

    target = _resolve(topology, task, storage, study, trial, epochs or None, seed, need_task=False)
    recipe = target.recipe
    data = recipe.load_data() if recipe is not None else None
    out = []
    for label, topo in target.topologies:
        info: dict[str, Any] = {"label": label, "topology": topo.name, "metrics": graph_metrics(topo).to_dict()}
        if data is not None:
            model = seeded_model(topo, target.seed)
            if epochs:
                train_model(
                    model, data, recipe.train_config.updated(device="cpu"), seed=recipe.seed, evaluate_test=False
                )
            x, y = analysis_batch(data, topo, 128)
            with cpu_threads(recipe.train_config.threads):
                info["gradients"] = path_gradients(model, x, y, samples=samples, seed=target.seed).to_dict()
            info["gradients"]["stage"] = f"trained {epochs} epochs" if epochs else "init"
        out.append(info)
    if as_json:
        print(json.dumps(out, indent=2))
        return
    console = _console()
    for info in out:
        m = info["metrics"]
        console.print(
            f"[bold]{info['label']}[/] ({info['topology']}): {m['paths']} paths, lengths "
            f"{m['shortest_path']}-{m['longest_path']}, mean {m['mean_path_length']:.2f}"
        )
        grads = info.get("gradients")
        table = Table("length", "paths", *(("grad/path", "share") if grads else ()))
        rows = grads["lengths"] if grads else [{"length": int(k), "paths": v} for k, v in m["path_lengths"].items()]
        for row in rows:
            extra = (f"{row['mean_norm']:.3g}", f"{row['share']:.1%}") if grads else ()
            table.add_row(str(row["length"]), str(row["paths"]), *extra)
        console.print(table)
        if grads:
            low, high = grads["effective_range"]
            console.print(
                f"gradient-weighted mean path length {grads['mean_length']:.2f} ({grads['stage']}); "
                f"90% of the gradient comes from paths of length {low}-{high} (longest {grads['longest']})"
            )


# -- analyze lesion -------------------------------------------------------------------------------


@analyze_app.command("lesion")
def lesion(
    topology: TopologyArg = None,
    task: TaskOption = None,
    storage: StorageOption = DEFAULT_STORAGE,
    study: StudyOption = None,
    trial: TrialOption = None,
    epochs: EpochsOption = None,
    seed: SeedOption = None,
    edges: Annotated[bool, typer.Option(help="Also delete each additive skip edge.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Train, then delete each block (and skip edge) at test time and report the metric drop on the
    test split (Veit et al. 2016)."""
    from skipsearch.analysis import lesion_study
    from skipsearch.nn import cpu_threads
    from skipsearch.tasks import reshape_for, seeded_model, train_model

    target = _resolve(topology, task, storage, study, trial, epochs, seed)
    recipe = target.recipe
    data = recipe.load_data()
    results = []
    for label, topo in target.topologies:
        model = seeded_model(topo, recipe.seed)
        trained = train_model(
            model, data, recipe.train_config.updated(device="cpu"), seed=recipe.seed, evaluate_test=False
        )
        if trained.status == "diverged":
            raise UserError(f"{label}: training diverged ({trained.reason})")
        view = reshape_for(data, topo.input_shape)
        with cpu_threads(recipe.train_config.threads):
            results.append((label, lesion_study(model, view.x_test, view.y_test, data.metric, edges=edges)))
    if as_json:
        print(json.dumps([{"label": label, **les.to_dict()} for label, les in results], indent=2))
        return
    console = _console()
    for label, les in results:
        console.print(
            f"[bold]{label}[/] ({les.topology}): test {les.metric_name} {les.baseline:.4f}; "
            f"mean drop over single-block deletions {les.mean_block_drop:.4f}"
        )
        table = Table("deleted", "how", les.metric_name, "drop")
        for row in les.rows:
            table.add_row(row.target, row.mode, f"{row.metric:.4f}", f"{row.drop:+.4f}")
        console.print(table)
        for what, why in les.skipped.items():
            console.print(f"  not deleted: {what}: {why}")


# -- analyze edges / metrics ----------------------------------------------------------------------


@analyze_app.command("edges")
def edges_cmd(
    storage: StorageOption = DEFAULT_STORAGE,
    study: StudyOption = None,
    objective: Annotated[
        list[str] | None, typer.Option("--objective", help="Metric to explain (repeatable; default: the study's).")
    ] = None,
    method: Annotated[str, typer.Option(help="auto, ols (HC3 regression) or means (Welch).")] = "auto",
    importances: Annotated[bool, typer.Option(help="Also compute Optuna's fANOVA importances.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Marginal effect of every candidate edge and kind on each objective, with 95% intervals."""
    from skipsearch.analysis import describe_effects, edge_effects, edge_table, param_importances
    from skipsearch.search import load_study

    if study is None:
        raise UserError("analyze edges needs --study NAME")
    connect(storage, existing=True).dispose()
    optuna_study, _ = load_study(storage, study, read_only=True)
    frame, edge_names, names = edge_table(optuna_study, objective)
    if len(frame) < 3:
        raise UserError(f"study {study!r} has {len(frame)} COMPLETE trials; edge effects need at least 3")
    effects = edge_effects(frame, edge_names, names, method=method)
    fanova = {}
    if importances:
        metric_names = list(optuna_study.metric_names or [])
        for name in names:
            if name in metric_names:
                fanova[name] = param_importances(optuna_study, metric_names.index(name))
    if as_json:
        records = [{k: _plain(v) for k, v in r.items()} for r in effects.to_dict("records")]
        print(json.dumps({"trials": len(frame), "effects": records, "fanova": fanova}, indent=2))
        return
    console = _console()
    console.print(f"{len(frame)} COMPLETE trials; method {effects['method'].iloc[0] if len(effects) else '-'}")
    for line in describe_effects(effects):
        console.print(line, highlight=False)
    for name, values in fanova.items():
        top = sorted(values.items(), key=lambda kv: -kv[1])[:10]
        console.print(f"fANOVA importance for {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in top), highlight=False)


@analyze_app.command("metrics")
def metrics_cmd(
    storage: StorageOption = DEFAULT_STORAGE,
    study: Annotated[list[str] | None, typer.Option("--study", help="Study (repeatable; default: all).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Correlation (Spearman, Pearson) of graph metrics with accuracy and cost across studies."""
    from skipsearch.analysis import metric_correlations
    from skipsearch.results import evaluations

    engine = connect(storage, existing=True)
    frame = evaluations(engine, study or None)
    table = metric_correlations(frame)
    if as_json:
        print(json.dumps([{k: _plain(v) for k, v in r.items()} for r in table.to_dict("records")], indent=2))
        return
    out = Table("metric", "outcome", "n", "spearman", "p", "pearson", "p")
    for r in table.itertuples():
        out.add_row(
            r.metric, r.outcome, str(r.n), *(_num(v) for v in (r.spearman, r.spearman_p, r.pearson, r.pearson_p))
        )
    _console().print(out)


@analyze_app.command("probes")
def probes_cmd(
    study: Annotated[str, typer.Option("--study", help="Study whose trials scored the probes.")],
    storage: StorageOption = DEFAULT_STORAGE,
    figure: Annotated[Path | None, typer.Option("--figure", help="Write the scatter figure (PNG) here.")] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples of the intervals.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Rank correlation (Spearman, Kendall, 95% bootstrap intervals) of each zero-cost probe, and of
    params and MACs, with the trained validation metric of the study's COMPLETE trials."""
    from skipsearch import metrics as schema
    from skipsearch.analysis import plot_probe_scatter, probe_correlations
    from skipsearch.results import evaluations, study_names
    from skipsearch.tasks import METRIC_DIRECTIONS, TASKS

    engine = connect(storage, existing=True)
    if study not in study_names(engine):
        raise UserError(f"--study: no evaluations for study {study!r}")
    frame = evaluations(engine, [study], where=["state=COMPLETE"])
    probes = [name for name in schema.probe_names() if frame[name].notna().any()]
    if not probes:
        raise UserError(f"study {study!r} has no probe values: run it with 'analysis: {{probes: true}}'")
    spec = TASKS.get(str(frame["task"].iloc[0]))
    metric = spec.metric if spec is not None else "accuracy"
    table = probe_correlations(frame, maximize=METRIC_DIRECTIONS.get(metric, "max") == "max", bootstrap=bootstrap)
    if figure is not None:
        plot_probe_scatter(frame, str(figure), title=f"{study}: probes at initialisation vs. {schema.label(metric)}")
    if as_json:
        print(json.dumps([{k: _plain(v) for k, v in r.items()} for r in table.to_dict("records")], indent=2))
        return
    out = Table("metric", "n", "Spearman", "95% interval", "Kendall", "95% interval", title=f"vs. {metric}")
    for r in table.itertuples():
        out.add_row(
            schema.label(r.metric),
            str(r.n),
            _num(r.spearman),
            f"[{_num(r.spearman_low)}, {_num(r.spearman_high)}]",
            _num(r.kendall),
            f"[{_num(r.kendall_low)}, {_num(r.kendall_high)}]",
        )
    _console().print(out)
    if figure is not None:
        print(f"wrote {figure}", file=sys.stderr)


# -- report ---------------------------------------------------------------------------------------


def report(
    storage: StorageOption = DEFAULT_STORAGE,
    study: Annotated[str | None, typer.Option("--study", help="Study name.")] = None,
    output: Annotated[Path, typer.Option("--output", help="Folder for report.html and the PNG figures.")] = Path(
        "report"
    ),
    top: Annotated[int, typer.Option(min=1, help="How many best topologies to draw.")] = 3,
    analyses: Annotated[bool, typer.Option(help="Run gradient and path analyses (a few seconds).")] = True,
) -> None:
    """Write a self-contained HTML report of a study (Pareto front, best topologies, gradient flow,
    edge effects, path lengths) that opens offline."""
    from skipsearch.analysis._report import check_output_dir, write_report
    from skipsearch.search import ensure_reference_point, load_study

    if study is None:
        raise UserError("report needs --study NAME")
    out = check_output_dir(output)
    connect(storage, existing=True).dispose()
    loaded, config = load_study(storage, study, read_only=True)  # before the folder: no empty one
    reference = ensure_reference_point(loaded, config)
    with training_progress("report") as step:
        result = write_report(
            storage,
            study,
            out,
            study=loaded,
            config=config,
            reference=reference,
            top=top,
            analyses=analyses,
            on_step=step,
        )
    print(f"wrote {result.html} ({len(result.figures)} figures, {result.seconds:.1f} s)", file=sys.stderr)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _num(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"
