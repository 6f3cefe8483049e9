"""``skipsearch results`` and ``skipsearch pareto``: querying the results tables."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from skipsearch.cli._common import DEFAULT_STORAGE, StorageOption
from skipsearch.errors import UserError
from skipsearch.results import connect

WhereOption = Annotated[
    list[str] | None,
    typer.Option("--where", help="Filter COLUMN OP VALUE, kind=KIND or edge=A->B (repeatable, all must hold)."),
]

TABLE_COLUMNS = ["study", "trial_number", "hash", "name", "state", "accuracy", "test_accuracy", "params", "macs"]
TABLE_COLUMNS += ["latency_ms"]
"""Columns of the table format (the csv and json formats have every column)."""

_HEADERS = {"trial_number": "trial", "test_accuracy": "test acc", "latency_ms": "latency ms"}


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
    sort: Annotated[str | None, typer.Option(help="Sort by COL, -COL or COL:desc.")] = None,
    limit: Annotated[int | None, typer.Option(min=0, help="At most N rows.")] = None,
    output: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """List evaluated trials (every state) with their metrics and topology."""
    from skipsearch.results import evaluations

    engine = connect(storage, existing=True)
    studies = _check_studies(engine, study)
    frame = evaluations(engine, studies, where or (), sort, limit)
    _print(frame, output)


def pareto(
    study: Annotated[list[str], typer.Option("--study", help="Study whose trials take part (repeatable).")],
    storage: StorageOption = DEFAULT_STORAGE,
    objectives: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated COLUMN:max|min; the first one sorts the front "
            "(default: the study's objectives, else accuracy:max,macs:min)."
        ),
    ] = None,
    where: WhereOption = None,
    reference_point: Annotated[
        str | None,
        typer.Option(help="Hypervolume reference point, one comma-separated value per objective (default: nadir+10%)."),
    ] = None,
    output: Annotated[
        Format, typer.Option("--format", help="Output format (csv and json: the rows only).")
    ] = Format.table,
    summary: Annotated[
        bool, typer.Option("--summary", help="Print only a JSON object: hypervolume, reference point, counts.")
    ] = False,
    plot: Annotated[Path | None, typer.Option(help="Also draw the front to FILE.png or FILE.html.")] = None,
) -> None:
    """The non-dominated COMPLETE trials of one or more studies, and their hypervolume."""
    from skipsearch.results import pareto as compute_pareto
    from skipsearch.results import plot_pareto

    if plot is not None and plot.suffix.lower() not in (".png", ".html"):
        raise UserError(f"--plot {str(plot)!r}: the file must end in .png or .html")
    engine = connect(storage, existing=True)
    studies = _check_studies(engine, study)
    ref = _parse_floats(reference_point, "--reference-point") if reference_point else None
    chosen = objectives or study_objectives(engine, studies or []) or "accuracy:max,macs:min"
    result = compute_pareto(engine, studies or [], chosen, where or (), ref)
    if plot is not None:
        plot_pareto(result, plot)
        print(f"wrote {plot}", file=sys.stderr)
    if summary:
        print(json.dumps(pareto_summary(result), indent=2))
        return
    _print(result.front, output, extra=[c for c, _ in result.objectives])
    if output is Format.table:
        _console().print(_footer(result))


TASK_METRIC_NAMES = ("accuracy", "miou", "rmse", "r2")
"""Objective names of a task's metric, stored in the ``accuracy`` column."""


def study_objectives(engine: Engine, studies: list[str]) -> str | None:
    """The objectives the studies were run with (as ``COLUMN:max|min``), when they all share them;
    ``None`` otherwise. Read from Optuna's tables (a regression study minimises its RMSE)."""
    import warnings

    import optuna
    import sqlalchemy as sa

    if not studies or not sa.inspect(engine).has_table("studies"):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = optuna.storages.RDBStorage(engine.url.render_as_string(hide_password=False))
    found = set()
    try:
        for name in studies:
            try:
                study = optuna.load_study(study_name=name, storage=storage)
            except KeyError:
                return None
            names = study.metric_names or []
            if len(names) != len(study.directions):
                return None
            found.add(
                ",".join(
                    f"{'accuracy' if n in TASK_METRIC_NAMES else n}:{'max' if d.name == 'MAXIMIZE' else 'min'}"
                    for n, d in zip(names, study.directions, strict=True)
                )
            )
    finally:
        storage.engine.dispose()
    return found.pop() if len(found) == 1 else None


def pareto_summary(result: Any) -> dict[str, Any]:
    """What ``pareto --summary`` prints."""
    names = [c for c, _ in result.objectives]
    ref = result.reference_point
    return {
        "studies": sorted(set(result.candidates["study"])),
        "objectives": [{"name": c, "direction": d} for c, d in result.objectives],
        "candidates": len(result.candidates),
        "front_size": len(result.front),
        "reference_point": dict(zip(names, ref, strict=True)) if ref is not None else None,
        "hypervolume": result.hypervolume,
    }


def print_table(frame: pd.DataFrame, extra: list[str] | tuple[str, ...] = ()) -> None:
    """Prints evaluation rows as a rich table (the standard columns plus ``extra``)."""
    columns = TABLE_COLUMNS + [c for c in extra if c not in TABLE_COLUMNS]
    table = Table(*(_HEADERS.get(c, c) for c in columns), box=box.SIMPLE_HEAD)
    for row in frame[columns].itertuples(index=False):
        table.add_row(*(_cell(c, v) for c, v in zip(columns, row, strict=True)))
    _console().print(table)


def _console() -> Console:
    """A terminal's own width; piped output is not squeezed into 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=240)


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


def _footer(result: Any) -> str:
    if result.reference_point is None:
        return "no COMPLETE trial has every objective: the front is empty"
    ref = ", ".join(f"{c}={v:.6g}" for (c, _), v in zip(result.objectives, result.reference_point, strict=True))
    return (
        f"{len(result.front)} non-dominated of {len(result.candidates)} complete trials; "
        f"hypervolume {result.hypervolume:.6g} (reference point {ref})"
    )


def _cell(column: str, value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "-"
    if column in ("params", "macs", "flops"):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.4f}" if column in ("accuracy", "test_accuracy", "loss") else f"{value:.4g}"
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
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{option} {text!r}: expected comma-separated numbers") from None
