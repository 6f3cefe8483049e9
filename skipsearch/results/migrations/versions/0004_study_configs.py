"""Each study's validated configuration in skipsearch's own table, copied from Optuna's study
attributes where a study already has one (so export and analysis need neither).

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CONFIG_ATTR = "skipsearch_config"
"""Optuna study user attribute where skipsearch has always kept a study's configuration."""


def upgrade() -> None:
    table = op.create_table(
        "study_configs",
        sa.Column("study", sa.String(512), primary_key=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    bind = op.get_bind()
    tables = set(sa.inspect(bind).get_table_names())
    if not {"studies", "study_user_attributes"} <= tables:
        return  # a database of results alone: no Optuna study to copy from
    rows = bind.execute(
        sa.text(
            "SELECT s.study_name, a.value_json FROM studies s "
            "JOIN study_user_attributes a ON a.study_id = s.study_id WHERE a.key = :key"
        ),
        {"key": CONFIG_ATTR},
    ).all()
    now = datetime.now(UTC).replace(tzinfo=None)
    configs = [{"study": name, "config": json.dumps(json.loads(value)), "updated_at": now} for name, value in rows]
    if configs:
        op.bulk_insert(table, configs)


def downgrade() -> None:
    op.drop_table("study_configs")
