"""Reading evaluations: the ``--where`` mini-language and the joined evaluations table.

A ``--where`` expression is parsed into a :class:`Condition` and turned into a SQLAlchemy expression
with a bound parameter; no user text ever reaches SQL. The grammar is deliberately tiny::

    COLUMN OP VALUE     OP in < <= > >= = !=, VALUE a number or a bare word [A-Za-z0-9_.-]+
    kind=KIND           the topology has an active skip edge of that kind (kind!=KIND: has none)
    edge=A->B           it has an active edge from A to B: backbone indices (2->5) or node ids
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from skipsearch import metrics as schema
from skipsearch.errors import FieldError
from skipsearch.results._models import EdgeRow, EvaluationRow, MetricValueRow, TopologyRow
from skipsearch.results._record import STATES
from skipsearch.topology import EDGE_KINDS

_E, _T = EvaluationRow, TopologyRow

_BEFORE = {
    "id": _E.id,
    "study": _E.study,
    "trial_number": _E.trial_number,
    "hash": _E.topology_hash,
    "name": _T.name,
    "task": _E.task,
    "seed": _E.seed,
    "state": _E.state,
}
_BETWEEN = {"reused_from": _E.reused_from, "failure_reason": _E.failure_reason}
_AFTER = {"started_at": _E.started_at, "finished_at": _E.finished_at, "curve": _E.curve}


def probe_column(name: str) -> sa.ScalarSelect[Any]:
    """A probe's value of each evaluation row: a correlated subquery of ``metric_values`` (NULL when
    the trial did not measure it), usable in SELECT, WHERE and ORDER BY like a column."""
    query = sa.select(MetricValueRow.value).where(MetricValueRow.evaluation_id == _E.id, MetricValueRow.name == name)
    return query.correlate(_E).scalar_subquery()


class _Columns(Mapping[str, Any]):
    """Every column of :func:`evaluations`' table, in order, with its SQL source; built from the
    metric schema (:mod:`skipsearch.metrics`) on each use, so a metric registered later is a column."""

    def _build(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(_BEFORE)
        for metric in schema.all_metrics():
            if metric.alias_of is None and metric.storage == "evaluations":
                out[metric.name] = getattr(_E, metric.name)
        for metric in schema.all_metrics():
            if metric.storage == "metric_values":
                out[metric.name] = probe_column(metric.name)
        out.update(_BETWEEN)
        for metric in schema.all_metrics():
            if metric.storage == "topologies":
                out[metric.name] = getattr(_T, metric.name)
        out.update(_AFTER)
        return out

    def __getitem__(self, key: str) -> Any:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())


COLUMNS: Mapping[str, Any] = _Columns()
"""Every column of :func:`evaluations`' table, in order, with its SQL source."""

STRING_COLUMNS = ("study", "hash", "name", "task", "state")
"""Columns a ``--where`` compares as text (``=`` and ``!=`` only)."""


def numeric_columns() -> tuple[str, ...]:
    """Columns a ``--where`` compares as numbers; also the columns usable as Pareto objectives and sort keys."""
    return tuple(n for n, c in COLUMNS.items() if isinstance(c.type, sa.Integer | sa.Float) and n != "id")


def topology_columns() -> tuple[str, ...]:
    """Columns read from the ``topologies`` table (a query filtering on them joins it)."""
    return ("name", *(m.name for m in schema.all_metrics() if m.storage == "topologies"))


EDGE_FIELDS = ("kind", "edge")
"""The ``--where`` fields that test the topology's active skip edges."""


def sortable() -> tuple[str, ...]:
    return (*STRING_COLUMNS, *numeric_columns(), "id", "started_at", "finished_at")


def _int_columns() -> tuple[str, ...]:
    """Columns whose values come back as integers (a frame would otherwise make floats of them)."""
    return tuple(n for n, c in COLUMNS.items() if isinstance(c.type, sa.Integer))


OPERATORS = ("<", "<=", ">", ">=", "=", "!=")
_OPS = {
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
}

_EXPR = re.compile(r"^\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op><=|>=|!=|==|=|<|>)\s*(?P<value>\S+)\s*$")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_WORD = re.compile(r"^[A-Za-z0-9_.-]+$")
_EDGE = re.compile(r"^(?P<src>[A-Za-z0-9_]+)->(?P<dst>[A-Za-z0-9_]+)$")
_FORBIDDEN = re.compile(r"['\"`;()\\]|--|/\*|\*/|#")
_SQL_WORDS = frozenset(
    {
        *("select", "union", "insert", "update", "delete", "drop", "alter", "create", "truncate", "exec"),
        *("execute", "pragma", "attach", "detach", "or", "and", "not", "where", "from", "join", "having"),
        *("like", "glob", "into", "table", "null", "case", "when", "sleep"),
    }
)
_EXAMPLES = "e.g. accuracy>=0.9, state=COMPLETE, kind=concat, edge=2->5"


@dataclass(frozen=True)
class Condition:
    """A parsed ``--where`` expression: ``field op value``.

    ``field`` is a column of :data:`COLUMNS`, or ``kind`` / ``edge`` (edge tests); ``value`` a float,
    a string, or for ``edge`` a ``(source, destination)`` pair of backbone indices or node ids.
    """

    field: str
    op: str
    value: float | str | tuple[int | str, int | str]
    text: str

    @property
    def needs_topology(self) -> bool:
        """Whether the condition reads a ``topologies`` column (the query must join that table)."""
        return self.field in topology_columns()

    def clause(self) -> sa.ColumnElement[bool]:
        """The SQLAlchemy boolean expression (bound parameters only)."""
        if self.field in EDGE_FIELDS:
            edges = sa.select(EdgeRow.id).where(EdgeRow.topology_hash == EvaluationRow.topology_hash)
            if self.field == "kind":
                edges = edges.where(EdgeRow.kind == self.value)
            else:
                src, dst = self.value  # type: ignore[misc,str-unpack]
                edges = edges.where(_edge_end(src, "src"), _edge_end(dst, "dst"))
            exists = edges.exists()
            return exists if self.op == "=" else ~exists
        return _OPS[self.op](COLUMNS[self.field], self.value)


def _edge_end(end: int | str, side: str) -> sa.ColumnElement[bool]:
    if isinstance(end, int):
        return getattr(EdgeRow, f"{side}_index") == end
    return getattr(EdgeRow, side) == end


def parse_where(expr: str) -> Condition:
    """Parses one ``--where`` expression; anything outside the grammar is a one-line :class:`UserError`."""
    shown = repr(expr)
    if _FORBIDDEN.search(expr):
        raise FieldError(
            "where",
            shown,
            f"quotes, semicolons, parentheses, backslashes and comment markers are not allowed; "
            f"write COLUMN OP VALUE ({_EXAMPLES})",
        )
    match = _EXPR.match(expr)
    words = {w.lower() for w in re.findall(r"[A-Za-z_]+", expr)}
    if match is None:
        if words & _SQL_WORDS:
            raise FieldError("where", shown, f"SQL is not accepted; write COLUMN OP VALUE ({_EXAMPLES})")
        raise FieldError("where", shown, f"expected COLUMN OP VALUE with OP one of {' '.join(OPERATORS)} ({_EXAMPLES})")
    field, op, raw = match["field"].lower(), match["op"], match["value"]
    op = "=" if op == "==" else op
    if raw.lower() in _SQL_WORDS:
        raise FieldError("where", shown, f"SQL is not accepted; write COLUMN OP VALUE ({_EXAMPLES})")
    if field in EDGE_FIELDS:
        return _parse_edge_condition(field, op, raw, expr)
    if field not in STRING_COLUMNS and field not in numeric_columns():
        valid = ", ".join([*STRING_COLUMNS, *numeric_columns(), *EDGE_FIELDS])
        raise FieldError("where", shown, f"unknown column {field!r} (valid: {valid})")
    if field in STRING_COLUMNS:
        return Condition(field, op, _string_value(field, op, raw, shown), expr)
    if not _NUMBER.match(raw):
        raise FieldError("where", shown, f"{field} is a number, got {raw!r}")
    return Condition(field, op, float(raw), expr)


def _string_value(field: str, op: str, raw: str, shown: str) -> str:
    if op not in ("=", "!="):
        raise FieldError("where", shown, f"{field} is text; use = or !=")
    if not _WORD.match(raw):
        raise FieldError("where", shown, f"the value must be a number or a bare word [A-Za-z0-9_.-]+, got {raw!r}")
    if field == "state":
        if raw.upper() not in STATES:
            raise FieldError("where", shown, f"state is one of {', '.join(STATES)}")
        return raw.upper()
    return raw


def _parse_edge_condition(field: str, op: str, raw: str, expr: str) -> Condition:
    shown = repr(expr)
    if op not in ("=", "!="):
        raise FieldError("where", shown, f"{field} takes = or != only")
    if field == "kind":
        kinds = [k for k in EDGE_KINDS if k != "off"]
        if raw.lower() not in kinds:
            raise FieldError("where", shown, f"kind is one of {', '.join(kinds)} (only active edges are stored)")
        return Condition(field, op, raw.lower(), expr)
    match = _EDGE.match(raw)
    if match is None:
        raise FieldError("where", shown, "write edge=SRC->DST with backbone indices (2->5) or node ids (s1b1->s2b1)")
    ends = tuple(int(e) if e.isdigit() else e for e in (match["src"], match["dst"]))
    return Condition(field, op, ends, expr)  # type: ignore[arg-type]


def parse_sort(sort: str) -> tuple[str, bool]:
    """``COL``, ``-COL``, ``COL:asc`` or ``COL:desc`` -> (column, descending)."""
    text = sort.strip()
    descending = text.startswith("-")
    text = text.lstrip("-")
    if ":" in text:
        text, _, direction = text.partition(":")
        if direction.lower() not in ("asc", "desc"):
            raise FieldError("sort", repr(sort), "direction must be asc or desc")
        descending = direction.lower() == "desc"
    if text not in sortable():
        raise FieldError("sort", repr(sort), f"unknown column (valid: {', '.join(sortable())})")
    return text, descending


def conditions(where: Iterable[str | Condition]) -> list[Condition]:
    return [w if isinstance(w, Condition) else parse_where(w) for w in where]


def evaluations(
    engine: Engine,
    studies: Sequence[str] | None = None,
    where: Iterable[str | Condition] = (),
    sort: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Evaluations joined with their topology's metrics, one row per trial (see :data:`COLUMNS`).

    ``studies`` None means all; ``where`` expressions are ANDed; ``sort`` is ``COL``, ``-COL`` or
    ``COL:desc`` (default: study, then trial number); ``curve`` comes back as a list.
    """
    columns = dict(COLUMNS)
    query = base_query(list(columns.values()), studies, conditions(where), join_topology=True)
    if sort:
        column, descending = parse_sort(sort)
        key = columns[column]
        query = query.order_by((key.desc() if descending else key.asc()).nulls_last())
    query = query.order_by(EvaluationRow.study, EvaluationRow.trial_number)
    if limit is not None:
        if limit < 0:
            raise FieldError("limit", None, f"must be 0 or more, got {limit}")
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return to_frame(rows)


def base_query(
    columns: list[Any],
    studies: Sequence[str] | None,
    conds: list[Condition],
    *,
    join_topology: bool,
) -> sa.Select[Any]:
    """SELECT ``columns`` from evaluations (joined with topologies where needed), filtered."""
    query = sa.select(*columns).select_from(EvaluationRow)
    if join_topology or any(c.needs_topology for c in conds):
        query = query.join(TopologyRow, TopologyRow.hash == EvaluationRow.topology_hash)
    if studies is not None:
        query = query.where(EvaluationRow.study.in_(list(studies)))
    for cond in conds:
        query = query.where(cond.clause())
    return query


def to_frame(rows: Sequence[Any]) -> pd.DataFrame:
    """Rows of all :data:`COLUMNS` -> a DataFrame with nullable integer columns and parsed curves."""
    # Column-wise: pandas probes every row object it is given, which is slow for SQLAlchemy rows.
    names = list(COLUMNS)
    columns = list(zip(*rows, strict=True)) or [()] * len(names)
    frame = pd.DataFrame({name: list(col) for name, col in zip(names, columns, strict=True)})
    ints = _int_columns()
    for column in ints:
        frame[column] = frame[column].astype("Int64")
    for column in numeric_columns():
        if column not in ints:
            frame[column] = frame[column].astype("float64")
    frame["curve"] = [json.loads(c) if c else [] for c in frame["curve"]]
    return frame


def frame_records(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """JSON-ready row objects: missing values as None, numpy scalars as Python ones, times as ISO text."""
    out = []
    for row in frame[list(columns) if columns else list(frame.columns)].to_dict("records"):
        out.append({k: _plain(v) for k, v in row.items()})
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return value
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and np.isnan(value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
