"""A tiny real study, shared by the tests that need finished trials: seconds to run."""

from __future__ import annotations

from typing import Any

import optuna

TINY_STUDY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "task": "mnist1d",
    "backbone": {
        "family": "mlp",
        "args": {"input_features": 40, "hidden": [16, 16, 16], "classes": 10, "residual": False},
    },
    "space": {"max_span": 2, "choices": ["off", "add", "concat"]},
    "objectives": ["accuracy:max", "macs:min"],
    "sampler": {"name": "random"},
    "training": {"epochs": 1, "batch_size": 256},
    "trials": 4,
}
"""A 3-layer MLP of width 16 on mnist1d, skip edges up to span 2 (off/add/concat), 1 epoch a trial."""


def tiny_study(name: str, **changes: Any) -> dict[str, Any]:
    """The tiny study's mapping under ``name``, with top-level keys replaced by ``changes``."""
    return {**TINY_STUDY, "name": name, **changes}


def run_study(url: str, data: dict[str, Any], name: str | None = None) -> optuna.Study:
    """Creates the study of ``data`` in ``url`` (as ``name``, default its own) and runs all its trials."""
    from skipsearch.search import create_study, parse_study_config, run_worker

    study = create_study(parse_study_config(data, f"{data['name']}.yaml"), url, name)
    return run_worker(url, study.study_name)
