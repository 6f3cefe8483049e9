"""Deduplication reuses a trial's metrics only when it trained the same topology with the same seed."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from study_helpers import tiny_study

from skipsearch.search import SearchSpace, create_study, parse_study_config, run_worker

ONE_EDGE = {"edges": [{"src": "h1", "dst": "h3"}], "choices": ["off", "add"]}
"""Two topologies in all (the edge off or on): a few trials must repeat one."""


@pytest.mark.slow
def test_a_topology_trained_with_another_seed_is_trained_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    config = parse_study_config(tiny_study("dedupe-seed", space=ONE_EDGE, trials=1, seed=5), "s.yaml")
    study = run_worker(url, create_study(config, url).study_name)
    first = study.trials[0]
    space = SearchSpace(config.backbone.build(), config.space)
    # Both topologies as a seed-4 run would have left them, with a value no seed-5 run reaches.
    storage_study = optuna.load_study(study_name=study.study_name, storage=url)
    for choice in first.distributions["h1->h3"].choices:
        params = {**first.params, "h1->h3": choice}
        storage_study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=first.distributions,
                values=[0.999, first.values[1]],
                user_attrs={"hash": space.topology_from_params(params).hash, "seed": 4, "accuracy": 0.999},
                state=TrialState.COMPLETE,
            )
        )
    study = run_worker(url, study.study_name, target=5)
    ours = [t for t in study.trials if t.user_attrs.get("seed") == 5]
    assert len(ours) == 3  # trial 0, then two after the forged pair (the target counts all five)
    for trial in ours:
        assert trial.user_attrs["accuracy"] != 0.999
        if "reused_from" in trial.user_attrs:
            assert study.trials[trial.user_attrs["reused_from"]].user_attrs["seed"] == 5
