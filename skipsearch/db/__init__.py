"""The database connection, in one place: URL parsing, engines, SQLite pragmas, password masking
and retries of lost connections.

Both the results tables (:mod:`skipsearch.results`) and Optuna's storage (:mod:`skipsearch.search`)
open their databases through this package; it imports nothing else of skipsearch but its errors.
"""

from skipsearch.db._engine import (
    BEGIN_OPTION,
    CONNECT_ATTEMPTS,
    POSTGRES_DRIVER,
    SQLITE_TIMEOUT_S,
    DatabaseURLError,
    backoff,
    configure_sqlite,
    connection_error_text,
    create_engine,
    driver_reason,
    enable_wal,
    engine_kwargs,
    is_connection_error,
    mask_password,
    normalise_url,
    parse_url,
    retrying,
    safe_url,
    sqlite_normal_sync,
    sqlite_writer,
)

__all__ = [
    "BEGIN_OPTION",
    "CONNECT_ATTEMPTS",
    "POSTGRES_DRIVER",
    "SQLITE_TIMEOUT_S",
    "DatabaseURLError",
    "backoff",
    "configure_sqlite",
    "connection_error_text",
    "create_engine",
    "driver_reason",
    "enable_wal",
    "engine_kwargs",
    "is_connection_error",
    "mask_password",
    "normalise_url",
    "parse_url",
    "retrying",
    "safe_url",
    "sqlite_normal_sync",
    "sqlite_writer",
]
