"""Batched trials: trials per minute of a study at ``execution.batch_trials`` K = 1, 8, 64 (256).

For each shipped study (``studies/quickstart.yaml``, ``studies/mnist1d-deep-skips.yaml``) and each K,
one worker runs the study in a fresh SQLite file (``batch_trials: K``, one torch thread unless
``--threads``; K = 1 is the ordinary one-at-a-time worker; early stopping and gradient-flow analysis
off, dedupe off). Reported per run: trials per minute over the study's span (first trial start to
last trial end; the worker's start-up apart), training seconds per trial (for a fused group, each member's share of the
group's time), and the rest per trial (sampling, cost measurement, storage writes, pictures off),
plus how far each trial's metrics are from the K = 1 run's for the same trial number (the random
sampler asks the same topologies whatever K; ``--sampler study`` keeps the study's own sampler).
CUDA runs the same list when a device is present, and says it skipped otherwise.

    python bench/batched_trials.py --quick     # about 3-5 minutes on 2 idle cores
    python bench/batched_trials.py             # the studies' own epochs: much longer

The machine, thread count and load average are printed and saved with the figures
(``bench/results/batched_trials.json``): other processes on the machine distort them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from skipsearch.search import StudyConfig, create_study, parse_study_config, run_worker

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "batched_trials.json"
STUDIES = ("quickstart", "mnist1d-deep-skips")


def machine() -> dict[str, Any]:
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def study_mapping(name: str, k: int, trials: int, args: argparse.Namespace, device: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "studies" / f"{name}.yaml").read_text())
    data["name"] = f"{name}-k{k}-{device}"
    data["trials"] = trials
    training = dict(data.get("training", {}))
    training.update(threads=args.threads, device=device)
    if args.epochs is not None:
        training["epochs"] = args.epochs
    data["training"] = training
    if args.sampler != "study":
        data["sampler"] = {"name": args.sampler}
    data["execution"] = {"batch_trials": k, "threads_per_worker": args.threads, "dedupe": False}
    data["analysis"] = {"gradient_flow": False}
    # Early stopping reads the trials finished before a trial starts, which batching changes (a
    # group's members see only earlier groups): off, so that every K trains the same trials alike.
    data["early_stopping"] = {"enabled": False}
    return data


def run_one(name: str, k: int, trials: int, args: argparse.Namespace, device: str, folder: Path) -> dict[str, Any]:
    data = study_mapping(name, k, trials, args, device)
    url = f"sqlite:///{folder / (data['name'] + '.db')}"
    config = parse_study_config(data, f"{name}.yaml")
    create_study(config, url)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    study = run_worker(url, data["name"])
    wall = time.perf_counter() - start
    done = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    train = sum(float(t.user_attrs.get("train_seconds") or 0.0) for t in done)
    n = max(len(done), 1)
    # The study's own span (first trial start to last trial end): process start-up, data
    # generation and first-use imports are reported apart, as ``startup_s``.
    first = min(t.datetime_start for t in done if t.datetime_start is not None)
    last = max(t.datetime_complete for t in done if t.datetime_complete is not None)
    span = (last - first).total_seconds()
    return {
        "study": name,
        "device": device,
        "k": k,
        "trials": len(done),
        "wall_s": round(wall, 2),
        "startup_s": round(wall - span, 2),
        "trials_per_min": round(60 * len(done) / span, 2),
        "train_s_per_trial": round(train / n, 4),
        "other_s_per_trial": round((span - train) / n, 4),
        "load_average_1min_before": round(load, 2),
        "metrics": {t.number: (t.user_attrs.get("accuracy"), t.user_attrs.get("loss")) for t in done},
    }


def warm_up(name: str, args: argparse.Namespace, device: str) -> None:
    """Pays the process's first-use costs (torch's lazy imports on the first optimizer, allocator
    and kernel warm-up) before anything is timed: otherwise the first run (K = 1) carries them."""
    from skipsearch.nn import build_model
    from skipsearch.search import SearchSpace
    from skipsearch.tasks import load_task, train_batched, train_model

    config = parse_study_config(study_mapping(name, 2, 1, args, device), f"{name}.yaml")
    train = config.train_config.updated(epochs=1)
    data = load_task(config.task.name, seed=config.seed)
    topologies = SearchSpace(config.backbone.build(), config.space).random_topologies(2, seed=1)
    train_model(build_model(topologies[0]), data, train, seed=0, evaluate_test=False)
    train_batched([build_model(t) for t in topologies], data, train, seeds=[0, 0], evaluate_test=False)


def training_only(name: str, k: int, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Training alone, without a study: K models one after the other, then fused, 1 epoch each;
    once for K different topologies of the space (a group's union edges cost compute) and once for
    one topology with K seeds (a seed sweep: nothing wasted)."""
    from skipsearch.search import SearchSpace
    from skipsearch.tasks import load_task, seeded_model, train_batched, train_model

    warm_up(name, args, device)
    config = parse_study_config(study_mapping(name, k, 1, args, device), f"{name}.yaml")
    train = config.train_config.updated(epochs=1)
    data = load_task(config.task.name, seed=config.seed)
    space = SearchSpace(config.backbone.build(), config.space)
    topologies = space.random_topologies(k, seed=1)
    out: dict[str, Any] = {"study": name, "device": device, "k": k}
    for case, members in (("topologies", topologies), ("seed_sweep", [topologies[0]] * k)):
        seeds = list(range(k)) if case == "seed_sweep" else [0] * k
        models = [seeded_model(topology, seed) for topology, seed in zip(members, seeds, strict=True)]
        alone_n = min(k, 8)  # one after the other: timed on up to 8 and scaled
        start = time.perf_counter()
        for model, seed in zip(models[:alone_n], seeds, strict=False):
            train_model(model, data, train, seed=seed, evaluate_test=False)
        alone = (time.perf_counter() - start) / alone_n
        start = time.perf_counter()
        train_batched(models, data, train, seeds=seeds, evaluate_test=False)
        fused = (time.perf_counter() - start) / k
        out[case] = {
            "alone_s_per_model": round(alone, 4),
            "fused_s_per_model": round(fused, 4),
            "speedup": round(alone / fused, 2),
        }
    return out


def hypervolume_race(k: int, trials: int, args: argparse.Namespace, folder: Path, seed: int) -> dict[str, Any]:
    """mnist1d-deep-skips with its own (predictor) sampler and early stopping, one-at-a-time against
    K at a time: the seconds each needs to reach the one-at-a-time run's final hypervolume.

    The K run may take up to three times the trials, within the one-at-a-time run's wall time:
    a group gives the sampler feedback K trials at a time, so it may need more trials (each
    cheaper) to find the same front; the race is decided on time.

    A trial's accuracy is one training run's, so a front (and the target) is set by the luckiest
    runs as much as by the topologies. With ``--race-denoise N`` the race is also run on the
    topologies' mean validation accuracy over N further training seeds (each completed topology
    of both runs retrained, as one fused seed sweep): which run first *found* topologies as good.
    """
    from optuna.trial import TrialState

    from skipsearch.search import stored_reference_point

    warm_up("mnist1d-deep-skips", args, "cpu")
    completed: dict[int, list[tuple[float, Any]]] = {}
    """Per K: (seconds from the run's start, trial) of each completed trial, in the order they ended."""
    ended: dict[int, list[float]] = {}
    """Per K: when each trial of the run ended (completed, pruned or failed), in seconds from its start."""
    budget = None
    configs = {
        batch: parse_study_config(race_study(batch, trials, seed, args), "mnist1d-deep-skips.yaml") for batch in (1, k)
    }
    for batch, config in configs.items():
        url = f"sqlite:///{folder / (config.name + '.db')}"
        create_study(config, url)
        study = run_worker(url, config.name, timeout=budget)
        reference = stored_reference_point(study)
        assert reference is not None
        run = study.get_trials(deepcopy=False)
        start = min(t.datetime_start for t in run if t.datetime_start)
        ended[batch] = sorted((t.datetime_complete - start).total_seconds() for t in run if t.datetime_complete)
        done = sorted((t for t in run if t.state == TrialState.COMPLETE), key=lambda t: t.datetime_complete)
        completed[batch] = [((t.datetime_complete - start).total_seconds(), t) for t in done]
        if batch == 1:
            budget = ended[1][-1]
    ref = [reference["accuracy"], reference["macs"]]
    out: dict[str, Any] = {"k": k, "seed": seed, "trials": trials, **race_figures(completed, ended, ref, None)}
    if args.race_denoise:
        means = seed_mean_accuracies(completed, args.race_denoise, configs[1])
        out["denoised"] = {"seeds": args.race_denoise, **race_figures(completed, ended, ref, means)}
    return out


def race_study(batch: int, trials: int, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "studies" / "mnist1d-deep-skips.yaml").read_text())
    data.update(name=f"race-k{batch}-seed{seed}", trials=trials if batch == 1 else 3 * trials, seed=seed)
    data["training"] = {**data.get("training", {}), "threads": args.threads}
    if args.epochs is not None:
        data["training"]["epochs"] = args.epochs
    data["execution"] = {"batch_trials": batch, "threads_per_worker": args.threads}
    return data


def race_figures(
    completed: dict[int, list[tuple[float, Any]]],
    ended: dict[int, list[float]],
    reference: list[float],
    accuracy_of: dict[str, float] | None,
) -> dict[str, Any]:
    """Hypervolume over time of each run's completed trials (their own accuracy, or ``accuracy_of``
    their topology's hash) and the seconds and trials each run needed to reach the K = 1 run's final one."""
    import numpy as np

    from skipsearch.results import hypervolume_history

    curves = {}
    for batch, done in completed.items():
        values = np.array(
            [[t.values[0] if accuracy_of is None else accuracy_of[t.user_attrs["hash"]], t.values[1]] for _, t in done],
            dtype=float,
        ).reshape(-1, 2)
        history = hypervolume_history(values, ["max", "min"], reference)
        curves[batch] = [(seconds, hv) for (seconds, _), hv in zip(done, history.tolist(), strict=True)]
    k = max(completed)
    target = curves[1][-1][1]
    reach = {b: next((t for t, hv in c if hv >= target - 1e-12), None) for b, c in curves.items()}
    return {
        "target_hypervolume": target,
        "seconds_to_target": reach,
        "trials_to_target": {b: None if t is None else sum(e <= t for e in ended[b]) for b, t in reach.items()},
        "speedup": None if reach[k] is None or not reach[k] else round(reach[1] / reach[k], 2),
        "final": {
            b: {"trials": len(c), "ended": len(ended[b]), "seconds": round(ended[b][-1], 1), "hypervolume": c[-1][1]}
            for b, c in curves.items()
        },
    }


def seed_mean_accuracies(
    completed: dict[int, list[tuple[float, Any]]], seeds: int, config: StudyConfig
) -> dict[str, float]:
    """Each completed topology's mean validation accuracy over ``seeds`` training seeds (10_000 on,
    apart from the trials' own), the study's training without early stopping, one seed sweep per topology."""
    from skipsearch.search import topology_of
    from skipsearch.tasks import seeded_model, train_batched

    task = config.task.load(config.seed)
    topologies = {t.user_attrs["hash"]: topology_of(t) for done in completed.values() for _, t in done}
    means = {}
    for topo_hash, topology in topologies.items():
        assert topology is not None
        sweep = range(10_000, 10_000 + seeds)
        models = [seeded_model(topology, seed) for seed in sweep]  # initial weights from the seed, as a trial's
        results = train_batched(models, task, config.train_config, seeds=sweep, evaluate_test=False)
        means[topo_hash] = float(sum(r.val_metric for r in results) / seeds)
    return means


def median_with_interval(ratios: list[float]) -> tuple[float, float, float]:
    """The median of ``ratios`` and a 95% percentile-bootstrap interval for it (seeds resampled)."""
    import numpy as np
    from scipy import stats

    if len(set(ratios)) < 2:  # one seed, or all alike: nothing to resample (scipy refuses one observation)
        return ratios[0], ratios[0], ratios[0]
    rng = np.random.default_rng(0)
    interval = stats.bootstrap((ratios,), np.median, method="percentile", n_resamples=10_000, rng=rng)
    return float(np.median(ratios)), float(interval.confidence_interval.low), float(interval.confidence_interval.high)


def print_race(label: str, race: dict[str, Any], k: int) -> None:
    reach, spent = race["seconds_to_target"], race["trials_to_target"]
    print(
        f"{label}: time to the one-at-a-time run's final hypervolume: K=1 {reach[1]} s, K={k} {reach[k]} s "
        f"(x{race['speedup']}) after {spent[1]} and {spent[k]} trials (completed, pruned or failed); "
        f"final: {race['final']}"
    )


def compare(base: dict[str, Any], run: dict[str, Any]) -> dict[str, float | None]:
    """Largest differences of accuracy and loss from the K = 1 run, over the trial numbers both have."""
    acc, loss = [], []
    for number, (a, b) in run["metrics"].items():
        if number in base["metrics"]:
            a0, b0 = base["metrics"][number]
            if None not in (a, a0, b, b0):
                acc.append(abs(a - a0))
                loss.append(abs(b - b0) / max(1.0, abs(b0)))
    return {"max_accuracy_diff": max(acc, default=None), "max_rel_loss_diff": max(loss, default=None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs, fewer trials, K = 1, 8, 64")
    parser.add_argument("--ks", default=None, help="comma-separated K values (default 1,8,64; CUDA adds 256)")
    parser.add_argument("--studies", default=",".join(STUDIES))
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sampler", default="random", help="random (default), or 'study' for the study's own")
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--hypervolume", action="store_true", help="also race K=1 and K=--race-k to a hypervolume")
    parser.add_argument("--only-hypervolume", action="store_true", help="the hypervolume race alone")
    parser.add_argument("--race-seeds", type=int, default=3, help="study seeds the hypervolume race runs")
    parser.add_argument("--race-k", type=int, default=8, help="trials per group in the hypervolume race")
    parser.add_argument(
        "--race-denoise", type=int, default=8, help="seeds per topology for the race on mean accuracies (0: off)"
    )
    args = parser.parse_args()
    if args.quick and args.epochs is None:
        args.epochs = 2
    ks = [int(k) for k in (args.ks or "1,8,64").split(",")]
    logging.getLogger("optuna").setLevel(logging.WARNING)
    os.environ.setdefault("SKIPSEARCH_ARTIFACT_DIR", "off")
    info = machine()
    print(f"machine: {info}, torch threads per worker: {args.threads}")
    runs: list[dict[str, Any]] = []
    if args.only_hypervolume:
        args.hypervolume, args.devices = True, ""
    with tempfile.TemporaryDirectory(prefix="skipsearch-bench-") as tmp:
        for device in filter(None, args.devices.split(",")):
            if device == "cuda" and not torch.cuda.is_available():
                print("cuda: skipped (no CUDA device on this machine)")
                continue
            for name in args.studies.split(","):
                warm_up(name, args, device)
                base = None
                for k in ks + ([256] if device == "cuda" and args.ks is None else []):
                    trials = max(k, 8 if k == 1 else 16) if args.quick else max(2 * k, 32)
                    run = run_one(name, k, trials, args, device, Path(tmp))
                    if base is None:
                        base = run
                    run["speedup_vs_k1"] = round(run["trials_per_min"] / base["trials_per_min"], 2)
                    run.update(compare(base, run))
                    runs.append(run)
                    print(
                        f"{device} {name:20s} K={k:<4d} trials={run['trials']:<4d} "
                        f"{run['trials_per_min']:8.1f} trials/min "
                        f"(x{run['speedup_vs_k1']:.2f})  train {run['train_s_per_trial']:.3f} s/trial  "
                        f"other {run['other_s_per_trial']:.3f} s/trial  load {run['load_average_1min_before']}  "
                        f"max |d acc| {run['max_accuracy_diff']}"
                    )
    training: list[dict[str, Any]] = []
    for device in filter(None, args.devices.split(",")):
        if device == "cuda" and not torch.cuda.is_available():
            continue
        for name in args.studies.split(","):
            for k in [k for k in ks if k > 1]:
                row = training_only(name, k, args, device)
                training.append(row)
                print(
                    f"{device} {name:20s} K={k:<4d} training only, 1 epoch: "
                    f"{row['topologies']['speedup']:.2f}x per model for K topologies, "
                    f"{row['seed_sweep']['speedup']:.2f}x for a seed sweep  load {os.getloadavg()[0]:.2f}"
                )
    races = []
    race_medians: dict[str, dict[str, Any]] = {}
    if args.hypervolume:
        for seed in range(args.race_seeds):
            with tempfile.TemporaryDirectory(prefix="skipsearch-bench-") as tmp:
                race = hypervolume_race(args.race_k, 24 if args.quick else 40, args, Path(tmp), seed)
            races.append(race)
            print_race(f"cpu mnist1d-deep-skips seed {seed}", race, args.race_k)
            if "denoised" in race:
                print_race(f"  on {args.race_denoise}-seed mean accuracies", race["denoised"], args.race_k)
        denoised = [r["denoised"] for r in races if "denoised" in r]
        for key, rows in (("own accuracies", races), ("mean accuracies", denoised)):
            if rows:
                ratios = sorted(r["speedup"] or 0.0 for r in rows)
                median, low, high = median_with_interval(ratios)
                race_medians[key] = {"median": median, "interval_95": [low, high]}
                print(
                    f"hypervolume race on {key}: median speed-up x{median:.2f} over {len(rows)} seeds "
                    f"(95% bootstrap interval {low:.2f} to {high:.2f}; never counts as 0; {ratios})"
                )
    info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    for run in runs:
        run["metrics"] = len(run["metrics"])
    out = RESULTS
    if args.only_hypervolume:
        out = RESULTS.with_name("batched_trials_hypervolume.json")
    elif args.sampler == "study":
        out = RESULTS.with_name("batched_trials_study.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": info,
        "args": vars(args),
        "runs": runs,
        "training": training,
        "hypervolume_race": races,
        "race_medians": race_medians,
    }
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    # The random sampler asks the same topologies whatever K; the studies' samplers do not.
    same_topologies = args.sampler != "study"
    if same_topologies and any(r["max_accuracy_diff"] is not None and r["max_accuracy_diff"] > 0.02 for r in runs):
        print("warning: a batched trial's accuracy differs from the K = 1 run's by more than 0.02")


if __name__ == "__main__":
    main()
