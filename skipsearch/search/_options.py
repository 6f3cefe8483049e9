"""The study file's sampler options, type- and range-checked before a sampler is made.

Optuna's samplers store their options unchecked and fail on the first trial that uses them (``n_ei_candidates: "x"``
is a TypeError mid-study, ``n_ei_candidates: 1000000000`` exhausts memory); so each option a study
file may set is listed here with its type and range, and anything else is refused by name.
"""

from __future__ import annotations

import math
from typing import Any

from skipsearch.errors import UserError

_COUNT = (int, 0, 100_000)
_POSITIVE = (int, 1, 100_000)
_FRACTION = (float, 0.0, 1.0)
_FLAG = (bool, None, None)

SAMPLER_OPTIONS: dict[str, dict[str, tuple[type, float | None, float | None]]] = {
    "tpe": {
        "n_startup_trials": _COUNT,
        "n_ei_candidates": _POSITIVE,
        "multivariate": _FLAG,
        "group": _FLAG,
        "constant_liar": _FLAG,
        "warn_independent_sampling": _FLAG,
    },
    "nsga2": {
        "population_size": (int, 2, 100_000),
        "mutation_prob": _FRACTION,
        "crossover_prob": _FRACTION,
        "swapping_prob": _FRACTION,
    },
    "random": {},
    "gp": {"n_startup_trials": _COUNT, "deterministic_objective": _FLAG, "warn_independent_sampling": _FLAG},
    "predictor": {
        "n_startup_trials": _COUNT,
        "n_candidates": _POSITIVE,
        "mutation_fraction": _FRACTION,
        "exploration": (float, 0.0, 1e6),
        "shortlist": _POSITIVE,
        "fit_config": (dict, None, None),
        "features": (list, None, None),
        "background_fit": _FLAG,
    },
}
"""Per sampler: option -> (type, minimum, maximum); integers are bounded so no option can ask for
unbounded work or memory."""

FIT_OPTIONS: dict[str, tuple[type, float | None, float | None]] = {
    "members": (int, 1, 64),
    "hidden": (int, 1, 4096),
    "layers": (int, 1, 32),
    "epochs": (int, 1, 100_000),
    "lr": (float, 1e-12, 10.0),
    "weight_decay": (float, 0.0, 10.0),
    "rank_weight": (float, 0.0, 1e6),
    "seed": (int, 0, 2**32 - 1),
}
"""The predictor's ``fit_config`` mapping (:class:`skipsearch.predictor.FitConfig` fields)."""


def check_sampler_options(name: str, options: dict[str, Any]) -> None:
    """Raises :class:`UserError` naming the first option of ``options`` that sampler ``name`` does not
    take, or whose value has the wrong type or is out of range."""
    _check(options, SAMPLER_OPTIONS.get(name, {}), "sampler.options", f"sampler {name!r}")
    fit = options.get("fit_config")
    if isinstance(fit, dict):
        _check(fit, FIT_OPTIONS, "sampler.options.fit_config", "the predictor's fit_config")


_Spec = dict[str, tuple[type, float | None, float | None]]


def _check(options: dict[str, Any], known: _Spec, at: str, owner: str) -> None:
    for key, value in options.items():
        if key not in known:
            names = ", ".join(known) or "none"
            raise UserError(f"{at}: {owner} takes no option {key!r} (known: {names})")
        kind, low, high = known[key]
        where = f"{at}.{key}"
        if kind is bool:
            if not isinstance(value, bool):
                raise UserError(f"{where}: must be true or false, got {value!r}")
        elif kind is dict:
            if not isinstance(value, dict):
                raise UserError(f"{where}: must be a mapping, got {value!r}")
        elif kind is list:  # the predictor's features: 'probes' or probe names, checked by name later
            if value != "probes" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise UserError(f"{where}: must be 'probes' or a list of probe names, got {value!r}")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserError(f"{where}: must be an integer, got {value!r}")
            _in_range(where, value, low, high)
        else:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
                raise UserError(f"{where}: must be a finite number, got {value!r}")
            _in_range(where, value, low, high)


def _in_range(where: str, value: float, low: float | None, high: float | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        raise UserError(f"{where}: must be between {low:g} and {high:g}, got {value!r}")
