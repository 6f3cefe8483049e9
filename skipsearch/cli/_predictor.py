"""``skipsearch predictor train|eval``: fit the graph predictor on evaluated trials and measure how well it ranks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from skipsearch.cli._common import DEFAULT_STORAGE, StorageOption, connect, finite
from skipsearch.errors import UserError

StudiesOption = Annotated[list[str], typer.Option("--study", help="Study whose completed trials to use (repeatable).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")]

predictor_app = typer.Typer(help="Graph neural predictor of a topology's accuracy.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(predictor_app, name="predictor")


@predictor_app.command("train")
def train(
    study: StudiesOption,
    storage: StorageOption = DEFAULT_STORAGE,
    out: Annotated[Path, typer.Option(help="Where to save the fitted predictor.")] = Path("predictor.pt"),
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.9, callback=finite, help="Fraction of topologies held out.")
    ] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the split and the initialisation.")] = 0,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs of the predictor.")] = 250,
    members: Annotated[int, typer.Option(min=1, help="Ensemble members.")] = 4,
    as_json: JsonOption = False,
) -> None:
    """Fit on the studies' completed trials; report Kendall tau and Spearman on the held-out ones."""
    import numpy as np

    from skipsearch.predictor import FitConfig, evaluate_predictor, fit_predictor

    topologies, targets = _dataset(storage, study)
    order = np.random.default_rng(seed).permutation(len(topologies))
    n_test = round(holdout * len(topologies))
    test, fit = order[:n_test], order[n_test:]
    predictor = fit_predictor(
        [topologies[i] for i in fit], targets[fit], config=FitConfig(members=members, epochs=epochs, seed=seed)
    )
    predictor.save(str(out))
    scores: dict[str, Any] = {"trained_on": len(fit), "saved": str(out)}
    if n_test >= 2:
        scores["held_out"] = evaluate_predictor(predictor, [topologies[i] for i in test], targets[test])["accuracy"]
    _report(scores, as_json)


@predictor_app.command("eval")
def evaluate(
    study: StudiesOption,
    model: Annotated[Path, typer.Option(help="A predictor saved by 'predictor train'.")] = Path("predictor.pt"),
    storage: StorageOption = DEFAULT_STORAGE,
    as_json: JsonOption = False,
) -> None:
    """Kendall tau and Spearman of a saved predictor on the studies' completed trials."""
    from skipsearch.predictor import Predictor, evaluate_predictor

    if not model.is_file():
        raise UserError(f"{model}: no such predictor file (train one with 'skipsearch predictor train')")
    predictor = Predictor.load(str(model))
    topologies, targets = _dataset(storage, study)
    if len(topologies) < 2:
        raise UserError("need at least 2 evaluated topologies to rank")
    _report({"held_out": evaluate_predictor(predictor, topologies, targets)["accuracy"]}, as_json)


def _dataset(storage: str, studies: list[str]) -> tuple[list[Any], Any]:
    from skipsearch.predictor import dataset_from_results

    return dataset_from_results(connect(storage, existing=True), studies)


def _report(scores: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(scores))
        return
    if "trained_on" in scores:
        typer.echo(f"trained on {scores['trained_on']} topologies, saved to {scores['saved']}")
    held = scores.get("held_out")
    if held:
        typer.echo(
            f"held out: {held['n']} topologies, Kendall tau {held['kendall_tau']:.3f}, Spearman {held['spearman']:.3f}"
        )
