"""The dashboard extras of a study: where artifacts live, topology pictures of trials, custom plots."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from skipsearch.results import front_mask, hypervolume, hypervolume_history
from skipsearch.search import CONFIG_ATTR, REFERENCE_ATTR, load_study_config
from skipsearch.search._artifacts import ARTIFACT_DIR_ENV, TopologyArtifacts, artifact_dir_for, open_artifact_store
from skipsearch.search._objective import TrialFailed
from skipsearch.search._plots import HYPERVOLUME_PLOT_ID, PARETO_PLOT_ID, DashboardPlots, save_figure
from skipsearch.topology import get_preset

TOPOLOGY = get_preset("resnet20")


# -- where artifacts live ---------------------------------------------------------------------


def test_artifact_dir_defaults_next_to_the_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ARTIFACT_DIR_ENV, raising=False)
    assert artifact_dir_for(f"sqlite:///{tmp_path / 'a.db'}") == tmp_path.resolve() / "skipsearch-artifacts"
    assert artifact_dir_for("postgresql+psycopg://u:p@host/db") is None
    assert artifact_dir_for("sqlite:///:memory:") is None


def test_artifact_dir_option_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://u:p@host/db"
    monkeypatch.setenv(ARTIFACT_DIR_ENV, str(tmp_path / "env"))
    assert artifact_dir_for(url) == (tmp_path / "env").resolve()
    assert artifact_dir_for(url, tmp_path / "opt") == (tmp_path / "opt").resolve()
    monkeypatch.setenv(ARTIFACT_DIR_ENV, "off")
    assert artifact_dir_for(f"sqlite:///{tmp_path / 'a.db'}") is None


def test_server_database_without_a_folder_warns(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    monkeypatch.delenv(ARTIFACT_DIR_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="skipsearch.artifacts"):
        assert open_artifact_store("postgresql+psycopg://u:p@host/db") is None
    assert ARTIFACT_DIR_ENV in caplog.text


# -- topology pictures --------------------------------------------------------------------------


def _objective(outcome: str) -> Any:
    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("topology", TOPOLOGY.to_json(indent=None))
        if outcome == "pruned":
            raise optuna.TrialPruned("stopped early")
        if outcome == "failed":
            raise TrialFailed("diverged")
        if outcome == "crashed":
            raise RuntimeError("a bug")
        return 1.0

    return objective


@pytest.mark.parametrize(
    ("outcome", "pictured"), [("done", True), ("pruned", True), ("failed", True), ("crashed", False)]
)
def test_trials_get_their_topology_picture(outcome: str, pictured: bool, tmp_path: Path) -> None:
    study = optuna.create_study()
    wrapped = TopologyArtifacts(_objective(outcome), FileSystemArtifactStore(tmp_path))
    study.optimize(wrapped, n_trials=2, catch=(Exception,))
    wrapped.close()
    for trial in study.trials:
        metas = optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)
        assert len(metas) == (1 if pictured else 0)
        if pictured:
            assert metas[0].filename == f"topology-{TOPOLOGY.hash}.svg"
            assert b"<svg" in (tmp_path / metas[0].artifact_id).read_bytes()


class _BrokenStore:
    def write(self, artifact_id: str, content_body: Any) -> None:
        raise OSError("disk full")


def test_a_failed_upload_never_fails_the_trial(caplog: Any) -> None:
    study = optuna.create_study()
    with caplog.at_level(logging.WARNING, logger="skipsearch.artifacts"):
        study.optimize(TopologyArtifacts(_objective("done"), _BrokenStore()), n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE
    assert "disk full" in caplog.text


# -- custom plots -------------------------------------------------------------------------------


def test_hypervolume_history_matches_the_front_of_every_prefix() -> None:
    rng = np.random.default_rng(0)
    values = np.column_stack([rng.uniform(0.1, 0.9, 40), rng.uniform(100, 5000, 40)])
    directions = ["max", "min"]
    ref = (0.0, 10_000.0)
    history = hypervolume_history(values, directions, ref)
    for i in range(len(values)):
        prefix = values[: i + 1]
        assert history[i] == pytest.approx(hypervolume(prefix[front_mask(prefix, directions)], ref, directions))
    assert np.all(np.diff(history) >= 0)


def _plots(study: optuna.Study) -> dict[str, dict[str, Any]]:
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    attrs = study._storage.get_study_system_attrs(study._study_id)
    return {key: json.loads(text) for key, text in get_plotly_graph_objects(attrs).items()}


def _two_objective_study(points: list[tuple[float, float]], config: bool = True) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["accuracy", "macs"])
    if config:
        study.set_user_attr(CONFIG_ATTR, load_study_config("studies/quickstart.yaml").model_dump(mode="json"))
    for accuracy, macs in points:
        study.add_trial(optuna.trial.create_trial(values=[accuracy, macs], user_attrs={"hash": "h", "active_skips": 1}))
    return study


def test_plots_are_stored_throttled_and_use_the_study_reference_point() -> None:
    study = _two_objective_study([(0.5, 100_000.0), (0.7, 120_000.0), (0.6, 150_000.0)])
    plots = DashboardPlots(min_interval=3600)
    plots(study, study.trials[-1])
    plots(study, study.trials[-1])  # within the interval: skipped
    assert plots.refreshes == 1
    stored = _plots(study)
    assert set(stored) == {HYPERVOLUME_PLOT_ID, PARETO_PLOT_ID}
    # The quickstart's point: accuracy 0, 1.1 x the MACs of its costliest topology; stored with the study.
    assert study.user_attrs[REFERENCE_ATTR] == {"accuracy": 0.0, "macs": pytest.approx(183_321.6)}
    layout = stored[HYPERVOLUME_PLOT_ID]["layout"]
    assert "reference point accuracy 0, MACs 183,322" in layout["title"]["text"]
    expected = 0.5 * (183_321.6 - 100_000) + 0.2 * (183_321.6 - 120_000)
    assert layout["meta"]["hypervolume"] == pytest.approx(expected)
    assert layout["meta"]["normalised_hypervolume"] == pytest.approx(expected / 183_321.6)
    front = stored[PARETO_PLOT_ID]["data"][1]
    assert front["x"] == [100_000.0, 120_000.0] and front["y"] == [0.5, 0.7]  # cost across, accuracy up
    assert stored[PARETO_PLOT_ID]["layout"]["xaxis"]["title"]["text"] == "MACs (lower is better)"
    # A costlier trial than the reference point adds nothing and moves nothing.
    study.add_trial(optuna.trial.create_trial(values=[0.95, 900_000.0]))
    assert plots.refresh(study)
    assert study.user_attrs[REFERENCE_ATTR]["macs"] == pytest.approx(183_321.6)
    history = _plots(study)[HYPERVOLUME_PLOT_ID]["data"][0]
    assert history["x"] == [0, 1, 2, 3] and history["y"][-1] == pytest.approx(expected)


def test_studies_skipsearch_did_not_create_get_the_nadir_reference() -> None:
    study = _two_objective_study([(0.5, 1000.0), (0.7, 2000.0)], config=False)
    assert DashboardPlots().refresh(study)
    assert REFERENCE_ATTR not in study.user_attrs
    assert _plots(study)[HYPERVOLUME_PLOT_ID]["layout"]["meta"]["reference_point"] == {
        "accuracy": pytest.approx(0.48),
        "macs": pytest.approx(2100.0),
    }


def test_single_objective_studies_get_no_custom_plots() -> None:
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=1.0))
    assert not DashboardPlots().refresh(study)
    assert _plots(study) == {}


def test_trial_notes_are_written_as_optuna_dashboard_writes_them() -> None:
    from optuna_dashboard import save_note

    from skipsearch.search._plots import save_trial_note

    body = "**Topology** " + "x" * 5000
    ours, theirs = optuna.create_study(), optuna.create_study()
    for study in (ours, theirs):
        trial = study.ask()
        if study is ours:
            assert save_trial_note(study._storage, study._study_id, trial._trial_id, body)
            assert not save_trial_note(study._storage, study._study_id, trial._trial_id, "other")  # kept
        else:
            save_note(trial, body)
    assert ours._storage.get_study_system_attrs(ours._study_id) == theirs._storage.get_study_system_attrs(
        theirs._study_id
    )


def test_save_figure_writes_what_optuna_dashboard_writes() -> None:
    """skipsearch writes optuna-dashboard's plot format itself (its import is slow): the two must agree,
    also when a shorter figure replaces a longer one."""
    import plotly.graph_objects as go
    from optuna_dashboard import save_plotly_graph_object

    long = go.Figure(go.Scatter(x=list(range(2000)), y=list(range(2000))))
    short = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    ours, theirs = optuna.create_study(), optuna.create_study()
    for figure in (long, short):
        save_figure(ours, "plot-id", figure)
        save_plotly_graph_object(theirs, figure, graph_object_id="plot-id")
        assert ours._storage.get_study_system_attrs(ours._study_id) == theirs._storage.get_study_system_attrs(
            theirs._study_id
        )
    assert _plots(ours)["plot-id"]["data"][0]["x"] == [1, 2]
