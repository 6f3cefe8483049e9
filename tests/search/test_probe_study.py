"""Probes in studies: stored for every trial, queryable, as objectives, constraints and a
pre-screen; and a new probe is one schema entry plus its computation. Tests that run a study are
marked slow (they train)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState
from study_helpers import run_study, tiny_study
from typer.testing import CliRunner

from skipsearch import metrics as schema
from skipsearch.cli import app
from skipsearch.errors import UserError
from skipsearch.export import select_trial
from skipsearch.nn import build_model
from skipsearch.results import connect, evaluations, pareto
from skipsearch.search import make_sampler, parse_study_config
from skipsearch.tasks import (
    PROBES,
    compute_probes,
    load_task,
    probe_batch,
    probe_names,
    register_probe,
    seed_everything,
)
from skipsearch.topology import Topology

TINY = tiny_study("probes", seed=2, training={"epochs": 1, "batch_size": 256}, trials=4)


@pytest.mark.slow
def test_probes_are_stored_for_every_trial_and_queryable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = run_study(url, {**TINY, "analysis": {"probes": True}})
    engine = connect(url)
    rows = evaluations(engine, [study.study_name])
    assert len(rows) == 4
    for name in probe_names():
        assert rows[name].notna().all(), name
    # The stored value is the probe of the model the trial trained, from the study seed and batch.
    trial = study.trials[0]
    topology = Topology.from_json(trial.user_attrs["topology"])
    seed_everything(2)
    model = build_model(topology)
    x, y = probe_batch(load_task("mnist1d", seed=2), topology.input_shape, 2)
    assert compute_probes(model, x, y, ["synflow"])["synflow"] == pytest.approx(trial.user_attrs["synflow"])
    median = float(rows["synflow"].median())
    above = evaluations(engine, [study.study_name], where=[f"synflow>{median}"])
    assert len(above) == int((rows["synflow"] > median).sum())
    assert list(evaluations(engine, sort="-naswot")["naswot"]) == sorted(rows["naswot"], reverse=True)
    cli = CliRunner().invoke(app, ["results", "--storage", url, "--where", f"synflow>{median}", "--format", "json"])
    assert cli.exit_code == 0, cli.output
    assert sorted(r["synflow"] for r in json.loads(cli.stdout)) == sorted(above["synflow"])
    table = CliRunner().invoke(app, ["results", "--storage", url, "--where", f"synflow>{median}", "--wide"])
    assert table.exit_code == 0 and "synflow" in table.stdout
    front = pareto(engine, [study.study_name], "accuracy:max,naswot").front
    assert len(front) >= 1 and front["naswot"].notna().all()
    plain = run_study(f"sqlite:///{tmp_path / 'p.db'}", {**TINY, "trials": 1})
    assert "synflow" not in plain.trials[0].user_attrs


@pytest.mark.slow
def test_a_probe_objective_and_a_cost_constraint(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    data = {**TINY, "objectives": ["accuracy:max", "macs:min", "naswot:max"], "constraints": ["macs<=2000"]}
    study = run_study(url, data)
    assert study.metric_names == ["accuracy", "macs", "naswot"]
    for trial in study.trials:
        attrs = trial.user_attrs
        (violation,) = trial.constraints.values()
        assert violation == pytest.approx(attrs["macs"] - 2000)
        if attrs["macs"] > 2000:  # broken before training: not trained
            assert trial.state == TrialState.PRUNED and "breaks the constraints macs<=2000" in attrs["stop_reason"]
            assert "accuracy" not in attrs
        else:
            assert trial.state == TrialState.COMPLETE and trial.values[2] == attrs["naswot"]
    assert {t.state for t in study.trials} == {TrialState.PRUNED, TrialState.COMPLETE}
    # A probe has no natural worst value: the reference point comes from probing the space.
    reference = study.user_attrs["hypervolume_reference_point"]
    assert reference["naswot"] < min(t.user_attrs["naswot"] for t in study.trials)


@pytest.mark.slow
def test_the_prescreen_trains_the_best_scoring_candidate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    data = {**TINY, "sampler": {"name": "tpe", "prescreen": {"probe": "naswot", "candidates": 5}}}
    study = run_study(url, data)
    hashes = [t.user_attrs["hash"] for t in study.trials]
    assert len(set(hashes)) == len(hashes)  # evaluated topologies are passed over
    for trial in study.trials:
        screen = trial.user_attrs["prescreen"]
        assert screen["probe"] == "naswot" and screen["candidates"] == 5
        assert screen["score"] == max(s for s in screen["scores"] if s is not None)
        assert trial.user_attrs["naswot"] == pytest.approx(screen["score"])  # what the trial trained


def test_bad_probe_settings_are_one_line_errors() -> None:
    bad = {
        "sampler.prescreen.probe: Value error, unknown probe 'nope'": {"sampler": {"prescreen": {"probe": "nope"}}},
        "constraints.0: 'synflow=3'": {"constraints": ["synflow=3"]},
        "constraints.0.metric: unknown metric 'depth'": {"constraints": ["depth<3"]},
        "analysis.probes: unknown probe 'x'": {"analysis": {"probes": ["x"]}},
        "objectives.1.name: unknown metric 'speed'": {"objectives": ["accuracy:max", "speed:min"]},
        "sampler: the predictor sampler scores its own": {
            "sampler": {"name": "predictor", "prescreen": {"probe": "snip"}}
        },
    }
    for message, change in bad.items():
        with pytest.raises(UserError) as info:
            parse_study_config({**TINY, **change}, "s.yaml")
        text = str(info.value).replace("Value error, ", "")
        assert text.startswith("s.yaml: ") and message.replace("Value error, ", "") in text, text
        assert "\n" not in text


@pytest.fixture
def dummy_probe() -> Iterator[str]:
    """A probe added in one place: its schema entry and its computation (the number of weights)."""
    schema.register(
        schema.Metric(
            "dummy_probe", "weights of the model", "count", "float", "max", "probe", "dummy", objective=True,
            storage="metric_values",
        )
    )  # fmt: skip
    register_probe("dummy_probe", lambda inputs: float(sum(p.numel() for _, p in inputs.weights)))
    yield "dummy_probe"
    schema.unregister("dummy_probe")
    PROBES.pop("dummy_probe", None)


@pytest.mark.slow
def test_a_new_probe_is_one_schema_entry_plus_its_computation(dummy_probe: str, tmp_path: Path) -> None:
    data = {**TINY, "objectives": ["accuracy:max", f"{dummy_probe}:max"], "analysis": {"probes": [dummy_probe]}}
    config = parse_study_config(data, "d.yaml")  # config validation knows it
    assert config.probe_names == [dummy_probe]
    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = run_study(url, data)
    engine = connect(url)
    rows = evaluations(engine, [study.study_name])  # a results column
    assert rows[dummy_probe].notna().all() and (rows[dummy_probe] > 0).all()
    for trial in study.trials:
        model = build_model(Topology.from_json(trial.user_attrs["topology"]))
        assert trial.user_attrs[dummy_probe] == sum(p.numel() for p in model.parameters() if p.dim() > 1)
    smallest = float(rows[dummy_probe].min())
    assert len(evaluations(engine, where=[f"{dummy_probe}>{smallest}"])) == int((rows[dummy_probe] > smallest).sum())
    front = pareto(engine, [study.study_name], f"accuracy:max,{dummy_probe}")  # natural direction: max
    assert front.objectives[1] == (dummy_probe, "max") and len(front.front) >= 1
    selected = select_trial(url, study.study_name, rank=1)  # exports carry it
    assert selected.metrics[dummy_probe] == front.front.iloc[0][dummy_probe]
    assert schema.label(dummy_probe) == "dummy"


@pytest.mark.slow
def test_the_predictor_sampler_reads_probe_features(tmp_path: Path) -> None:
    options = {"n_startup_trials": 2, "n_candidates": 12, "fit_config": {"epochs": 10, "members": 2}}
    data = {**TINY, "sampler": {"name": "predictor", "options": {**options, "features": "probes"}}}
    study = run_study(f"sqlite:///{tmp_path / 'f.db'}", data)
    assert len({t.user_attrs["hash"] for t in study.trials}) == 4
    sampler = make_sampler(parse_study_config(data, "f.yaml"))
    assert sampler._feature_names == probe_names()
    fitted = sampler._feature_matrix([Topology.from_json(t.user_attrs["topology"]) for t in study.trials])
    assert fitted.shape == (4, len(probe_names()))
    bad = {**TINY, "sampler": {"name": "predictor", "options": {"features": ["depth"]}}}
    with pytest.raises(UserError, match=r"sampler\.options\.features: 'probes' or a list of probes"):
        parse_study_config(bad, "b.yaml")
