"""Data that needs code: ``module:`` functions of a study file, and named tasks that installed
packages add through the ``skipsearch.tasks`` entry-point group."""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from skipsearch.errors import UserError
from skipsearch.tasks._arrays import SplitSettings, check_metric, task_from_arrays
from skipsearch.tasks._data import TaskData

ENTRY_POINT_GROUP = "skipsearch.tasks"
"""Entry points of this group name a :class:`skipsearch.tasks.TaskSpec` (or a function without
arguments returning one); the task is known by the spec's name. In a package's pyproject.toml::

    [project.entry-points."skipsearch.tasks"]
    spectra = "mypkg.tasks:SPECTRA"
"""


def import_function(reference: str, what: str = "module") -> Callable[..., Any]:
    """The function ``pkg.mod:name`` names; one line saying what failed otherwise."""
    module_name, colon, attribute = reference.partition(":")
    if not colon or not module_name or not attribute:
        raise UserError(f"{what} {reference!r}: give it as 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error of the user's module while importing it
        raise UserError(f"{what} {reference!r}: cannot import {module_name} ({type(exc).__name__}: {exc})") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise UserError(f"{what} {reference!r}: {module_name} has no function {attribute!r}")
    return function  # type: ignore[no-any-return]


def module_task(
    *,
    seed: int = 0,
    module: str,
    args: dict[str, Any] | None = None,
    metric: str = "accuracy",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    data_seed: int = 0,
    standardize: bool = True,
) -> TaskData:
    """The task of ``module`` (``pkg.data:load``) called with ``args`` (the ``module`` task's builder).

    The function returns a mapping with arrays (numpy arrays, tensors or lists) ``x`` and ``y``,
    and optionally ``x_test`` and ``y_test``; they are checked, split and scaled exactly as an
    ``.npz`` file would be (``metric`` says whether ``y`` holds classes or regression targets).
    scikit-learn's dataset loaders qualify too: their ``data`` and ``target`` are ``x`` and ``y``
    (``module: "sklearn.datasets:load_wine"``).
    """
    metric = check_metric(metric)
    function = import_function(module)
    try:
        returned = function(**(args or {}))
    except Exception as exc:  # the user's code failed: name it, in one line
        raise UserError(f"module {module!r} failed: {type(exc).__name__}: {exc}") from None
    if isinstance(returned, Mapping) and "x" not in returned and "data" in returned and "target" in returned:
        returned = {"x": returned["data"], "y": returned["target"]}  # a scikit-learn Bunch
    if not isinstance(returned, Mapping) or "x" not in returned or "y" not in returned:
        raise UserError(
            f"module {module!r} returned {type(returned).__name__}; it must return a mapping with arrays "
            "'x' and 'y' (and optionally 'x_test' and 'y_test')"
        )
    arrays = {k: _numpy(v, module, k) for k, v in returned.items() if k in ("x", "y", "x_test", "y_test")}
    test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays and "y_test" in arrays else None
    split = SplitSettings(val_fraction, test_fraction, seed, data_seed, standardize)
    name = module.rpartition(":")[2]
    return task_from_arrays(name, metric, arrays["x"], arrays["y"], test, split, source=f"module {module!r}")


def _numpy(value: Any, module: str, key: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise UserError(f"module {module!r}: {key!r} is not an array ({exc})") from None


def entry_point_specs() -> list[Any]:
    """The task specs installed packages declare (a broken entry point is one line naming it)."""
    from skipsearch.tasks._registry import TaskSpec

    specs = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = entry.load()
            if not isinstance(spec, TaskSpec) and callable(spec):
                spec = spec()
        except Exception as exc:
            raise UserError(f"entry point {entry.name!r} ({entry.value}) of {ENTRY_POINT_GROUP}: {exc}") from None
        if not isinstance(spec, TaskSpec):
            raise UserError(
                f"entry point {entry.name!r} ({entry.value}) of {ENTRY_POINT_GROUP}: gives "
                f"{type(spec).__name__}, not a skipsearch.tasks.TaskSpec"
            )
        specs.append(spec)
    return specs
