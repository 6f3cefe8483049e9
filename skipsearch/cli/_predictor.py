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
FeaturesOption = Annotated[
    str,
    typer.Option(
        "--features",
        help="'graph' (the topology graph alone), 'probes' (plus every zero-cost probe the studies stored) "
        "or a comma-separated list of probes.",
    ),
]

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
    features: FeaturesOption = "graph",
    as_json: JsonOption = False,
) -> None:
    """Fit on the studies' completed trials; report Kendall tau and Spearman on the held-out ones."""
    import numpy as np

    from skipsearch.predictor import FitConfig, evaluate_predictor, fit_predictor

    topologies, targets = _dataset(storage, study)
    names = _feature_names(features)
    values = _features(storage, study, topologies, names)
    order = np.random.default_rng(seed).permutation(len(topologies))
    n_test = round(holdout * len(topologies))
    test, fit = order[:n_test], order[n_test:]
    predictor = fit_predictor(
        [topologies[i] for i in fit],
        targets[fit],
        config=FitConfig(members=members, epochs=epochs, seed=seed),
        features=None if values is None else values[fit],
        feature_names=names,
    )
    predictor.save(str(out))
    scores: dict[str, Any] = {"trained_on": len(fit), "features": ["graph", *names], "saved": str(out)}
    if n_test >= 2:
        held = None if values is None else values[test]
        scores["held_out"] = evaluate_predictor(predictor, [topologies[i] for i in test], targets[test], held)[
            "accuracy"
        ]
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
    values = _features(storage, study, topologies, predictor.features)
    _report({"held_out": evaluate_predictor(predictor, topologies, targets, values)["accuracy"]}, as_json)


def _dataset(storage: str, studies: list[str]) -> tuple[list[Any], Any]:
    from skipsearch.predictor import dataset_from_results

    return dataset_from_results(connect(storage, existing=True), studies)


def _feature_names(text: str) -> tuple[str, ...]:
    """``graph`` -> no probes, ``probes`` -> all of them, else the listed ones (checked)."""
    from skipsearch import metrics as schema

    if text == "graph":
        return ()
    if text == "probes":
        return schema.probe_names()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in schema.probe_names()]
    if unknown or not names:
        raise UserError(f"--features {text!r}: give graph, probes or probe names ({', '.join(schema.probe_names())})")
    return names


def _features(storage: str, studies: list[str], topologies: list[Any], names: tuple[str, ...]) -> Any:
    if not names:
        return None
    from skipsearch.predictor import features_from_results

    return features_from_results(connect(storage, existing=True), studies, topologies, names)


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
