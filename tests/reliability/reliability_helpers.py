"""Shared by the reliability suite: study settings, real worker processes and the checks that say
"nothing was lost"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from skipsearch.results import connect, evaluations
from skipsearch.search import counted_trials, migrate_storage, open_storage, parse_study_config

REPO = Path(__file__).resolve().parents[2]

SLOW = {
    "name": "slow",
    "seed": 0,
    "task": {"name": "teacher", "options": {"train_size": 2000, "val_size": 200, "test_size": 200}},
    "backbone": {
        "family": "mlp",
        "args": {"input_features": 20, "hidden": [64, 64, 64, 64], "classes": 10, "residual": False},
    },
    "space": {"max_span": 2, "choices": ["off", "add"]},
    "objectives": ["accuracy:max", "macs:min"],
    "sampler": {"name": "random"},
    "early_stopping": {"enabled": False},
    "training": {"epochs": 3, "batch_size": 32, "threads": 1},
    "trials": 8,
    "execution": {"heartbeat_interval": 1, "grace_period": 3, "threads_per_worker": 1, "dedupe": False},
}
"""Trials of a second or more (a 4-layer MLP, 3 epochs at batch 32): long enough to kill one mid-trial."""

SHORT = {
    **SLOW,
    "name": "short",
    "task": {"name": "teacher", "options": {"train_size": 200, "val_size": 100, "test_size": 100}},
    "backbone": {"family": "mlp", "args": {"input_features": 20, "hidden": [8, 8], "classes": 10, "residual": False}},
    "objectives": ["accuracy:max"],
    "training": {"epochs": 1, "batch_size": 100, "threads": 1},
    "execution": {"heartbeat_interval": 2, "grace_period": 20, "threads_per_worker": 1, "dedupe": False},
}
"""Trials of a fraction of a second through the full worker path (sample, build, cost, train, record)."""


def skipsearch_command() -> list[str]:
    """The installed ``skipsearch`` console script (what compose runs), else ``python -m skipsearch``."""
    script = Path(sys.executable).with_name("skipsearch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "skipsearch"]


def create(url: str, config: dict, name: str | None = None) -> str:
    """Sets up the storage and the study, as the compose ``migrate`` service does."""
    created = migrate_storage(url, parse_study_config(config, f"{config['name']}.yaml"), name)
    assert created is not None
    return created


class Processes:
    """Worker processes of one test; every one still alive is killed at tear-down."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.logs / f"proc{len(self.procs)}.log"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with log.open("wb") as out:
            proc = subprocess.Popen(list(args), env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=self.logs)
        proc.log = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def worker(self, url: str, study: str, *extra: str) -> subprocess.Popen[bytes]:
        command = [*skipsearch_command(), "worker", "--study", study, "--quiet", *extra]
        return self.start(command, {"SKIPSEARCH_STORAGE": url})

    def wait(self, procs: Sequence[subprocess.Popen[bytes]] | None = None, timeout: float = 240) -> list[int]:
        deadline = time.monotonic() + timeout
        codes = []
        for proc in procs if procs is not None else self.procs:
            codes.append(proc.wait(timeout=max(1.0, deadline - time.monotonic())))
        return codes

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def output(proc: subprocess.Popen[bytes]) -> str:
    return proc.log.read_text(errors="replace")  # type: ignore[attr-defined]


def trials(url: str, study: str) -> list[FrozenTrial]:
    storage = open_storage(url, heartbeat_interval=None)
    try:
        return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()


def assert_nothing_lost(url: str, study: str, target: int) -> list[FrozenTrial]:
    """No trial RUNNING, every COMPLETE trial has its results row, the target reached."""
    stored = trials(url, study)
    assert not [t.number for t in stored if t.state == TrialState.RUNNING]
    engine = connect(url)
    try:
        rows = evaluations(engine, [study])
    finally:
        engine.dispose()
    complete = sorted(t.number for t in stored if t.state == TrialState.COMPLETE)
    assert sorted(rows.loc[rows["state"] == "COMPLETE", "trial_number"].tolist()) == complete
    assert counted_trials(stored) >= target
    return stored


def no_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" not in text
