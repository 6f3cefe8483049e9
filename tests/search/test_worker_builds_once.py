"""A worker builds the study's backbone, search space and sampler once, for sampler and objective alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from study_helpers import tiny_study

from skipsearch.search import _samplers, _study, create_study, parse_study_config, run_worker
from skipsearch.search._config import BackboneConfig


@pytest.mark.slow  # trains one tiny trial
def test_one_backbone_and_one_sampler_per_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'once.db'}"
    sampler = {"name": "predictor", "options": {"n_startup_trials": 2, "n_candidates": 10}}
    config = parse_study_config(tiny_study("once", sampler=sampler, trials=1), "once.yaml")
    counts = {"backbone": 0, "sampler": 0}
    build, make = BackboneConfig.build, _samplers.make_sampler

    def counted_build(self: BackboneConfig) -> Any:
        counts["backbone"] += 1
        return build(self)

    def counted_make(*args: Any, **kwargs: Any) -> Any:
        counts["sampler"] += 1
        return make(*args, **kwargs)

    monkeypatch.setattr(BackboneConfig, "build", counted_build)
    monkeypatch.setattr(_study, "make_sampler", counted_make)
    create_study(config, url)
    assert counts == {"backbone": 1, "sampler": 1}  # the sampler and the reference point share one space
    counts.update(backbone=0, sampler=0)
    study = run_worker(url, "once")
    assert len(study.trials) == 1
    assert counts == {"backbone": 1, "sampler": 1}
