"""Training data from the results tables: the evaluated topologies of one or several studies of one task."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa

from skipsearch import metrics as schema
from skipsearch.errors import UserError
from skipsearch.results import EvaluationRow, TopologyRow
from skipsearch.topology import Topology


def dataset_from_results(
    engine: sa.Engine, studies: Sequence[str], targets: Sequence[str] = ("accuracy",)
) -> tuple[list[Topology], np.ndarray]:
    """The distinct topologies of ``studies`` that completed, with their ``targets`` (``[n, len(targets)]``).

    A topology evaluated more than once (several seeds or studies) gets its mean. All rows must be
    of one task: accuracies of different tasks do not rank against each other.
    """
    columns = [getattr(EvaluationRow, name) for name in targets]
    query = (
        sa.select(TopologyRow.hash, TopologyRow.json, EvaluationRow.task, *columns)
        .join(TopologyRow, TopologyRow.hash == EvaluationRow.topology_hash)
        .where(EvaluationRow.study.in_(list(studies)), EvaluationRow.state == "COMPLETE")
        .order_by(EvaluationRow.study, EvaluationRow.trial_number)
    )
    with engine.connect() as conn:
        rows = [r for r in conn.execute(query).all() if all(v is not None for v in r[3:])]
    if not rows:
        raise UserError(f"no completed trials with {', '.join(targets)} in studies {', '.join(studies)}")
    tasks = sorted({r.task for r in rows})
    if len(tasks) > 1:
        raise UserError(f"the studies mix tasks ({', '.join(tasks)}): train a predictor on one task at a time")
    grouped: dict[str, tuple[str, list[list[float]]]] = {}
    for row in rows:
        grouped.setdefault(row.hash, (row.json, []))[1].append([float(v) for v in row[3:]])
    topologies = [Topology.from_json(text) for text, _ in grouped.values()]
    values = np.array([np.mean(vals, axis=0) for _, vals in grouped.values()])
    return topologies, values


def features_from_results(
    engine: sa.Engine, studies: Sequence[str], topologies: Sequence[Topology], names: Sequence[str]
) -> np.ndarray:
    """The probe scores ``names`` of each topology (``[len(topologies), len(names)]``, the mean over
    the studies' completed trials), read from the results; a topology without them is an error."""
    from skipsearch.results import evaluations

    frame = evaluations(engine, list(studies), where=["state=COMPLETE"])
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise UserError(f"unknown feature {missing[0]!r} (probes: {', '.join(schema.probe_names())})")
    means = frame.groupby("hash")[list(names)].mean()
    rows = means.reindex([t.hash for t in topologies])
    if rows.isna().to_numpy().any():
        raise UserError(
            f"studies {', '.join(studies)} lack probe values ({', '.join(names)}) for some topologies: "
            "run them with 'analysis: {probes: true}'"
        )
    return rows.to_numpy(dtype=np.float64)
