"""``skipsearch results`` and ``skipsearch pareto``: querying the results tables."""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

from skipsearch.cli._common import DEFAULT_STORAGE, StorageOption, connect
from skipsearch.errors import UserError

WhereOption = Annotated[
    list[str] | None,
    typer.Option("--where", help="Filter COLUMN OP VALUE, kind=KIND or edge=A->B (repeatable; all must hold)."),
]
WideOption = Annotated[
    bool, typer.Option("--wide", help="Show every column, even where the table is wider than the terminal.")
]

MAX_ROWS = 10**9
"""The largest ``--limit``: SQL LIMIT takes a 64-bit integer, SQLite overflows beyond it."""

TABLE_COLUMNS = ["trial_number", "accuracy", "macs", "active_skips", "state", "params", "name", "hash", "study"]
TABLE_COLUMNS += ["test_accuracy", "latency_ms"]
"""Columns of the table format, most important first: a narrow terminal drops them from the end
(the csv and json formats have every column)."""

_HEADERS = {"trial_number": "trial", "active_skips": "skips", "test_accuracy": "test acc", "latency_ms": "latency ms"}


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command("results")(results)
    app.command("pareto")(pareto)


def results(
    storage: StorageOption = DEFAULT_STORAGE,
    study: Annotated[list[str] | None, typer.Option("--study", help="Only this study (repeatable).")] = None,
    where: WhereOption = None,
    state: Annotated[
        str | None,
        typer.Option(help="Only trials in this state (COMPLETE, PRUNED, FAIL) or 'all' (default: COMPLETE)."),
    ] = None,
    sort: Annotated[str | None, typer.Option(help="Sort by COL, -COL or COL:desc.")] = None,
    limit: Annotated[int | None, typer.Option(min=0, max=MAX_ROWS, help="At most N rows.")] = None,
    output: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    wide: WideOption = False,
) -> None:
    """List evaluated trials (COMPLETE ones unless --state says otherwise) with their metrics and topology."""
    from skipsearch.results import STATES, evaluations, parse_where

    if state is not None and state.upper() not in (*STATES, "ALL"):
        raise UserError(f"--state {state!r}: one of {', '.join(STATES)} or all")
    engine = connect(storage, existing=True)
    studies = _check_studies(engine, study)
    conditions = [parse_where(w) for w in where or ()]
    if state is None and not any(c.field == "state" for c in conditions):
        state = "COMPLETE"
    chosen = [] if state is None or state.lower() == "all" else [parse_where(f"state={state}")]
    frame = evaluations(engine, studies, [*conditions, *chosen], sort, limit)
    others = _count_others(engine, studies, conditions, chosen)
    if output is not Format.table:
        _print(frame, output)
    elif frame.empty:
        _console().print("no results yet" + (f" in state {chosen[0].value}" if chosen else "") + _others_note(others))
    else:
        print_table(frame, _where_columns(engine, frame, conditions), wide=wide, task_metric=_task_metric(frame))
        if others:
            _console().print(_others_note(others).strip())


def _count_others(engine: Engine, studies: list[str] | None, conditions: list[Any], chosen: list[Any]) -> int:
    """Rows the state filter left out (all other filters applied)."""
    if not chosen:
        return 0
    from skipsearch.results import evaluations

    every = evaluations(engine, studies, conditions)
    return int((every["state"] != chosen[0].value).sum())


def _others_note(others: int) -> str:
    if not others:
        return ""
    word = "trial" if others == 1 else "trials"
    return f" ({others} other {word} in other states: --state all shows them)"


def _task_metric(frame: pd.DataFrame) -> str | None:
    """The task metric's name (``miou`` for segmentation) when every row has the same task."""
    from skipsearch.tasks._registry import TASKS

    tasks = set(frame["task"].dropna()) if "task" in frame else set()
    spec = TASKS.get(next(iter(tasks))) if len(tasks) == 1 else None
    return spec.metric if spec is not None else None


def _where_columns(engine: Engine, frame: pd.DataFrame, conditions: list[Any]) -> list[str]:
    """A column for each --where filter: the filtered column itself, or for ``kind`` / ``edge``
    filters a column (added to ``frame``) with the matching edges of each row's topology."""
    from skipsearch.results._query import COLUMNS

    columns: list[str] = []
    for cond in conditions:
        if cond.field in COLUMNS:
            columns.append(cond.field)
        elif cond.field == "kind":
            column = f"{cond.value} skips"
            frame[column] = _edges_of(engine, frame["hash"], lambda e, v=cond.value: e.kind == v)
            columns.append(column)
        elif cond.field == "edge":
            src, dst = cond.value
            column = f"{src}->{dst}"
            frame[column] = _edges_of(engine, frame["hash"], lambda e, s=src, d=dst: _is_edge(e, s, d), kind=True)
            columns.append(column)
    return columns


def _is_edge(edge: Any, src: int | str, dst: int | str) -> bool:
    return (edge.src_index if isinstance(src, int) else edge.src) == src and (
        edge.dst_index if isinstance(dst, int) else edge.dst
    ) == dst


def _edges_of(engine: Engine, hashes: pd.Series, keep: Any, kind: bool = False) -> list[str]:
    """Per row: the number of its topology's active edges that ``keep`` (or with ``kind``, their kind)."""
    import sqlalchemy as sa
    import sqlalchemy.orm

    from skipsearch.results import EdgeRow

    wanted = list(dict.fromkeys(hashes.dropna()))
    with sa.orm.Session(engine) as session:
        rows = session.scalars(sa.select(EdgeRow).where(EdgeRow.topology_hash.in_(wanted))).all() if wanted else []
    found: dict[str, list[str]] = {}
    for edge in rows:
        if keep(edge):
            found.setdefault(edge.topology_hash, []).append(edge.kind)
    if kind:
        return [", ".join(found.get(h, [])) or "off" for h in hashes]
    return [str(len(found.get(h, []))) for h in hashes]


def pareto(
    study: Annotated[list[str], typer.Option("--study", help="Study whose trials take part (repeatable).")],
    storage: StorageOption = DEFAULT_STORAGE,
    objectives: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated COLUMN:max|min (default: the study's objectives); the first sorts the front."
        ),
    ] = None,
    where: WhereOption = None,
    reference_point: Annotated[
        str | None,
        typer.Option(
            help="Hypervolume reference point, one comma-separated value per objective "
            "(default: the one stored with the study)."
        ),
    ] = None,
    output: Annotated[
        Format, typer.Option("--format", help="Output format (csv and json: the rows only).")
    ] = Format.table,
    summary: Annotated[
        bool, typer.Option("--summary", help="Print only a JSON object: hypervolume, reference point, counts.")
    ] = False,
    plot: Annotated[Path | None, typer.Option(help="Also draw the front to FILE.png or FILE.html.")] = None,
    wide: WideOption = False,
) -> None:
    """The non-dominated COMPLETE trials of one or more studies, and their hypervolume."""
    from skipsearch.results import pareto as compute_pareto
    from skipsearch.results import plot_pareto

    if plot is not None and plot.suffix.lower() not in (".png", ".html"):
        raise UserError(f"--plot {str(plot)!r}: the file must end in .png or .html")
    given = _parse_floats(reference_point, "--reference-point") if reference_point else None  # flags first
    engine = connect(storage, existing=True)
    studies = _check_studies(engine, study)
    setting = study_setting(storage, studies or [], objectives)
    ref, source = (given, "given") if given is not None else (setting.reference, "study")
    result = compute_pareto(engine, studies or [], setting.objectives, where or (), ref, source)
    if plot is not None:
        plot_pareto(result, plot, setting.task_metric)
        print(f"wrote {plot}", file=sys.stderr)
    if summary:
        print(json.dumps(pareto_summary(result), indent=2))
        return
    extra = [c for c, _ in result.objectives]
    if output is not Format.table:
        _print(result.front, output, extra=extra)
        return
    print_table(result.front, extra, wide=wide, task_metric=setting.task_metric)
    _console().print(pareto_footer(result, setting.task_metric))


def _skipsearch_studies(storage: str, studies: list[str]) -> list[str]:
    """The ``studies`` that skipsearch created (they carry its configuration), read with Optuna alone."""
    import optuna
    import sqlalchemy as sa

    names = []
    try:
        rdb = optuna.storages.RDBStorage(storage, skip_compatibility_check=True, skip_table_creation=True)
    except (sa.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError):
        return []  # results tables without Optuna's: no study of skipsearch's
    try:
        for name in studies:
            try:
                study_id = rdb.get_study_id_from_name(name)
            except KeyError:
                continue
            if "skipsearch_config" in rdb.get_study_user_attrs(study_id):  # skipsearch.search.CONFIG_ATTR
                names.append(name)
    finally:
        rdb.engine.dispose()
    return names


class StudySetting:
    """What a Pareto query of some studies takes from them: objectives, reference point, task metric."""

    def __init__(
        self, objectives: list[tuple[str, str]], reference: list[float] | None, task_metric: str | None
    ) -> None:
        self.objectives, self.reference, self.task_metric = objectives, reference, task_metric


def study_setting(storage: str, studies: list[str], objectives: str | None) -> StudySetting:
    """The studies' objectives (unless ``objectives`` is given), the reference point stored with them
    (the worst of theirs, per objective, for several studies; ``None`` when one has no value for an
    objective) and their task metric. Studies that skipsearch did not create contribute nothing."""
    from skipsearch.results import DEFAULT_OBJECTIVES, parse_objectives

    known = []
    for name in _skipsearch_studies(storage, studies):
        from skipsearch.search import study_reference_point  # torch: only for studies skipsearch made

        known.append(study_reference_point(storage, name))
    # A study names its quality objective by the task's metric (accuracy, miou, rmse, r2); the
    # results tables keep that value in the ``accuracy`` column.
    own = {tuple((_column(n), w) for n, w in config.objective_pairs) for _, config in known}
    if objectives is not None:
        chosen = [(_column(n), w) for n, w in parse_objectives(objectives)]
    else:
        chosen = list(own.pop()) if len(own) == 1 and len(known) == len(studies) else list(DEFAULT_OBJECTIVES)
    metrics = {config.task.metric for _, config in known}
    task_metric = metrics.pop() if len(metrics) == 1 else None
    points = [{_column(n): v for n, v in point.items()} for point, _ in known]
    if not known or len(known) < len(studies) or any(set(n for n, _ in chosen) - set(p) for p in points):
        return StudySetting(chosen, None, task_metric)
    reference = [(min if way == "max" else max)(point[name] for point in points) for name, way in chosen]
    return StudySetting(chosen, reference, task_metric)


def _column(objective: str) -> str:
    """The results column of an objective: a task metric's value lives in ``accuracy``."""
    from skipsearch.results._labels import TASK_METRICS

    return "accuracy" if objective in TASK_METRICS else objective


def pareto_summary(result: Any) -> dict[str, Any]:
    """What ``pareto --summary`` prints (no hypervolume for a single objective)."""
    names = [c for c, _ in result.objectives]
    ref = result.reference_point if len(names) > 1 else None
    return {
        "studies": sorted(set(result.candidates["study"])),
        "objectives": [{"name": c, "direction": d} for c, d in result.objectives],
        "candidates": len(result.candidates),
        "front_size": len(result.front),
        "reference_point": dict(zip(names, ref, strict=True)) if ref is not None else None,
        "reference_source": result.reference_source if ref is not None else None,
        "hypervolume": result.hypervolume if len(names) > 1 else None,
        "normalised_hypervolume": result.normalised_hypervolume,
    }


def print_table(
    frame: pd.DataFrame,
    extra: list[str] | tuple[str, ...] = (),
    *,
    wide: bool = False,
    task_metric: str | None = None,
    columns: list[str] | None = None,
) -> None:
    """Prints evaluation rows as a table that fits the terminal: ``columns`` (default: the standard
    ones, ``extra`` right after the most important) are dropped from the end until the table fits,
    and a note names what was dropped; ``wide`` keeps them all. No cell is ever cut."""
    from skipsearch.results import objective_label

    order = list(columns or TABLE_COLUMNS)
    order = list(dict.fromkeys([*order[:3], *extra, *order[3:]]))
    order = [c for c in order if c in frame.columns and (c != "study" or frame["study"].nunique() > 1)]
    cells = {c: [_cell(c, v) for v in frame[c]] for c in order}
    headers = {c: _HEADERS.get(c) or objective_label(c, task_metric) for c in order}
    right = {c for c in order if c in _NUMERIC_CELLS or frame[c].dtype.kind in "iuf"}
    console = _console()
    shown = list(order)
    table = _table(shown, headers, cells, right)
    while not wide and len(shown) > 2 and _width(console, table) > console.width:
        shown.pop()
        table = _table(shown, headers, cells, right)
    if wide:
        console = Console(width=max(console.width, _width(console, table)))
    console.print(table)
    hidden = [headers[c] for c in order if c not in shown]
    if hidden:
        console.print(f"({len(hidden)} more columns: {', '.join(hidden)}; --wide shows them)", style="dim")


_NUMERIC_CELLS = ("params", "macs", "flops", "accuracy", "test_accuracy", "latency_ms", "active_skips")


def _width(console: Console, table: Table) -> int:
    """The width ``table`` needs (rich's own measure stops at the console's width)."""
    return console.measure(table, options=console.options.update_width(100_000)).maximum


def _table(shown: list[str], headers: dict[str, str], cells: dict[str, list[str]], right: set[str]) -> Table:
    """A table of the ``shown`` columns, each as wide as its widest cell: rich never cuts a value."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for c in shown:
        width = max([len(headers[c]), *(len(v) for v in cells[c])])
        table.add_column(headers[c], no_wrap=True, min_width=width, justify="right" if c in right else "left")
    for row in zip(*(cells[c] for c in shown), strict=True):
        table.add_row(*row)
    return table


def _console() -> Console:
    """The terminal's own width (or $COLUMNS); piped output is not squeezed into 80 columns."""
    console = Console()
    return console if console.is_terminal or "COLUMNS" in os.environ else Console(width=240)


def _print(frame: pd.DataFrame, output: Format, extra: list[str] | tuple[str, ...] = ()) -> None:
    from skipsearch.results._query import frame_records

    if output is Format.json:
        print(json.dumps(frame_records(frame), indent=2))
    elif output is Format.csv:
        out = frame.copy()
        out["curve"] = [json.dumps(c) for c in out["curve"]]
        sys.stdout.write(out.to_csv(index=False))
    else:
        print_table(frame, extra)


def pareto_footer(result: Any, task_metric: str | None = None) -> str:
    """The line under ``pareto``'s table: front size and the hypervolume with its reference point
    (or, for one objective, the best value)."""
    from skipsearch.results import format_number, hypervolume_text, objective_label

    if result.reference_point is None:
        return "no COMPLETE trial has every objective: the front is empty"
    trials = "trial" if len(result.candidates) == 1 else "trials"
    if len(result.objectives) == 1:
        (name, _), best = result.objectives[0], result.front.iloc[0]
        return (
            f"best {objective_label(name, task_metric)} {format_number(best[name])} (trial {best['trial_number']}) "
            f"of {len(result.candidates)} complete {trials}; one objective: no hypervolume"
        )
    stated = hypervolume_text(result.hypervolume, result.reference_point, result.objectives, task_metric)
    source = {"study": "the study's reference point", "given": "reference point as given"}.get(
        result.reference_source, f"reference point: {result.reference_source}, the study stores none"
    )
    return f"{len(result.front)} non-dominated of {len(result.candidates)} complete {trials}; {stated}; {source}"


def _cell(column: str, value: Any) -> str:
    import pandas as pd

    from skipsearch.results import format_number

    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "-"
    if column in ("accuracy", "test_accuracy", "loss") and isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return format_number(float(value))
    return str(value)


def _check_studies(engine: Engine, names: list[str] | None) -> list[str] | None:
    from skipsearch.results import study_names

    if not names:
        return None
    known = study_names(engine)
    missing = [n for n in names if n not in known]
    if missing:
        listed = ", ".join(known) if known else "none yet"
        raise UserError(f"no evaluations for study {missing[0]!r} (studies with results: {listed})")
    return names


def _parse_floats(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{option} {text!r}: expected comma-separated numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise UserError(f"{option} {text!r}: expected finite numbers (no nan or inf)")
    return values
