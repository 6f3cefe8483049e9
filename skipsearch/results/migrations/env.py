"""Alembic environment for the skipsearch results schema.

skipsearch runs the migrations in-process (``skipsearch.results.ensure_schema``) and hands over its
own connection, already inside a locked transaction, as ``config.attributes["connection"]``. Run from
the command line (to write a new revision), the database comes from ``-x url=...`` or alembic.ini.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from skipsearch.results._models import VERSION_TABLE, Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set sqlalchemy.url")
    return url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, version_table=VERSION_TABLE, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER TABLE is limited
        # Leave Optuna's tables (same database) out of autogenerate's comparison.
        include_name=lambda name, type_, _parent: type_ != "table" or name in target_metadata.tables,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif "connection" in config.attributes:
    run_online(config.attributes["connection"])
else:
    from skipsearch.results._schema import connect_for_migrations

    with connect_for_migrations(_url()) as conn:
        run_online(conn)
