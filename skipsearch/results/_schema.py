"""Opening the results database: engine set-up, friendly errors and automatic migrations.

The schema is created and upgraded by Alembic, in-process, the moment a database is opened. Many
workers may open the same fresh database at once (Optuna issue #4621 is that race for Optuna's own
schema), so the upgrade runs under a lock and re-reads the version once it holds it: a PostgreSQL
transaction-level advisory lock, or on SQLite a ``BEGIN EXCLUSIVE`` transaction (the busy timeout makes
the others wait rather than fail).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Engine

from skipsearch.db import (
    BEGIN_OPTION,
    create_engine,
    driver_reason,
    parse_url,
    safe_url,
)
from skipsearch.errors import FieldError, UserError
from skipsearch.results._models import VERSION_TABLE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
"""Alembic's script directory, shipped as package data."""

_ADVISORY_LOCK_KEY = 0x5C1B5EA2C4
"""``pg_advisory_xact_lock`` key that serialises schema upgrades (any constant, unique to skipsearch)."""

_SUPPORTED = ("sqlite", "postgresql")


def connect(url: str, *, existing: bool = False) -> Engine:
    """Opens (creating or upgrading the schema as needed) the results database at ``url``.

    ``sqlite:///file.db`` or ``postgresql+psycopg://user@host/db`` (``postgres://`` and a bare
    ``postgresql://`` mean the same: :func:`skipsearch.db.normalise_url`). Any failure to open is a
    :class:`UserError` whose one-line message never shows the password. ``existing`` is for commands
    that only read: see :func:`require_existing_file`.
    """
    if existing:
        require_existing_file(url)
    parsed = _parse_url(url)
    shown = safe_url(parsed)
    try:
        engine = create_engine(parsed)
    except (ImportError, sa.exc.ArgumentError) as exc:
        raise UserError(f"cannot open results database {shown}: {driver_reason(exc, parsed)}") from None
    try:
        ensure_schema(engine)
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise UserError(f"cannot open results database {shown}: {driver_reason(exc, parsed)}") from None
    return engine


def require_existing_file(url: str) -> None:
    """A :class:`UserError` when ``url`` names an SQLite file that does not exist: opening it would
    create an empty database where the user meant to read one. URLs that do not parse pass (the
    opener words that error), as do other backends and in-memory SQLite."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if database and database != ":memory:" and not Path(database).exists():
        raise FieldError(
            "storage", None, f"no results database at {database!r} (give the storage URL, or set SKIPSEARCH_STORAGE)"
        )


def ensure_schema(engine: Engine) -> None:
    """Upgrades the results schema to the newest revision; a no-op when it is there already.

    Safe when several processes call it on the same fresh database at once.
    """
    script = _script()
    head = script.get_current_head()
    with engine.connect() as conn:
        current = _current_revision(conn)
    if current == head:  # the common case: no lock needed
        return
    if current is not None and current not in {s.revision for s in script.walk_revisions()}:
        raise UserError(
            f"the results tables are at schema revision {current!r}, newer than this skipsearch knows "
            f"(newest: {head!r}); upgrade skipsearch to read them"
        )
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))
            _upgrade_if_behind(conn, head)
    else:
        with engine.connect() as conn:
            conn = conn.execution_options(**{BEGIN_OPTION: "EXCLUSIVE"})
            with conn.begin():
                _upgrade_if_behind(conn, head)


def schema_revision(engine: Engine) -> str | None:
    """The results schema's current Alembic revision (``None`` before the first upgrade)."""
    with engine.connect() as conn:
        return _current_revision(conn)


def head_revision() -> str:
    """The newest revision shipped with this version of skipsearch."""
    head = _script().get_current_head()
    assert head is not None
    return head


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config for the shipped migrations; ``connection`` is handed to ``env.py``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade_if_behind(conn: sa.Connection, head: str | None) -> None:
    # Re-check under the lock: another process may have upgraded while this one waited.
    if _current_revision(conn) != head:
        command.upgrade(alembic_config(conn), "head")


def _current_revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def _parse_url(url: str) -> URL:
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    if backend not in _SUPPORTED:
        raise UserError(
            f"unsupported database {safe_url(parsed)}: "
            f"the results store needs SQLite or PostgreSQL ({', '.join(_SUPPORTED)})"
        )
    return parsed


@contextmanager
def connect_for_migrations(url: str) -> Iterator[sa.Connection]:
    """A connection in a transaction, for running Alembic from its command line (``env.py``)."""
    engine = create_engine(_parse_url(url))
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()
