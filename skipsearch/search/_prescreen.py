"""``sampler: {name: ..., prescreen: {probe: P, candidates: M}}``: score M proposals without
training, train the best.

:class:`PrescreenSampler` wraps the study's sampler. For each trial it draws ``M`` complete
parameter sets from that sampler (its relative proposal, the gaps filled by its independent
sampling: random during a sampler's start-up trials), builds each topology's model from the
study seed exactly as the objective will, scores it with the probe on the study's probe batch
(:func:`skipsearch.tasks.probe_batch`), and hands the best-scoring one to the trial. Topologies
the study has already evaluated are passed over while others remain (the objective would only
reuse their result). The trial records what the pre-screen saw in the ``prescreen`` user attribute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from skipsearch import metrics as schema
from skipsearch.nn import cpu_threads
from skipsearch.tasks import compute_probes, probe_batch, seeded_model
from skipsearch.topology import Topology

PRESCREEN_ATTR = "prescreen"
"""Trial user attribute: ``{"probe", "candidates", "score", "scores"}`` of the pre-screen."""


class PrescreenSampler(optuna.samplers.BaseSampler):
    """Proposes ``candidates`` parameter sets with ``base`` and returns the one ``score`` likes best.

    ``score(topology)`` returns the probe value (``None`` when undefined: ranked last);
    ``maximize`` is the probe's natural direction.
    """

    def __init__(
        self,
        base: optuna.samplers.BaseSampler,
        params_to_topology: Callable[[dict[str, Any]], Topology],
        search_space: Mapping[str, CategoricalDistribution],
        score: Callable[[Topology], float | None],
        *,
        probe: str,
        candidates: int,
        maximize: bool = True,
    ) -> None:
        self.base = base
        self.params_to_topology = params_to_topology
        self.search_space = dict(search_space)
        self.score = score
        self.probe = probe
        self.candidates = candidates
        self.maximize = maximize

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self.search_space)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        seen = {t.user_attrs.get("hash") for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
        proposals: list[tuple[dict[str, Any], Topology]] = []
        for _ in range(self.candidates):
            params = self._propose(study, trial)
            proposals.append((params, self.params_to_topology(params)))
        fresh = [p for p in proposals if p[1].hash not in seen] or proposals
        scored = [(self.score(topology), params) for params, topology in fresh]
        best = max(range(len(scored)), key=lambda i: _rank_key(scored[i][0], self.maximize))
        value, params = scored[best]
        study._storage.set_trial_user_attr(
            trial._trial_id,
            PRESCREEN_ATTR,
            {
                "probe": self.probe,
                "candidates": len(proposals),
                "score": value,
                "scores": [s for s, _ in scored],
            },
        )
        return params

    def _propose(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        params = dict(self.base.sample_relative(study, trial, self.base.infer_relative_search_space(study, trial)))
        for name, distribution in self.search_space.items():
            if name not in params:
                params[name] = self.base.sample_independent(study, trial, name, distribution)
        return params

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


def _rank_key(value: float | None, maximize: bool) -> float:
    if value is None or math.isnan(value):
        return -math.inf
    return value if maximize else -value


def probes_scorer(
    names: Sequence[str],
    batch: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    seed: int,
    threads: int | None = None,
) -> Callable[[Topology], dict[str, float | None]]:
    """``score(topology)``: the probes ``names`` of the model the objective would build (seeded with
    ``seed``) on the probe batch (``batch()``, read on first use); the global random state is left
    as it was."""
    cached: list[tuple[torch.Tensor, torch.Tensor]] = []

    def score(topology: Topology) -> dict[str, float | None]:
        if not cached:
            cached.append(batch())
        x, y = cached[0]
        with torch.random.fork_rng(devices=[]), cpu_threads(threads):
            return compute_probes(seeded_model(topology, seed), x, y, list(names))

    return score


def probe_scorer(
    probe: str, batch: Callable[[], tuple[torch.Tensor, torch.Tensor]], seed: int, threads: int | None = None
) -> Callable[[Topology], float | None]:
    """:func:`probes_scorer` of one probe, returning its value."""
    scores = probes_scorer([probe], batch, seed, threads)
    return lambda topology: scores(topology)[probe]


def prescreened(
    base: optuna.samplers.BaseSampler,
    params_to_topology: Callable[[dict[str, Any]], Topology],
    search_space: Mapping[str, CategoricalDistribution],
    *,
    probe: str,
    candidates: int,
    data: Callable[[], Any],
    input_shape: Sequence[int],
    seed: int,
    threads: int | None = None,
) -> PrescreenSampler:
    """``base`` wrapped in a :class:`PrescreenSampler` scoring ``probe`` on the probe batch of the
    task data ``data()`` (loaded when the first trial is sampled, not when the sampler is made)."""
    metric = schema.get(probe)
    return PrescreenSampler(
        base,
        params_to_topology,
        search_space,
        probe_scorer(probe, lambda: probe_batch(data(), input_shape, seed), seed, threads),
        probe=probe,
        candidates=candidates,
        maximize=metric is None or metric.direction != "min",
    )
