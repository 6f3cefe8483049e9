"""Shared data of the dashboard tests (the fixtures are in this folder's conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from study_helpers import tiny_study

TINY = tiny_study("dash-tiny", seed=5, trials=3)
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
