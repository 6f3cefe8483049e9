"""What keeps a worker process alive and clean: graceful SIGTERM, reconnects, re-queued retries.

A worker must survive a dropped database connection (retry with backoff), stop cleanly when it is
told to (``docker stop`` sends SIGTERM: the running trial may finish, or is failed and re-queued
after a grace period) and never leave a trial RUNNING behind it. Trials of workers that died anyway
(``kill -9``, a lost machine) go stale; Optuna's heartbeat fails them and re-queues their parameters.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import zlib
from types import FrameType, TracebackType
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from skipsearch.search._storage import is_connection_error

_logger = logging.getLogger("skipsearch.worker")

WORKER_ATTR = "worker"
"""Trial user attribute naming the process that ran it (``host:pid``)."""

INTERRUPTED_ATTR = "interrupted"
"""Trial user attribute: why a worker abandoned the trial (it is re-queued with the same parameters)."""


def worker_id() -> str:
    """This process as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def default_worker_index() -> int:
    """A sampler-seed offset distinct per worker process (replicas of one container image would
    otherwise share a seed and propose the same topologies in lockstep)."""
    return 1 + zlib.crc32(worker_id().encode()) % 100_000


class Shutdown:
    """SIGTERM handling of one worker: finish the running trial, stop the study, exit 0.

    On SIGTERM the study is told to stop after the current trial. If that trial is still running
    ``grace`` seconds later, a timer thread fails it with a reason, re-queues its parameters and
    ends the process with code 0 (raising into the main thread from a signal handler could land in
    any library's cleanup code, so the trial is abandoned from outside instead). The handler is
    installed only in the main thread and the previous one restored on exit.
    """

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.requested = False
        self.study: optuna.Study | None = None
        self.objective: TrackedObjective | None = None
        self._previous: Any = None
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Shutdown:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_term)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.trial_ended()
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            return
        self.requested = True
        _logger.warning("SIGTERM: finishing the running trial (at most %g s), then exiting", self.grace)
        if self.study is not None:
            # Outside optimize() stop() raises; the worker loop checks ``requested`` then.
            with contextlib.suppress(RuntimeError):
                self.study.stop()
        if self.objective is not None and self.objective.current is not None:
            self._timer = threading.Timer(self.grace, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def trial_ended(self) -> None:
        """Cancels the grace timer: a trial that ended in time must not be abandoned."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        if self.study is None or self.objective is None:
            return
        reason = f"worker stopped by SIGTERM; the trial outlasted the {self.grace:g} s grace period"
        if self.objective.abandon(self.study, reason):
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


class TrackedObjective:
    """Wraps the study's objective: marks which worker runs a trial and which trials lost the database.

    A lost connection is not the topology's fault: such trials are failed without a reason (so they
    do not count) and :meth:`callback` puts their parameters back in the queue.
    """

    def __init__(self, objective: Any, shutdown: Shutdown, max_retry: int) -> None:
        self.objective = objective
        self.shutdown = shutdown
        shutdown.objective = self
        self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        self.current: optuna.Trial | None = None
        self.last: int | None = None
        self.lost: set[int] = set()
        self.finished = 0
        _install_log_filter()

    def __call__(self, trial: optuna.Trial) -> Any:
        self.current, self.last = trial, trial.number
        try:
            trial.set_user_attr(WORKER_ATTR, worker_id())
            return self.objective(trial)
        except Exception as exc:
            if is_connection_error(exc):
                self.lost.add(trial.number)
                _logger.warning("trial %d lost the database (%s); it will be retried", trial.number, exc)
            raise

    def callback(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Study callback: re-queues trials that failed on a lost connection; counts this worker's trials."""
        self.current = None
        self.shutdown.trial_ended()
        if trial.number in self.lost and trial.state == TrialState.FAIL:
            self.retry(study, trial)
        else:
            self.finished += 1

    def taken_over(self, study: optuna.Study) -> bool:
        """Whether the trial whose tell just failed is finished all the same: another worker failed
        it as stale after its heartbeat lapsed, or the tell committed before its connection dropped."""
        trial = self.current
        if trial is None:
            return False
        try:
            state = study._storage.get_trial(trial._trial_id).state
        except Exception:
            return False
        if state == TrialState.RUNNING:
            return False
        self.current = None
        self.shutdown.trial_ended()
        return True

    def abandon(self, study: optuna.Study, reason: str) -> bool:
        """Fails the running trial with ``reason`` and re-queues its parameters; ``False`` when the
        trial had finished meanwhile."""
        trial = self.current
        if trial is None:
            return False
        storage = study._storage
        try:
            storage.set_trial_user_attr(trial._trial_id, INTERRUPTED_ATTR, reason)
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                return False
        except optuna.exceptions.UpdateFinishedTrialError:
            return False  # it finished in time, or another worker failed it as stale (and re-queued it)
        self.retry(study, storage.get_trial(trial._trial_id))
        _logger.warning("trial %d failed and re-queued: %s", trial.number, reason)
        return True


class _HandledErrorFilter(logging.Filter):
    """Drops the traceback Optuna logs with a trial that failed on a lost connection or was taken
    over as stale: the worker handles both (the trial is re-queued), and a traceback in the log
    would read as a crash. The one-line warning stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and (
            is_connection_error(exc) or isinstance(exc, optuna.exceptions.UpdateFinishedTrialError)
        ):
            record.exc_info = None
            record.exc_text = None
        return True


def _install_log_filter() -> None:
    logger = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _HandledErrorFilter) for f in logger.filters):
        logger.addFilter(_HandledErrorFilter())
