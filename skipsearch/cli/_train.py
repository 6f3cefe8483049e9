"""``skipsearch train``: train one topology (or several, or a seed sweep, fused) on one task and print its metrics."""

from __future__ import annotations

import json
import time
from dataclasses import replace
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
    topology: Annotated[
        list[str], typer.Argument(help="Preset names or topology files (.json, .graphml); several train together.")
    ],
    task: Annotated[str, typer.Option(help="Task to train on (mnist1d, digits, shapes-seg, teacher).")],
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the task's).")] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed of the initial weights, batch order and validation split.")
    ] = 0,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="A seed sweep trained together, e.g. 0-7 or 1,5,9: each seed's initial weights and batch "
            "order (the validation split stays --seed's)."
        ),
    ] = None,
    lr: Annotated[float | None, typer.Option(callback=finite, help="Learning rate (default: the task's).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: the task's).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (default: the task's).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda (default: auto).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train a topology with the task's default settings (flags override them) and print the
    validation and test metric, losses, cost and time. Several topologies, or --seeds, train
    together as one fused computation; each gets what training it alone gives. Exits with 1 if a
    training diverged."""
    from pydantic import ValidationError

    from skipsearch.tasks import Recipe, check_run, check_task_size

    topos = [load_topology(t) for t in topology]
    for path, topo in zip(topology, topos, strict=True):
        try:
            check_graph(topo)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
    sweep = _parse_seeds(seeds) if seeds is not None else [seed]
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
    for topo in topos:
        check_run(topo, data, config)
    runs = [(t, s) for t in topos for s in sweep]
    if len(runs) == 1:
        with training_progress("training", data.metric):
            infos = [_train(topos[0], data, replace(recipe, seed=sweep[0]))]
    else:
        with training_progress(f"training {len(runs)} together", data.metric):
            infos = _train_together(runs, data, config)
    if as_json:
        print(json.dumps(infos[0] if len(infos) == 1 else infos, indent=2))
    else:
        for info in infos:
            _print_result(info)
    if any(info["status"] == "diverged" for info in infos):
        raise typer.Exit(1)


MAX_SWEEP = 4096
"""Most seeds one ``--seeds`` sweep trains together."""


def _parse_seeds(text: str) -> list[int]:
    """``0-7`` or ``1,5,9`` (or both: ``0-3,10``) as a list of distinct seeds."""
    out: list[int] = []
    try:
        for part in text.split(","):
            first, dash, last = part.strip().partition("-")
            low, high = int(first), int(last) if dash else int(first)
            if not 0 <= low <= high <= MAX_SEED or high - low + len(out) >= MAX_SWEEP:
                raise ValueError
            out += range(low, high + 1)
    except ValueError:
        raise UserError(
            f"--seeds: {text!r} is not a list of at most {MAX_SWEEP} seeds in 0..{MAX_SEED} like 0-7 or 1,5,9"
        ) from None
    if not out or len(set(out)) != len(out):
        raise UserError(f"--seeds: {text!r} names no seed, or a seed twice")
    return out


def _train_together(runs: list[tuple[Any, int]], data: Any, config: Any) -> list[dict[str, Any]]:
    """Trains every ``(topology, seed)`` of ``runs`` fused and returns what ``train --json`` prints for each."""
    from skipsearch.nn import model_cost
    from skipsearch.tasks import reshape_for, seeded_model, train_batched

    start = time.perf_counter()
    models, costs = [], []
    for topo, seed in runs:
        reshape_for(data, topo.input_shape)  # data that does not fit fails before any work
        models.append(seeded_model(topo, seed))
        costs.append(model_cost(models[-1], topo.input_shape, latency=False))
    results = train_batched(models, data, config, seeds=[s for _, s in runs])
    wall = time.perf_counter() - start
    return [
        _info(topo, data, config, seed, cost, result, wall)
        for (topo, seed), cost, result in zip(runs, costs, results, strict=True)
    ]


def _train(topo: Any, data: Any, recipe: Any) -> dict[str, Any]:
    """Trains ``topo`` with ``recipe`` (a :class:`skipsearch.tasks.Recipe`) on ``data`` and returns
    what ``train --json`` prints."""
    start = time.perf_counter()
    run = recipe.train(topo, data)
    return _info(topo, data, recipe.train_config, recipe.seed, run.cost, run.result, time.perf_counter() - start)


def _info(topo: Any, data: Any, config: Any, seed: int, cost: Any, result: Any, wall: float) -> dict[str, Any]:
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
        "params": cost.params,
        "macs": cost.macs,
        "epochs": result.epochs_run,
        "train_seconds": round(result.train_seconds, 3),
        "wall_seconds": round(wall, 3),
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
