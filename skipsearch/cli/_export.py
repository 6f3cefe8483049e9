"""``skipsearch export`` and ``skipsearch reproduce``: models out of topologies and study trials."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from skipsearch.cli._common import DEFAULT_STORAGE, StorageOption, finite
from skipsearch.cli._progress import training_progress
from skipsearch.errors import UserError


class ExportFormat(StrEnum):
    json = "json"
    graphml = "graphml"
    pytorch = "pytorch"
    torchscript = "torchscript"
    onnx = "onnx"
    weights = "weights"
    bundle = "bundle"


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("reproduce")(reproduce)


def export(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="What to write.", show_default=False)],
    output: Annotated[Path, typer.Option(help="Folder to write into (a relative one must stay inside this one).")],
    topology: Annotated[
        str | None, typer.Argument(help="A preset name or a topology file (.json, .graphml); or give --study.")
    ] = None,
    storage: StorageOption = DEFAULT_STORAGE,
    study: Annotated[
        str | None, typer.Option(help="Export a trial of this study (choose it with one selector).")
    ] = None,
    rank: Annotated[
        int | None, typer.Option(help="The K-th member of the Pareto front (1 = best first objective).")
    ] = None,
    pick: Annotated[str | None, typer.Option(help="'knee': the Pareto front's knee point.")] = None,
    trial: Annotated[int | None, typer.Option(help="Trial number.")] = None,
    hash_: Annotated[str | None, typer.Option("--hash", help="Topology hash (or a prefix of 4+ digits).")] = None,
    task: Annotated[str | None, typer.Option(help="Task to train a TOPOLOGY on (weights, bundle).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of a TOPOLOGY's initial weights and training.")] = 0,
    epochs: Annotated[int | None, typer.Option(help="Epochs to train a TOPOLOGY (default: the task's).")] = None,
    weights: Annotated[
        Path | None,
        typer.Option(help="A state dict (.pt) to export instead of fresh weights (pytorch, torchscript, onnx)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Write a topology, or a trial of a study, as json, graphml, PyTorch code, TorchScript, ONNX, trained
    weights or a bundle of all of them (with a manifest that `skipsearch reproduce` retrains from)."""
    from skipsearch.export import TRAINED_FORMATS, Recipe, describe, export_topology, resolve_output, select_trial

    folder = resolve_output(output)  # before any work: a bad --output costs nothing
    selectors = {"--rank": rank, "--pick": pick, "--trial": trial, "--hash": hash_}
    chosen = [name for name, value in selectors.items() if value is not None]
    if pick is not None and pick != "knee":
        raise UserError(f"--pick {pick!r}: the only pick is 'knee'")
    if (topology is None) == (study is None):
        raise UserError("give a TOPOLOGY (preset or file) or --study NAME with --rank, --pick, --trial or --hash")
    selected = None
    if study is not None:
        if len(chosen) != 1:
            raise UserError("choose the trial with exactly one of --rank K, --pick knee, --trial N or --hash H")
        selected = select_trial(storage, study, rank=rank, knee=pick == "knee", trial=trial, hash=hash_)
        topo, name, recipe = selected.topology, selected.stem, selected.recipe
        if recipe is not None and (task is not None or epochs is not None):
            raise UserError("--task and --epochs apply to a TOPOLOGY; a study's trial trains with the study's settings")
        if recipe is None and task is not None:
            recipe = Recipe.for_task(task, seed, epochs=epochs)
    else:
        if chosen:
            raise UserError(f"{chosen[0]} selects a trial of a study: give --study NAME instead of a TOPOLOGY")
        from skipsearch.topology import load_topology

        if epochs is not None and task is None:
            raise UserError("--epochs sets the training of --task: give --task too")

        topo = load_topology(str(topology))
        name = topo.name
        recipe = Recipe.for_task(task, seed, epochs=epochs) if task is not None else None
    if fmt.value in TRAINED_FORMATS and recipe is None:
        raise UserError(f"--format {fmt.value} trains the topology: give --task (or export a trial of a study)")
    provenance = None
    if selected is not None:
        info = describe(selected)
        provenance = {**{k: info[k] for k in ("study", "trial", "selector", "state")}, "trial_metrics": info["metrics"]}
    with training_progress("retraining"):
        result = export_topology(
            topo,
            fmt.value,
            folder,
            name=name,
            recipe=recipe,
            state_dict=_load_weights(weights, fmt) if weights is not None else None,
            seed=seed,
            provenance=provenance,
        )
    summary = {
        "format": fmt.value,
        "topology": topo.name,
        "hash": topo.hash,
        "selection": describe(selected) if selected is not None else None,
        "files": [str(p) for p in result.files],
        "metrics": result.metrics,
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        _print_export(summary)


def _load_weights(path: Path, fmt: ExportFormat) -> dict[str, Any]:
    import torch

    if fmt.value in ("weights", "bundle", "json", "graphml"):
        raise UserError(f"--weights applies to the pytorch, torchscript and onnx formats, not {fmt.value}")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise UserError(f"--weights {str(path)!r}: no such file") from None
    except Exception as exc:  # pickle errors, a truncated file, a non-tensor payload
        raise UserError(f"--weights {str(path)!r}: not a state dict ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise UserError(f"--weights {str(path)!r}: not a state dict")
    return state


def _print_export(summary: dict[str, Any]) -> None:
    console = Console()
    selection = summary["selection"]
    if selection is not None:
        metrics = selection["metrics"]
        acc = metrics.get("accuracy")
        console.print(
            f"study {selection['study']}, trial {selection['trial']} ({selection['selector']}): "
            f"hash {selection['hash']}, accuracy {'-' if acc is None else f'{acc:.4f}'}, macs {metrics.get('macs')}"
        )
    for path in summary["files"]:
        console.print(f"wrote {_shown(Path(path))}", highlight=False)
    metrics = summary["metrics"]
    if metrics:
        console.print(
            f"trained: accuracy {_fmt(metrics['accuracy'])}, test accuracy {_fmt(metrics['test_accuracy'])}, "
            f"loss {_fmt(metrics['loss'])}, {metrics['epochs']} epochs in {metrics['train_seconds']:.1f} s"
        )


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def reproduce(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder (skipsearch export --format bundle).")],
    tolerance: Annotated[
        float,
        typer.Option(
            min=0, callback=finite, help="Largest difference of a metric (and a weight) still counted as equal."
        ),
    ] = 1e-6,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Retrain a bundle's topology from its manifest and report how far each metric (and the weights)
    lie from the bundle's. Exits with 1 when a difference exceeds --tolerance, and with 2 before any
    training when a file differs from the manifest's checksum."""
    from skipsearch.export import reproduce_bundle

    with training_progress("retraining"):
        report = reproduce_bundle(bundle, tolerance=tolerance)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_reproduction(report)
    if not report.reproduced:
        raise typer.Exit(1)


def _print_reproduction(report: Any) -> None:
    console = Console()
    manifest = report.manifest
    origin = f" (study {manifest['study']}, trial {manifest['trial']})" if manifest.get("study") else ""
    console.print(f"[bold]{manifest.get('name')}[/] {manifest.get('hash')}{origin}, task {manifest.get('task')}")
    console.print(f"every file matches manifest.json (sha256 {report.manifest_sha256})", highlight=False)
    table = Table("metric", "recorded", "reproduced", "difference", box=box.SIMPLE_HEAD)
    for row in report.metrics:
        diff = row.difference
        table.add_row(row.name, _cell(row.recorded), _cell(row.reproduced), "-" if diff is None else f"{diff:+.3g}")
    if report.weights_max_difference is not None:
        table.add_row("weights (max |diff|)", "", "", f"{report.weights_max_difference:.3g}")
    console.print(table)
    for problem in report.problems:
        console.print(f"[red]{problem}[/]")
    verdict = "reproduced" if report.reproduced else "NOT reproduced"
    console.print(f"{verdict} within tolerance {report.tolerance:g}")


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:.6g}"
