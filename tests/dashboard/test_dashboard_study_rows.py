"""Results rows follow their studies when a study is renamed or deleted by other means than the
dashboard (Optuna's API, its CLI): workers adopt a renamed study's rows instead of writing them again,
and ``skipsearch recover`` moves or deletes the rows of studies the storage no longer holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import optuna
import pytest
from dashboard_helpers import FinishedStudy

from skipsearch.errors import UserError
from skipsearch.results import EvaluationRecord, connect, evaluations, record_evaluation
from skipsearch.search import evaluation_record, repair_orphan_rows, run_worker

pytestmark = pytest.mark.slow  # a worker trains one more tiny trial


@pytest.fixture
def storage(finished_study: FinishedStudy, tmp_path: Path) -> str:
    with sqlite3.connect(finished_study.folder / "study.db") as source, sqlite3.connect(tmp_path / "s.db") as copy:
        source.backup(copy)
    return f"sqlite:///{tmp_path / 's.db'}"


def _rows(storage: str) -> dict[str, list[int]]:
    table = evaluations(connect(storage))
    return {name: sorted(group["trial_number"].astype(int)) for name, group in table.groupby("study")}


def _rename(storage: str, old: str, new: str) -> None:
    """A rename as optuna-dashboard (and a user with Optuna's API) does it: copy, then delete."""
    optuna.copy_study(from_study_name=old, from_storage=storage, to_storage=storage, to_study_name=new)
    optuna.delete_study(study_name=old, storage=storage)


def test_a_worker_on_a_renamed_study_adopts_its_rows_instead_of_duplicating_them(
    storage: str, finished_study: FinishedStudy
) -> None:
    _rename(storage, finished_study.name, "renamed")
    assert _rows(storage) == {finished_study.name: [0, 1, 2]}  # orphaned until someone looks
    run_worker(storage, "renamed", target=4)
    assert _rows(storage) == {"renamed": [0, 1, 2, 3]}


def test_recover_moves_renamed_and_deletes_deleted_studies_rows(
    storage: str, finished_study: FinishedStudy, cli: Any
) -> None:
    optuna.copy_study(
        from_study_name=finished_study.name, from_storage=storage, to_storage=storage, to_study_name="doomed"
    )
    for number in (0, 1):  # rows a worker of the copy wrote: the same trials as the original's
        record_evaluation(connect(storage), _record_as(storage, "doomed", number, "doomed"))
    optuna.delete_study(study_name="doomed", storage=storage)
    _rename(storage, finished_study.name, "renamed")
    assert _rows(storage) == {"doomed": [0, 1], finished_study.name: [0, 1, 2]}

    code, out, err = cli(["recover", "--storage", storage])
    assert code == 0, err
    assert (
        f"3 moved to renamed studies ('{finished_study.name}' -> 'renamed': 3), 2 of deleted studies deleted "
        "('doomed': 2)" in out
    ), out
    assert _rows(storage) == {"renamed": [0, 1, 2]}
    code, out, _ = cli(["recover", "--storage", storage])
    assert code == 0 and "0 moved to renamed studies, 0 of deleted studies deleted" in out
    assert repair_orphan_rows(storage).deleted == {}


def test_rows_that_only_look_alike_are_not_adopted(storage: str, finished_study: FinishedStudy) -> None:
    """A deleted study whose rows do not match the remaining study's trials is deleted, not merged."""
    record = _record_as(storage, finished_study.name, 0, "other")
    record.started_at = None  # another study's trial 0 with the same topology, started at another time
    record_evaluation(connect(storage), record)
    repair = repair_orphan_rows(storage)
    assert repair.moved == {} and repair.deleted == {"other": 1}
    assert _rows(storage) == {finished_study.name: [0, 1, 2]}


def _record_as(storage: str, source: str, number: int, study: str) -> EvaluationRecord:
    """The row a worker of ``study`` writes for trial ``number`` of ``source``."""
    trial = optuna.load_study(study_name=source, storage=storage).trials[number]
    record = evaluation_record(study, trial)
    assert record is not None
    return record


def test_a_worker_whose_study_is_renamed_under_it_stops_with_one_line_and_rows_follow(
    storage: str, finished_study: FinishedStudy
) -> None:
    def rename_after_its_first_trial(study: optuna.Study, trial: Any) -> None:
        if study.study_name == finished_study.name and trial.number == 3:
            _rename(storage, finished_study.name, "moved-away")

    with pytest.raises(UserError) as stopped:
        run_worker(storage, finished_study.name, target=6, progress=rename_after_its_first_trial)
    message = str(stopped.value)
    assert "\n" not in message and "no longer in the storage" in message and "new name" in message
    assert _rows(storage) == {finished_study.name: [0, 1, 2, 3]}  # trial 3's row was written before the rename
    run_worker(storage, "moved-away", target=5)
    assert _rows(storage) == {"moved-away": [0, 1, 2, 3, 4]}
