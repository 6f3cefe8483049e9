"""Skip-connection search on scikit-learn's breast cancer data, from Python (no study file).

    python examples/breast_cancer.py [--trials 12] [--epochs 10] [--storage sqlite:///cancer.db]

Searches which skip edges a 4-layer MLP should have to tell malignant from benign tumours
(569 samples, 30 features; stratified 70/15/15 split, features standardised on the training
split), prints the Pareto front of validation accuracy against MACs, and exports the front's
knee as a bundle (PyTorch code, ONNX, trained weights and a manifest ``skipsearch reproduce``
retrains from).
"""

from __future__ import annotations

import argparse
import warnings

import optuna
from sklearn.datasets import load_breast_cancer

import skipsearch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--storage", default="sqlite:///breast-cancer.db")
    parser.add_argument("--output", default="breast-cancer-export")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    x, y = load_breast_cancer(return_X_y=True)
    study = skipsearch.Study.from_arrays(
        x,
        y,
        name="breast-cancer",
        hidden=[32, 32, 32, 32],
        space={"max_span": 3, "choices": ["off", "add", "scalar"]},
        objectives=["accuracy:max", "macs:min"],
        sampler={"name": "random"},
        training={"epochs": args.epochs, "batch_size": 32, "lr": 3e-3},
        trials=args.trials,
        storage=args.storage,
    )
    study.run()

    results = study.results()
    print(f"{len(results)} trials; states: {results['state'].value_counts().to_dict()}")
    front = study.pareto()
    print(front[["trial_number", "accuracy", "test_accuracy", "macs", "active_skips"]].to_string(index=False))
    files = study.export(args.output, knee=True)
    print(f"exported the knee of the front: {', '.join(p.name for p in files)}")


if __name__ == "__main__":
    main()
