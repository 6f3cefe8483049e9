"""Exporting topologies and study trials: topology files, standalone PyTorch code, TorchScript, ONNX,
trained weights, and reproducible bundles.

``select_trial`` picks a trial of a stored study (Pareto rank, knee, trial number or hash);
``export_topology`` writes one format into an output folder (never outside it: see
:mod:`skipsearch.export._paths`); ``write_bundle`` and ``reproduce_bundle`` make and check a folder
that holds everything needed to use and retrain a topology, and ``load_bundle`` loads its model once
every file matched the manifest's checksum. Commands: docs/export.md.
"""

from skipsearch.export._bundle import (
    BUNDLE_FORMAT,
    MetricDifference,
    Reproduction,
    load_bundle,
    package_versions,
    read_manifest,
    reproduce_bundle,
    write_bundle,
)
from skipsearch.export._export import (
    FORMATS,
    TRAINED_FORMATS,
    ExportResult,
    example_input,
    export_model,
    export_topology,
    train_recipe,
)
from skipsearch.export._paths import OutputDir, resolve_output, slug
from skipsearch.export._pytorch import load_source, pytorch_source
from skipsearch.export._select import SelectedTrial, describe, knee_index, objectives_of, select_trial
from skipsearch.tasks import Recipe

__all__ = [
    "BUNDLE_FORMAT",
    "FORMATS",
    "TRAINED_FORMATS",
    "ExportResult",
    "MetricDifference",
    "OutputDir",
    "Recipe",
    "Reproduction",
    "SelectedTrial",
    "describe",
    "example_input",
    "export_model",
    "export_topology",
    "knee_index",
    "load_bundle",
    "load_source",
    "objectives_of",
    "package_versions",
    "pytorch_source",
    "read_manifest",
    "reproduce_bundle",
    "resolve_output",
    "select_trial",
    "slug",
    "train_recipe",
    "write_bundle",
]
