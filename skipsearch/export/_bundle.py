"""Bundles: one folder per topology with every export format, trained weights and a manifest.

``manifest.json`` records what is needed to train the topology again (task, task options, seed,
training settings), what that training measured, the study trial it came from (and the metrics the
trial recorded), checksums of the files and the versions of Python and the packages involved.
:func:`reproduce_bundle` retrains from the manifest and reports every metric's difference, and the
largest difference between the retrained and the bundled weights.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from skipsearch.errors import UserError
from skipsearch.export._export import ExportResult, train_recipe, write_model_files
from skipsearch.export._paths import OutputDir
from skipsearch.export._select import Recipe
from skipsearch.topology import Topology, write_graphml

BUNDLE_FORMAT = "skipsearch-bundle/1"
MANIFEST = "manifest.json"
STATE_DICT = "model.pt"
COMPARED = ("accuracy", "test_accuracy", "loss", "params", "macs", "flops", "epochs")
"""Metrics :func:`reproduce_bundle` compares (``train_seconds`` is a measurement of the machine, not the model)."""
_PACKAGES = ("torch", "numpy", "optuna", "sqlalchemy", "onnx", "onnxruntime", "onnxscript", "skipsearch")


def write_bundle(
    topology: Topology,
    output: OutputDir,
    *,
    recipe: Recipe,
    name: str,
    provenance: dict[str, Any] | None = None,
    dynamo: bool = False,
) -> ExportResult:
    """Trains ``topology`` with ``recipe`` and writes the folder ``output/name/`` (see the module docstring)."""
    folder = output.subdir(name)
    model, metrics = train_recipe(topology, recipe)
    files = [folder.write_text("topology.json", topology.to_json() + "\n")]
    graphml = folder.path("topology.graphml")
    write_graphml(topology, graphml)
    files.append(graphml)
    for fmt in ("pytorch", "torchscript", "onnx"):
        files += write_model_files(model, topology, fmt, folder, "model", dynamo=dynamo)
    manifest = {
        "format": BUNDLE_FORMAT,
        "name": topology.name,
        "hash": topology.hash,
        **(provenance or {"study": None, "trial": None}),
        **recipe.to_dict(),
        "metrics": metrics,
        "files": {p.name: _checksum(p) for p in files},
        "versions": package_versions(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    files.append(folder.write_json(MANIFEST, manifest))
    return ExportResult(files, metrics)


def package_versions() -> dict[str, str | None]:
    """Python's and the relevant packages' versions (``None`` for one not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class MetricDifference:
    name: str
    recorded: float | None
    reproduced: float | None

    @property
    def difference(self) -> float | None:
        if self.recorded is None or self.reproduced is None:
            return None
        return float(self.reproduced) - float(self.recorded)

    def within(self, tolerance: float) -> bool:
        if self.recorded is None or self.reproduced is None:
            return self.recorded is None and self.reproduced is None
        return math.isclose(float(self.reproduced), float(self.recorded), rel_tol=0, abs_tol=tolerance)


@dataclass
class Reproduction:
    """What :func:`reproduce_bundle` found: metric by metric, and the largest weight difference."""

    bundle: Path
    manifest: dict[str, Any]
    metrics: list[MetricDifference]
    weights_max_difference: float | None
    tolerance: float
    problems: list[str] = field(default_factory=list)
    """What could not be compared (a missing or unreadable state dict, other parameter names)."""

    @property
    def reproduced(self) -> bool:
        weights_ok = self.weights_max_difference is None or self.weights_max_difference <= self.tolerance
        return not self.problems and weights_ok and all(m.within(self.tolerance) for m in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "name": self.manifest.get("name"),
            "hash": self.manifest.get("hash"),
            "study": self.manifest.get("study"),
            "trial": self.manifest.get("trial"),
            "tolerance": self.tolerance,
            "reproduced": self.reproduced,
            "weights_max_difference": self.weights_max_difference,
            "problems": self.problems,
            "metrics": [
                {"name": m.name, "recorded": m.recorded, "reproduced": m.reproduced, "difference": m.difference}
                for m in self.metrics
            ],
        }


def read_manifest(bundle: str | Path) -> tuple[Path, dict[str, Any], Topology]:
    """The bundle folder, its manifest and its topology (checked against the manifest's hash)."""
    folder = Path(bundle)
    path = folder / MANIFEST
    if not path.is_file():
        raise UserError(f"{bundle}: not a bundle (no {MANIFEST}); make one with skipsearch export --format bundle")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read the manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise UserError(f"{path}: not a {BUNDLE_FORMAT} manifest")
    topology_file = folder / "topology.json"
    if not topology_file.is_file():
        raise UserError(f"{bundle}: the bundle has no topology.json")
    topology = Topology.from_json(topology_file.read_text(encoding="utf-8"), source=str(topology_file))
    if topology.hash != manifest.get("hash"):
        raise UserError(f"{topology_file}: hash {topology.hash} differs from the manifest's {manifest.get('hash')}")
    return folder, manifest, topology


def reproduce_bundle(bundle: str | Path, *, tolerance: float = 1e-6) -> Reproduction:
    """Retrains a bundle's topology from its manifest and compares metrics and weights with the bundle's."""
    folder, manifest, topology = read_manifest(bundle)
    try:
        recipe = Recipe.from_dict(manifest)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{folder / MANIFEST}: incomplete training recipe ({exc})") from None
    model, metrics = train_recipe(topology, recipe)
    recorded = manifest.get("metrics") or {}
    rows = [MetricDifference(k, recorded.get(k), metrics.get(k)) for k in COMPARED]
    weights, problems = _weights_difference(folder / STATE_DICT, model.state_dict())
    return Reproduction(folder, manifest, rows, weights, tolerance, problems)


def _weights_difference(path: Path, current: dict[str, torch.Tensor]) -> tuple[float | None, list[str]]:
    """Largest absolute difference between the bundled and the retrained weights, or what prevented it."""
    if not path.is_file():
        return None, [f"{path.name} is missing"]
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # empty, truncated or not a tensor file
        return None, [f"{path.name} is unreadable ({type(exc).__name__})"]
    if not isinstance(saved, dict) or set(saved) != set(current):
        return None, [f"{path.name} does not hold this topology's parameters"]
    gaps = [(saved[k].double() - current[k].double().cpu()).abs().max().item() for k in saved if saved[k].numel()]
    return max(gaps, default=0.0), []
