"""From arrays of samples to a task: checks, seeded (stratified) splits, scaling fitted on train.

Every loader of user data (tables, array files, image folders, ``module:`` functions) ends here,
so all of them split, scale and refuse bad values the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skipsearch.errors import UserError
from skipsearch.tasks._data import METRICS, REGRESSION_METRICS, TaskData, make_task_data


@dataclass(frozen=True)
class SplitSettings:
    """How a pool of samples without a given test split is divided (fractions of the pool)."""

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    """Picks the validation samples (a study's seed)."""
    data_seed: int = 0
    """Picks the test samples: fixed across study seeds, so test metrics stay comparable."""
    standardize: bool = True
    """Standardise inputs with the training split's mean and deviation (per feature, or per
    channel of images); regression targets are standardised the same way."""

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise UserError(f"option {name!r} must be a number between 0 and 1, got {value!r}")
        if self.val_fraction + self.test_fraction >= 1:
            raise UserError("options 'val_fraction' and 'test_fraction' must leave samples to train on")


def check_metric(metric: object) -> str:
    if metric not in METRICS:
        raise UserError(f"option 'metric' must be one of {', '.join(METRICS)}; got {metric!r}")
    return str(metric)


def check_finite(x: np.ndarray, source: str, what: str = "inputs") -> None:
    """Refuses NaN or infinite values, naming the first sample that has one."""
    if not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{source}: {what} must be numbers, got an array of {x.dtype}")
    bad = ~np.isfinite(x.reshape(len(x), -1)) if np.issubdtype(x.dtype, np.floating) else None
    if bad is not None and bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        value = x.reshape(len(x), -1)[row][bad[row]][0]
        raise UserError(f"{source}: {what} of sample {row} hold {'NaN' if np.isnan(value) else value}")


def class_indices(y: np.ndarray, source: str) -> np.ndarray:
    """Integer class indices (0..K-1) of labels given as numbers; continuous values are refused."""
    if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
        raise UserError(f"{source}: labels must be class indices (integers from 0), got an array of {y.dtype}")
    check_finite(y, source, "labels")
    flat = y.reshape(-1)
    fractional = np.flatnonzero(flat != np.round(flat))
    if len(fractional):
        index = int(fractional[0])
        raise UserError(
            f"{source}: label {flat[index].item()!r} (element {index}) is not a class index; a continuous target "
            "needs a regression metric (metric: rmse or r2)"
        )
    if flat.min(initial=0) < 0:
        index = int(np.argmin(flat))
        raise UserError(
            f"{source}: label {flat[index].item()!r} (element {index}) is negative; classes are numbered from 0"
        )
    return y.astype(np.int64)


def task_from_arrays(
    name: str,
    metric: str,
    x: np.ndarray,
    y: np.ndarray,
    test: tuple[np.ndarray, np.ndarray] | None,
    split: SplitSettings,
    *,
    source: str,
    num_classes: int | None = None,
    fingerprint: str | None = None,
) -> TaskData:
    """A task of samples ``x`` (any shape per sample) and labels or targets ``y``.

    Classification labels are class indices (per sample for ``accuracy``, per pixel for
    ``miou``); regression targets are one value or a row of values per sample. Without a given
    ``test`` split, ``split.test_fraction`` of the samples (chosen by ``split.data_seed``, stratified
    by class for ``accuracy``) form it; ``split.val_fraction`` (chosen by ``split.seed``, stratified)
    validate. Scaling is fitted on the training split only.
    """
    metric = check_metric(metric)
    x, y = _checked_pair(x, y, metric, source)
    if test is not None:
        x_test, y_test = _checked_pair(*test, metric, f"{source} (test split)")
        if x_test.shape[1:] != x.shape[1:]:
            raise UserError(f"{source}: test samples have shape {x_test.shape[1:]}, training ones {x.shape[1:]}")
    regression = metric in REGRESSION_METRICS
    strata = y if metric == "accuracy" else None
    pool = np.arange(len(x))
    if test is None:
        pool, test_index = _pick(pool, strata, split.test_fraction, np.random.default_rng(split.data_seed))
        x_test, y_test = x[test_index], y[test_index]
    fraction = split.val_fraction / (1 - split.test_fraction) if test is None else split.val_fraction
    train_index, val_index = _pick(pool, strata, min(fraction, 0.5), np.random.default_rng(split.seed))
    if min(len(train_index), len(val_index), len(x_test)) == 0:
        raise UserError(f"{source}: {len(x)} samples are too few for train, validation and test splits")
    x_train, y_train, x_val, y_val = x[train_index], y[train_index], x[val_index], y[val_index]
    if split.standardize:
        x_train, x_val, x_test = _standardized(x_train, x_val, x_test)
    extra: dict[str, object] = {"fingerprint": fingerprint}
    if regression:
        mean, std = y_train.mean(0), _nonzero(y_train.std(0))
        y_train, y_val, y_test = ((v - mean) / std for v in (y_train, y_val, y_test))
        extra["target_scale"] = tuple(float(s) for s in std)
        outputs = y.shape[1]
    else:
        outputs = num_classes or int(max(y.max(initial=0), y_test.max(initial=0))) + 1
    return make_task_data(name, metric, outputs, (x_train, y_train), (x_val, y_val), (x_test, y_test), **extra)


def _checked_pair(x: np.ndarray, y: np.ndarray, metric: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) == 0:
        raise UserError(f"{source}: no samples (x and y must be arrays with one entry per sample)")
    if x.ndim == 1:  # one feature per sample
        x = x.reshape(len(x), 1)
    if len(x) != len(y):
        raise UserError(f"{source}: x has {len(x)} samples but y has {len(y)}; they must be the same length")
    check_finite(x, source)
    if metric in REGRESSION_METRICS:
        if not np.issubdtype(y.dtype, np.number):
            raise UserError(f"{source}: regression targets must be numbers, got an array of {y.dtype}")
        check_finite(y, source, "targets")
        return x, y.reshape(len(y), -1).astype(np.float64)
    y = class_indices(y, source)
    if metric == "accuracy":
        if y.ndim > 1 and y.shape[1:] != (1,):
            raise UserError(f"{source}: accuracy needs one label per sample, got labels of shape {y.shape[1:]}")
        y = y.reshape(len(y))
    return x, y


def _pick(
    pool: np.ndarray, strata: np.ndarray | None, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, picked)``: about ``fraction`` of ``pool``, the same fraction of each class when
    ``strata`` are given (a class of one sample stays in the rest)."""
    groups = [pool] if strata is None else [pool[strata[pool] == c] for c in np.unique(strata[pool])]
    picked = [rng.permutation(g)[: round(fraction * len(g))] for g in groups]
    chosen = np.sort(np.concatenate(picked)) if picked else np.array([], dtype=np.int64)
    return np.setdiff1d(pool, chosen), chosen


def _standardized(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Inputs standardised with the training split's statistics: per channel for images
    (``(N, C, H, W)`` or ``(N, C, L)``), per feature otherwise."""
    train = train.astype(np.float32)
    axes = (0, *range(2, train.ndim)) if train.ndim > 2 else (0,)
    mean = train.mean(axis=axes, keepdims=True)
    std = _nonzero(train.std(axis=axes, keepdims=True))
    return tuple(((a.astype(np.float32) - mean) / std).astype(np.float32) for a in (train, *others))


def _nonzero(std: np.ndarray) -> np.ndarray:
    return np.where(std > 0, std, 1.0)
