"""Creating, joining and running studies: the worker loop and local multi-process runs.

Scaling out is Optuna's own: every worker is an independent process that shares nothing but the
storage. A study stores its whole configuration as a study user attribute, so
``skipsearch worker --storage URL --study NAME`` joins from any machine without the YAML file.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from skipsearch._names import check_new_study_name, check_study_lookup
from skipsearch.db import backoff, connection_error_text, is_connection_error, retrying
from skipsearch.errors import FieldError, UserError
from skipsearch.results import connect, save_study_config, study_config
from skipsearch.search._artifacts import TopologyArtifacts, open_artifact_store
from skipsearch.search._batched_worker import BatchedRunner, GroupTracker
from skipsearch.search._config import StudyConfig
from skipsearch.search._hypervolume import ensure_reference_point
from skipsearch.search._objective import Objective, evaluated
from skipsearch.search._plots import DashboardPlots
from skipsearch.search._record import recording_callback, sync_results
from skipsearch.search._samplers import make_pruner, make_sampler
from skipsearch.search._space import SearchSpace
from skipsearch.search._storage import heartbeat_timing, open_storage
from skipsearch.search._worker import Shutdown, TrackedObjective

CONFIG_ATTR = "skipsearch_config"
"""Study user attribute holding the study file's content (as validated JSON)."""

_logger = logging.getLogger("skipsearch.worker")

ProgressFn = Callable[[optuna.Study, FrozenTrial | None], None]


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a configuration that must not change when a study is resumed (the
    objectives among them, so the study's directions always match). The user's data counts by
    its fingerprint, not by where it lies: its absolute paths are left out."""
    presentation = ("trials", "timeout", "description", "execution", "hypervolume", "limits")
    kept = {k: v for k, v in config.items() if k not in presentation}
    task = kept.get("task")
    if isinstance(task, dict) and isinstance(task.get("options"), dict) and "fingerprint" in task["options"]:
        options = {k: v for k, v in task["options"].items() if not (isinstance(v, str) and os.path.isabs(v))}
        kept["task"] = {**task, "options": options}
    return kept


def _changed_data(stored: dict[str, Any], current: dict[str, Any]) -> str | None:
    """Why the study's data is not the data it was created on (``None`` when it is the same)."""
    old, new = (c.get("task", {}).get("options", {}).get("fingerprint") for c in (stored, current))
    if old is None or new is None or old == new:
        return None
    return (
        f"the data differs from the data the study was created on (fingerprint {str(new)[:16]}, "
        f"the study's {str(old)[:16]}); restore that file, or give the study a new name"
    )


def create_study(config: StudyConfig, storage_url: str, study_name: str | None = None) -> optuna.Study:
    """Creates the study, or resumes it when one of that name exists with the same settings."""
    name = study_name or config.name
    check_new_study_name(name, "study" if study_name else "name")
    ex = config.execution
    storage = open_storage(
        storage_url, heartbeat_interval=ex.heartbeat_interval, grace_period=ex.grace_period, max_retry=ex.max_retry
    )
    engine = connect(storage_url)  # sets up the results tables before any worker races to
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=[o.direction for o in config.objectives],
        sampler=make_sampler(config),
        pruner=make_pruner(config),
        load_if_exists=True,
    )
    stored = study.user_attrs.get(CONFIG_ATTR)
    current = config.model_dump(mode="json")
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, current)
        study.set_metric_names([o.name for o in config.objectives])
        save_study_config(engine, name, current)
    elif (changed := _changed_data(stored, current)) is not None:
        raise FieldError("study", repr(name), changed)
    elif _comparable(stored) != _comparable(current):
        raise FieldError(
            "study",
            repr(name),
            "already exists in the storage with other settings; "
            "give a new name to start a new one, or run the file it was created with",
        )
    elif stored != current:  # a new trial target, timeout or execution settings: workers follow them
        study.set_user_attr(CONFIG_ATTR, current)
        save_study_config(engine, name, current)
    elif study_config(engine, name) is None:  # a study made before its results kept configurations
        save_study_config(engine, name, current)
    ensure_reference_point(study, config)
    return study


def load_study(
    storage_url: str, study_name: str, worker_index: int = 0, *, read_only: bool = False
) -> tuple[optuna.Study, StudyConfig]:
    """Joins an existing study: its configuration comes from the storage.

    ``read_only`` (reports, analyses): the study as stored, without the sampler, pruner and heartbeat
    that running trials needs.
    """
    check_study_lookup(study_name)
    probe = open_storage(storage_url, heartbeat_interval=None)
    try:
        study = optuna.load_study(study_name=study_name, storage=probe)
    except KeyError:
        names = ", ".join(optuna.get_all_study_names(probe)) or "none"
        probe.engine.dispose()
        raise FieldError("study", None, f"no study named {study_name!r} in the storage (studies: {names})") from None
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        probe.engine.dispose()
        raise FieldError("study", None, f"{study_name!r} was not created by skipsearch (no {CONFIG_ATTR} attribute)")
    config = StudyConfig.model_validate(stored)
    if read_only:
        return study, config
    probe.engine.dispose()
    ex = config.execution
    storage = open_storage(
        storage_url, heartbeat_interval=ex.heartbeat_interval, grace_period=ex.grace_period, max_retry=ex.max_retry
    )
    study = optuna.load_study(
        study_name=study_name, storage=storage, sampler=make_sampler(config, worker_index), pruner=make_pruner(config)
    )
    return study, config


def counted_trials(trials: list[FrozenTrial]) -> int:
    """Trials that count towards the target: finished ones, and failures the objective reported
    (a killed worker's trial fails without a reason and is retried, so it does not count)."""
    return sum(map(evaluated, trials))


class StopAtTarget:
    """Stops a worker once finished plus running trials (of all workers) reach the target."""

    def __init__(self, target: int) -> None:
        self.target = target

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if counted_trials(trials) + running >= self.target:
            study.stop()


MAX_RECONNECTS = 6
"""Consecutive database failures a worker survives (with backoff, about 30 s in all) before it gives up."""

STOP_GRACE = 30.0
"""Seconds a SIGTERM'd worker lets its running trial finish before failing and re-queueing it."""


def run_worker(
    storage_url: str,
    study_name: str,
    *,
    target: int | None = None,
    timeout: float | None = None,
    worker_index: int = 0,
    progress: ProgressFn | None = None,
    max_trials: int | None = None,
    stop_grace: float = STOP_GRACE,
) -> optuna.Study:
    """Runs trials of a stored study until it reaches its trial target (or ``timeout``, or
    ``max_trials`` trials of this worker, or SIGTERM).

    At start the worker fails the stale trials of dead workers (re-queueing their parameters) and
    writes missing results rows. A dropped database connection is retried with backoff; the trial
    it broke is re-queued. Before it exits, the worker waits for the trials of dead workers to go
    stale and runs their retries, so a study never ends with a trial RUNNING.
    """
    study, config = retrying(lambda: load_study(storage_url, study_name, worker_index), "loading the study")
    threads = config.execution.threads_per_worker
    if threads:
        import torch

        torch.set_num_threads(threads)
    engine = retrying(lambda: connect(storage_url), "opening the results tables")
    goal = target or config.trials

    def recover() -> int:
        optuna.storages.fail_stale_trials(study)
        sync_results(engine, study)
        return counted_trials(study.get_trials(deepcopy=False))

    if retrying(recover, "recovering stale trials") >= goal:
        return study
    space = SearchSpace(config.backbone.build(), config.space)
    timeout = timeout or config.timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    with Shutdown(stop_grace) as shutdown:
        # Dashboard extras: a topology picture per trial, custom plots refreshed as trials finish.
        artifacts = TopologyArtifacts(Objective(config, space), open_artifact_store(storage_url))
        plots = DashboardPlots()
        batched = config.execution.batch_trials != 1
        tracker = GroupTracker if batched else TrackedObjective
        objective = tracker(artifacts, shutdown, config.execution.max_retry)
        runner = BatchedRunner(artifacts, objective, config.execution.batch_trials) if batched else None  # type: ignore[arg-type]
        callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [
            objective.callback,
            recording_callback(engine),
            StopAtTarget(goal),
            plots,
        ]
        if progress is not None:
            callbacks.append(progress)
        shutdown.study = study
        failures, lost_database = 0, False
        while not shutdown.requested:
            left = None if max_trials is None else max_trials - objective.finished
            seconds = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or (seconds is not None and seconds <= 0):
                break
            done_before = objective.finished
            try:
                if runner is not None:  # checks the target before each group: StopAtTarget's reads are not needed
                    per_trial = [c for c in callbacks if not isinstance(c, StopAtTarget)]
                    runner.optimize(study, n_trials=left, timeout=seconds, callbacks=per_trial, room=_room(study, goal))
                else:
                    study.optimize(objective, n_trials=left, timeout=seconds, catch=(Exception,), callbacks=callbacks)
                if max_trials is not None or deadline is not None:
                    break
                if not _await_leftovers(study, goal, shutdown, settle=lost_database):
                    break
                failures = 0
            except Exception as exc:
                if _study_gone(study):
                    raise UserError(
                        f"study {study_name!r} is no longer in the storage (deleted, or renamed: a rename copies "
                        "the study under its new name and deletes this one); start workers on its new name"
                    ) from None
                finished_meanwhile = objective.taken_over(study)
                if not finished_meanwhile and not is_connection_error(exc):
                    raise
                lost_database = True
                if finished_meanwhile:
                    # Its tell failed, yet the trial is finished: another worker failed it as stale
                    # (a long outage; the retry runs elsewhere), or the tell committed just before the
                    # connection dropped (the callbacks did not run: its results row is written here).
                    _logger.warning("trial %s was finished meanwhile; going on", objective.last)
                    _resync(engine, study)
                    continue
                failures = 0 if objective.finished > done_before else failures + 1
                if failures > MAX_RECONNECTS:
                    raise UserError(f"the database failed {failures} times in a row; last error: {exc}") from None
                delay = backoff(failures)
                _logger.warning("database error (%s); resuming in %.1f s", connection_error_text(exc), delay)
                time.sleep(delay)
                _resync(engine, study)
        if lost_database:  # a row whose write the last lost connection broke
            retrying(lambda: sync_results(engine, study), "writing missing results rows")
        plots.refresh(study)  # the final state, whatever the throttle skipped
        artifacts.close()
    return study


def _room(study: optuna.Study, goal: int) -> Callable[[], int]:
    """Trials the study still wants: its target less the counted and the running ones."""

    def room() -> int:
        trials = study.get_trials(deepcopy=False)
        return goal - counted_trials(trials) - sum(t.state == TrialState.RUNNING for t in trials)

    return room


def _study_gone(study: optuna.Study) -> bool:
    """Whether ``study`` was deleted (or renamed) while this worker ran; ``False`` when unsure."""
    try:
        return study._storage.get_study_id_from_name(study.study_name) != study._study_id
    except KeyError:
        return True
    except Exception:  # a lost connection: the caller's retries deal with it
        return False


def _await_leftovers(study: optuna.Study, goal: int, shutdown: Shutdown, settle: bool = False) -> bool:
    """Waits while the target counts on RUNNING trials; ``True`` when there is work to do again.

    Some of those trials may belong to dead workers: they go stale after the grace period and are
    failed and re-queued here, and this worker runs the retries. With ``settle`` (this worker lost
    the database on the way: a trial it was starting or finishing may be RUNNING with no one to
    finish it) it also waits, once the target is reached, up to a grace period and two beats for
    the RUNNING trials to end or go stale.
    """
    interval, grace = heartbeat_timing(study)
    settle_by = time.monotonic() + grace + 2 * interval
    while not shutdown.requested:
        optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        counted = counted_trials(trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        waiting = sum(t.state == TrialState.WAITING for t in trials)
        if counted >= goal:
            if not (settle and running and time.monotonic() < settle_by):
                return False
        elif waiting or counted + running < goal:
            return True
        time.sleep(interval)
    return False


def _resync(engine: sqlalchemy.Engine, study: optuna.Study) -> None:
    """After a reconnect: results rows a failed callback did not write (best effort)."""
    try:
        sync_results(engine, study)
    except Exception as exc:
        if not is_connection_error(exc):
            raise


WorkerCommand = Callable[[int], Sequence[str]]
"""The command line of worker process ``i`` (the CLI's ``worker`` command: it knows its flags)."""


def run_local_workers(
    storage_url: str,
    study_name: str,
    workers: int,
    command: WorkerCommand,
    *,
    progress: ProgressFn | None = None,
    poll_seconds: float = 1.0,
) -> int:
    """Runs ``workers`` worker processes on this machine, ``command(i)`` each, and waits for them;
    returns the worst exit code.

    The storage URL reaches the workers through the environment, not their command lines, so a
    password never shows in a process list.
    """
    env = {**os.environ, "SKIPSEARCH_STORAGE": storage_url}
    procs = [subprocess.Popen(list(command(i)), env=env) for i in range(workers)]
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url, heartbeat_interval=None))
    try:
        while any(p.poll() is None for p in procs):
            if progress is not None:
                progress(study, None)
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        raise
    if progress is not None:
        progress(study, None)
    return max(p.returncode for p in procs)
