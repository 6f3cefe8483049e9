"""Studies whose workers train ``execution.batch_trials`` trials at once."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
from optuna.trial import TrialState
from study_helpers import run_study, tiny_study

from skipsearch.cli._study import worker_command
from skipsearch.nn import build_model
from skipsearch.results import connect, evaluations
from skipsearch.search import parse_study_config, run_local_workers, topology_of
from skipsearch.search._study import create_study
from skipsearch.tasks import load_task, seed_everything, train_model

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sampler", ["random", "tpe", "nsga2", "gp", "predictor"])
def test_every_sampler_runs_batched_and_each_trial_gets_its_own_result(
    tmp_path: Path, sampler: str, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"n_startup_trials": 2} if sampler in ("tpe", "gp", "predictor") else {}
    if sampler == "nsga2":
        options = {"population_size": 4}
    data = tiny_study(
        f"batched-{sampler}",
        trials=7,
        sampler={"name": sampler, "options": options},
        execution={"batch_trials": 3},
    )
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with caplog.at_level(logging.INFO, logger="skipsearch.worker"):
        study = run_study(url, data)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 7 and all(t.state == TrialState.COMPLETE for t in trials)
    assert "group of 3 trials" in caplog.text and "group of 1 trials" in caplog.text  # 3 + 3 + 1
    assert all("worker" in t.user_attrs and "hash" in t.user_attrs for t in trials)
    rows = evaluations(connect(url), [study.study_name])
    assert len(rows) == 7

    # Each trained trial's metrics are what training its topology alone gives (float32 tolerance).
    config = parse_study_config(data, "batched.yaml")
    task = load_task("mnist1d", seed=config.seed)
    for trial in trials:
        if "reused_from" in trial.user_attrs:
            continue
        topology = topology_of(trial)
        assert topology is not None
        seed_everything(config.seed)
        alone = train_model(build_model(topology), task, config.train_config, seed=config.seed)
        assert math.isclose(trial.user_attrs["loss"], alone.val_loss, rel_tol=1e-4), trial.number
        assert abs(trial.user_attrs["accuracy"] - alone.val_metric) <= 0.01, trial.number


def test_a_topology_asked_twice_in_one_group_trains_once(tmp_path: Path) -> None:
    data = tiny_study(
        "twice",
        trials=4,
        space={"edges": [{"src": "h1", "dst": "h3"}], "choices": ["off", "add"]},
        execution={"batch_trials": 4},
    )
    study = run_study(f"sqlite:///{tmp_path / 'study.db'}", data)
    trials = study.get_trials(deepcopy=False)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    by_hash: dict[str, list] = {}
    for t in trials:
        by_hash.setdefault(t.user_attrs["hash"], []).append(t)
    assert len(by_hash) <= 2
    for same in by_hash.values():
        assert len({tuple(t.values) for t in same}) == 1
        assert sum("reused_from" not in t.user_attrs for t in same) == 1


def test_batched_workers_in_parallel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    data = tiny_study("parallel", trials=8, execution={"batch_trials": 2, "threads_per_worker": 1})
    study = create_study(parse_study_config(data, "parallel.yaml"), url)
    assert run_local_workers(url, study.study_name, 2, worker_command(study.study_name)) == 0
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    # Like Optuna's MaxTrialsCallback the target is at least reached: two workers that read the
    # last free place at the same moment may both take it (one trial more, never a group more).
    assert 8 <= states.count(TrialState.COMPLETE) <= 9 and TrialState.RUNNING not in states
    assert len({t.user_attrs["worker"] for t in trials}) == 2


def test_batch_trials_setting_is_checked() -> None:
    from skipsearch.errors import UserError

    for bad in (0, "many"):
        with pytest.raises(UserError, match="batch_trials"):
            parse_study_config(tiny_study("bad", execution={"batch_trials": bad}), "bad.yaml")
    assert parse_study_config(
        tiny_study("ok", execution={"batch_trials": "auto"}), "ok.yaml"
    ).execution.batch_trials == ("auto")


def test_a_group_whose_fused_training_fails_trains_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from skipsearch.search import _batched_worker

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("fused kernels unavailable (simulated)")

    monkeypatch.setattr(_batched_worker, "train_batched", broken)
    data = tiny_study("fallback", trials=3, execution={"batch_trials": 3, "dedupe": False})
    with caplog.at_level(logging.WARNING, logger="skipsearch.worker"):
        study = run_study(f"sqlite:///{tmp_path / 'study.db'}", data)
    assert "fused training of 3 trials failed (RuntimeError: fused kernels unavailable" in caplog.text
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.COMPLETE] * 3


def test_batched_trials_get_probes_constraints_and_a_prescreened_sampler(tmp_path: Path) -> None:
    data = tiny_study(
        "batched-probes",
        seed=2,
        trials=6,
        objectives=["accuracy:max", "macs:min", "naswot:max"],
        constraints=["macs<=2000"],
        sampler={"name": "tpe", "prescreen": {"probe": "naswot", "candidates": 3}},
        execution={"batch_trials": 3},
    )
    study = run_study(f"sqlite:///{tmp_path / 'study.db'}", data)
    assert len(study.trials) == 6
    for trial in study.trials:
        attrs = trial.user_attrs
        (violation,) = trial.constraints.values()
        assert violation == pytest.approx(attrs["macs"] - 2000)
        assert "naswot" in attrs
        if attrs["macs"] > 2000:  # broken before training: not trained
            assert trial.state == TrialState.PRUNED and "breaks the constraints macs<=2000" in attrs["stop_reason"]
            assert "accuracy" not in attrs
        else:
            assert trial.state == TrialState.COMPLETE and trial.values[2] == attrs["naswot"]


def test_auto_sizes_the_group_from_the_device(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tiny_study("auto", trials=2, execution={"batch_trials": "auto"}, training={"epochs": 1, "device": "cpu"})
    with caplog.at_level(logging.INFO, logger="skipsearch.worker"):
        study = run_study(f"sqlite:///{tmp_path / 'study.db'}", data)
    assert "execution.batch_trials auto: 8 trials per group" in caplog.text
    assert "group of 2 trials" in caplog.text  # no more than the study still wants
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
