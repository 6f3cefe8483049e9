"""Early stopping: training epochs saved, and hypervolume lost, on one mnist1d study.

Runs the same study file twice at the same trial budget and seed, once with skipsearch's Pareto
early stopping and once without, each on a fresh SQLite database, and compares the epochs trained
(all trials together) and the final hypervolume of (accuracy max, MACs min) over COMPLETE trials.
The hypervolume uses the study's own reference point for both runs (``default_reference_point``:
accuracy 0 and 1.1 times the MACs of the costliest topology of the space, the point ``skipsearch
pareto``, the report and the dashboard use) and is normalised by the reference box, so it lies in
[0, 1].

The sampler is random by default: its proposals do not depend on earlier results, so both runs
evaluate the same topologies in the same order and the difference is the stopping rule alone.
``--sampler study`` keeps the study file's sampler.

    python bench/early_stopping.py                       # quickstart study, ~5 minutes on 2 cores
    python bench/early_stopping.py --trials 12
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from skipsearch.results import front_mask, hypervolume
from skipsearch.search import create_study, default_reference_point, load_study_config, run_worker

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "early_stopping.json"


def _run(config, trials: int, folder: Path, label: str) -> list[optuna.trial.FrozenTrial]:
    url = f"sqlite:///{folder / f'{label}.db'}"
    study = create_study(config, url)
    run_worker(url, study.study_name, target=trials)
    return optuna.load_study(study_name=study.study_name, storage=url).get_trials(deepcopy=False)


def _summary(trials: list[optuna.trial.FrozenTrial]) -> dict[str, float | int]:
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    return {
        "trials": len(trials),
        "complete": len(done),
        "stopped": sum(t.state == TrialState.PRUNED for t in trials),
        "epochs": sum(int(t.user_attrs.get("epochs") or 0) for t in trials if "reused_from" not in t.user_attrs),
        "train_seconds": round(sum(float(t.user_attrs.get("train_seconds") or 0) for t in trials), 2),
    }


def _points(trials: list[optuna.trial.FrozenTrial]) -> np.ndarray:
    return np.array([t.values for t in trials if t.state == TrialState.COMPLETE], dtype=float).reshape(-1, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default=str(ROOT / "studies" / "quickstart.yaml"))
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--sampler", default="random", help="'random' or 'study' (the file's sampler)")
    args = parser.parse_args()

    base = load_study_config(args.study)
    if args.sampler != "study":
        base = base.model_copy(
            update={"sampler": base.sampler.model_copy(update={"name": args.sampler, "options": {}})}
        )
    with_stopping = base.model_copy(update={"early_stopping": base.early_stopping.model_copy(update={"enabled": True})})
    without = base.model_copy(update={"early_stopping": base.early_stopping.model_copy(update={"enabled": False})})

    with tempfile.TemporaryDirectory() as folder:
        runs = {
            "without": _run(without, args.trials, Path(folder), "without"),
            "with": _run(with_stopping, args.trials, Path(folder), "with"),
        }
    points = {k: _points(v) for k, v in runs.items()}
    ways = ["max", "min"]
    reference = tuple(default_reference_point(base).values())
    box = 1.0 * reference[1]  # normalised_hypervolume's box for accuracy max, MACs min
    result: dict[str, object] = {"study": base.name, "sampler": base.sampler.name, "reference_point": reference}
    for key, pts in points.items():
        front = pts[front_mask(pts, ways)]
        result[key] = {**_summary(runs[key]), "hypervolume": round(hypervolume(front, reference, ways) / box, 5)}
    saved = 1 - result["with"]["epochs"] / result["without"]["epochs"]  # type: ignore[index]
    lost = result["without"]["hypervolume"] - result["with"]["hypervolume"]  # type: ignore[index]
    result.update(
        epochs_saved=round(saved, 4), hypervolume_lost=round(lost, 5), passed=bool(saved >= 0.30 and lost <= 0.01)
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(
        f"early stopping on {base.name} ({base.sampler.name}, {args.trials} trials): "
        f"{result['without']['epochs']} -> {result['with']['epochs']} epochs ({saved:.1%} fewer), "  # type: ignore[index]
        f"hypervolume {result['without']['hypervolume']:.4f} -> {result['with']['hypervolume']:.4f} "  # type: ignore[index]
        f"(lost {lost:.4f})"
    )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
