"""Trial overhead: whole trial time over pure training time, for quickstart trials.

Everything a trial does besides training (sampling, storage writes, user attributes, cost and
latency measurement, dedup and early-stopping look-ups, writing the results rows) is overhead. The
whole time of a trial is measured from the end of the previous trial's callbacks to the end of its
own (so it includes Optuna's ask/tell and skipsearch's result recording); the pure training time is
the ``train_seconds`` the training loop reports. The first trial's window also holds the worker's
start-up (data generation), so it is reported apart and left out of the ratio.

    python bench/trial_overhead.py                 # the quickstart study, ~3 minutes on 2 cores
    python bench/trial_overhead.py --trials 6      # shorter
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import optuna

from skipsearch.search import create_study, load_study_config, run_worker

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "trial_overhead.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default=str(ROOT / "studies" / "quickstart.yaml"))
    parser.add_argument("--trials", type=int, default=None, help="trial target (default: the study's)")
    parser.add_argument("--max-ratio", type=float, default=1.10)
    args = parser.parse_args()

    config = load_study_config(args.study)
    ends: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'overhead.db'}"
        study = create_study(config, url)
        start = time.perf_counter()
        run_worker(url, study.study_name, target=args.trials, progress=lambda s, t: ends.append(time.perf_counter()))
        trials = optuna.load_study(study_name=study.study_name, storage=url).get_trials(deepcopy=False)

    # progress callbacks run after skipsearch's recording callback, once per finished trial.
    windows = [b - a for a, b in zip([start, *ends], ends, strict=False)]
    rows = [
        {"number": t.number, "state": t.state.name, "whole": w, "train": t.user_attrs.get("train_seconds")}
        for t, w in zip(trials, windows, strict=True)
    ]
    trained = [r for r in rows[1:] if r["train"]]
    whole = sum(r["whole"] for r in trained)
    train = sum(r["train"] for r in trained)
    ratio = whole / train
    result = {
        "study": config.name,
        "sampler": config.sampler.name,
        "trials": len(rows),
        "trained_trials_in_ratio": len(trained),
        "whole_seconds": round(whole, 3),
        "train_seconds": round(train, 3),
        "ratio": round(ratio, 4),
        "mean_overhead_ms": round(1e3 * (whole - train) / len(trained), 1),
        "first_trial_whole_seconds": round(rows[0]["whole"], 3),
        "max_ratio": args.max_ratio,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(
        f"trial overhead on {config.name} ({config.sampler.name}, {len(trained)} trained trials): "
        f"whole/train = {ratio:.3f} (mean overhead {result['mean_overhead_ms']} ms per trial; "
        f"first trial incl. start-up {rows[0]['whole']:.1f} s)"
    )
    return 0 if ratio <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
