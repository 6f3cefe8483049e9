"""The results schema as SQLAlchemy 2.0 declarative models.

Four tables live next to Optuna's in the same database: ``topologies`` (one row per distinct network,
keyed by its canonical hash), ``edges`` (one row per *active* skip edge, so SQL can filter on edges),
``evaluations`` (one row per finished trial) and ``metric_values`` (one row per evaluation and probe:
the metrics of :mod:`skipsearch.metrics` stored in ``metric_values``, so that a new probe needs no
migration). The migrations under ``migrations/versions`` create
exactly this schema; ``tests/results/test_schema.py`` checks that they agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

VERSION_TABLE = "skipsearch_alembic_version"
"""Alembic's version table for this schema; Optuna keeps its own ``alembic_version`` in the same database."""

# Named constraints make later migrations (and SQLite batch mode) able to find them.
_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class TopologyRow(Base):
    """A distinct topology (by canonical hash) with its graph metrics, for filtering and joining."""

    __tablename__ = "topologies"

    hash: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    json: Mapped[str] = mapped_column(Text)
    nodes: Mapped[int] = mapped_column(Integer)
    active_skips: Mapped[int] = mapped_column(Integer)
    # Path counts reach 2**54 and beyond (ResNet-110): a double for filtering and sorting, the exact
    # count as decimal text.
    paths: Mapped[float] = mapped_column(Float(53))
    paths_exact: Mapped[str] = mapped_column(Text)
    shortest_path: Mapped[int] = mapped_column(Integer)
    longest_path: Mapped[int] = mapped_column(Integer)
    mean_path_length: Mapped[float] = mapped_column(Float(53))
    max_concat_fan_in: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class EdgeRow(Base):
    """One active skip edge of a topology. ``span`` is ``dst_index - src_index`` (backbone positions)."""

    __tablename__ = "edges"
    __table_args__ = (
        Index(None, "kind"),
        Index(None, "src_index", "dst_index"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topology_hash: Mapped[str] = mapped_column(String(16), ForeignKey("topologies.hash"), index=True)
    src: Mapped[str] = mapped_column(String(100))
    dst: Mapped[str] = mapped_column(String(100))
    src_index: Mapped[int] = mapped_column(Integer)
    dst_index: Mapped[int] = mapped_column(Integer)
    span: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    align: Mapped[str] = mapped_column(String(16))


class EvaluationRow(Base):
    """One finished trial: which topology, on what task, how it ended and what it measured."""

    __tablename__ = "evaluations"
    __table_args__ = (
        UniqueConstraint("study", "trial_number"),
        Index(None, "study", "state"),
        Index(None, "accuracy"),
        Index(None, "macs"),
        Index(None, "params"),
        Index(None, "latency_ms"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study: Mapped[str] = mapped_column(String(512))
    trial_number: Mapped[int] = mapped_column(Integer)
    topology_hash: Mapped[str] = mapped_column(String(16), ForeignKey("topologies.hash"), index=True)
    task: Mapped[str] = mapped_column(String(200))
    seed: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    accuracy: Mapped[float | None] = mapped_column(Float(53))
    test_accuracy: Mapped[float | None] = mapped_column(Float(53))
    loss: Mapped[float | None] = mapped_column(Float(53))
    params: Mapped[int | None] = mapped_column(BigInteger)
    macs: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[int | None] = mapped_column(BigInteger)
    latency_ms: Mapped[float | None] = mapped_column(Float(53))
    train_seconds: Mapped[float | None] = mapped_column(Float(53))
    epochs: Mapped[int | None] = mapped_column(Integer)
    grad_ratio_init: Mapped[float | None] = mapped_column(Float(53))  # revision 0002
    grad_ratio: Mapped[float | None] = mapped_column(Float(53))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    curve: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of per-epoch validation metrics
    reused_from: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class StudyConfigRow(Base):
    """A study's validated configuration (revision 0004), as JSON: what export and analysis read
    without importing :mod:`skipsearch.search` or Optuna's tables."""

    __tablename__ = "study_configs"

    study: Mapped[str] = mapped_column(String(512), primary_key=True)
    config: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MetricValueRow(Base):
    """One probe value of one evaluation (revision 0003). A metric the trial did not measure has no row."""

    __tablename__ = "metric_values"
    __table_args__ = (
        UniqueConstraint("evaluation_id", "name"),
        Index(None, "name", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evaluation_id: Mapped[int] = mapped_column(Integer, ForeignKey("evaluations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float(53))
