"""Database URLs, engines and connection errors for SQLite and PostgreSQL.

The results tables and Optuna's storage use different engines (Optuna builds its own from keyword
arguments) but the same URL rules, timeouts, pool sizes, SQLite pragmas, masking and retries: all
of them are here, so that the two stay alike.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from skipsearch.errors import UserError

_logger = logging.getLogger("skipsearch.storage")

T = TypeVar("T")

POSTGRES_DRIVER = "postgresql+psycopg"
"""The PostgreSQL driver skipsearch installs (psycopg 3)."""

SQLITE_TIMEOUT_S = 60.0
"""How long an SQLite connection waits for another process's write lock before giving up."""

POSTGRES_CONNECT_TIMEOUT_S = 10
"""How long a PostgreSQL connection attempt waits for the server."""

CONNECT_ATTEMPTS = 6
"""Tries to reach the database at start (waits 0.5, 1, 2, 4, 8 s in between: about 15 s in all)."""

BEGIN_OPTION = "skipsearch_sqlite_begin"
"""Execution option naming the SQLite ``BEGIN`` flavour (``IMMEDIATE`` for writers, ``EXCLUSIVE``)."""

EXAMPLE_URLS = "sqlite:///FILE.db or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


class DatabaseURLError(UserError):
    """A database URL that cannot be used. The message never shows a password."""


# -- URLs ---------------------------------------------------------------------------------------


def normalise_url(url: str) -> str:
    """``postgres://...`` and ``postgresql://...`` (what most tools and hosting services print) ->
    ``postgresql+psycopg://...``; any other URL unchanged."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return f"{POSTGRES_DRIVER}://{url.removeprefix(prefix)}"
    return url


def parse_url(url: str) -> URL:
    """The normalised URL, parsed; :class:`DatabaseURLError` if it does not parse.

    The message does not echo the text: an unparsable URL gives no safe way to tell its password apart.
    """
    try:
        return make_url(normalise_url(url))
    except (sa.exc.ArgumentError, ValueError):
        raise DatabaseURLError(f"not a database URL (expected {EXAMPLE_URLS})") from None


def safe_url(url: str | URL) -> str:
    """The URL as it may be shown: the password masked."""
    try:
        return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<unparseable URL>"


def mask_password(text: str) -> str:
    """``text`` with the password of any URL in it replaced by ``***``."""
    return re.sub(r"(://[^:/@?#]*:)[^@/]*@", r"\1***@", text)


# -- engines ------------------------------------------------------------------------------------


def engine_kwargs(url: URL, *, pool_size: int, max_overflow: int, pool_recycle: int | None = None) -> dict[str, Any]:
    """``create_engine`` keyword arguments: connections checked before use (``pool_pre_ping``, so a
    restarted server costs a reconnect, not a crash), SQLite's lock wait, and on PostgreSQL a pool
    of ``pool_size`` (+ ``max_overflow``) connections that gives up on an unreachable server in 10 s."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
        return kwargs
    kwargs.update(
        pool_size=pool_size, max_overflow=max_overflow, connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    )
    if pool_recycle is not None:
        kwargs["pool_recycle"] = pool_recycle
    return kwargs


def create_engine(url: URL, *, pool_size: int = 2, max_overflow: int = 3) -> Engine:
    """An engine for ``url``; on SQLite one that owns its transactions (see :func:`configure_sqlite`)."""
    engine = sa.create_engine(url, **engine_kwargs(url, pool_size=pool_size, max_overflow=max_overflow))
    if url.get_backend_name() == "sqlite":
        configure_sqlite(engine)
    return engine


def configure_sqlite(engine: Engine) -> None:
    """Own SQLite's transactions (the pysqlite driver's implicit ones break locking) and turn WAL on."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # no implicit BEGIN from the driver; see _on_begin
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Persistent in the file; an in-memory database or a filesystem without shared memory
            # answers with its own journal mode instead, and a read-only file keeps its own.
            with contextlib.suppress(Exception):
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        flavour = conn.get_execution_options().get(BEGIN_OPTION, "")
        conn.exec_driver_sql(f"BEGIN {flavour}".strip())


def sqlite_normal_sync(dbapi_connection: Any, connection_record: Any) -> None:
    """``synchronous=NORMAL``: in WAL mode a commit no longer waits for the disk (about 3.5 ms a
    commit here, and a trial makes some 50: its parameters, attributes, heartbeat and tell). The
    database cannot be corrupted by it; a power loss (not a crashed process) may roll back the last
    commits, whose trials then go stale and are retried."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def sqlite_writer(engine: Engine) -> Engine:
    """``engine`` set to open write transactions with ``BEGIN IMMEDIATE`` on SQLite.

    A deferred transaction that reads before it writes can fail at once with "database is locked"
    when another process wrote in between; taking the write lock at ``BEGIN`` makes it wait instead.
    """
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})


def enable_wal(path: str) -> None:
    """Turns on WAL in the SQLite file at ``path`` (it persists there): readers (dashboard, queries)
    then work while workers write. Engines of :func:`create_engine` do it on every connect; this is
    for engines built elsewhere (Optuna's)."""
    try:
        with sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise DatabaseURLError(f"cannot open SQLite database {path!r}: {exc}") from None


# -- errors and retries -------------------------------------------------------------------------


def driver_reason(exc: BaseException, url: URL) -> str:
    """The first line of the driver's message, with the password (if any) blanked out."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if url.password:
        text = text.replace(str(url.password), "***")
    return mask_password(text)


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a lost or refused database connection (worth a retry), not a bad query.

    Looks through the chain of causes: Optuna wraps SQLAlchemy's errors in ``StorageInternalError``.
    """
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, sa.exc.DBAPIError):
            return _transient(seen)
        if isinstance(seen, sa.exc.PendingRollbackError):  # a session left behind by a lost connection
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transient(exc: sa.exc.DBAPIError) -> bool:
    # A missing database, wrong password or bad SQLite path will not heal by waiting.
    text = str(exc.orig).lower() if exc.orig is not None else ""
    permanent = ("does not exist", "password authentication failed", "unable to open database", "no such table")
    if any(p in text for p in permanent):
        return False
    return exc.connection_invalidated or isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))


def connection_error_text(exc: BaseException) -> str:
    """The first line of the database error behind ``exc``."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, sa.exc.DBAPIError):
        seen = seen.__cause__ or seen.__context__
    return _first(seen) if seen is not None else (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _first(exc: sa.exc.DBAPIError) -> str:
    text = str(exc.orig).strip() if exc.orig is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


def retrying(fn: Callable[[], T], what: str, attempts: int = CONNECT_ATTEMPTS) -> T:
    """``fn()``, retried with exponential backoff while it fails on a lost or refused connection."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if attempt + 1 >= attempts or not is_connection_error(exc):
                raise
            delay = backoff(attempt)
            _logger.warning("%s failed (%s); retrying in %.1f s", what, connection_error_text(exc), delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def backoff(attempt: int, base: float = 0.5, cap: float = 8.0) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): doubling from ``base`` up to ``cap``."""
    return min(cap, base * 2**attempt)
