"""Copying finished Optuna trials into the results tables.

A trial's record is written by a study callback, i.e. after Optuna has stored the trial's final
state, in one transaction of its own. A worker killed between the two leaves a finished trial
without its row; :func:`sync_results` (run at every worker start and by ``skipsearch recover``)
writes such missing rows from the trial's user attributes, so the tables always converge to
exactly the finished trials.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial

from skipsearch.results import EvaluationRecord, record_evaluation, record_evaluations, recorded_trial_numbers
from skipsearch.search._objective import FINISHED_STATES, METRIC_ATTRS, evaluated, topology_of


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
        metrics={key: attrs.get(key) for key in METRIC_ATTRS},
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
    """Writes the rows of finished trials that have none yet; returns how many it wrote."""
    have = recorded_trial_numbers(engine, study.study_name)
    missing = (t for t in study.get_trials(deepcopy=False, states=FINISHED_STATES) if t.number not in have)
    records = (evaluation_record(study.study_name, t) for t in missing)
    return record_evaluations(engine, [r for r in records if r is not None])
