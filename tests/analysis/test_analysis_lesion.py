"""Lesion study (Veit et al. 2016): deleting one block barely hurts a residual network and breaks
the plain one. Reduced budget: 8 equal-width ReLU layers on mnist1d, 8 epochs (both learn)."""

from __future__ import annotations

import pytest
import torch

from skipsearch.analysis import lesion_mode, lesion_study
from skipsearch.analysis._lesion import lesioned_model
from skipsearch.nn import build_model
from skipsearch.tasks import TASKS, load_task, seed_everything, train_model
from skipsearch.topology import SkipEdge, families


def _trained(residual: bool):
    topo = families.mlp(40, [64] * 8, 10, act="relu", residual=residual, name="res" if residual else "plain")
    seed_everything(0)
    model = build_model(topo)
    config = TASKS["mnist1d"].default_config.updated(epochs=8)
    result = train_model(model, load_task("mnist1d"), config, seed=0, evaluate_test=False)
    assert result.val_metric > 0.3  # both networks learn: the comparison means something
    return model


@pytest.mark.slow
def test_residual_survives_single_deletions_plain_does_not() -> None:
    data = load_task("mnist1d")
    residual = lesion_study(_trained(True), data.x_test, data.y_test)
    plain = lesion_study(_trained(False), data.x_test, data.y_test)
    assert [r.mode for r in residual.block_rows] == ["drop-branch"] * 7
    assert [r.mode for r in plain.block_rows] == ["identity"] * 7
    assert residual.baseline > 0.3 and plain.baseline > 0.3
    assert residual.mean_block_drop < 0.08, residual.to_dict()
    assert plain.mean_block_drop > 0.15, plain.to_dict()
    assert max(r.drop for r in residual.block_rows) < min(r.drop for r in plain.block_rows)
    # h1 changes the width (40 -> 64) and has no skip; the head is the output.
    assert set(residual.skipped) == {"h1", "head"} and "shape changes" in residual.skipped["h1"]
    assert len([r for r in residual.rows if r.mode == "drop-edge"]) == 7


def test_lesion_modes_and_the_zeroed_branch() -> None:
    topo = families.mlp(6, [8, 8, 8], 3, act="tanh").with_skips(
        [SkipEdge("h1", "h2", "add"), SkipEdge("h1", "h3", "concat")]
    )
    assert lesion_mode(topo, "h2") == ("drop-branch", "")
    assert lesion_mode(topo, "h3")[0] is None and "concatenation" in lesion_mode(topo, "h3")[1]
    assert lesion_mode(topo, "head") == (None, "the output node")
    seed_everything(0)
    model = build_model(topo).eval()
    x = torch.randn(4, 6)
    h1 = model.blocks.h1(x)
    lesioned = lesioned_model(model, "h2", "drop-branch")
    # With h2's branch gone its output is the skip alone: h3 sees cat(h1, h1).
    expected = model.blocks.head(model.blocks.h3(torch.cat([h1, h1], 1)))
    assert torch.allclose(lesioned(x), expected, atol=1e-6)
    assert not torch.allclose(model(x), expected)  # the original model is untouched
    study = lesion_study(model, x, torch.zeros(4, dtype=torch.long))
    assert "h1->h3" in study.skipped and {r.target for r in study.rows} == {"h2", "h1->h2"}
