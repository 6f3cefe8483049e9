"""Fitting the predictor in a child process: the same predictor as in-process, one result behind,
deterministic, and a dead child falls back to fitting in-process."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from skipsearch.nn import cpu_threads
from skipsearch.predictor import FitConfig, PredictorSampler, fit_predictor
from skipsearch.predictor._background import BackgroundFit
from skipsearch.search import SearchSpace
from skipsearch.search._config import SpaceConfig
from skipsearch.topology import Topology, families

FAST = FitConfig(members=2, hidden=16, layers=2, epochs=20)


def _space() -> SearchSpace:
    backbone = families.mlp(40, [16, 16, 16, 16], 10, act="tanh", residual=False, name="m")
    return SearchSpace(backbone, SpaceConfig(max_span=2, choices=["off", "add", "concat"]))


def _score(topology: Topology) -> tuple[float, float]:
    active = [e for e in topology.skips if e.active]
    return len([e for e in active if e.kind == "add"]) / 10, float(len(active))


def test_child_fits_the_same_predictor_and_a_dead_child_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    topologies = _space().random_topologies(6, seed=1)
    targets = np.random.default_rng(0).random((6, 1))
    background = BackgroundFit()
    assert background.submit(frozenset({7}), (topologies, targets, ["accuracy"], FAST, None, ()))
    assert background.pending == frozenset({7})
    done = background.result()
    assert done is not None and done[0] == frozenset({7}) and background.pending is None
    with cpu_threads(1):
        here = fit_predictor(topologies, targets, ["accuracy"], FAST)
    np.testing.assert_array_equal(done[1].predict(topologies)[0], here.predict(topologies)[0])

    assert background._child is not None
    background._child.process.kill()
    background._child.process.wait()
    if background.submit(frozenset({8}), (topologies, targets, ["accuracy"], FAST, None, ())):
        assert background.result() is None  # the write reached the pipe before the child was reaped
    assert "background predictor fit" in caplog.text


def _run(n_trials: int) -> tuple[optuna.Study, PredictorSampler]:
    space = _space()
    dists = {c.param: CategoricalDistribution(c.choices) for c in space.candidates}
    sampler = PredictorSampler(
        space.topology_from_params,
        dists,
        ["accuracy", "macs"],
        n_startup_trials=3,
        n_candidates=30,
        fit_config=FAST,
        seed=5,
        background_fit=True,
    )
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(lambda trial: _score(space.sample(trial)), n_trials=n_trials)
    return study, sampler


def test_picks_use_the_fit_one_result_behind_and_repeat_exactly() -> None:
    study, sampler = _run(7)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    # trial 6 was picked with the fit on trials 0-4 (run while trial 5 trained) and started one on 0-5
    assert sampler._fitted_on == frozenset(range(5))
    assert sampler._background is not None and sampler._background.pending == frozenset(range(6))
    again, _ = _run(7)
    assert [t.params for t in again.trials] == [t.params for t in study.trials]


def test_a_dead_child_leaves_the_sampler_fitting_in_process() -> None:
    study, sampler = _run(5)
    assert sampler._background is not None and sampler._background._child is not None
    sampler._background._child.process.kill()
    sampler._background._child.process.wait()
    space = _space()
    study.optimize(lambda trial: _score(space.sample(trial)), n_trials=2)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert sampler._background is None and sampler._fitted_on == frozenset(range(6))
