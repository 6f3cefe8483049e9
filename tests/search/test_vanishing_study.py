"""The shipped mlp-deep-vanishing study, on a reduced budget: skips decide whether it learns at all."""

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from skipsearch.search import SearchSpace, create_study, load_study_config, run_worker

STUDY = Path(__file__).parents[2] / "studies" / "mlp-deep-vanishing.yaml"


@pytest.mark.slow
def test_search_finds_skips_that_learn_while_the_plain_network_stays_at_chance(tmp_path: Path) -> None:
    config = load_study_config(STUDY)
    url = f"sqlite:///{tmp_path / 'v.db'}"
    study = create_study(config, url)
    space = SearchSpace(config.backbone.build(), config.space)
    study.enqueue_trial({c.param: "off" for c in space.candidates})  # the plain 20-layer network
    run_worker(url, study.study_name, target=9)  # the file asks for 30

    trials = optuna.load_study(study_name=study.study_name, storage=url).get_trials(deepcopy=False)
    plain = trials[0]
    assert plain.user_attrs["active_skips"] == 0
    assert plain.user_attrs["test_accuracy"] < 0.15  # chance is 0.10
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.user_attrs["test_accuracy"])
    assert best.user_attrs["active_skips"] > 0
    assert best.user_attrs["test_accuracy"] >= 0.60
