"""End-to-end studies on a real SQLite file (and PostgreSQL where available)."""

from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from study_helpers import run_study, tiny_study

from skipsearch.cli._study import worker_command
from skipsearch.search import create_study, load_study, parse_study_config, run_local_workers
from skipsearch.topology import Topology

TINY = tiny_study(
    "tiny",
    seed=3,
    training={"epochs": 2, "batch_size": 256},
    trials=6,
    execution={"heartbeat_interval": 2, "grace_period": 10},
)


@pytest.mark.slow
def test_trials_store_topology_and_metrics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = run_study(url, TINY)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 6 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert done
    for trial in done:
        attrs = trial.user_attrs
        topology = Topology.from_json(attrs["topology"])
        assert topology.hash == attrs["hash"]
        assert trial.values[0] == attrs["accuracy"] and trial.values[1] == attrs["macs"]
        assert attrs["params"] > 0 and attrs["latency_ms"] > 0 and len(attrs["curve"]) == attrs["epochs"]
        assert 0.0 <= attrs["test_accuracy"] <= 1.0
    assert study.metric_names == ["accuracy", "macs"]


@pytest.mark.slow
def test_same_file_and_seed_give_identical_metrics(tmp_path: Path) -> None:
    first = run_study(f"sqlite:///{tmp_path / 'a.db'}", {**TINY, "trials": 3})
    second = run_study(f"sqlite:///{tmp_path / 'b.db'}", {**TINY, "trials": 3})

    def metrics(study: optuna.Study) -> list:
        return [(t.params, t.user_attrs.get("accuracy"), t.user_attrs.get("curve")) for t in study.trials]

    assert metrics(first) == metrics(second)


@pytest.mark.slow
def test_duplicate_topologies_reuse_metrics(tmp_path: Path) -> None:
    config = {**TINY, "space": {"edges": [{"src": "h1", "dst": "h3"}], "choices": ["off", "add"]}, "trials": 5}
    study = run_study(f"sqlite:///{tmp_path / 'd.db'}", config)
    reused = [t for t in study.trials if "reused_from" in t.user_attrs]
    assert reused  # only 2 distinct topologies exist in this space
    for trial in reused:
        source = study.trials[trial.user_attrs["reused_from"]]
        assert trial.values == source.values and trial.user_attrs["hash"] == source.user_attrs["hash"]


@pytest.mark.slow
def test_resume_and_conflicting_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    run_study(url, {**TINY, "trials": 2})
    study = run_study(url, {**TINY, "trials": 4})  # same study, higher target: resumes
    assert len(study.trials) == 4
    from skipsearch.errors import UserError

    with pytest.raises(UserError, match="already exists"):
        create_study(parse_study_config({**TINY, "seed": 4}, "tiny.yaml"), url)


@pytest.mark.slow
def test_diverging_trials_fail_with_reason_and_the_study_goes_on(tmp_path: Path) -> None:
    config = {**TINY, "training": {"epochs": 1, "lr": 1e12, "optimizer": "sgd"}, "trials": 3}
    study = run_study(f"sqlite:///{tmp_path / 'n.db'}", config)
    assert len(study.trials) == 3
    for trial in study.trials:
        assert trial.state == TrialState.FAIL
        assert "nan" in trial.user_attrs["failure_reason"] or "inf" in trial.user_attrs["failure_reason"]


def _two_workers(url: str) -> None:
    config = parse_study_config({**TINY, "trials": 12, "training": {"epochs": 1}}, "tiny.yaml")
    study = create_study(config, url, "two-workers")
    assert run_local_workers(url, study.study_name, 2, worker_command(study.study_name)) == 0
    study, _ = load_study(url, "two-workers")
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(numbers))) and len(numbers) >= 12
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) >= 12
    assert not [t for t in trials if t.state in (TrialState.FAIL, TrialState.RUNNING)]


@pytest.mark.slow
def test_two_workers_on_sqlite(tmp_path: Path) -> None:
    _two_workers(f"sqlite:///{tmp_path / 'w.db'}")


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_on_postgres(postgres_url: str) -> None:
    _two_workers(postgres_url)


def test_study_yaml_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    from skipsearch.search import load_study_config

    assert load_study_config(path).model_dump() == parse_study_config(TINY, "x").model_dump()


@pytest.mark.slow
def test_gradient_flow_is_recorded_when_the_study_asks(tmp_path: Path) -> None:
    from skipsearch.results import connect, evaluations

    url = f"sqlite:///{tmp_path / 'g.db'}"
    study = run_study(url, {**TINY, "trials": 2, "analysis": {"gradient_flow": True}})
    rows = evaluations(connect(url), [study.study_name])
    for trial in study.trials:
        assert trial.user_attrs["grad_ratio_init"] > 0 and trial.user_attrs["grad_ratio"] > 0
    assert rows["grad_ratio_init"].notna().all() and rows["grad_ratio"].notna().all()
    plain = run_study(f"sqlite:///{tmp_path / 'p.db'}", {**TINY, "trials": 1})
    assert "grad_ratio" not in plain.trials[0].user_attrs
