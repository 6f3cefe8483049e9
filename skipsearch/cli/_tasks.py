"""``skipsearch tasks``: the tasks this installation knows (built in, and from installed packages)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    app.command("tasks")(tasks)


def tasks(
    sizes: Annotated[bool, typer.Option(help="Load each task to show its split sizes and shapes.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the known tasks: metric, input shape, outputs and train/validation/test sizes. Tasks of
    installed packages (entry-point group skipsearch.tasks) are included; `file` and `module` are
    your own data (README: Your own data)."""
    from skipsearch.tasks import USER_DATA_TASKS, discover_tasks, load_task

    rows: list[dict[str, Any]] = []
    for name, spec in discover_tasks().items():
        row: dict[str, Any] = {"name": name, "description": spec.description, "metric": spec.metric}
        if name in USER_DATA_TASKS:
            row.update(metric=f"{spec.metric} (or miou, rmse, r2)", input_shape=None, outputs=None, sizes=None)
        elif sizes:
            data = load_task(name)
            row.update(
                metric=data.metric,
                input_shape=list(data.input_shape),
                outputs=data.num_outputs,
                sizes={"train": len(data.x_train), "val": len(data.x_val), "test": len(data.x_test)},
            )
        else:
            row.update(input_shape=list(spec.input_shape), outputs=spec.num_classes, sizes=None)
        rows.append(row)
    if as_json:
        print(json.dumps({"tasks": rows}, indent=2))
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("task", "metric", "input", "outputs", "train/val/test", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        split = row["sizes"]
        table.add_row(
            row["name"],
            row["metric"],
            "your data" if row["input_shape"] is None else "x".join(map(str, row["input_shape"])),
            "" if row["outputs"] is None else str(row["outputs"]),
            "" if split is None else f"{split['train']}/{split['val']}/{split['test']}",
            row["description"],
        )
    Console(width=160).print(table)
