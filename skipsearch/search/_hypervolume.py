"""One hypervolume per study: the reference point, chosen once and stored with the study.

A hypervolume means nothing without its reference point, and two different points give two
different numbers for the same front. So a study's point is chosen once, when the study is
created, from what is known before any trial: the quality objective's worst meaningful value
(accuracy, mIoU and R² at 0; RMSE at that of predicting the training targets' mean, the model that
learnt nothing) and, for each cost, 1.1 times the cost of the costliest topology the space holds (every candidate
edge at its costliest choice; latency twice the measured one, for timing noise); a probe objective, the worst
score of 16 random topologies of the space moved 10% of their range further. Nothing a trial
can reach lies beyond it, so the volume never depends on which trials ran first, and samplers and
runs of one study compare. A study file may give its own (``hypervolume: {reference_point: ...}``).

The point is stored as the study user attribute :data:`REFERENCE_ATTR` (``{objective: value}``,
visible in optuna-dashboard), and every consumer reads it from there: ``skipsearch pareto``, the
report, the dashboard plots and the benchmarks. Values are normalised by the box between the
reference point and the ideal point (accuracy 1, costs 0), so a normalised hypervolume lies in
[0, 1] whatever the objectives' units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna

from skipsearch import metrics as schema
from skipsearch.search._config import StudyConfig

REFERENCE_ATTR = "hypervolume_reference_point"
"""Study user attribute holding the hypervolume reference point, ``{objective name: value}``."""

COST_MARGIN = 1.1
"""Each cost's reference value is this multiple of the costliest topology's cost."""

LATENCY_MARGIN = 2.0
"""Latency is measured, not counted: its reference value leaves room for timing noise."""

_COSTS = ("macs", "params", "flops", "latency_ms")


def default_reference_point(config: StudyConfig, space: Any | None = None) -> dict[str, float]:
    """The reference point a study gets when its file names none (see the module docstring)."""
    costs = [name for name, way in config.objective_pairs if name in _COSTS and way == "min"]
    worst = _costliest(config, space, costs) if costs else {}
    point: dict[str, float] = {}
    for name, way in config.objective_pairs:
        if name in worst:
            margin = LATENCY_MARGIN if name == "latency_ms" else COST_MARGIN
            point[name] = float(margin * worst[name])
        elif name == "rmse":
            point[name] = _mean_predictor_rmse(config)
        elif name in schema.probe_names():
            point[name] = _probe_reference(config, space, name, way)
        else:
            point[name] = 0.0  # quality (accuracy, mIoU, R²) at 0; a maximised cost from nothing
    return point


PROBE_SAMPLE = 16
"""Random topologies of the space whose probe scores set a probe objective's reference value."""


def _probe_reference(config: StudyConfig, space: Any | None, name: str, direction: str) -> float:
    """A probe has no natural worst value: the worst score of :data:`PROBE_SAMPLE` random topologies
    of the space (built from the study seed, on its probe batch) moved 10% of their range further."""
    import math

    import torch

    from skipsearch.search._space import SearchSpace
    from skipsearch.tasks import compute_probes, probe_batch, seeded_model

    space = space or SearchSpace(config.backbone.build(), config.space)
    topologies = [space.backbone, *space.random_topologies(PROBE_SAMPLE - 1, seed=config.seed)]
    x, y = probe_batch(config.task.load(config.seed), space.backbone.input_shape, config.seed)
    scores = []
    with torch.random.fork_rng(devices=[]):
        for topology in topologies:
            value = compute_probes(seeded_model(topology, config.seed), x, y, [name])[name]
            if value is not None and math.isfinite(value):
                scores.append(value)
    if not scores:
        return 0.0
    low, high = min(scores), max(scores)
    span = (high - low) or abs(high) or 1.0
    return low - 0.1 * span if direction == "max" else high + 0.1 * span


def _mean_predictor_rmse(config: StudyConfig) -> float:
    """The validation RMSE of predicting the training targets' mean (R² = 0), in the targets' units:
    targets are standardised by the training split, so it is the root mean square of the scaled
    validation targets."""
    import torch

    data = config.task.load(config.seed)
    scale = torch.tensor(data.target_scale or [1.0] * data.num_outputs, dtype=torch.float64)
    y = data.y_val.to(torch.float64).reshape(len(data.y_val), -1)
    return float(torch.sqrt(((y * scale) ** 2).mean()))


def _costliest(config: StudyConfig, space: Any | None, costs: Sequence[str]) -> dict[str, float]:
    """Each cost of the space's costliest topology for that cost: every candidate edge at the choice
    that alone costs the most (choices add their costs nearly independently)."""
    from skipsearch.nn import build_model, model_cost
    from skipsearch.search._space import SearchSpace

    space = space or SearchSpace(config.backbone.build(), config.space)
    by_choice: dict[str, dict[str, dict[str, float]]] = {}
    for cand in space.candidates:
        by_choice[cand.param] = {}
        for choice in cand.choices:
            topo = space.topology_from_params({cand.param: choice})
            cost = model_cost(build_model(topo), topo.input_shape, latency=False)
            by_choice[cand.param][choice] = {"macs": cost.macs, "params": cost.params, "flops": cost.flops}
    worst: dict[str, float] = {}
    for cost_name in costs:
        key = "macs" if cost_name == "latency_ms" else cost_name  # the slowest network does the most work
        params = {p: max(options.items(), key=lambda item: item[1][key])[0] for p, options in by_choice.items()}
        topo = space.topology_from_params(params)
        value = model_cost(build_model(topo), topo.input_shape, latency=cost_name == "latency_ms").to_dict()[cost_name]
        worst[cost_name] = float(value or 0.0)
    return worst


def ensure_reference_point(
    study: optuna.Study, config: StudyConfig, space: Callable[[], Any] | None = None
) -> dict[str, float]:
    """The study's reference point, chosen and stored when it has none yet (or the file gives one);
    ``space()`` gives the study's search space where the caller builds one anyway."""
    given = config.hypervolume.reference_point
    stored = study.user_attrs.get(REFERENCE_ATTR)
    names = [name for name, _ in config.objective_pairs]
    if given is not None:
        point = {name: float(given[name]) for name in names}
    elif isinstance(stored, dict) and set(stored) == set(names):
        return {name: float(stored[name]) for name in names}
    else:
        point = default_reference_point(config, space() if space is not None else None)
    if stored != point:
        study.set_user_attr(REFERENCE_ATTR, point)
    return point


def stored_reference_point(study: optuna.Study) -> dict[str, float] | None:
    """The reference point stored with ``study``, if any (no computation, no write)."""
    stored = study.user_attrs.get(REFERENCE_ATTR)
    return {str(k): float(v) for k, v in stored.items()} if isinstance(stored, dict) else None


def study_reference_point(storage_url: str, study_name: str) -> tuple[dict[str, float], StudyConfig]:
    """The reference point of a stored study, and its configuration; a study created before
    reference points were stored gets one now (and keeps it)."""
    from skipsearch.search._study import load_study

    study, config = load_study(storage_url, study_name, read_only=True)
    try:
        return ensure_reference_point(study, config), config
    finally:
        storage: Any = getattr(study._storage, "_backend", study._storage)
        storage.engine.dispose()  # a read-only RDBStorage of its own: leave no connection open
