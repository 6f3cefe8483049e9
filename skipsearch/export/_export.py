"""``export_topology``: one topology to one format, every file inside the output folder.

Formats that carry weights (``pytorch``, ``torchscript``, ``onnx``) export the model as built from the
seed, or with a given state dict; ``weights`` and ``bundle`` train it first with a :class:`Recipe`
(a study's own settings reproduce its trial). Every model file is checked against the PyTorch model
before the export returns: the ``.py`` file's class, the TorchScript module and the ONNX graph (run
by onnxruntime) must all compute the same outputs (atol 1e-4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import fx

from skipsearch.errors import FieldError, UserError
from skipsearch.export._onnx import write_onnx, write_torchscript
from skipsearch.export._paths import OutputDir, resolve_output, slug
from skipsearch.export._pytorch import check_source, pytorch_class_name, pytorch_source
from skipsearch.tasks import Recipe, check_run, check_task_size, seeded_model, training_metrics
from skipsearch.topology import Topology, check_topology, write_graphml

FORMATS = ("json", "graphml", "pytorch", "torchscript", "onnx", "weights", "bundle")
TRAINED_FORMATS = ("weights", "bundle")
"""Formats that train the topology, and so need a :class:`Recipe` (a study's, or a task's defaults)."""


@dataclass
class ExportResult:
    """The files an export wrote, and the metrics of its training run (``weights`` and ``bundle``)."""

    files: list[Path] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    class_name: str | None = None
    """The model class of a ``pytorch`` export's ``.py`` file."""


def export_topology(
    topology: Topology,
    fmt: str,
    output: str | Path | OutputDir,
    *,
    name: str | None = None,
    recipe: Recipe | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
    dynamo: bool = False,
    provenance: dict[str, Any] | None = None,
) -> ExportResult:
    """Writes ``topology`` in format ``fmt`` (one of :data:`FORMATS`) into the folder ``output``.

    File names start with ``slug(name or topology.name)``. A relative ``output`` must lie inside the
    current directory. ``recipe`` is required by ``weights`` and ``bundle``; its seed (else ``seed``)
    sets the initial weights of the other formats unless ``state_dict`` gives them. ``provenance``
    (study, trial, recorded metrics) goes into a bundle's manifest.
    """
    if fmt not in FORMATS:
        raise FieldError("format", repr(fmt), f"unknown format (known: {', '.join(FORMATS)})")
    if fmt in TRAINED_FORMATS and recipe is None:
        raise FieldError("format", fmt, "trains the topology: give a task (or export a trial of a study)")
    if fmt not in ("json", "graphml"):  # the others build (and maybe train) the model: check first
        check_topology(topology)
    out = output if isinstance(output, OutputDir) else OutputDir(resolve_output(output))
    stem = slug(name or topology.name)
    if fmt == "bundle":
        from skipsearch.export._bundle import write_bundle

        return write_bundle(topology, out, recipe=recipe, name=stem, provenance=provenance, dynamo=dynamo)  # type: ignore[arg-type]
    if fmt == "json":
        return ExportResult([out.write_text(f"{stem}.json", topology.to_json() + "\n")])
    if fmt == "graphml":
        path = out.path(f"{stem}.graphml")
        write_graphml(topology, path)
        return ExportResult([path])
    if fmt == "weights":
        assert recipe is not None
        model, metrics = train_recipe(topology, recipe)
        path = out.path(f"{stem}.weights.pt")
        torch.save(model.state_dict(), path)
        return ExportResult([path], metrics)
    model = export_model(topology, recipe.seed if recipe else seed, state_dict)
    files = write_model_files(model, topology, fmt, out, stem, dynamo=dynamo)
    return ExportResult(files, class_name=pytorch_class_name(model) if fmt == "pytorch" else None)


def export_model(topology: Topology, seed: int, state_dict: dict[str, torch.Tensor] | None = None) -> fx.GraphModule:
    """The built model in eval mode: initial weights from ``seed``, or ``state_dict``'s."""
    model = seeded_model(topology, seed)
    if state_dict is not None:
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise FieldError(
                "weights", None, f"the state dict does not fit topology {topology.name!r}: {first}"
            ) from None
    return model.eval()


def example_input(topology: Topology, batch: int = 2) -> torch.Tensor:
    """A fixed random batch that the export checks run (the same one every time)."""
    return torch.randn(batch, *topology.input_shape, generator=torch.Generator().manual_seed(0))


def write_model_files(
    model: fx.GraphModule, topology: Topology, fmt: str, out: OutputDir, stem: str, *, dynamo: bool = False
) -> list[Path]:
    """Writes one model format (``pytorch``: the ``.py`` file and its state dict next to it)."""
    example = example_input(topology)
    model.eval()
    if fmt == "pytorch":
        source, class_name = pytorch_source(model, topology, stem=stem)
        check_source(source, class_name, model, example)
        weights = out.path(f"{stem}.pt")
        torch.save(model.state_dict(), weights)
        return [out.write_text(f"{stem}.py", source), weights]
    if fmt == "torchscript":
        path = out.path(f"{stem}.torchscript.pt")
        write_torchscript(model, example, path)
        return [path]
    if fmt == "onnx":
        path = out.path(f"{stem}.onnx")
        write_onnx(model, example, path, dynamo=dynamo)
        return [path]
    raise FieldError("format", repr(fmt), "not a model format")


def train_recipe(topology: Topology, recipe: Recipe) -> tuple[fx.GraphModule, dict[str, Any]]:
    """Trains ``topology`` with ``recipe`` exactly as a study trial does; returns model and metrics."""
    config = recipe.train_config
    check_task_size(recipe.task, recipe.task_options, epochs=config.epochs)
    data = recipe.load_data()
    check_run(topology, data, config)
    run = recipe.train(topology, data)
    result, cost = run.result, run.cost
    if result.status == "diverged":
        raise UserError(f"training {topology.name!r} diverged: {result.reason}")
    measured = training_metrics(result)  # what a study trial stores, in the manifest's order:
    metrics = {k: measured[k] for k in ("accuracy", "test_accuracy", "loss")}
    metrics |= {"params": cost.params, "macs": cost.macs, "flops": cost.flops, "epochs": measured["epochs"]}
    metrics |= {"train_seconds": round(result.train_seconds, 3), "curve": measured["curve"]}
    # Exports, checks and saved state dicts live on the CPU, wherever training ran.
    return run.model.cpu().eval(), metrics
