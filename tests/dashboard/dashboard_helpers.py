"""Shared data of the dashboard tests (the fixtures are in this folder's conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TINY = {
    "name": "dash-tiny",
    "seed": 5,
    "task": "mnist1d",
    "backbone": {
        "family": "mlp",
        "args": {"input_features": 40, "hidden": [16, 16, 16], "classes": 10, "residual": False},
    },
    "space": {"max_span": 2, "choices": ["off", "add", "concat"]},
    "objectives": ["accuracy:max", "macs:min"],
    "sampler": {"name": "random"},
    "training": {"epochs": 1, "batch_size": 256},
    "trials": 3,
}
"""The study of the dashboard tests: a tiny MLP, 1 epoch, 3 trials (a few seconds)."""


@dataclass(frozen=True)
class FinishedStudy:
    url: str
    name: str
    folder: Path


@dataclass(frozen=True)
class Dashboard:
    base: str
    study: FinishedStudy
    stderr: list[str]
