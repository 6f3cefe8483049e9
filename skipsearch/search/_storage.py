"""Opening the Optuna storage: URL checks, heartbeats and retries of stale trials."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.storages._rdb import models
from optuna.trial import TrialState
from sqlalchemy import event, orm
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from skipsearch.errors import UserError
from skipsearch.results._schema import normalise_url

_logger = logging.getLogger("skipsearch.storage")

T = TypeVar("T")


def safe_url(url: str) -> str:
    """The URL as it may be shown: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def check_url(url: str) -> sqlalchemy.URL:
    """Parses a storage URL; :class:`UserError` for anything SQLAlchemy cannot use."""
    try:
        parsed = make_url(normalise_url(url))
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


CONNECTIONS_PER_WORKER = 2
"""Database connections a worker's Optuna storage may hold: one for the trial loop, one for the
heartbeat thread. With the results engine's (see :func:`skipsearch.results.connect`) a worker needs
about 4; size PostgreSQL's ``max_connections`` as 4 x workers + dashboard + headroom."""

CONNECT_ATTEMPTS = 6
"""Tries to reach the database at start (waits 0.5, 1, 2, 4, 8 s in between: about 15 s in all)."""


def _sqlite_normal_sync(dbapi_connection: Any, connection_record: Any) -> None:
    """``synchronous=NORMAL``: in WAL mode a commit no longer waits for the disk (about 3.5 ms a
    commit here, and a trial makes some 50: its parameters, attributes, heartbeat and tell). The
    database cannot be corrupted by it; a power loss (not a crashed process) may roll back the last
    commits, whose trials then go stale and are retried."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


class _RobustRDBStorage(optuna.storages.RDBStorage):
    """An RDBStorage whose heartbeats survive dropped connections and cover every RUNNING trial.

    Optuna's heartbeat thread dies on the first database error, after which the healthy trial goes
    stale and another worker fails it ("Trial ... already finished", Optuna #5582). A missed beat is
    harmless as long as a later one lands within the grace period, so errors are logged and skipped.

    Optuna writes a trial's first beat only once its objective starts, and never fails a RUNNING
    trial without one as stale (Optuna #2908). A connection lost after the trial's row committed but
    before that beat (inside ``study.ask()``, or a tell that failed before the first beat) would
    leave the trial RUNNING for ever. Here a trial gets its first beat in the transaction that makes
    it RUNNING, so such a trial goes stale like any other and is failed and re-queued.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._beat_on_start()

    def __setstate__(self, state: dict[str, object]) -> None:
        super().__setstate__(state)  # a new session factory: listen on it too
        self._beat_on_start()

    def _beat_on_start(self) -> None:
        event.listen(self.scoped_session.session_factory, "before_flush", _first_heartbeat)
        if self.engine.name == "sqlite" and not event.contains(self.engine, "connect", _sqlite_normal_sync):
            # Connections opened by Optuna's set-up are closed so that every one gets the pragma.
            event.listen(self.engine, "connect", _sqlite_normal_sync)
            self.engine.dispose()

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except Exception as exc:  # Optuna wraps SQLAlchemy's errors in StorageInternalError
            if not is_connection_error(exc):
                raise
            _logger.warning(
                "heartbeat of trial id %d missed (%s); retrying at the next beat", trial_id, connection_error_text(exc)
            )


def _first_heartbeat(session: orm.Session, flush_context: object, instances: object) -> None:
    """``before_flush``: a heartbeat row (database time) for each trial this flush makes RUNNING.

    New rows count only with a start time: Optuna inserts a trial enqueued as WAITING as RUNNING
    first (with none) and changes its state before the commit.
    """
    for trial in [*session.new, *session.dirty]:
        if not isinstance(trial, models.TrialModel) or trial.state != TrialState.RUNNING:
            continue
        if trial in session.new:
            starts = trial.datetime_start is not None
        else:
            starts = bool(sqlalchemy.inspect(trial).attrs.state.history.deleted)  # WAITING -> RUNNING
        if starts and not trial.heartbeats:
            session.add(models.TrialHeartbeatModel(trial=trial))


def heartbeat_timing(study: optuna.Study) -> tuple[int, int]:
    """The study storage's heartbeat interval and grace period in seconds (Optuna's defaults where
    unset: a 5 s poll without heartbeats, a grace of two beats)."""
    storage = getattr(study._storage, "_backend", study._storage)  # Study wraps it in a cache
    interval = getattr(storage, "heartbeat_interval", None) or 5
    return interval, getattr(storage, "grace_period", None) or 2 * interval


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = 10,
    grace_period: int | None = 60,
    max_retry: int = 3,
) -> optuna.storages.RDBStorage:
    """An RDBStorage with heartbeats whose stale trials Optuna fails and re-queues (same parameters).

    Connections are checked before use (``pool_pre_ping``) so that a restarted server or a killed
    backend costs a reconnect, not a crash; SQLite waits up to 60 s for a lock. A server that is not
    up fails at once with a :class:`UserError`; workers wrap their whole connect in :func:`retrying`.
    """
    parsed = check_url(url)
    url = normalise_url(url)
    engine_kwargs: dict[str, object] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        # The connection budget: the trial loop and the heartbeat thread, one overflow for a
        # reconnect in flight; a connection older than 5 minutes is replaced before a firewall drops it.
        engine_kwargs.update(
            pool_size=CONNECTIONS_PER_WORKER, max_overflow=1, pool_recycle=300, connect_args={"connect_timeout": 10}
        )
    callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry) if heartbeat_interval else None

    try:
        return _RobustRDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=callback,
        )
    except Exception as exc:
        if not isinstance(exc, sqlalchemy.exc.DBAPIError) and not is_connection_error(exc):
            raise
        raise UserError(f"--storage: cannot connect to {safe_url(url)}: {connection_error_text(exc)}") from None


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


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a lost or refused database connection (worth a retry), not a bad query.

    Looks through the chain of causes: Optuna wraps SQLAlchemy's errors in ``StorageInternalError``.
    """
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, sqlalchemy.exc.DBAPIError):
            return _transient(seen)
        if isinstance(seen, sqlalchemy.exc.PendingRollbackError):  # a session left behind by a lost connection
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transient(exc: sqlalchemy.exc.DBAPIError) -> bool:
    # A missing database, wrong password or bad SQLite path will not heal by waiting.
    text = str(exc.orig).lower() if exc.orig is not None else ""
    permanent = ("does not exist", "password authentication failed", "unable to open database", "no such table")
    if any(p in text for p in permanent):
        return False
    return exc.connection_invalidated or isinstance(exc, (OperationalError, sqlalchemy.exc.InterfaceError))


def connection_error_text(exc: BaseException) -> str:
    """The first line of the database error behind ``exc``."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, sqlalchemy.exc.DBAPIError):
        seen = seen.__cause__ or seen.__context__
    return _first(seen) if seen is not None else (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _first(exc: sqlalchemy.exc.DBAPIError) -> str:
    text = str(exc.orig).strip() if exc.orig is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__
