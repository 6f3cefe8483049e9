"""Choosing one trial of a stored study: by Pareto rank, the front's knee, trial number or hash.

The knee of a front: each objective is scaled to [0, 1] over the front (0 = its best member, 1 = its
worst, maximised objectives flipped), and the knee is the member with the smallest sum of scaled
values, i.e. the one farthest from the hyperplane ``sum = 1`` on the side of the ideal point. With
two objectives that hyperplane is exactly the line through the front's two extremes (they scale to
``(0, 1)`` and ``(1, 0)``), so this is the classic "farthest from the extremes' line" knee; with
three it is the same construction one dimension up. Ties go to the better first objective (the
front's order), and a front of one or two members yields its first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from skipsearch import metrics as schema
from skipsearch.errors import FieldError, UserError
from skipsearch.results import (
    DEFAULT_OBJECTIVES,
    TopologyRow,
    config_objectives,
    connect,
    evaluations,
    pareto,
    study_config,
    study_names,
)
from skipsearch.results._query import frame_records
from skipsearch.tasks import Recipe
from skipsearch.topology import Topology

METRIC_COLUMNS: tuple[str, ...] = ("accuracy", "test_accuracy", "loss", "params", "macs", "flops", "latency_ms")
METRIC_COLUMNS += ("train_seconds", "epochs")
"""Columns of a trial's row copied into :attr:`SelectedTrial.metrics`, with the probes it scored."""


def _metrics(row: pd.Series) -> dict[str, Any]:
    """The trial's metrics (:data:`METRIC_COLUMNS`) and the probes of the schema it has values of."""
    probes = [name for name in schema.probe_names() if name in row.index]
    values = frame_records(pd.DataFrame([row]), [*METRIC_COLUMNS, *probes])[0]
    return {k: v for k, v in values.items() if k in METRIC_COLUMNS or v is not None}


@dataclass(frozen=True)
class SelectedTrial:
    """One trial of a study: its topology, recorded metrics and (when the study has one) training recipe."""

    study: str
    trial_number: int
    topology: Topology
    state: str
    metrics: dict[str, Any]
    recipe: Recipe | None
    selector: str
    """How it was chosen, e.g. ``rank 1``, ``knee``, ``trial 4``, ``hash 3f2a...``."""

    @property
    def stem(self) -> str:
        """The file stem of its exports (made safe by :func:`skipsearch.export._paths.slug`)."""
        return f"{self.study}_trial{self.trial_number}"


def select_trial(
    storage: str | Engine,
    study: str,
    *,
    rank: int | None = None,
    knee: bool = False,
    trial: int | None = None,
    hash: str | None = None,  # the CLI's --hash
) -> SelectedTrial:
    """The trial of ``study`` that exactly one selector names; :class:`UserError` otherwise.

    ``rank`` is 1-based along the Pareto front sorted by the study's first objective (best first);
    ``knee`` is the front's knee (see the module docstring); ``trial`` a trial number; ``hash`` a
    topology hash or a unique prefix of at least 4 characters (COMPLETE trials first, then the lowest
    number). The objectives are the study's own, or accuracy:max,macs:min for results without one.
    """
    if sum((rank is not None, knee, trial is not None, hash is not None)) != 1:
        raise FieldError("rank", None, "choose the trial with exactly one of rank, knee, trial or hash")
    engine = _open(storage)
    known = study_names(engine)
    if study not in known:
        raise FieldError(
            "study", None, f"no evaluations for study {study!r} (studies with results: {', '.join(known) or 'none'})"
        )
    config = study_config(engine, study)
    if trial is not None:
        row, selector = _by_trial(engine, study, trial), f"trial {trial}"
    elif hash is not None:
        row, selector = _by_hash(engine, study, hash), f"hash {hash}"
    else:
        front = pareto(engine, [study], objectives_of(config)).front
        row, selector = _on_front(front, study, rank, objectives_of(config))
    return SelectedTrial(
        study=study,
        trial_number=int(row["trial_number"]),
        topology=_topology(engine, str(row["hash"])),
        state=str(row["state"]),
        metrics=_metrics(row),
        recipe=_recipe(config, row),
        selector=selector,
    )


def objectives_of(config: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A study's objectives (from its stored configuration) as ``(column, min|max)``; the default
    pair for results without a study."""
    if config is None:
        return list(DEFAULT_OBJECTIVES)
    return config_objectives(config)


def knee_index(values: np.ndarray, directions: list[str]) -> int:
    """Row index of the knee of a front given as an ``(n, m)`` array (see the module docstring)."""
    values = np.asarray(values, dtype=float)
    if len(values) <= 2:
        return 0
    loss = values * np.array([-1.0 if d == "max" else 1.0 for d in directions])
    low, span = loss.min(axis=0), np.ptp(loss, axis=0)
    scaled = (loss - low) / np.where(span > 0, span, 1.0)
    return int(np.argmin(scaled.sum(axis=1)))  # argmin keeps the first of equals: the front's order


# -- steps ----------------------------------------------------------------------------------------


def _open(storage: str | Engine) -> Engine:
    if isinstance(storage, Engine):
        return storage
    return connect(storage, existing=True)


def _by_trial(engine: Engine, study: str, number: int) -> pd.Series:
    rows = evaluations(engine, [study], [f"trial_number={number}"])
    if rows.empty:
        numbers = evaluations(engine, [study])["trial_number"]
        raise FieldError(
            "trial",
            str(number),
            f"study {study!r} has no evaluated trial {number} (trials {int(numbers.min())}..{int(numbers.max())})",
        )
    return rows.iloc[0]


def _by_hash(engine: Engine, study: str, prefix: str) -> pd.Series:
    text = prefix.strip().lower()
    if len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
        raise FieldError("hash", repr(prefix), "give a topology hash (16 hex digits) or a prefix of at least 4")
    rows = evaluations(engine, [study])
    rows = rows[rows["hash"].str.startswith(text)]
    if rows.empty:
        raise FieldError("hash", repr(prefix), f"no trial of study {study!r} evaluated such a topology")
    if rows["hash"].nunique() > 1:
        raise FieldError("hash", repr(prefix), f"matches {rows['hash'].nunique()} topologies; give more digits")
    complete = rows[rows["state"] == "COMPLETE"]
    return (complete if not complete.empty else rows).sort_values("trial_number").iloc[0]


def _on_front(
    front: pd.DataFrame, study: str, rank: int | None, objectives: list[tuple[str, str]]
) -> tuple[pd.Series, str]:
    if front.empty:
        raise UserError(f"study {study!r} has no COMPLETE trial with every objective: its Pareto front is empty")
    if rank is None:
        values = front[[c for c, _ in objectives]].to_numpy(dtype=float)
        return front.iloc[knee_index(values, [d for _, d in objectives])], "knee"
    if not 1 <= rank <= len(front):
        raise FieldError(
            "rank", str(rank), f"the Pareto front of study {study!r} has {len(front)} member(s) (1..{len(front)})"
        )
    return front.iloc[rank - 1], f"rank {rank}"


def _topology(engine: Engine, topology_hash: str) -> Topology:
    with engine.connect() as conn:
        text = conn.execute(sa.select(TopologyRow.json).where(TopologyRow.hash == topology_hash)).scalar_one()
    return Topology.from_json(text, source=f"topology {topology_hash}")


def _recipe(config: dict[str, Any] | None, row: pd.Series) -> Recipe | None:
    """The study's training settings, with the trial's own seed and task (what the trial ran)."""
    if config is None:
        return None
    return Recipe.from_study_config(config, seed=int(row["seed"]), task=str(row["task"]) or None)


def describe(selected: SelectedTrial) -> dict[str, Any]:
    """JSON-ready summary of a selection (printed by the CLI, stored in bundle manifests)."""
    return {
        "study": selected.study,
        "trial": selected.trial_number,
        "selector": selected.selector,
        "state": selected.state,
        "hash": selected.topology.hash,
        "metrics": json.loads(json.dumps(selected.metrics, default=str)),
    }
