"""Bundles: one folder per topology with every export format, trained weights and a manifest.

``manifest.json`` records what is needed to train the topology again (task, task options, seed,
training settings), what that training measured, the study trial it came from (and the metrics the
trial recorded), checksums of the files and the versions of Python and the packages involved.
:func:`reproduce_bundle` retrains from the manifest and reports every metric's difference, and the
largest difference between the retrained and the bundled weights.

Reading a bundle (:func:`read_manifest`, :func:`reproduce_bundle`, :func:`load_bundle`) first checks
it: the manifest's shape, that the folder holds exactly the files the manifest lists, and every
file's SHA-256 against the manifest's. Nothing in the folder is parsed, loaded or run before that,
and ``model.py`` is executed only by :func:`load_bundle` (reproduction compares its text instead).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import math
import platform
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
import torch
from torch import fx

from skipsearch.errors import UserError
from skipsearch.export._export import ExportResult, example_input, train_recipe, write_model_files
from skipsearch.export._onnx import ATOL
from skipsearch.export._paths import OutputDir
from skipsearch.export._pytorch import load_source, pytorch_class_name, pytorch_source
from skipsearch.tasks import Recipe
from skipsearch.topology import Topology, write_graphml

BUNDLE_FORMAT = "skipsearch-bundle/1"
MANIFEST = "manifest.json"
STATE_DICT = "model.pt"
COMPARED = ("accuracy", "test_accuracy", "loss", "params", "macs", "flops", "epochs")
"""Metrics :func:`reproduce_bundle` compares (``train_seconds`` is a measurement of the machine, not the model)."""
_PACKAGES = ("torch", "numpy", "optuna", "sqlalchemy", "onnx", "onnxruntime", "onnxscript", "skipsearch")
BUNDLE_FILES = ("topology.json", "topology.graphml", "model.py", "model.pt", "model.torchscript.pt", "model.onnx")
"""The files a bundle holds besides its manifest, each listed in the manifest with its SHA-256."""
MAX_MANIFEST_BYTES = 1 << 20
"""A manifest is a few kilobytes; a bigger one is refused before it is parsed."""


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
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


_Sha256 = pydantic.constr(pattern=r"^[0-9a-f]{64}$")
_Metric = float | int | None | list[float | None]


class _Manifest(pydantic.BaseModel):
    """The fields of a manifest that reading a bundle relies on (others are kept as they are)."""

    model_config = pydantic.ConfigDict(extra="allow", strict=True)

    format: Literal["skipsearch-bundle/1"]
    name: str
    hash: str
    study: str | None = None
    trial: int | None = None
    task: str
    task_options: dict[str, Any]
    seed: int = pydantic.Field(ge=0, lt=2**32)  # numpy's seed range
    train_config: dict[str, Any]
    metrics: dict[str, _Metric]
    files: dict[str, _Sha256]  # type: ignore[valid-type]
    versions: dict[str, str | None] = {}

    @pydantic.field_validator("metrics")
    @classmethod
    def _compared_are_numbers(cls, value: dict[str, Any]) -> dict[str, Any]:
        """The metrics ``reproduce`` compares are numbers (or null); others (the curve) may be lists."""
        for key in COMPARED:
            if isinstance(value.get(key), list):
                raise ValueError(f"{key!r} must be a number or null, got a list")
        return value


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
    """What could not be compared (an unreadable state dict, other parameter names) or differs (a
    model file that computes something else)."""
    manifest_sha256: str | None = None
    """The manifest's own checksum: compare it with the one published with the bundle."""

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
            "manifest_sha256": self.manifest_sha256,
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
    """The bundle folder, its manifest and its topology, once the bundle is verified.

    Raises :class:`UserError` (one line naming the file) when the manifest is not a well-formed
    bundle manifest, when the folder holds a file the manifest does not list or lacks one it lists,
    when a file's SHA-256 differs from the manifest's, or when the topology's hash differs from it.
    """
    folder = Path(bundle)
    path = folder / MANIFEST
    if not path.exists():
        raise UserError(f"{bundle}: not a bundle (no {MANIFEST}); export a trial in the bundle format to make one")
    if path.is_symlink() or not path.is_file():
        raise UserError(f"{path}: not a plain file")
    manifest = _parse_manifest(path)
    _verify_files(folder, manifest["files"])
    topology_file = folder / "topology.json"
    topology = Topology.from_json(topology_file.read_text(encoding="utf-8"), source=str(topology_file))
    if topology.hash != manifest["hash"]:
        raise UserError(f"{topology_file}: hash {topology.hash} differs from the manifest's {manifest['hash']}")
    return folder, manifest, topology


def _parse_manifest(path: Path) -> dict[str, Any]:
    """The manifest as a dict, checked against :class:`_Manifest` (size first, then JSON, then shape)."""
    with path.open("rb") as file:
        raw = file.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise UserError(f"{path}: too big for a bundle manifest (at most {MAX_MANIFEST_BYTES:,} bytes)")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise UserError(f"{path}: cannot read the manifest (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: bad JSON, a number too long
        raise UserError(f"{path}: cannot read the manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise UserError(f"{path}: not a {BUNDLE_FORMAT} manifest")
    try:
        _Manifest.model_validate(manifest)
        Recipe.from_dict(manifest)  # the training settings
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        section = "" if exc.title == _Manifest.__name__ else "train_config."
        raise UserError(f"{path}: {section}{where}: {error['msg']}") from None
    return manifest


def _verify_files(folder: Path, recorded: dict[str, str]) -> None:
    """The folder holds exactly the manifest's files, as plain files, each with the recorded SHA-256."""
    for name in BUNDLE_FILES:
        if name not in recorded:
            raise UserError(f"{folder / MANIFEST}: lists no checksum of {name}")
    present = {p.name: p for p in folder.iterdir() if p.name != MANIFEST}
    unlisted = sorted(set(present) - set(recorded))
    if unlisted:
        raise UserError(f"{present[unlisted[0]]}: not listed in the bundle's {MANIFEST}")
    for name, expected in recorded.items():
        path = folder / name
        if name not in present:
            raise UserError(f"{path}: listed in the bundle's {MANIFEST} but missing")
        if path.is_symlink() or not path.is_file():
            raise UserError(f"{path}: not a plain file")
        actual = _checksum(path)
        if actual != expected:
            raise UserError(f"{path}: SHA-256 {actual} differs from the manifest's {expected}; the file was changed")


def load_bundle(bundle: str | Path, fmt: Literal["pytorch", "torchscript", "onnx"] = "pytorch") -> Any:
    """A verified bundle's model: ``pytorch`` (``model.py``'s class with ``model.pt`` loaded, eval mode),
    ``torchscript`` (the loaded ``model.torchscript.pt``) or ``onnx`` (an onnxruntime session).

    ``model.py`` is Python: it runs here, after its SHA-256 matched the manifest's. The checksums show
    that no file changed since the manifest was written, not who wrote the manifest.
    """
    folder, _, topology = read_manifest(bundle)
    if fmt == "pytorch":
        class_name = pytorch_class_name(_built(topology))
        model = load_source((folder / "model.py").read_text(encoding="utf-8"), class_name)
        model.load_state_dict(torch.load(folder / STATE_DICT, weights_only=True, map_location="cpu"))
        return model.eval()
    return load_bundle_file(folder, fmt)


def load_bundle_file(folder: Path, fmt: str) -> Any:
    """The TorchScript module or ONNX session of an already verified bundle folder."""
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, not this file
            return torch.jit.load(str(folder / "model.torchscript.pt"), map_location="cpu").eval()
    if fmt == "onnx":
        import onnxruntime

        return onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    raise UserError(f"{fmt!r}: a bundle holds the pytorch, torchscript and onnx formats")


def _built(topology: Topology) -> fx.GraphModule:
    from skipsearch.nn import build_model
    from skipsearch.topology import check_topology

    check_topology(topology)  # a manifest may name any topology: check the limits before allocating
    return build_model(topology)


def reproduce_bundle(bundle: str | Path, *, tolerance: float = 1e-6) -> Reproduction:
    """Retrains a verified bundle's topology from its manifest and compares metrics and weights with
    the bundle's; the model files must compute what the bundled weights compute."""
    folder, manifest, topology = read_manifest(bundle)
    recipe = Recipe.from_dict(manifest)  # checked by read_manifest
    model, metrics = train_recipe(topology, recipe)
    recorded = manifest.get("metrics") or {}
    rows = [MetricDifference(k, recorded.get(k), metrics.get(k)) for k in COMPARED]
    saved, problems = _saved_weights(folder / STATE_DICT, model.state_dict())
    weights = None
    if saved is not None:
        weights = _max_difference(saved, model.state_dict())
        problems += _model_file_problems(folder, manifest, topology, saved)
    return Reproduction(folder, manifest, rows, weights, tolerance, problems, _checksum(folder / MANIFEST))


def _saved_weights(path: Path, current: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor] | None, list[str]]:
    """The bundled state dict, or what prevented reading it."""
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # empty, truncated or not a tensor file
        return None, [f"{path.name} is unreadable ({type(exc).__name__})"]
    if not isinstance(saved, dict) or set(saved) != set(current):
        return None, [f"{path.name} does not hold this topology's parameters"]
    return saved, []


def _max_difference(saved: dict[str, torch.Tensor], current: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between the bundled and the retrained weights."""
    gaps = [(saved[k].double() - current[k].double().cpu()).abs().max().item() for k in saved if saved[k].numel()]
    return max(gaps, default=0.0)


def _model_file_problems(
    folder: Path, manifest: dict[str, Any], topology: Topology, saved: dict[str, torch.Tensor]
) -> list[str]:
    """How the bundle's model files differ from the model its topology and weights make.

    ``model.py`` is compared as text with the source this skipsearch writes (not run: a bundle from
    elsewhere is data until it is loaded on purpose); TorchScript and ONNX must compute its outputs.
    """
    model = _built(topology)
    model.load_state_dict(saved)
    model.eval()
    problems = []
    writer = (manifest.get("versions") or {}).get("skipsearch")
    if writer == package_versions()["skipsearch"]:
        source, _ = pytorch_source(model, topology, stem="model")
        if (folder / "model.py").read_text(encoding="utf-8") != source:
            problems.append("model.py is not the source skipsearch writes for this topology")
    example = example_input(topology)
    with torch.no_grad():
        expected = model(example)
        for name, run in (("model.torchscript.pt", _run_torchscript), ("model.onnx", _run_onnx)):
            try:
                got = run(folder, example)
            except Exception as exc:  # a file that loads as something else, or not at all
                problems.append(f"{name} does not run ({type(exc).__name__})")
                continue
            if got.shape != expected.shape or not torch.allclose(expected, got, atol=ATOL, rtol=0):
                problems.append(f"{name} computes other outputs than the bundled weights")
    return problems


def _run_torchscript(folder: Path, example: torch.Tensor) -> torch.Tensor:
    return load_bundle_file(folder, "torchscript")(example)


def _run_onnx(folder: Path, example: torch.Tensor) -> torch.Tensor:
    session = load_bundle_file(folder, "onnx")
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: example.numpy()})[0])
