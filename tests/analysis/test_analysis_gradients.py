"""Gradient flow: the 20-layer tanh MLP of mlp-deep-vanishing.yaml without skips vanishes, with
identity skips it does not (REFERENCES.md: about 6e-4 vs. the same order)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skipsearch.analysis import VANISHING, flow_status, gradient_flow
from skipsearch.cli import app
from skipsearch.tasks import load_task
from skipsearch.topology import get_preset

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def test_flow_status_thresholds() -> None:
    assert flow_status(5e-4) == "vanishing"
    assert flow_status(0.5) == "healthy"
    assert flow_status(2e3) == "exploding"
    assert flow_status(math.nan) == "vanishing"
    assert flow_status(math.inf) == "exploding"


@pytest.mark.slow
def test_presets_at_init() -> None:
    data = load_task("mnist1d")
    plain = gradient_flow(get_preset("mlp-deep-plain"), data, batch_size=256)[0]
    residual = gradient_flow(get_preset("mlp-deep"), data, batch_size=256)[0]
    assert (plain.first, plain.last) == ("h1", "h20") and len(plain.norms) == 20
    assert plain.ratio < VANISHING and plain.status == "vanishing"
    assert residual.ratio > 1e-1 and residual.status == "healthy"
    assert plain.stage == "init" and plain.accuracy is None


def test_cli_flags_the_study_file_topologies() -> None:
    result = CliRunner().invoke(
        app, ["analyze", "gradients", str(STUDIES / "mlp-deep-vanishing.yaml"), "--no-train", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = {r["label"]: r for r in json.loads(result.stdout)}
    assert rows["no-skips"]["ratio"] < 1e-3 and rows["no-skips"]["status"] == "vanishing"
    assert rows["all-skips"]["ratio"] > 1e-1 and rows["all-skips"]["status"] == "healthy"
    assert rows["all-skips"]["hash"] == get_preset("mlp-deep").hash  # every candidate on = the residual preset


@pytest.mark.slow
def test_after_training_is_measured_too() -> None:
    from skipsearch.tasks import TASKS
    from skipsearch.topology import families

    topo = families.mlp(40, [32] * 4, 10, act="tanh")
    config = TASKS["mnist1d"].default_config.updated(epochs=1)
    init, trained = gradient_flow(topo, load_task("mnist1d"), train=config, batch_size=128)
    assert (init.stage, trained.stage) == ("init", "trained")
    assert trained.accuracy is not None and trained.accuracy > 0.1
    assert trained.norms.keys() == init.norms.keys()


def test_cli_needs_a_task_for_presets() -> None:
    result = CliRunner().invoke(app, ["analyze", "gradients", "mlp-deep"])
    assert result.exit_code != 0 and "--task" in str(result.exception)
