"""Optuna's own sampler conformance suite (``optuna.testing.pytest_samplers``) run against the
predictor sampler.

Optuna's tests suggest parameters of every distribution type, none of them the sampler's own
topology parameters: the sampler must leave those to its random fallback, never fail, return
values inside each distribution, and handle single- and multi-objective studies, NaN objectives,
conditional and partially fixed parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase, MultiObjectiveSamplerTestCase

from skipsearch.predictor import FitConfig, PredictorSampler
from skipsearch.search import SearchSpace
from skipsearch.search._config import SpaceConfig
from skipsearch.topology import families

FAST = FitConfig(members=2, hidden=16, layers=2, epochs=10)


def _predictor_sampler() -> BaseSampler:
    backbone = families.mlp(40, [16, 16, 16], 10, act="tanh", residual=False, name="m")
    space = SearchSpace(backbone, SpaceConfig(max_span=2, choices=["off", "add"]))
    dists = {c.param: CategoricalDistribution(c.choices) for c in space.candidates}
    return PredictorSampler(
        space.topology_from_params, dists, n_startup_trials=3, n_candidates=10, fit_config=FAST, seed=0
    )


class TestPredictorSampler(BasicSamplerTestCase, MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return _predictor_sampler
