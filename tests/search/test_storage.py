"""The storage's heartbeats: every RUNNING trial is covered from the moment it starts, so a worker
that loses the database between ``ask()`` and its objective never leaves a trial RUNNING for ever."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from skipsearch.search import open_storage
from skipsearch.search._storage import heartbeat_timing
from skipsearch.search._study import _await_leftovers
from skipsearch.search._worker import Shutdown

GRACE = 2

# ask() outside optimize() stands for a worker that lost the database before its objective ran.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'storage.db'}"
    return request.getfixturevalue("postgres_url")


def _study(url: str, grace: int = GRACE) -> optuna.Study:
    storage = open_storage(url, heartbeat_interval=1, grace_period=grace, max_retry=2)
    return optuna.create_study(storage=storage, study_name="beats")


def _beats(study: optuna.Study) -> dict[int, int]:
    """Trial number -> heartbeat rows, read straight from Optuna's tables."""
    query = sa.text(
        "SELECT t.number, COUNT(h.trial_heartbeat_id) FROM trials t "
        "LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id GROUP BY t.number"
    )
    with study._storage._backend.engine.connect() as conn:  # type: ignore[attr-defined]
        return {number: count for number, count in conn.execute(query)}


def _wait_past_grace() -> None:
    time.sleep(GRACE + 1.5)  # SQLite's clock has whole seconds


def test_a_trial_whose_worker_vanished_before_its_objective_goes_stale(url: str) -> None:
    study = _study(url)
    trial = study.ask()  # the row is committed; the worker dies before any heartbeat thread runs
    assert _beats(study) == {trial.number: 1}
    assert study._storage._get_stale_trial_ids(study._study_id) == []  # type: ignore[attr-defined]
    _wait_past_grace()
    optuna.storages.fail_stale_trials(study)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.WAITING]  # failed and re-queued


def test_an_enqueued_trial_beats_only_once_it_runs(url: str) -> None:
    study = _study(url)
    study.enqueue_trial({"x": 1.0})
    assert _beats(study) == {0: 0}  # WAITING: no clock running
    _wait_past_grace()
    trial = study.ask()  # pops the queued trial
    assert trial.number == 0 and _beats(study) == {0: 1}
    optuna.storages.fail_stale_trials(study)  # its beat is fresh: a long queue does not make it stale
    assert study.get_trials(deepcopy=False)[0].state == TrialState.RUNNING


def test_finished_trials_added_whole_need_no_beat_and_pickling_keeps_the_rule(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path / 'storage.db'}")
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=1.0))
    copy = pickle.loads(pickle.dumps(study._storage._backend))  # type: ignore[attr-defined]  # as process pools hand storages around
    copy.create_new_trial(study._study_id)
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.COMPLETE, TrialState.RUNNING]
    assert _beats(study)[1] == 1


def test_a_worker_that_lost_the_database_settles_running_trials_before_it_exits(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path / 'storage.db'}", grace=5)  # the wait must follow the grace period
    assert heartbeat_timing(study) == (1, 5)
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=1.0))
    study.ask()  # an orphan: started, then its worker lost the connection
    with Shutdown(grace=1) as shutdown:
        assert _await_leftovers(study, goal=1, shutdown=shutdown) is False  # no loss seen: leaves at once
        assert study.get_trials(deepcopy=False)[1].state == TrialState.RUNNING
        started = time.monotonic()
        assert _await_leftovers(study, goal=1, shutdown=shutdown, settle=True) is False
    assert time.monotonic() - started < 5 + 4
    assert TrialState.RUNNING not in {t.state for t in study.get_trials(deepcopy=False)}


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_postgres_urls_as_other_tools_print_them_are_accepted(postgres_url: str, scheme: str, cli) -> None:
    from skipsearch.results import connect, normalise_url
    from skipsearch.search import open_storage

    url = f"{scheme}://{postgres_url.split('://', 1)[1]}"
    assert normalise_url(url) == postgres_url
    connect(url).dispose()
    open_storage(url, heartbeat_interval=None).engine.dispose()
    code, out, err = cli(["results", "--storage", url])
    assert code == 0, err
    assert out.startswith("no results yet")
