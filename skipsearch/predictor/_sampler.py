"""``sampler: predictor``: an Optuna sampler that trains only the candidates a graph predictor likes best.

After ``n_startup_trials`` random trials (finished or pruned), each new trial (re)fits the
predictor on the study's finished and pruned trials (only when some ended since the last fit; a
pruned trial counts with the values it had reached when stopped), proposes candidates (mutations
of the Pareto set and random ones), scores each by the hypervolume it would add at an optimistic
prediction (mean + ``exploration`` x ensemble std for predicted objectives; params, MACs and FLOPs
are computed exactly), and returns the best one not already taken.

Trials asked in a row under one fit (a batched worker's group, or a worker whose last trial was
pruned) share one scored pool: each pick's optimistic point joins the observed ones as if it were
already measured (the "believer" heuristic of batch Bayesian optimisation), so the next pick is
ranked by what it adds beyond the pending ones. A group of K trials costs one fit and one pool
instead of K, and its members spread over the front instead of crowding one spot of it.

With ``background_fit`` the fit runs in a child process (:mod:`._background`) while the trials it
will not see yet train, so a pick waits for no fit but uses one that is a trial (or a group) behind.

Several workers share a study: a candidate whose topology hash is already claimed by another
trial (finished, running or waiting) is skipped. A trial claims its hash in a system attribute
before its objective runs and gives it up when another trial claims the same hash, so two workers
racing for one topology back off instead of training it twice; the objective's dedupe stays as
the backstop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from skipsearch.nn import cpu_threads
from skipsearch.predictor._background import BackgroundFit, FitInputs
from skipsearch.predictor._train import FitConfig, Predictor, fit_predictor
from skipsearch.results import front_mask, hypervolume_improvements
from skipsearch.topology import Topology, topology_cost

CLAIM_ATTR = "predictor:hash"
"""Trial system attribute: the topology hash a predictor-proposed trial will evaluate."""

COMPUTED_OBJECTIVES = ("params", "macs", "flops")
"""Objectives computed exactly from the built model, never predicted."""

ParamsToTopology = Callable[[dict[str, Any]], Topology]


@dataclass
class _Plan:
    """The candidate pool scored under one fit, and the points of the candidates handed out since."""

    fitted_on: frozenset[int]
    pool: dict[str, tuple[dict[str, Any], Topology]]
    """Candidates by topology hash: their parameters and topology."""
    predicted: dict[str, np.ndarray]
    """Each candidate's optimistic objective vector (computed objectives filled in when ranked)."""
    believed: list[np.ndarray] = field(default_factory=list)
    """The points of the candidates handed out under this fit, counted as observed when ranking."""


class PredictorSampler(optuna.samplers.BaseSampler):
    """Predictor-guided sampler over a space of categorical parameters.

    ``params_to_topology`` decodes a full parameter assignment; ``search_space`` holds the
    categorical distribution of each parameter; ``objectives`` names the study's objectives in
    order (their directions come from the study). In a study file, ``sampler.options`` may set
    ``n_startup_trials`` (random warm-up), ``n_candidates`` (proposals scored per trial),
    ``mutation_fraction`` (share of them mutated from the Pareto set), ``exploration`` (std
    multiples added to predictions), ``shortlist`` (candidates re-scored with exact costs),
    ``fit_config`` (a mapping of :class:`FitConfig` fields) and ``background_fit`` (refit in a
    child process, on a second core, while the picked trials train: see :meth:`_refit`).
    """

    def __init__(
        self,
        params_to_topology: ParamsToTopology,
        search_space: Mapping[str, CategoricalDistribution],
        objectives: Sequence[str] = ("accuracy",),
        *,
        n_startup_trials: int = 10,
        n_candidates: int = 200,
        mutation_fraction: float = 0.6,
        exploration: float = 1.0,
        fit_config: FitConfig | Mapping[str, Any] | None = None,
        seed: int | None = None,
        cost_fn: Callable[[Topology], dict[str, float]] | None = None,
        shortlist: int = 16,
        features: Callable[[Topology], list[float]] | None = None,
        feature_names: Sequence[str] = (),
        background_fit: bool = False,
    ) -> None:
        self._decode = params_to_topology
        self._space = dict(search_space)
        self._objectives = tuple(objectives)
        self._predicted = [k for k, name in enumerate(self._objectives) if name not in COMPUTED_OBJECTIVES]
        self._n_startup = n_startup_trials
        self._n_candidates = n_candidates
        self._mutation_fraction = mutation_fraction
        self._exploration = exploration
        if not isinstance(fit_config, FitConfig):  # a study file's mapping: small, fast defaults
            fit_config = FitConfig(**{"members": 3, "hidden": 48, "epochs": 150, **(fit_config or {})})
        self._fit_config = fit_config
        self._rng = np.random.default_rng(seed)
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._cost_fn = cost_fn or _model_costs
        self._predictor: Predictor | None = None
        self._fitted_on: frozenset[int] = frozenset()
        self._plan: _Plan | None = None
        self._hash_cache: dict[tuple[tuple[str, Any], ...], str] = {}
        self._cost_cache: dict[str, dict[str, float]] = {}
        self._deltas: dict[str, dict[str, float]] | None = None
        self._shortlist = shortlist
        self._features = features
        self._feature_names = tuple(feature_names) if features is not None else ()
        self._feature_cache: dict[str, list[float]] = {}
        self._background = BackgroundFit() if background_fit else None

    # -- optuna's interface ---------------------------------------------------------------------
    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self._space)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space or trial.params or "fixed_params" in trial.system_attrs:
            return {}  # a retried or enqueued trial keeps its parameters (and a retry keeps its claim)
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
        learned = {t.number: y for t in trials if (y := self._targets(t)) is not None}
        if len(learned) < self._n_startup or not complete:
            if self._background is not None and not learned:
                self._background.warm_up()
            return {}  # warm-up: every parameter comes from the random sampler
        with cpu_threads(1):  # two threads collapse on small shared CPUs
            self._refit(learned, trials)
            ranked = self._ranked_candidates(study, trial, trials, complete)
        for params, topo_hash in ranked[:20]:
            if self._claim(study, trial, topo_hash):
                assert self._plan is not None
                self._plan.believed.append(self._points([topo_hash], self._plan, exact=True)[0])
                return params
        return {}  # every good candidate was taken meanwhile: fall back to random parameters

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    # -- the predictor --------------------------------------------------------------------------
    def _targets(self, t: FrozenTrial) -> list[float] | None:
        """What a trial teaches the predictor: its predicted objectives' values, or None.

        A pruned trial counts with the values it had reached when stopped (recorded under the
        objectives' names): a lower bound, and it stopped because it trailed a trial that costs no
        more. Left out, early stopping would hide most of what a search paid for (in a batched
        group most members stop early) and keep the random warm-up going until enough finish.
        """
        if t.state == TrialState.COMPLETE and t.values:
            return [t.values[k] for k in self._predicted]
        if t.state != TrialState.PRUNED:
            return None
        values = [t.user_attrs.get(self._objectives[k]) for k in self._predicted]
        if not all(isinstance(v, int | float) and np.isfinite(v) for v in values):
            return None
        return [float(v) for v in values]  # type: ignore[arg-type]

    def _refit(self, learned: dict[int, list[float]], trials: list[FrozenTrial]) -> None:
        """Fits the predictor on ``learned`` (targets by trial number), unless it was fitted on them.

        With ``background_fit`` the fit runs in a child process while the trials picked now train,
        and the next pick with new results uses it: each pick's predictor is one trial (or one
        batched group) behind the observed front it is ranked against. Only the first fit, with
        nothing to pick from yet, is waited for.
        """
        numbers = frozenset(learned)
        background = self._background
        if numbers == self._fitted_on or (background is not None and numbers == background.pending):
            return
        if background is not None and background.pending is not None:
            done = background.result()
            if done is None:  # the child died: fit in this process from now on
                self._background = background = None
            else:
                self._fitted_on, self._predictor = done
        inputs = self._fit_inputs(learned, trials)
        if background is not None and self._predictor is not None and inputs is not None:
            if background.submit(numbers, inputs):
                return
            self._background = None  # the child cannot take it: fit in this process from now on
        self._predictor = None if inputs is None else fit_predictor(*inputs)
        self._fitted_on = numbers

    def _fit_inputs(self, learned: dict[int, list[float]], trials: list[FrozenTrial]) -> FitInputs | None:
        """What a fit on ``learned`` reads, one row per topology (a finished trial's before a pruned
        one's); None when there is nothing to learn."""
        by_hash: dict[str, tuple[Topology, list[float]]] = {}
        for t in sorted(trials, key=lambda t: t.state != TrialState.COMPLETE):
            if t.number not in learned or not self._complete_params(t.params):
                continue
            topology = self._decode(t.params)
            by_hash.setdefault(topology.hash, (topology, learned[t.number]))
        if len(by_hash) < 2 or not self._predicted:
            return None
        topologies, targets = zip(*by_hash.values(), strict=True)
        names = [self._objectives[k] for k in self._predicted]
        features = self._feature_matrix(topologies)
        return list(topologies), np.array(targets), names, self._fit_config, features, self._feature_names

    def _feature_matrix(self, topologies: Sequence[Topology]) -> np.ndarray | None:
        """The graph-level inputs (probe scores) of ``topologies``, computed once per hash."""
        if self._features is None:
            return None
        rows = []
        for topology in topologies:
            if topology.hash not in self._feature_cache:
                self._feature_cache[topology.hash] = self._features(topology)
            rows.append(self._feature_cache[topology.hash])
        return np.array(rows, dtype=np.float64)

    # -- candidates -----------------------------------------------------------------------------
    def _ranked_candidates(
        self, study: optuna.Study, trial: FrozenTrial, trials: list[FrozenTrial], complete: list[FrozenTrial]
    ) -> list[tuple[dict[str, Any], str]]:
        """Untaken candidates, best expected hypervolume improvement first (beyond the believed ones)."""
        taken = {h for t in trials if t.number != trial.number for h in self._trial_hashes(t)}
        values = np.array([t.values for t in complete], dtype=float)
        directions = ["max" if d == StudyDirection.MAXIMIZE else "min" for d in study.directions]
        plan = self._plan
        if plan is None or plan.fitted_on != self._fitted_on:
            plan = self._plan = _Plan(self._fitted_on, {}, {})
        available = [h for h in plan.pool if h not in taken]
        if len(available) < max(1, self._n_candidates // 4):  # a new fit, or a pool used up by a large group
            fresh = self._draw_pool(complete, values, directions, taken | set(plan.pool))
            if fresh:
                plan.pool.update(fresh)
                plan.predicted.update(self._optimistic_predictions(fresh, directions))
            available = [h for h in plan.pool if h not in taken]
        if not available:
            return []
        observed = np.vstack([values, *plan.believed]) if plan.believed else values
        # screen every candidate with additive cost estimates, then rank the shortlist with exact costs
        ranked = self._rank(available, plan, observed, directions, exact=False)
        shortlist = self._rank(ranked[: self._shortlist], plan, observed, directions, exact=True)
        return [(plan.pool[h][0], h) for h in shortlist + ranked[self._shortlist :]]

    def _draw_pool(
        self, complete: list[FrozenTrial], values: np.ndarray, directions: list[str], taken: set[str]
    ) -> dict[str, tuple[dict[str, Any], Topology]]:
        """Up to ``n_candidates`` new candidates: mutations of the Pareto set and random ones."""
        # Only this sampler's parameters: a trial may also hold others (suggested by the objective).
        parents = [
            {name: t.params[name] for name in self._space}
            for t, on_front in zip(complete, front_mask(values, directions), strict=True)
            if on_front and self._complete_params(t.params)
        ]
        pool: dict[str, tuple[dict[str, Any], Topology]] = {}
        n_mut = int(self._n_candidates * self._mutation_fraction)
        for k in range(self._n_candidates * 2):  # duplicates and taken hashes are dropped: draw spares
            if len(pool) >= self._n_candidates:
                break
            if k < n_mut and parents:
                params = self._mutate(parents[int(self._rng.integers(len(parents)))])
            else:
                params = self._random_params()
            topology = self._decode(params)
            if topology.hash not in taken and topology.hash not in pool:
                pool[topology.hash] = (params, topology)
        return pool

    def _rank(
        self, hashes: list[str], plan: _Plan, observed: np.ndarray, directions: list[str], exact: bool
    ) -> list[str]:
        """``hashes`` ordered by the hypervolume each adds to ``observed`` at its optimistic point, best first."""
        if not hashes:
            return []
        points = self._points(hashes, plan, exact)
        scores = _hv_improvements(points, observed, directions)
        tiebreak = _standardised_sum(points, observed, directions)
        order = sorted(range(len(hashes)), key=lambda i: (scores[i], tiebreak[i]), reverse=True)
        return [hashes[i] for i in order]

    def _points(self, hashes: list[str], plan: _Plan, exact: bool) -> np.ndarray:
        """Objective vectors: predicted objectives from the plan; computed ones (params, MACs, FLOPs)
        exact (``exact``) or estimated as the backbone's cost plus each edge choice's own cost."""
        points = np.array([plan.predicted[h] for h in hashes])
        computed = [(k, name) for k, name in enumerate(self._objectives) if name in COMPUTED_OBJECTIVES]
        if computed:
            cost = self._costs if exact else self._estimated_costs
            costs = [cost(*plan.pool[h]) for h in hashes]
            for k, name in computed:
                points[:, k] = [c[name] for c in costs]
        return points

    def _optimistic_predictions(
        self, pool: dict[str, tuple[dict[str, Any], Topology]], directions: list[str]
    ) -> dict[str, np.ndarray]:
        """Each candidate's objective vector (by hash) with the predicted objectives at mean +- exploration
        x std, one prediction for the whole pool; computed objectives are left at 0 for :meth:`_rank`."""
        out = np.zeros((len(pool), len(self._objectives)))
        if self._predictor is not None:
            topologies = [topology for _, topology in pool.values()]
            mean, std = self._predictor.predict(topologies, self._feature_matrix(topologies))
            for col, k in enumerate(self._predicted):
                sign = 1.0 if directions[k] == "max" else -1.0  # optimism points towards better
                out[:, k] = mean[:, col] + sign * self._exploration * std[:, col]
        return dict(zip(pool, out, strict=True))

    def _mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        child = dict(params)
        names = list(self._space)
        flips = int(self._rng.geometric(0.5))  # mostly one edge, sometimes a few: local search
        for name in self._rng.choice(names, size=min(flips, len(names)), replace=False):
            choices = [c for c in self._space[name].choices if c != child.get(name)]
            if choices:
                child[str(name)] = choices[int(self._rng.integers(len(choices)))]
        return child

    def _random_params(self) -> dict[str, Any]:
        return {n: d.choices[int(self._rng.integers(len(d.choices)))] for n, d in self._space.items()}

    # -- hashes and claims ----------------------------------------------------------------------
    def _complete_params(self, params: dict[str, Any]) -> bool:
        return all(n in params and params[n] in d.choices for n, d in self._space.items())

    def _hash(self, params: dict[str, Any]) -> str:
        key = tuple(sorted(params.items()))
        if key not in self._hash_cache:
            self._hash_cache[key] = self._decode(params).hash
        return self._hash_cache[key]

    def _trial_hashes(self, t: FrozenTrial) -> set[str]:
        """The topology hashes a trial evaluates or will: its claim, its recorded hash, its parameters'."""
        out = {str(h) for h in (t.system_attrs.get(CLAIM_ATTR), t.user_attrs.get("hash")) if h}
        if self._complete_params(t.params):
            out.add(self._hash(t.params))
        return out

    def _claim(self, study: optuna.Study, trial: FrozenTrial, topo_hash: str) -> bool:
        """Claims ``topo_hash`` for ``trial``; False (claim withdrawn) when another trial holds it.

        Write first, then read: of two trials racing for one hash, at least one sees the other's
        claim, and both back off rather than both keep it.
        """
        study._storage.set_trial_system_attr(trial._trial_id, CLAIM_ATTR, topo_hash)
        others = study.get_trials(deepcopy=False)
        if any(t.number != trial.number and topo_hash in self._trial_hashes(t) for t in others):
            study._storage.set_trial_system_attr(trial._trial_id, CLAIM_ATTR, "")
            return False
        return True

    # -- helpers --------------------------------------------------------------------------------
    def _costs(self, params: dict[str, Any], topology: Topology) -> dict[str, float]:
        if topology.hash not in self._cost_cache:
            self._cost_cache[topology.hash] = self._cost_fn(topology)
        return self._cost_cache[topology.hash]

    def _estimated_costs(self, params: dict[str, Any], topology: Topology) -> dict[str, float]:
        """Cost of the first choice everywhere plus each parameter's own change from it: exact where
        costs add up edge by edge (linear layers and convolutions), and fast (one build per choice, once)."""
        if self._deltas is None:
            base_params = {n: d.choices[0] for n, d in self._space.items()}
            base = self._costs(base_params, self._decode(base_params))
            self._deltas = {"": base}
            for name, dist in self._space.items():
                for choice in dist.choices[1:]:
                    one = {**base_params, name: choice}
                    cost = self._costs(one, self._decode(one))
                    self._deltas[f"{name}={choice}"] = {k: cost[k] - base[k] for k in base}
        out = dict(self._deltas[""])
        for name, dist in self._space.items():
            delta = self._deltas.get(f"{name}={params.get(name, dist.choices[0])}")
            for key, value in (delta or {}).items():
                out[key] += value
        return out


def _model_costs(topology: Topology) -> dict[str, float]:
    """The built model's parameters, MACs and FLOPs, from the blocks' shapes (no model is built)."""
    cost = topology_cost(topology)
    return {"params": float(cost.params), "macs": float(cost.macs), "flops": 2.0 * cost.macs}


def _hv_improvements(points: np.ndarray, observed: np.ndarray, directions: list[str]) -> np.ndarray:
    """Hypervolume each point adds to the observed front, against a reference point just beyond the worst values."""
    lo, hi = np.minimum(observed.min(0), points.min(0)), np.maximum(observed.max(0), points.max(0))
    span = np.where(hi > lo, hi - lo, 1.0)
    ref = np.array([lo[k] - 0.1 * span[k] if d == "max" else hi[k] + 0.1 * span[k] for k, d in enumerate(directions)])
    return hypervolume_improvements(points, observed[front_mask(observed, directions)], ref.tolist(), directions)


def _standardised_sum(points: np.ndarray, observed: np.ndarray, directions: list[str]) -> np.ndarray:
    """Tie-break among candidates that add no hypervolume: how good they are on all objectives together."""
    mu, sd = observed.mean(0), observed.std(0)
    z = (points - mu) / np.where(sd > 0, sd, 1.0)
    signs = np.array([1.0 if d == "max" else -1.0 for d in directions])
    return (z * signs).sum(1)
