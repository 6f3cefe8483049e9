"""Writing evaluations: one transaction per finished trial, idempotent on ``(study, trial_number)``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from skipsearch import metrics as schema
from skipsearch.db import sqlite_writer
from skipsearch.results._models import EdgeRow, EvaluationRow, MetricValueRow, StudyConfigRow, TopologyRow
from skipsearch.topology import Topology, graph_metrics

STATES = ("COMPLETE", "PRUNED", "FAIL")
"""How a trial ended: trained to the end, stopped early by the pruner, or failed."""

METRICS = schema.stored_metric_names()
"""Keys a record's ``metrics`` may hold (at import; :func:`skipsearch.metrics.stored_metric_names`
gives the current schema): ``accuracy`` is the validation metric the search optimises, the
``grad_ratio`` pair the first/last hidden block gradient ratio, the probes their scores at
initialisation (studies that ask for them)."""


@dataclass
class EvaluationRecord:
    """One finished trial as the results store keeps it."""

    study: str
    trial_number: int
    topology: Topology
    task: str
    seed: int
    state: str
    metrics: dict[str, float | int | None]
    failure_reason: str | None = None
    curve: list[float] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reused_from: int | None = None


def record_evaluation(engine: Engine, record: EvaluationRecord) -> None:
    """Stores ``record`` (its topology and edges too, once per hash) in one transaction.

    Writing the same ``(study, trial_number)`` again replaces that row, so a retried write never
    duplicates it.
    """
    record_evaluations(engine, [record])


def record_evaluations(engine: Engine, records: Iterable[EvaluationRecord]) -> int:
    """Stores many records in one transaction (imports, benchmarks); returns how many."""
    # The last write of a (study, trial_number) wins, as it would across separate calls.
    by_key = {(r.study, int(r.trial_number)): _evaluation_values(r) for r in records}
    rows = list(by_key.values())
    if not rows:
        return 0
    topologies = {r["topology_hash"]: r.pop("_topology") for r in rows}
    probes = [r.pop("_probes") for r in rows]
    with sqlite_writer(engine).begin() as conn:
        for topology in _new_topologies(conn, topologies):
            _insert_topology(conn, topology)
        _upsert_evaluations(conn, rows)
        _replace_metric_values(conn, [(r["study"], r["trial_number"]) for r in rows], probes)
    return len(rows)


def study_names(engine: Engine) -> list[str]:
    """Names of the studies that have evaluations, sorted."""
    with engine.connect() as conn:
        query = sa.select(EvaluationRow.study).distinct().order_by(EvaluationRow.study)
        return list(conn.scalars(query))


def recorded_trial_numbers(engine: Engine, study: str) -> set[int]:
    """Trial numbers of ``study`` that have an evaluation row (to fill in the missing ones)."""
    with engine.connect() as conn:
        return set(conn.scalars(sa.select(EvaluationRow.trial_number).where(EvaluationRow.study == study)))


def study_row_keys(engine: Engine, study: str) -> dict[int, tuple[str, datetime | None]]:
    """``{trial_number: (topology_hash, started_at)}`` of ``study``'s rows: what identifies them as
    copies of the same trials under another study name."""
    with engine.connect() as conn:
        query = sa.select(EvaluationRow.trial_number, EvaluationRow.topology_hash, EvaluationRow.started_at).where(
            EvaluationRow.study == study
        )
        return {number: (topology_hash, started) for number, topology_hash, started in conn.execute(query)}


def rename_study_rows(engine: Engine, old: str, new: str) -> tuple[int, int]:
    """Moves the rows of study ``old`` to study ``new`` (it was renamed) in one transaction; a row whose
    trial number ``new`` already has is a duplicate and is deleted. Returns ``(moved, deleted)``."""
    with sqlite_writer(engine).begin() as conn:
        taken = sa.select(EvaluationRow.trial_number).where(EvaluationRow.study == new).scalar_subquery()
        of_old = EvaluationRow.study == old
        duplicates = sa.select(EvaluationRow.id).where(of_old, EvaluationRow.trial_number.in_(taken))
        conn.execute(sa.delete(MetricValueRow).where(MetricValueRow.evaluation_id.in_(duplicates)))
        dropped = conn.execute(sa.delete(EvaluationRow).where(of_old, EvaluationRow.trial_number.in_(taken)))
        moved = conn.execute(sa.update(EvaluationRow).where(of_old).values(study=new))
        # The configuration follows the study, unless the new name has one of its own.
        if conn.execute(sa.select(StudyConfigRow.study).where(StudyConfigRow.study == new)).first() is None:
            conn.execute(sa.update(StudyConfigRow).where(StudyConfigRow.study == old).values(study=new))
        else:
            conn.execute(sa.delete(StudyConfigRow).where(StudyConfigRow.study == old))
        return int(moved.rowcount), int(dropped.rowcount)


def delete_study_rows(engine: Engine, study: str) -> int:
    """Deletes the rows of ``study`` (its study was deleted); returns how many. Topologies stay: other
    studies may share them."""
    with sqlite_writer(engine).begin() as conn:
        conn.execute(sa.delete(StudyConfigRow).where(StudyConfigRow.study == study))
        ids = sa.select(EvaluationRow.id).where(EvaluationRow.study == study)
        conn.execute(sa.delete(MetricValueRow).where(MetricValueRow.evaluation_id.in_(ids)))
        return int(conn.execute(sa.delete(EvaluationRow).where(EvaluationRow.study == study)).rowcount)


# -- rows ---------------------------------------------------------------------------------------


def _evaluation_values(record: EvaluationRecord) -> dict[str, Any]:
    if record.state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, got {record.state!r}")
    known = schema.stored_metric_names()
    unknown = sorted(set(record.metrics) - set(known))
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r} (known: {', '.join(known)})")
    values: dict[str, Any] = {m: _metric(m, record.metrics.get(m)) for m in _evaluation_columns()}
    probes = {m: _metric(m, record.metrics[m]) for m in schema.probe_names() if record.metrics.get(m) is not None}
    return {
        "study": record.study,
        "trial_number": int(record.trial_number),
        "topology_hash": record.topology.hash,
        "_topology": record.topology,
        "task": record.task,
        "seed": int(record.seed),
        "state": record.state,
        **values,
        "failure_reason": record.failure_reason,
        "curve": json.dumps([_finite_or_none(float(v)) for v in record.curve]),
        "reused_from": record.reused_from,
        "started_at": _utc_naive(record.started_at),
        "finished_at": _utc_naive(record.finished_at),
        "_probes": probes,
    }


def _evaluation_columns() -> list[str]:
    """The metrics stored as columns of ``evaluations`` (the others live in ``metric_values``)."""
    return [m.name for m in schema.all_metrics() if m.storage == "evaluations" and m.alias_of is None]


def _metric(name: str, value: float | int | None) -> float | int | None:
    if value is None:
        return None
    metric = schema.get(name)
    if metric is not None and metric.type == "int":
        return int(value)
    return _finite_or_none(float(value))


def _finite_or_none(value: float) -> float | None:
    # NaN has no portable SQL form (SQLite stores NULL, PostgreSQL NaN): store NULL everywhere.
    return None if math.isnan(value) else value


def _utc_naive(moment: datetime | None) -> datetime | None:
    """Timestamps are stored as naive UTC (SQLite has no time zones)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _new_topologies(conn: sa.Connection, topologies: dict[str, Topology]) -> list[Topology]:
    known: set[str] = set()
    hashes = list(topologies)
    for start in range(0, len(hashes), 1000):
        query = sa.select(TopologyRow.hash).where(TopologyRow.hash.in_(hashes[start : start + 1000]))
        known.update(conn.scalars(query))
    return [t for h, t in topologies.items() if h not in known]


def _insert_topology(conn: sa.Connection, topology: Topology) -> None:
    metrics = graph_metrics(topology)
    row = {
        "hash": topology.hash,
        "name": topology.name,
        "json": topology.to_json(indent=None),
        "nodes": len(topology.nodes),
        "active_skips": metrics.active_skips,
        "paths": metrics.paths_float,
        "paths_exact": metrics.paths_text,
        "shortest_path": metrics.shortest_path,
        "longest_path": metrics.longest_path,
        "mean_path_length": metrics.mean_path_length,
        "max_concat_fan_in": metrics.max_concat_fan_in,
        "created_at": datetime.now(UTC).replace(tzinfo=None),
    }
    # Another process may store the same topology at the same moment: the first one wins, and only
    # the statement that really inserted the topology adds its edges.
    stmt = _insert(conn, TopologyRow).values(row).on_conflict_do_nothing(index_elements=["hash"])
    if conn.dialect.insert_returning:  # psycopg reports no rowcount here: ask for the inserted key
        inserted = conn.execute(stmt.returning(TopologyRow.hash)).scalar_one_or_none() is not None
    else:
        inserted = conn.execute(stmt).rowcount == 1
    if not inserted:
        return
    index = topology.index
    edges = [
        {
            "topology_hash": topology.hash,
            "src": e.src,
            "dst": e.dst,
            "src_index": index[e.src],
            "dst_index": index[e.dst],
            "span": index[e.dst] - index[e.src],
            "kind": e.kind,
            "align": e.align,
        }
        for e in topology.active_skips
    ]
    if edges:
        conn.execute(sa.insert(EdgeRow), edges)


def _upsert_evaluations(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    # One statement executed for many parameter sets (the driver's executemany): cached once,
    # with no limit on the number of rows.
    stmt = _insert(conn, EvaluationRow)
    replaced = {c: stmt.excluded[c] for c in rows[0] if c not in ("study", "trial_number")}
    conn.execute(stmt.on_conflict_do_update(index_elements=["study", "trial_number"], set_=replaced), rows)


def _replace_metric_values(
    conn: sa.Connection, keys: list[tuple[str, int]], probes: list[dict[str, float | int | None]]
) -> None:
    """The probe rows of the just-written evaluations: the old ones go, the record's come in."""
    ids: dict[tuple[str, int], int] = {}
    for study in {s for s, _ in keys}:
        numbers = [n for s, n in keys if s == study]
        for start in range(0, len(numbers), 1000):
            query = sa.select(EvaluationRow.trial_number, EvaluationRow.id).where(
                EvaluationRow.study == study, EvaluationRow.trial_number.in_(numbers[start : start + 1000])
            )
            ids.update({(study, n): i for n, i in conn.execute(query)})
    written = [ids[k] for k in keys]
    for start in range(0, len(written), 1000):
        chunk = written[start : start + 1000]
        conn.execute(sa.delete(MetricValueRow).where(MetricValueRow.evaluation_id.in_(chunk)))
    rows = [
        {"evaluation_id": ids[key], "name": name, "value": value}
        for key, values in zip(keys, probes, strict=True)
        for name, value in values.items()
    ]
    if rows:
        conn.execute(sa.insert(MetricValueRow), rows)


def _insert(conn: sa.Connection, model: type) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(model)
