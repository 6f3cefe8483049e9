"""From a training run to its metrics: the one place that names what a run measured.

A study trial stores these as user attributes (then results columns), an export puts them in its
summary and a bundle's manifest; NaN and infinities (a diverged run) become ``None``.
"""

from __future__ import annotations

from typing import Any

from skipsearch.tasks._metrics import finite_or_none
from skipsearch.tasks._train import TrainResult


def training_metrics(result: TrainResult) -> dict[str, Any]:
    """``accuracy`` (the validation metric), ``test_accuracy``, ``loss`` (validation), ``train_seconds``,
    ``epochs`` and ``curve`` (the validation metric after each epoch) of a training run."""
    return {
        "accuracy": finite_or_none(result.val_metric),
        "test_accuracy": finite_or_none(result.test_metric),
        "loss": finite_or_none(result.val_loss),
        "train_seconds": finite_or_none(result.train_seconds),
        "epochs": result.epochs_run,
        "curve": [finite_or_none(v) for v in result.curve],
    }
