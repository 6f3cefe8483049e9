"""One-shot operations on a storage: schema set-up (``skipsearch migrate``), recovery of a study
whose workers all died and repair of results rows whose study is gone (``skipsearch recover``).

A running worker recovers its study by itself (stale trials are failed and re-queued whenever a
worker starts a trial); these are for the moments when no worker runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from skipsearch.results import connect, delete_study_rows
from skipsearch.search._config import StudyConfig
from skipsearch.search._record import adopt_renamed_rows, orphan_names, sync_results
from skipsearch.search._storage import open_storage
from skipsearch.search._study import create_study, load_study


@dataclass(frozen=True)
class RecoveryReport:
    """What :func:`recover_study` did (trial numbers)."""

    failed: list[int] = field(default_factory=list)
    """RUNNING trials whose heartbeat had stopped, now FAIL."""
    requeued: list[int] = field(default_factory=list)
    """New WAITING trials carrying the parameters of failed ones (the next worker runs them)."""
    alive: list[int] = field(default_factory=list)
    """RUNNING trials with a live heartbeat: some worker still runs them; left alone."""
    synced: int = 0
    """Results rows written for finished trials that had none."""
    seconds: float = 0.0


def recover_study(storage_url: str, study_name: str, *, wait: bool = True) -> RecoveryReport:
    """Fails the stale trials of ``study_name``, re-queues them (up to the study's ``max_retry``)
    and writes missing results rows.

    A trial counts as stale once its last heartbeat is older than the study's grace period. With
    ``wait`` the call waits (up to one grace period and two beats) for trials whose workers just
    died to go stale; a trial whose heartbeat keeps beating belongs to a live worker and is kept.
    """
    started = time.monotonic()
    study, config = load_study(storage_url, study_name)
    ex = config.execution
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    patience = ex.grace_period + 2 * ex.heartbeat_interval if wait else 0
    while True:
        optuna.storages.fail_stale_trials(study)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running or time.monotonic() - started >= patience:
            break
        time.sleep(ex.heartbeat_interval)
    trials = study.get_trials(deepcopy=False)
    failed = sorted(t.number for t in trials if t.number in before and t.state == TrialState.FAIL)
    requeued = sorted(
        t.number
        for t in trials
        if t.state == TrialState.WAITING and t.system_attrs.get("retry_history", [None])[-1] in failed
    )
    synced = sync_results(connect(storage_url), study)
    alive = sorted(t.number for t in trials if t.state == TrialState.RUNNING)
    return RecoveryReport(failed, requeued, alive, synced, time.monotonic() - started)


@dataclass(frozen=True)
class OrphanRepair:
    """What :func:`repair_orphan_rows` did with the rows of study names the storage no longer holds."""

    moved: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Former name of a renamed study: its new name and the rows moved there."""
    deleted: dict[str, int] = field(default_factory=dict)
    """Name of a deleted study (or of a copy whose rows the remaining study has too): rows deleted."""


def repair_orphan_rows(storage_url: str) -> OrphanRepair:
    """Results rows whose study the storage no longer holds: moved to the study they were copied to
    (a renamed study, recognised by its trials), deleted otherwise (a deleted study)."""
    storage = open_storage(storage_url, heartbeat_interval=None)
    engine = connect(storage_url)
    try:
        orphans = orphan_names(engine, storage)
        moved: dict[str, tuple[str, int]] = {}
        deleted: dict[str, int] = {}
        for name in optuna.get_all_study_names(storage) if orphans else []:
            study = optuna.load_study(study_name=name, storage=storage)
            left = [o for o in orphans if o not in moved and o not in deleted]
            for old, (rows, duplicates) in adopt_renamed_rows(engine, study, left).items():
                if rows:
                    moved[old] = (name, rows)
                if duplicates:
                    deleted[old] = duplicates
        for name in orphans:
            if name not in moved and name not in deleted:
                deleted[name] = delete_study_rows(engine, name)
        return OrphanRepair(moved, deleted)
    finally:
        engine.dispose()
        storage.engine.dispose()


def migrate_storage(storage_url: str, config: StudyConfig | None = None, study_name: str | None = None) -> str | None:
    """Creates (or upgrades) Optuna's tables and the results schema at ``storage_url``; with a study
    ``config``, also creates (or resumes) that study. Returns the study's name, if any.

    Run once before starting many workers on a fresh database: processes that create the schema at
    the same moment race on Alembic (Optuna #4621).
    """
    open_storage(storage_url, heartbeat_interval=None).engine.dispose()
    connect(storage_url).dispose()
    if config is None:
        return None
    return create_study(config, storage_url, study_name).study_name
