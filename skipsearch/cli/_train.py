"""``skipsearch train``: train one topology on one task and print its metrics."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from skipsearch.cli._common import finite
from skipsearch.cli._progress import training_progress
from skipsearch.errors import UserError
from skipsearch.topology import check_graph, load_topology

MAX_SEED = 2**32 - 1
"""numpy's seeds: 0 to 2**32 - 1."""


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def train(
    topology: Annotated[str, typer.Argument(help="A preset name or a topology file (.json, .graphml).")],
    task: Annotated[str, typer.Option(help="Task to train on (mnist1d, digits, shapes-seg, teacher).")],
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the task's).")] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed of the initial weights, batch order and validation split.")
    ] = 0,
    lr: Annotated[float | None, typer.Option(callback=finite, help="Learning rate (default: the task's).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: the task's).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (default: the task's).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda (default: auto).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train a topology with the task's default settings (flags override them) and print the
    validation and test metric, losses, cost and time. Exits with 1 if training diverged."""
    from pydantic import ValidationError

    from skipsearch.tasks import Recipe, check_run, check_task_size

    topo = load_topology(topology)
    try:
        check_graph(topo)
    except UserError as exc:
        raise UserError(f"{topology}: {exc}") from None
    try:
        recipe = Recipe.for_task(
            task, seed, epochs=epochs, lr=lr, batch_size=batch_size, threads=threads, device=device
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from None
    config = recipe.train_config
    check_task_size(task, {}, epochs=config.epochs)
    data = recipe.load_data()
    check_run(topo, data, config)
    with training_progress("training", data.metric):
        info = _train(topo, data, recipe)
    if as_json:
        print(json.dumps(info, indent=2))
    else:
        _print_result(info)
    if info["status"] == "diverged":
        raise typer.Exit(1)


def _train(topo: Any, data: Any, recipe: Any) -> dict[str, Any]:
    """Trains ``topo`` with ``recipe`` (a :class:`skipsearch.tasks.Recipe`) on ``data`` and returns
    what ``train --json`` prints."""
    start = time.perf_counter()
    run = recipe.train(topo, data)
    config, seed = recipe.train_config, recipe.seed
    result = run.result
    return {
        "topology": topo.name,
        "hash": topo.hash,
        "task": data.name,
        "metric": data.metric,
        "seed": seed,
        "status": result.status,
        "reason": result.reason,
        "val_metric": _number(result.val_metric),
        "test_metric": _number(result.test_metric),
        "val_loss": _number(result.val_loss),
        "train_loss": _number(result.train_loss),
        "params": run.cost.params,
        "macs": run.cost.macs,
        "epochs": result.epochs_run,
        "train_seconds": round(result.train_seconds, 3),
        "wall_seconds": round(time.perf_counter() - start, 3),
        "curve": [round(v, 6) for v in result.curve],
        "config": config.model_dump(),
    }


def _number(value: float | None) -> float | None:
    """JSON has no NaN: a diverged run's metrics become null."""
    from skipsearch.tasks import finite_or_none

    number = finite_or_none(value)
    return None if number is None else round(number, 6)


def _print_result(info: dict[str, Any]) -> None:
    console = Console()
    status = info["status"] if info["reason"] is None else f"{info['status']} ({info['reason']})"
    metric = info["metric"]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    console.print(f"[bold]{info['topology']}[/] on {info['task']}, seed {info['seed']}: {status}")
    console.print(
        f"val {metric} {fmt(info['val_metric'])}   test {metric} {fmt(info['test_metric'])}   "
        f"val loss {fmt(info['val_loss'])}   train loss {fmt(info['train_loss'])}"
    )
    console.print(
        f"params {info['params']:,}   MACs {info['macs']:,}   epochs {info['epochs']}   "
        f"train {info['train_seconds']:.1f} s   wall {info['wall_seconds']:.1f} s"
    )
