"""Copying finished Optuna trials into the results tables.

A trial's record is written by a study callback, i.e. after Optuna has stored the trial's final
state, in one transaction of its own. A worker killed between the two leaves a finished trial
without its row; :func:`sync_results` (run at every worker start and by ``skipsearch recover``)
writes such missing rows from the trial's user attributes, so the tables always converge to
exactly the finished trials.

Rows are keyed by study name. Renaming a study (optuna-dashboard copies it under the new name and
deletes the old one) would leave its rows under a name no study has, and the next sync would write
them all again under the new name; :func:`adopt_renamed_rows` (run by every sync) recognises the
old rows by their trials (number, topology hash and start time) and moves them to the new name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial

from skipsearch.results import (
    EvaluationRecord,
    record_evaluation,
    record_evaluations,
    recorded_trial_numbers,
    rename_study_rows,
    study_names,
    study_row_keys,
)
from skipsearch.search._objective import FINISHED_STATES, evaluated, metric_attrs, topology_of


def evaluation_record(study_name: str, trial: FrozenTrial) -> EvaluationRecord | None:
    """The results row of a finished trial; ``None`` for trials that evaluated nothing (a killed
    worker's trial, which Optuna retries, or one rejected before it had a topology)."""
    topology = topology_of(trial)
    if topology is None or not evaluated(trial):
        return None
    attrs = trial.user_attrs
    return EvaluationRecord(
        study=study_name,
        trial_number=trial.number,
        topology=topology,
        task=str(attrs.get("task", "")),
        seed=int(attrs.get("seed", 0)),
        state=trial.state.name,
        metrics={key: attrs.get(key) for key in metric_attrs()},
        failure_reason=attrs.get("failure_reason") or attrs.get("stop_reason"),
        curve=[v for v in attrs.get("curve", []) if v is not None],
        started_at=trial.datetime_start,
        finished_at=trial.datetime_complete,
        reused_from=attrs.get("reused_from"),
    )


def recording_callback(engine: sqlalchemy.Engine) -> Callable[[optuna.Study, FrozenTrial], None]:
    """A study callback that writes each finished trial's row."""

    def record(study: optuna.Study, trial: FrozenTrial) -> None:
        record_ = evaluation_record(study.study_name, trial)
        if record_ is not None:
            record_evaluation(engine, record_)

    return record


def sync_results(engine: sqlalchemy.Engine, study: optuna.Study) -> int:
    """Writes the rows of finished trials that have none yet (after adopting the rows the study had
    under a former name); returns how many it wrote."""
    adopt_renamed_rows(engine, study, orphan_names(engine, study._storage))
    have = recorded_trial_numbers(engine, study.study_name)
    missing = (t for t in study.get_trials(deepcopy=False, states=FINISHED_STATES) if t.number not in have)
    records = (evaluation_record(study.study_name, t) for t in missing)
    return record_evaluations(engine, [r for r in records if r is not None])


def orphan_names(engine: sqlalchemy.Engine, storage: optuna.storages.BaseStorage) -> list[str]:
    """Study names that have results rows but no study in ``storage`` (deleted or renamed studies)."""
    existing = set(optuna.get_all_study_names(storage))
    return [name for name in study_names(engine) if name not in existing]


def adopt_renamed_rows(
    engine: sqlalchemy.Engine, study: optuna.Study, orphans: Iterable[str]
) -> dict[str, tuple[int, int]]:
    """Moves to ``study`` the rows of each orphan name whose rows are all copies of ``study``'s
    finished trials (same number, topology hash and start time), deleting those ``study`` already
    has; returns ``{old name: (rows moved, duplicate rows deleted)}``."""
    orphans = list(orphans)
    if not orphans:
        return {}
    trials = {
        t.number: (t.user_attrs.get("hash"), t.datetime_start)
        for t in study.get_trials(deepcopy=False, states=FINISHED_STATES)
    }
    adopted = {}
    for name in orphans:
        rows = study_row_keys(engine, name)
        if rows and all(n in trials and _same_trial(key, trials[n]) for n, key in rows.items()):
            adopted[name] = rename_study_rows(engine, name, study.study_name)
    return adopted


def _same_trial(row: tuple[str, datetime | None], trial: tuple[object, datetime | None]) -> bool:
    (row_hash, row_start), (trial_hash, trial_start) = row, trial
    if row_hash != trial_hash:
        return False
    if row_start is None or trial_start is None:
        return row_start is trial_start
    return abs((row_start - trial_start).total_seconds()) < 1e-3
