"""Opening the Optuna storage: URL checks, heartbeats and retries of stale trials."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages._rdb import models
from optuna.trial import TrialState
from sqlalchemy import event, orm
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from skipsearch.db import (
    CONNECT_ATTEMPTS,
    DatabaseURLError,
    backoff,
    connection_error_text,
    enable_wal,
    engine_kwargs,
    is_connection_error,
    normalise_url,
    parse_url,
    retrying,
    safe_url,
    sqlite_normal_sync,
)
from skipsearch.errors import FieldError

_logger = logging.getLogger("skipsearch.storage")

__all__ = [
    "CONNECTIONS_PER_WORKER",
    "CONNECT_ATTEMPTS",
    "backoff",
    "check_url",
    "connection_error_text",
    "heartbeat_timing",
    "is_connection_error",
    "open_storage",
    "retrying",
    "safe_url",
]


def check_url(url: str) -> sqlalchemy.URL:
    """Parses a storage URL; :class:`UserError` for anything SQLAlchemy cannot use."""
    try:
        parsed = parse_url(url)
        parsed.get_dialect()
    except DatabaseURLError as exc:
        raise FieldError("storage", None, f"{exc}") from None
    except NoSuchModuleError:  # a subclass of ArgumentError: check it first
        raise FieldError(
            "storage", None, f"unknown database kind {url.split(':', 1)[0]!r} in {safe_url(url)}"
        ) from None
    except ArgumentError:
        raise FieldError(
            "storage", None, f"not a database URL: {safe_url(url)} (e.g. sqlite:///skipsearch.db)"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise FieldError("storage", None, f"folder {folder.name!r} of {safe_url(url)} does not exist")
        try:
            enable_wal(parsed.database)
        except DatabaseURLError as exc:
            raise FieldError("storage", None, f"{exc}") from None
    return parsed


CONNECTIONS_PER_WORKER = 2
"""Database connections a worker's Optuna storage may hold: one for the trial loop, one for the
heartbeat thread. With the results engine's (see :func:`skipsearch.results.connect`) a worker needs
about 4; size PostgreSQL's ``max_connections`` as 4 x workers + dashboard + headroom."""


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
        if self.engine.name == "sqlite" and not event.contains(self.engine, "connect", sqlite_normal_sync):
            # Connections opened by Optuna's set-up are closed so that every one gets the pragma.
            event.listen(self.engine, "connect", sqlite_normal_sync)
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
    # The connection budget: the trial loop and the heartbeat thread, one overflow for a reconnect
    # in flight; a connection older than 5 minutes is replaced before a firewall drops it.
    kwargs = engine_kwargs(parsed, pool_size=CONNECTIONS_PER_WORKER, max_overflow=1, pool_recycle=300)
    callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry) if heartbeat_interval else None

    try:
        return _RobustRDBStorage(
            url,
            engine_kwargs=kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=callback,
        )
    except Exception as exc:
        if not isinstance(exc, sqlalchemy.exc.DBAPIError) and not is_connection_error(exc):
            raise
        raise FieldError("storage", None, f"cannot connect to {safe_url(url)}: {connection_error_text(exc)}") from None
