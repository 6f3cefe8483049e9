"""The study file's sampler and pruner as Optuna objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from skipsearch.errors import UserError
from skipsearch.search._config import StudyConfig
from skipsearch.search._options import check_sampler_options


def make_sampler(config: StudyConfig, worker_index: int = 0) -> optuna.samplers.BaseSampler:
    """The study file's sampler, seeded per worker so that workers do not propose in lockstep."""
    seed = config.seed + worker_index
    options = dict(config.sampler.options)
    factories: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
        # A worker that asks for several trials at once needs TPE to lie about the running ones.
        "tpe": lambda **kw: optuna.samplers.TPESampler(
            seed=seed, **{"multivariate": True, "constant_liar": config.execution.batch_trials != 1, **kw}
        ),
        "nsga2": lambda **kw: optuna.samplers.NSGAIISampler(seed=seed, **kw),
        "random": lambda **kw: optuna.samplers.RandomSampler(seed=seed, **kw),
        "gp": lambda **kw: optuna.samplers.GPSampler(seed=seed, **kw),
        "predictor": lambda **kw: _predictor_sampler(config, seed, **kw),
    }
    check_sampler_options(config.sampler.name, options)
    try:
        sampler = factories[config.sampler.name](**options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"sampler.options: {exc}") from None
    return _prescreened(config, sampler) if config.sampler.prescreen is not None else sampler


def _prescreened(config: StudyConfig, base: optuna.samplers.BaseSampler) -> optuna.samplers.BaseSampler:
    """``base`` behind the study's pre-screen (:mod:`skipsearch.search._prescreen`)."""
    from skipsearch.search._prescreen import prescreened
    from skipsearch.search._space import SearchSpace

    assert config.sampler.prescreen is not None
    backbone = config.backbone.build()
    space = SearchSpace(backbone, config.space)
    return prescreened(
        base,
        space.topology_from_params,
        {c.param: optuna.distributions.CategoricalDistribution(c.choices) for c in space.candidates},
        probe=config.sampler.prescreen.probe,
        candidates=config.sampler.prescreen.candidates,
        data=lambda: config.task.load(config.seed),
        input_shape=backbone.input_shape,
        seed=config.seed,
        threads=config.train_config.threads,
    )


def _predictor_sampler(config: StudyConfig, seed: int, **options: Any) -> optuna.samplers.BaseSampler:
    """The graph-predictor sampler over the study's search space (imported here: it pulls in torch-geometric)."""
    from skipsearch.predictor import PredictorSampler
    from skipsearch.search._space import SearchSpace

    space = SearchSpace(config.backbone.build(), config.space)
    distributions = {c.param: optuna.distributions.CategoricalDistribution(c.choices) for c in space.candidates}
    objectives = [o.name for o in config.objectives]
    return PredictorSampler(space.topology_from_params, distributions, objectives, seed=seed, **options)


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """Optuna's pruner for single-objective studies (multi-objective ones stop trials themselves)."""
    early = config.early_stopping
    if config.multi_objective or not early.enabled or early.pruner == "none":
        return optuna.pruners.NopPruner()
    epochs = config.train_config.epochs
    warmup = max(1, round(early.min_epoch_fraction * epochs))
    if early.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=warmup - 1)
    if early.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=warmup, max_resource=epochs)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup)
