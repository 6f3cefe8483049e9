"""Gradient-flow ratios of an evaluation, at initialisation and after training.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("grad_ratio_init", sa.Float(53), nullable=True))
        batch.add_column(sa.Column("grad_ratio", sa.Float(53), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("grad_ratio")
        batch.drop_column("grad_ratio_init")
