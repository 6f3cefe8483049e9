"""Probe values of an evaluation, one row per metric (the metrics of skipsearch.metrics stored in
``metric_values``): a new probe is one schema entry, with no migration of its own.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_values",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(53), nullable=True),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name="fk_metric_values_evaluation_id_evaluations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_metric_values"),
        sa.UniqueConstraint("evaluation_id", "name", name="uq_metric_values_evaluation_id_name"),
    )
    op.create_index("ix_metric_values_name_value", "metric_values", ["name", "value"])


def downgrade() -> None:
    op.drop_index("ix_metric_values_name_value", table_name="metric_values")
    op.drop_table("metric_values")
