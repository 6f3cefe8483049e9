"""The predictor sampler: valid, never-seen proposals in-process, and no duplicate work across workers."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState
from study_helpers import tiny_study

from skipsearch.errors import UserError
from skipsearch.predictor import CLAIM_ATTR, FitConfig, PredictorSampler
from skipsearch.search import SearchSpace, parse_study_config
from skipsearch.search._config import SpaceConfig
from skipsearch.search._samplers import make_sampler
from skipsearch.topology import Topology, families

FAST = FitConfig(members=2, hidden=16, layers=2, epochs=30)


def _space() -> SearchSpace:
    backbone = families.mlp(40, [16, 16, 16, 16], 10, act="tanh", residual=False, name="m")
    return SearchSpace(backbone, SpaceConfig(max_span=2, choices=["off", "add", "concat"]))


def _accuracy_and_macs_study() -> tuple[SearchSpace, PredictorSampler, optuna.Study]:
    space = _space()
    dists = {c.param: CategoricalDistribution(c.choices) for c in space.candidates}
    sampler = PredictorSampler(
        space.topology_from_params, dists, ["accuracy", "macs"], n_startup_trials=4, n_candidates=40, fit_config=FAST
    )
    return space, sampler, optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)


def test_proposes_valid_unseen_params() -> None:
    space, _, study = _accuracy_and_macs_study()

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        topology = space.sample(trial)
        trial.set_user_attr("hash", topology.hash)
        active = [e for e in topology.skips if e.active]
        return len([e for e in active if e.kind == "add"]) / 10, float(len(active))

    study.optimize(objective, n_trials=7)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 7
    hashes = [t.user_attrs["hash"] for t in trials]
    assert len(set(hashes)) == 7
    proposed = [t for t in trials if t.system_attrs.get(CLAIM_ATTR)]
    assert [t.number for t in proposed] == [4, 5, 6]  # the predictor took over after the warm-up
    for t in proposed:
        assert t.system_attrs[CLAIM_ATTR] == t.user_attrs["hash"]
        assert set(t.params) == {c.param for c in space.candidates}
        assert all(t.params[c.param] in c.choices for c in space.candidates)


def test_trials_asked_in_a_row_share_one_fit_and_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batched worker's group: one fit and one pool for K asks, K distinct candidates, each ranked
    beyond the optimistic points of those handed out before it."""
    space, sampler, study = _accuracy_and_macs_study()

    def score(topology: Topology) -> tuple[float, float]:
        active = [e for e in topology.skips if e.active]
        return len([e for e in active if e.kind == "add"]) / 10, float(len(active))

    study.optimize(lambda trial: score(space.sample(trial)), n_trials=4)
    draws, fits = [], []
    draw_pool, refit = sampler._draw_pool, sampler._refit
    monkeypatch.setattr(sampler, "_draw_pool", lambda *a: draws.append(1) or draw_pool(*a))
    monkeypatch.setattr(sampler, "_refit", lambda learned, trials: fits.append(len(learned)) or refit(learned, trials))
    group = [study.ask() for _ in range(5)]
    topologies = [space.sample(trial) for trial in group]
    assert len(draws) == 1 and fits == [4] * 5 and sampler._plan is not None
    assert len(sampler._plan.believed) == 5
    assert len({t.hash for t in topologies}) == 5
    assert [t.system_attrs[CLAIM_ATTR] for t in study.get_trials()[4:]] == [t.hash for t in topologies]
    for trial, topology in zip(group, topologies, strict=True):
        study.tell(trial, score(topology))
    space.sample(study.ask())
    assert len(draws) == 2 and len(sampler._plan.believed) == 1  # a new fit: a new plan


def test_pruned_trials_teach_the_predictor_and_count_towards_the_warm_up() -> None:
    """A pruned trial counts with the values it had reached (its user attributes); one that recorded
    none teaches nothing."""
    space, sampler, study = _accuracy_and_macs_study()

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        topology = space.sample(trial)
        accuracy, macs = len([e for e in topology.skips if e.kind == "add"]) / 10, float(len(topology.skips))
        if trial.number in (1, 2):
            trial.set_user_attr("accuracy", accuracy / 2)  # what it had reached when stopped
            raise optuna.TrialPruned()
        if trial.number == 3:
            raise optuna.TrialPruned()  # stopped before any value: nothing to learn
        return accuracy, macs

    study.optimize(objective, n_trials=6)
    assert [t.number for t in study.trials if t.system_attrs.get(CLAIM_ATTR)] == [5]
    assert sampler._fitted_on == frozenset({0, 1, 2, 4})
    assert sampler._targets(study.trials[1]) == [study.trials[1].user_attrs["accuracy"]]
    assert sampler._targets(study.trials[3]) is None


def test_enqueued_trials_keep_their_params() -> None:
    space = _space()
    dists = {c.param: CategoricalDistribution(c.choices) for c in space.candidates}
    sampler = PredictorSampler(space.topology_from_params, dists, n_startup_trials=2, n_candidates=20, fit_config=FAST)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        return float(len([e for e in space.sample(trial).skips if e.active]))

    study.optimize(objective, n_trials=2)
    wanted = {name: dist.choices[-1] for name, dist in dists.items()}
    study.enqueue_trial(wanted)
    study.optimize(objective, n_trials=1)
    last = study.trials[-1]
    assert last.params == wanted and CLAIM_ATTR not in last.system_attrs


def test_study_file_builds_the_sampler() -> None:
    data = {
        "name": "p",
        "task": "mnist1d",
        "backbone": {"family": "mlp", "args": {"input_features": 40, "hidden": [16, 16], "classes": 10}},
        "space": {"max_span": 2, "choices": ["off", "add"]},
        "objectives": ["accuracy:max", "macs:min"],
        "sampler": {"name": "predictor", "options": {"n_startup_trials": 3, "fit_config": {"epochs": 20}}},
    }
    sampler = make_sampler(parse_study_config(data, "p.yaml"))
    assert isinstance(sampler, PredictorSampler)
    data["sampler"]["options"] = {"bogus": 1}
    with pytest.raises(UserError, match=r"sampler\.options"):
        parse_study_config(data, "p.yaml")


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_on_postgres_train_no_topology_twice(postgres_url: str) -> None:
    from skipsearch.cli._study import worker_command
    from skipsearch.search import create_study, load_study, run_local_workers

    fit = {"members": 2, "hidden": 16, "layers": 2, "epochs": 30}
    data = tiny_study(
        "pred2",
        sampler={"name": "predictor", "options": {"n_startup_trials": 4, "n_candidates": 30, "fit_config": fit}},
        early_stopping={"enabled": False},
        trials=12,
        execution={"heartbeat_interval": 2, "grace_period": 10},
    )
    study = create_study(parse_study_config(data, "pred2.yaml"), postgres_url, "pred2")
    assert run_local_workers(postgres_url, study.study_name, 2, worker_command(study.study_name)) == 0
    study, _ = load_study(postgres_url, "pred2")
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) >= 12
    trained = [t.user_attrs["hash"] for t in complete if "reused_from" not in t.user_attrs]
    assert len(trained) == len(set(trained))
    assert len([t for t in complete if t.system_attrs.get(CLAIM_ATTR)]) >= 4  # the predictor proposed trials
