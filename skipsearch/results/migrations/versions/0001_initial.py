"""Initial results schema: topologies, edges, evaluations.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "topologies",
        sa.Column("hash", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("active_skips", sa.Integer(), nullable=False),
        sa.Column("paths", sa.Float(53), nullable=False),
        sa.Column("paths_exact", sa.Text(), nullable=False),
        sa.Column("shortest_path", sa.Integer(), nullable=False),
        sa.Column("longest_path", sa.Integer(), nullable=False),
        sa.Column("mean_path_length", sa.Float(53), nullable=False),
        sa.Column("max_concat_fan_in", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("hash", name="pk_topologies"),
    )
    op.create_table(
        "edges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("topology_hash", sa.String(16), nullable=False),
        sa.Column("src", sa.String(100), nullable=False),
        sa.Column("dst", sa.String(100), nullable=False),
        sa.Column("src_index", sa.Integer(), nullable=False),
        sa.Column("dst_index", sa.Integer(), nullable=False),
        sa.Column("span", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("align", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(["topology_hash"], ["topologies.hash"], name="fk_edges_topology_hash_topologies"),
        sa.PrimaryKeyConstraint("id", name="pk_edges"),
    )
    op.create_index("ix_edges_topology_hash", "edges", ["topology_hash"])
    op.create_index("ix_edges_kind", "edges", ["kind"])
    op.create_index("ix_edges_src_index_dst_index", "edges", ["src_index", "dst_index"])
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study", sa.String(512), nullable=False),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column("topology_hash", sa.String(16), nullable=False),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("accuracy", sa.Float(53), nullable=True),
        sa.Column("test_accuracy", sa.Float(53), nullable=True),
        sa.Column("loss", sa.Float(53), nullable=True),
        sa.Column("params", sa.BigInteger(), nullable=True),
        sa.Column("macs", sa.BigInteger(), nullable=True),
        sa.Column("flops", sa.BigInteger(), nullable=True),
        sa.Column("latency_ms", sa.Float(53), nullable=True),
        sa.Column("train_seconds", sa.Float(53), nullable=True),
        sa.Column("epochs", sa.Integer(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("curve", sa.Text(), nullable=False),
        sa.Column("reused_from", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["topology_hash"], ["topologies.hash"], name="fk_evaluations_topology_hash_topologies"),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
        sa.UniqueConstraint("study", "trial_number", name="uq_evaluations_study_trial_number"),
    )
    op.create_index("ix_evaluations_topology_hash", "evaluations", ["topology_hash"])
    op.create_index("ix_evaluations_study_state", "evaluations", ["study", "state"])
    op.create_index("ix_evaluations_accuracy", "evaluations", ["accuracy"])
    op.create_index("ix_evaluations_macs", "evaluations", ["macs"])
    op.create_index("ix_evaluations_params", "evaluations", ["params"])
    op.create_index("ix_evaluations_latency_ms", "evaluations", ["latency_ms"])


def downgrade() -> None:
    op.drop_table("evaluations")
    op.drop_table("edges")
    op.drop_table("topologies")
