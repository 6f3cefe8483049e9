"""Opening the Optuna storage: URL checks, heartbeats and retries of stale trials."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from skipsearch.errors import UserError

DEFAULT_STORAGE = "sqlite:///skipsearch.db"


def safe_url(url: str) -> str:
    """The URL as it may be shown: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def check_url(url: str) -> sqlalchemy.URL:
    """Parses a storage URL; :class:`UserError` for anything SQLAlchemy cannot use."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except NoSuchModuleError:  # a subclass of ArgumentError: check it first
        raise UserError(f"--storage: unknown database kind {url.split(':', 1)[0]!r} in {safe_url(url)}") from None
    except ArgumentError:
        raise UserError(f"--storage: not a database URL: {safe_url(url)} (e.g. sqlite:///skipsearch.db)") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise UserError(f"--storage: folder {folder.name!r} of {safe_url(url)} does not exist")
        _enable_wal(parsed.database)
    return parsed


def _enable_wal(path: str) -> None:
    """WAL lets readers (dashboard, queries) work while workers write; the mode persists in the file."""
    try:
        with sqlite3.connect(path, timeout=60) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise UserError(f"--storage: cannot open SQLite database {path!r}: {exc}") from None


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = 10,
    grace_period: int | None = 60,
    max_retry: int = 3,
) -> optuna.storages.RDBStorage:
    """An RDBStorage with heartbeats whose stale trials Optuna fails and re-queues (same parameters).

    Connections are checked before use (``pool_pre_ping``) so that a restarted server or a killed
    backend costs a reconnect, not a crash; SQLite waits up to 60 s for a lock.
    """
    parsed = check_url(url)
    engine_kwargs: dict[str, object] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs.update(pool_size=2, max_overflow=2, pool_recycle=300)
    callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry) if heartbeat_interval else None
    try:
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=callback,
        )
    except (OperationalError, sqlalchemy.exc.DBAPIError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise UserError(f"--storage: cannot connect to {safe_url(url)}: {reason}") from None
