"""Pareto fronts of the stored evaluations: non-dominated sorting and hypervolume with numpy.

Only COMPLETE evaluations with every objective present take part. The candidates are read with one
SQL query of just the objective columns; only the non-dominated rows are then read in full. No
Optuna trial objects are built, which is what makes this fast on large studies.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import sqlalchemy as sa
from optuna._hypervolume import compute_hypervolume
from sqlalchemy.engine import Engine

from skipsearch import metrics as schema
from skipsearch.errors import UserError
from skipsearch.results._labels import format_number, ideal_value, objective_label
from skipsearch.results._models import EvaluationRow
from skipsearch.results._query import (
    COLUMNS,
    Condition,
    base_query,
    conditions,
    numeric_columns,
    to_frame,
    topology_columns,
)

DIRECTIONS = ("min", "max")
DEFAULT_OBJECTIVES: list[tuple[str, str]] = [("accuracy", "max"), ("macs", "min")]
REFERENCE_MARGIN = 0.1
"""The default reference point lies this fraction of each objective's range beyond the worst candidate."""


@dataclass
class ParetoResult:
    """The non-dominated evaluations of some studies under some objectives.

    ``front`` has :func:`evaluations`' columns, sorted by the first objective, best first (then by
    the next objectives). ``candidates`` holds ``id``, ``study``, ``trial_number`` and the objective
    values of every row that took part; ``ranks`` (computed on first use) their non-domination rank,
    0 for the front, indexed by evaluation id. ``reference_point`` (in the objectives' own units and
    directions) is the one the ``hypervolume`` was measured against; None when nothing took part.
    """

    objectives: list[tuple[str, str]]
    front: pd.DataFrame
    candidates: pd.DataFrame
    hypervolume: float
    reference_point: tuple[float, ...] | None
    _values: np.ndarray = field(repr=False)
    reference_source: str = "nadir + 10%"
    """How the reference point was chosen: ``"study"`` (the one stored with the study), ``"given"``
    or ``"nadir + 10%"`` (the worst candidate moved 10% of the range further, the fallback)."""

    @property
    def normalised_hypervolume(self) -> float | None:
        """The hypervolume as a share of the box between the reference and the ideal point (see
        :func:`normalised_hypervolume`); ``None`` for one objective or without a reference point."""
        if self.reference_point is None or len(self.objectives) < 2:
            return None
        return normalised_hypervolume(self.hypervolume, self.reference_point, self.objectives)

    @cached_property
    def ranks(self) -> pd.Series:
        directions = [d for _, d in self.objectives]
        ranks = non_dominated_ranks(self._values, directions)
        return pd.Series(ranks, index=self.candidates["id"].to_numpy(), name="rank")


def parse_objectives(text: str | Sequence[tuple[str, str]] | Sequence[str]) -> list[tuple[str, str]]:
    """``"accuracy:max,macs:min"`` (or pairs) -> checked ``[(column, direction), ...]``.

    A bare column takes its natural direction (:func:`skipsearch.metrics.natural_direction`): max
    for accuracies and probes, min for costs and everything else.
    """
    items: Iterable[str | tuple[str, str]] = text.split(",") if isinstance(text, str) else text
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, str):
            column, _, direction = item.strip().partition(":")
            direction = direction or schema.natural_direction(column.strip())
        else:
            column, direction = item
        column, direction = column.strip(), direction.strip().lower()
        if column not in numeric_columns():
            raise UserError(f"objective {column!r}: not a numeric column (valid: {', '.join(numeric_columns())})")
        if direction not in DIRECTIONS:
            raise UserError(f"objective {column!r}: direction must be min or max, got {direction!r}")
        if column in (c for c, _ in out):
            raise UserError(f"objective {column!r} is given twice")
        out.append((column, direction))
    if not out:
        raise UserError("give at least one objective, e.g. accuracy:max,macs:min")
    return out


def pareto(
    engine: Engine,
    studies: Sequence[str],
    objectives: Sequence[tuple[str, str]] | str = tuple(DEFAULT_OBJECTIVES),
    where: Iterable[str | Condition] = (),
    reference_point: Sequence[float] | None = None,
    reference_source: str = "given",
) -> ParetoResult:
    """The Pareto front of the COMPLETE evaluations of ``studies`` (taken together).

    ``reference_point`` (one value per objective) measures the hypervolume; without one, the
    nadir moved 10% of each objective's range further is used. ``reference_source`` says where a
    given point came from (e.g. ``"study"``)."""
    objs = parse_objectives(objectives)
    directions = [d for _, d in objs]
    if reference_point is not None and len(reference_point) != len(objs):
        raise UserError(f"the reference point needs {len(objs)} values, one per objective, got {len(reference_point)}")
    with engine.connect() as conn:
        candidates, values = _candidates(conn, studies, objs, conditions(where))
        on_front = front_mask(values, directions)
        front = _fetch(conn, candidates["id"].to_numpy()[on_front].tolist())
    front = _sort_front(front, objs)
    if reference_point is not None:
        ref: tuple[float, ...] | None = tuple(float(v) for v in reference_point)
    else:
        ref, reference_source = default_reference(values, directions), "nadir + 10%"
    volume = hypervolume(values[on_front], ref, directions) if ref is not None else 0.0
    return ParetoResult(list(objs), front, candidates, volume, ref, values, reference_source)


def _candidates(
    conn: sa.Connection, studies: Sequence[str], objs: list[tuple[str, str]], conds: list[Condition]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Id, study, trial number and objective values of the COMPLETE rows with every objective finite."""
    obj_columns = [COLUMNS[c] for c, _ in objs]
    query = base_query(
        [EvaluationRow.id, EvaluationRow.study, EvaluationRow.trial_number, *obj_columns],
        studies,
        conds,
        join_topology=any(c in topology_columns() for c, _ in objs),
    )
    query = query.where(EvaluationRow.state == "COMPLETE", *(c.is_not(None) for c in obj_columns))
    # Column-wise from the rows: far faster than handing pandas the row objects.
    columns = list(zip(*conn.execute(query).all(), strict=True)) or [()] * (3 + len(objs))
    values = np.array(columns[3:], dtype=float).reshape(len(objs), -1).T
    finite = np.isfinite(values).all(axis=1)  # inf from a diverged run has no place on a front
    names = ["id", "study", "trial_number", *(c for c, _ in objs)]
    candidates = pd.DataFrame(
        {n: np.asarray(col, dtype=object if n == "study" else None) for n, col in zip(names, columns, strict=True)}
    )
    return candidates[finite].reset_index(drop=True), values[finite]


def _fetch(conn: sa.Connection, ids: list[int]) -> pd.DataFrame:
    """Full rows (as :func:`evaluations` gives them) of the given evaluation ids."""
    rows: list[sa.Row] = []
    for start in range(0, len(ids), 1000):
        query = base_query(list(dict(COLUMNS).values()), None, [], join_topology=True)
        rows.extend(conn.execute(query.where(EvaluationRow.id.in_(ids[start : start + 1000]))).all())
    return to_frame(rows)


def _sort_front(front: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> pd.DataFrame:
    keys = [c for c, _ in objectives] + ["study", "trial_number"]
    ascending = [d == "min" for _, d in objectives] + [True, True]
    return front.sort_values(keys, ascending=ascending, kind="stable").reset_index(drop=True)


# -- numerics -----------------------------------------------------------------------------------


def _as_loss(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Objective values -> all-minimisation form (maximised columns negated)."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(f"values must have shape (n, {len(directions)}), got {values.shape}")
    if any(d not in DIRECTIONS for d in directions):
        raise ValueError(f"directions must be 'min' or 'max', got {list(directions)}")
    if np.isnan(values).any():
        raise ValueError("values must not contain NaN")
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return values * sign


def front_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows (rank 0). Equal rows share their fate."""
    loss = _as_loss(values, directions)
    if len(loss) == 0:
        return np.zeros(0, dtype=bool)
    unique, inverse = np.unique(loss, axis=0, return_inverse=True)  # lexicographically sorted
    return _unique_front(unique)[inverse.reshape(-1)]


def _unique_front(unique: np.ndarray) -> np.ndarray:
    """Front mask of distinct, lexicographically sorted loss vectors."""
    n, m = unique.shape
    if m == 1:
        return np.arange(n) == 0
    if m == 2:
        # Everything before row i has a smaller-or-equal first value, so row i is dominated exactly
        # when some earlier row has a second value <= its own.
        second = unique[:, 1]
        on = np.ones(n, dtype=bool)
        on[1:] = second[1:] < np.minimum.accumulate(second)[:-1]
        return on
    on = np.zeros(n, dtype=bool)
    remaining = np.arange(n)
    rest = unique
    while len(remaining):
        # The lexicographically first remaining row is non-dominated; drop every row it dominates
        # (distinct rows: weakly dominated means dominated).
        on[remaining[0]] = True
        keep = np.any(rest < rest[0], axis=1)
        rest, remaining = rest[keep], remaining[keep]
    return on


def non_dominated_ranks(values: np.ndarray, directions: list[str]) -> np.ndarray:
    """Non-domination rank of every row (0 = Pareto front, 1 = front once rank 0 is removed, ...).

    Rows equal in every objective never dominate each other and get the same rank. Two objectives
    take O(n log n); more objectives peel one front at a time.
    """
    loss = _as_loss(values, directions)
    if len(loss) == 0:
        return np.zeros(0, dtype=int)
    unique, inverse = np.unique(loss, axis=0, return_inverse=True)
    n, m = unique.shape
    if m == 1:
        ranks = np.arange(n)
    elif m == 2:
        ranks = _ranks_2d(unique)
    else:
        ranks = np.empty(n, dtype=int)
        remaining = np.arange(n)
        rank = 0
        while len(remaining):
            on = _unique_front(unique[remaining])
            ranks[remaining[on]] = rank
            remaining = remaining[~on]
            rank += 1
    return ranks[inverse.reshape(-1)]


def _ranks_2d(unique: np.ndarray) -> np.ndarray:
    # Rows come in lexicographic order, so every possible dominator of a row comes before it, and a
    # row is dominated by front k exactly when that front's smallest second value is <= its own.
    # Those minima grow with k, so the rank is a binary search (as in patience sorting).
    minima: list[float] = []
    ranks = np.empty(len(unique), dtype=int)
    for i, second in enumerate(unique[:, 1].tolist()):
        k = bisect.bisect_right(minima, second)
        if k == len(minima):
            minima.append(second)
        else:
            minima[k] = second
        ranks[i] = k
    return ranks


def default_reference(values: np.ndarray, directions: Sequence[str]) -> tuple[float, ...] | None:
    """The worst candidate value of each objective, moved :data:`REFERENCE_MARGIN` of its range further."""
    if len(values) == 0:
        return None
    loss = _as_loss(values, directions)
    worst, best = loss.max(axis=0), loss.min(axis=0)
    span = worst - best
    span = np.where(span > 0, span, np.where(worst != 0, np.abs(worst), 1.0))
    ref = worst + REFERENCE_MARGIN * span
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return tuple(float(v) for v in ref * sign)


def hypervolume(front: np.ndarray, reference_point: Sequence[float], directions: Sequence[str]) -> float:
    """Volume dominated by ``front`` and bounded by ``reference_point`` (Optuna's exact WFG algorithm).

    Values and reference point are in the objectives' own directions; points that do not dominate
    the reference point add nothing.
    """
    loss = _as_loss(np.asarray(front, dtype=float).reshape(-1, len(directions)), directions)
    ref = _as_loss(np.asarray(reference_point, dtype=float).reshape(1, -1), directions)[0]
    inside = np.all(loss <= ref, axis=1)
    if not inside.any():
        return 0.0
    return float(compute_hypervolume(loss[inside], ref))


def hypervolume_improvements(
    points: np.ndarray, front: np.ndarray, reference_point: Sequence[float], directions: Sequence[str]
) -> np.ndarray:
    """The hypervolume each of ``points`` would add to ``front`` on its own, ``[len(points)]``.

    With two objectives all points at once, exactly (each point's corner area that the front's
    staircase leaves uncovered): a sampler scores hundreds of candidates per trial. With more, one
    :func:`hypervolume` per point.
    """
    loss = _as_loss(np.asarray(points, dtype=float).reshape(-1, len(directions)), directions)
    covered = _as_loss(np.asarray(front, dtype=float).reshape(-1, len(directions)), directions)
    ref = _as_loss(np.asarray(reference_point, dtype=float).reshape(1, -1), directions)[0]
    if len(directions) != 2:
        base = hypervolume(front, reference_point, directions)
        return np.array([hypervolume(np.vstack([front, p]), reference_point, directions) - base for p in points])
    covered = covered[np.all(covered <= ref, axis=1)]
    covered = covered[np.argsort(covered[:, 0], kind="stable")]
    # the staircase: segment j spans [edges[j], edges[j + 1]) and is covered from heights[j] up
    edges = np.concatenate([[-np.inf], covered[:, 0], [ref[0]]])
    heights = np.concatenate([[ref[1]], np.minimum.accumulate(covered[:, 1])])
    width = np.minimum(edges[1:], ref[0])[None, :] - np.maximum(edges[:-1][None, :], loss[:, :1])
    depth = np.minimum(heights, ref[1])[None, :] - loss[:, 1:]
    return (np.clip(width, 0.0, None) * np.clip(depth, 0.0, None)).sum(1)


def normalised_hypervolume(
    volume: float, reference_point: Sequence[float], objectives: Sequence[tuple[str, str]]
) -> float | None:
    """``volume`` as a share of the box between ``reference_point`` and the ideal point (quality 1,
    costs 0: :func:`ideal_value`), so studies with other units or reference points compare; ``None``
    when an objective has no ideal value (a maximised cost)."""
    box = 1.0
    for (name, direction), ref in zip(objectives, reference_point, strict=True):
        box *= abs(ideal_value(name, direction) - float(ref))
    if not math.isfinite(box) or box == 0:
        return None
    return float(volume) / box


def hypervolume_text(
    volume: float,
    reference_point: Sequence[float],
    objectives: Sequence[tuple[str, str]],
    task_metric: str | None = None,
) -> str:
    """The one way skipsearch states a hypervolume, always with its reference point:
    ``hypervolume 12,345 (normalised 0.6123; reference point accuracy 0, MACs 183,322)``."""
    ref = ", ".join(
        f"{objective_label(name, task_metric)} {format_number(value)}"
        for (name, _), value in zip(objectives, reference_point, strict=True)
    )
    share = normalised_hypervolume(volume, reference_point, objectives)
    shown = f"normalised {share:.4f}; " if share is not None else ""
    return f"hypervolume {format_number(volume)} ({shown}reference point {ref})"


def hypervolume_history(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> np.ndarray:
    """Hypervolume of the front of ``values[: i + 1]`` for every ``i`` (rows in trial order).

    The front is kept incrementally: a dominated newcomer leaves the volume as it was, so only
    front-changing trials cost a hypervolume computation.
    """
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    out = np.zeros(len(values))
    front = np.zeros((0, len(directions)))
    volume = 0.0
    for i, row in enumerate(values):
        loss = row * sign
        dominated = len(front) > 0 and bool(np.any(np.all(front * sign <= loss, axis=1)))
        if not dominated:
            front = np.vstack([front, row])
            front = front[front_mask(front, directions)]
            volume = hypervolume(front, reference, directions)
        out[i] = volume
    return out
