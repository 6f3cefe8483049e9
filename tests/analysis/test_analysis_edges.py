"""Edge effects: a planted effect in a synthetic results table is recovered, sign and size."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from skipsearch.analysis import describe_effects, edge_effects
from skipsearch.errors import UserError

EDGES = [f"h{i}->h{i + 2}" for i in range(5)]


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({e: rng.choice(["off", "add/identity", "concat"], n) for e in EDGES})
    planted = frame["h2->h4"] == "concat"
    frame["accuracy"] = 0.60 + 0.05 * planted + 0.01 * (frame["h0->h2"] == "add/identity") + rng.normal(0, 0.02, n)
    frame["macs"] = 1000.0 + 300 * planted + 120 * (frame["h4->h6"] == "concat")
    return frame


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_effect_is_recovered_within_its_interval(seed: int) -> None:
    effects = edge_effects(_table(150, seed), EDGES, ["accuracy", "macs"])
    assert set(effects["method"]) == {"ols"}
    row = effects.set_index(["edge", "kind", "objective"]).loc[("h2->h4", "concat", "accuracy")]
    assert row.ci_low <= 0.05 <= row.ci_high  # the true +5 points lie in the interval
    assert row.ci_low > 0 and abs(row.effect - 0.05) < 0.015
    nulls = effects[(effects.objective == "accuracy") & (effects.edge.isin(["h1->h3", "h3->h5"]))]
    assert (nulls.effect.abs() < 0.02).all()
    macs = effects.set_index(["edge", "kind", "objective"]).loc[("h2->h4", "concat", "macs")]
    assert macs.effect == pytest.approx(300) and macs.ci_high - macs.ci_low < 1e-6


def test_sentence_reports_points_and_interval() -> None:
    effects = edge_effects(_table(150), EDGES, ["accuracy", "macs"])
    lines = describe_effects(effects[effects.edge == "h2->h4"])
    concat = next(line for line in lines if "as concat" in line)
    assert concat.startswith("edge h2->h4 as concat: raises accuracy by ")
    assert " points (95% CI +" in concat and "raises MACs by 300 (95% CI +300 to +300)" in concat


def test_effects_of_too_few_trials_are_not_shown() -> None:
    effects = edge_effects(_table(4), EDGES, ["accuracy"])
    lines = describe_effects(effects)
    assert lines and all("needs at least 3 trials" in line or "no clear" in line for line in lines)
    assert not any("e+" in line for line in lines)


def test_few_trials_fall_back_to_differences_of_means() -> None:
    effects = edge_effects(_table(12), EDGES, ["accuracy"])
    assert set(effects["method"]) == {"means"}
    assert (effects.n_on + effects.n_off <= 12).all()
    finite = effects[np.isfinite(effects.se)]
    assert (finite.ci_low <= finite.effect).all() and (finite.effect <= finite.ci_high).all()


def test_exact_fit_and_unknown_method() -> None:
    frame = pd.DataFrame({"a->b": ["off", "add", "off", "add"], "accuracy": [0.1, 0.2, 0.1, 0.2]})
    row = edge_effects(frame, ["a->b"], ["accuracy"], method="ols").iloc[0]
    assert row.effect == pytest.approx(0.1) and math.isfinite(row.se)
    with pytest.raises(UserError):
        edge_effects(frame, ["a->b"], ["accuracy"], method="anova")
